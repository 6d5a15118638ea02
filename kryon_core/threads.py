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

import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["EngineGate", "track_entries", "entries", "tracking", "wake_waiters"]

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
