"""Engine gates: how threads enter script runtimes without ever deadlocking.

Every runtime (a Lua state, a JavaScript context, a Wren instance, a worker
process) has one :class:`EngineGate`, and host code enters the runtime only
through it: ``gate.run(fn, *args)``. A gate is a re-entrant lock, so a script
that calls back into its own runtime (a callback, ``kryon.call`` to a script
of the same engine) enters again on the same thread.

The danger is a cycle between runtimes. Thread 1, inside runtime A, calls into
B while thread 2, inside B, calls into A: each holds one runtime and waits for
the other, and the libraries' own locks (lupa's, QuickJS's) cannot be
interrupted once a thread waits on them. Gates never let a thread that holds a
runtime block on a library lock. Instead a thread that must wait *helps*:

- it registers as a waiter, with the gates it holds, and polls the gate it
  wants instead of blocking on it;
- a thread that finds the gate it wants held by a waiter hands its call to that
  waiter as a job and waits for the result;
- a waiter runs the jobs handed to it on its own stack, where the runtime is
  already entered: the same re-entrance a callback uses.

So in the example, thread 1 runs thread 2's call into A (or thread 2 runs
thread 1's call into B), the other call completes, and both chains finish. A
cycle of waiters always contains a waiter able to run the job it was handed,
which is why no set of threads can wait on each other for ever. The price on
the uncontended path is one non-blocking acquire and one release.

A job runs with the helping thread's thread-local state (its call-depth
counter, for one); results and errors travel back to the thread that asked.
"""

from __future__ import annotations

import sys
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["EngineGate", "track_entries", "entries", "tracking", "wake_waiters", "direct_lock", "waiting_offset"]

T = TypeVar("T")

_get_ident = threading.get_ident

#: guards the waiter table and every job's state; never held while a gate is awaited or a job runs
_cond = threading.Condition(threading.Lock())
#: thread id -> for each wait the thread has open (a job it runs may wait again), the gates it held
#: when that wait began; the last entry is the innermost wait
_holding: dict[int, list[frozenset["EngineGate"]]] = {}
#: thread id -> jobs handed to that thread, oldest first
_inbox: dict[int, deque["_Job"]] = {}
#: every live gate, so a waiter can tell which ones it holds
_gates: "weakref.WeakSet[EngineGate]" = weakref.WeakSet()

#: how long a waiter sleeps between looks at its gate (seconds); releases wake it sooner
_POLL = 0.005


class EngineGate:
    """The one way into a runtime: a re-entrant lock whose waiters help each
    other instead of deadlocking (see the module docstring)."""

    __slots__ = ("name", "language", "_lock", "_waiting", "__weakref__")

    def __init__(self, name: str, language: str | None = None) -> None:
        self.name = name
        #: the language of the runtime behind the gate (the debugger orders stacks by it)
        self.language = language
        self._lock = threading.RLock()
        self._waiting = 0  # threads polling this gate: a release wakes them
        _gates.add(self)

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` inside the runtime: at once when the gate is free
        or already held by this thread, otherwise after waiting (and helping)."""
        lock = self._lock
        if lock.acquire(False):
            try:
                return fn(*args)
            finally:
                lock.release()
                if self._waiting:
                    _wake()
        return _run_contended(self, fn, args)

    def uncontended(self) -> tuple[Callable[[bool], bool], Callable[[], None]]:
        """``(acquire, release)`` for a hot path that inlines :meth:`run`'s
        uncontended case: ``if acquire(False): try: ... finally: release()``,
        and calls :meth:`run` when ``acquire`` fails (or while the module's
        ``tracking`` list is not empty: a debugger records every entry)."""
        lock = self._lock

        def release() -> None:
            lock.release()
            if self._waiting:
                _wake()

        return lock.acquire, release

    def uncontended_inline(self) -> tuple[Callable[[bool], bool], Callable[[], None]]:
        """``(acquire, unlock)``: :meth:`uncontended` for generated code that
        writes its release out too, one Python frame less per call: after
        ``unlock()`` it must call :func:`wake_waiters` when ``gate._waiting``
        is not zero (the gate's ``release`` does exactly that)."""
        lock = self._lock
        return lock.acquire, lock.release

    def held(self) -> bool:
        """Whether the calling thread holds this gate."""
        return bool(self._lock._is_owned())  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"<EngineGate {self.name}>"


class _Job:
    """A call handed from a waiting thread to the thread that holds its gate."""

    __slots__ = ("gate", "fn", "args", "state", "result", "error")

    def __init__(self, gate: EngineGate, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.gate, self.fn, self.args = gate, fn, args
        self.state = "posted"  # -> "running" -> "done"; or -> "withdrawn" when its helper left
        self.result: Any = None
        self.error: BaseException | None = None


def _wake() -> None:
    with _cond:
        _cond.notify_all()


#: wake the threads polling gates (see :meth:`EngineGate.uncontended_inline`)
wake_waiters = _wake


def _run_contended(gate: EngineGate, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    me = _get_ident()
    _open_wait(me, gate)
    try:
        job: _Job | None = None
        while True:
            if job is None and gate._lock.acquire(False):
                break
            _serve(me)
            with _cond:
                if job is None:
                    helper = _holder_waiting(gate, me)
                    if helper is not None:
                        job = _Job(gate, fn, args)
                        _inbox[helper].append(job)
                        _cond.notify_all()
                        continue
                elif job.state == "done":
                    if job.error is not None:
                        raise job.error
                    return job.result  # type: ignore[no-any-return]
                elif job.state == "withdrawn":
                    job = None  # its helper stopped waiting: the gate may be free now
                    continue
                if not _inbox[me]:
                    _cond.wait(_POLL)
    finally:
        _close_wait(me, gate)
    try:  # the gate is ours: run the call here
        return fn(*args)
    finally:
        gate._lock.release()
        if gate._waiting:
            _wake()


def _open_wait(me: int, gate: EngineGate) -> None:
    holds = frozenset(g for g in list(_gates) if g is not gate and g.held())
    with _cond:
        _holding.setdefault(me, []).append(holds)
        _inbox.setdefault(me, deque())
        gate._waiting += 1


def _close_wait(me: int, gate: EngineGate) -> None:
    with _cond:
        gate._waiting -= 1
        stack = _holding[me]
        stack.pop()
        if stack:
            return  # an outer wait of this thread goes on, and serves the inbox
        del _holding[me]
        for job in _inbox.pop(me, ()):
            job.state = "withdrawn"
        _cond.notify_all()


def _holder_waiting(gate: EngineGate, me: int) -> int | None:
    """A waiting thread (not ``me``) that holds ``gate`` and so can run a job in it."""
    for thread, stack in _holding.items():
        if thread != me and gate in stack[-1]:
            return thread
    return None


def _serve(me: int) -> None:
    """Run every job handed to this thread (called while it waits)."""
    while True:
        with _cond:
            inbox = _inbox.get(me)
            if not inbox:
                return
            job = inbox.popleft()
            job.state = "running"
        try:
            job.result = job.gate.run(job.fn, *job.args)
        except BaseException as exc:  # handed back to the thread that asked
            job.error = exc
        with _cond:
            job.state = "done"
            _cond.notify_all()


# -- which runtimes a thread is inside (for the debugger) ----------------------------------
_entered = threading.local()
_plain_run = EngineGate.run


def _tracking_run(self: EngineGate, fn: Callable[..., T], *args: Any) -> T:
    stack = getattr(_entered, "stack", None)
    if stack is None:
        stack = _entered.stack = []
    stack.append(self.language)
    try:
        return _plain_run(self, fn, *args)
    finally:
        stack.pop()


_trackers = 0

#: not empty while entries are tracked: a hot path that inlines the uncontended gate (see
#: :meth:`EngineGate.uncontended`) tests it and goes through :meth:`EngineGate.run` instead, so that
#: its entries are recorded too
tracking: list[bool] = []


def track_entries(on: bool) -> None:
    """Record, per thread, which runtimes it entered, in order, while at least
    one debugger asks for it; runs without a debugger pay nothing for it."""
    global _trackers
    with _cond:
        _trackers = max(0, _trackers + (1 if on else -1))
        EngineGate.run = _tracking_run if _trackers else _plain_run  # type: ignore[method-assign]
        tracking[:] = [True] if _trackers else []


def entries() -> list[str]:
    """The languages of the runtimes the calling thread is inside, outermost
    first (recorded only while :func:`track_entries` is on)."""
    return [lang for lang in getattr(_entered, "stack", ()) if lang is not None]


# -- the gate from C (kryon_core/_speedups.c, its capsule for engine extensions) ------------
_fresh_ok: list[bool] = []  # the check on a fresh lock, made once per process


def direct_lock(gate: EngineGate) -> Any:
    """The gate's lock when C code may take and give it back through the
    compiled core's capsule (``lock_enter``/``lock_leave`` in
    ``kryon_core/_speedups_api.h``), else None: then C code calls the lock's
    methods. Called inside the gate or with it free, never while another
    thread holds it (the check then fails, harmlessly).

    Nothing about CPython's C RLock is assumed: on a fresh lock of its type
    (once per process) and on the gate's own lock, its owner and count fields
    must follow the lock's own acquire and release, and the plain lock under it
    must be held exactly while the count is not zero."""
    from . import speedups

    ext = speedups.module()
    lock = gate._lock
    if (ext is None or sys.implementation.name != "cpython" or sys.version_info[:2] not in ((3, 11), (3, 12))
            or type(lock) is not getattr(threading, "_CRLock", None)):
        return None
    try:
        if not _fresh_ok:
            _fresh_ok.append(_fresh_lock_holds(ext, type(lock)))
        if not _fresh_ok[0] or not _live_lock_holds(ext, lock):
            return None
    except (TypeError, ValueError, RuntimeError):  # a size the reader refuses, a release the lock refused
        return None
    return lock


def _fresh_lock_holds(ext: Any, kind: type) -> bool:
    """The absolute values on a new lock: 0, then 1 by this thread, then 0 again."""
    me = _get_ident()
    fresh = kind()
    if ext.lock_fields(fresh)[1:] != (0, 0) or not ext.lock_try(fresh) or not fresh.acquire(False):
        return False
    ok = ext.lock_fields(fresh)[1:] == (me, 1) and not ext.lock_try(fresh)
    fresh.release()
    # the capsule's own functions on it: taken, re-entered, given back in full (a throwaway lock:
    # one a surprise leaves held is simply dropped)
    if not ok or ext.lock_fields(fresh)[1:] != (0, 0) or not ext.lock_try(fresh) or not ext.api_enter(fresh):
        return False
    if not fresh._is_owned() or ext.lock_fields(fresh)[1:] != (me, 1) or not ext.api_enter(fresh):
        return False
    ok = ext.lock_fields(fresh)[1:] == (me, 2)
    ext.api_leave(fresh)
    ok = ok and fresh._is_owned() and ext.lock_fields(fresh)[1:] == (me, 1)
    ext.api_leave(fresh)
    return bool(ok and not fresh._is_owned() and ext.lock_fields(fresh)[1:] == (0, 0) and ext.lock_try(fresh))


def _live_lock_holds(ext: Any, lock: Any) -> bool:
    """The gate's own lock, relative to its state now (this thread may hold it)."""
    me = _get_ident()
    address, owner, count = ext.lock_fields(lock)
    if not address or (count > 0) != (owner == me) or ext.lock_try(lock) != (count == 0):
        return False  # held by another thread, or fields elsewhere
    if not lock.acquire(False):
        return False
    try:
        if ext.lock_fields(lock) != (address, me, count + 1) or ext.lock_try(lock):
            return False
        lock.acquire(False)
        inner = ext.lock_fields(lock)
        lock.release()
        if inner != (address, me, count + 2):
            return False
    finally:
        lock.release()
    return bool(ext.lock_fields(lock) == (address, me if count else 0, count) and ext.lock_try(lock) == (count == 0))


def waiting_offset(gate: EngineGate) -> int:
    """The offset of the gate's ``_waiting`` slot, for C code reading it after
    each release (the capsule's ``gate_waiting``); 0 when the compiled core is
    off or the slot is not where its descriptor says."""
    from . import speedups

    ext = speedups.module()
    if ext is None:
        return 0
    try:
        offset = int(ext.slot_offset(vars(EngineGate)["_waiting"]))
        return offset if type(gate) is EngineGate and ext.read_slot(gate, offset) is gate._waiting else 0
    except (KeyError, TypeError, ValueError):
        return 0
