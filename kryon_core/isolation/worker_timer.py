"""A call's time limit inside the worker (worker side, standard library only,
loaded by path like every sibling of ``worker.py``).

Per outermost call (:class:`Armed`) the worker keeps ``ITIMER_REAL``, whose
handler (:func:`on_alarm`) raises :class:`ScriptTimeout` in script code,
and ``RLIMIT_CPU`` (the kernel's SIGXCPU if the script hides in C code);
the host keeps its own deadline and kills the process past it.

Arming and disarming ITIMER_REAL and reading the CPU clock for every call
cost more than the rest of a trivial call's round trip (system calls are
dear in a VM). So the kernel timer is left running after a call: a later
call whose deadline is later finds it armed and lets it fire early; the
handler then re-arms it for the rest of that call's limit (or does nothing
when no call runs). The CPU backstop is refreshed only when the CPU time
used since the last check could, at most, have reached it: a process uses
no more CPU time than wall time times its CPUs.
"""

from __future__ import annotations

import os
import signal
import struct
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import worker_channel
else:  # loaded by worker.py (``_load_sibling``) before this module
    worker_channel = sys.modules["kryon_isolation_worker_channel"]

S = worker_channel.S
ScriptTimeout = worker_channel.ScriptTimeout

_setitimer = signal.setitimer
_ITIMER_REAL = signal.ITIMER_REAL
_monotonic = time.monotonic
_CPUS = os.cpu_count() or 1
#: a request id in the cancel pipe (process.CANCEL_ID on the host)
_CANCEL_ID = struct.Struct("<q")


def _cpu_now() -> float:
    t = os.times()
    return t.user + t.system


def on_alarm(signum: int, frame: Any) -> None:
    """SIGALRM: the running call's limit is up (or re-armed for its rest)."""
    S.timer_at = 0.0
    deadline = S.call_deadline
    if deadline is None:
        return  # the timer of a call that already ended
    left = deadline - _monotonic()
    if left > 0:  # armed by an earlier call: the rest of this call's limit
        S.timer_at = deadline
        _setitimer(_ITIMER_REAL, left)
        return
    if S.script_running:
        if _in_trace_function(frame):
            fire_soon()
            return
        raise ScriptTimeout("time limit exceeded")
    S.pending_timeout = True


def on_cancel(signum: int, frame: Any) -> None:
    """SIGUSR2: the host's task awaiting a call was cancelled: the call ends
    as at its time limit (its tasks are cancelled and unwind). A signal
    landing outside script code (the worker serving a host reply, a trace
    function, between calls) does nothing: the host sends it again while
    its call runs, and past a grace kills the worker. Nor does one meant
    for a call that already ended (:func:`_meant_for_a_served_call`)."""
    if S.script_running and not S.abandoning and not _in_trace_function(frame) and _meant_for_a_served_call():
        raise ScriptTimeout("the call was cancelled by the host")


def _meant_for_a_served_call() -> bool:
    """Whether the host cancelled a request this worker serves now: before
    each SIGUSR2 the host writes the id of the request it means down the
    cancel pipe (8 bytes, written whole). The ids read now are those of
    every signal since the last look; one of a call that has ended (the
    host chose it just before that call's reply arrived) is dropped, so it
    never stops the next call on this worker, another thread's."""
    fd = S.cancel_fd
    if fd < 0:
        return True  # started without a pipe: every signal is meant
    try:
        data = os.read(fd, 4096)
    except OSError:  # empty (BlockingIOError): no id came with this signal
        return False
    serving = S.serving
    return any(rid in serving for (rid,) in _CANCEL_ID.iter_unpack(data[: len(data) - len(data) % 8]))


def _in_trace_function(frame: Any) -> bool:
    """Whether the signal landed in a trace function itself (at its entry,
    before its own ``try`` can catch the timeout)."""
    S.internal += 1
    try:
        return frame is not None and frame.f_code in S.trace_codes
    finally:
        S.internal -= 1


#: how soon a timeout that reached a trace function is raised again
_RETRY = 0.001


def fire_soon() -> None:
    """Raise the running call's timeout again in a moment, from script code.

    For a :class:`ScriptTimeout` that reached a trace function (the
    debugger's or the breakpoints'): when a trace function raises, CPython
    turns tracing off itself through an audited ``sys.settrace``, which the
    audit hook refuses, so the timeout would reach the host as an
    ``AccessDeniedError``. The trace function swallows the timeout and calls
    this instead."""
    if S.call_deadline is None:
        return  # the call is over
    S.timer_at = _monotonic() + _RETRY
    S.internal += 1
    try:
        _setitimer(_ITIMER_REAL, _RETRY)
    finally:
        S.internal -= 1


#: the share of the time limit a call's abandoned tasks get to unwind (kryon_core.awaited.CLEANUP_SHARE)
CLEANUP_SHARE = 0.25


def cleanup_budget() -> None:
    """Give the running call, already past its deadline, ``CLEANUP_SHARE`` of
    its limit more, after which the timer raises ScriptTimeout again (the
    host's watchdog kills the worker only at 1.4 times the limit)."""
    limit = S.time_limit
    if not limit or S.call_deadline is None:
        return
    S.call_deadline = _monotonic()  # past: the handler raises rather than re-arms
    S.timer_at = S.call_deadline + limit * CLEANUP_SHARE
    S.internal += 1
    try:
        _setitimer(_ITIMER_REAL, limit * CLEANUP_SHARE)
    finally:
        S.internal -= 1


def _refresh_cpu_limit(limit: float, now: float) -> None:
    """The kernel's backstop: SIGXCPU once this process used its CPU budget
    (kept a few limits ahead; read and moved only when it could be near)."""
    if S.cpu_checked_cpu + (now - S.cpu_checked_at) * _CPUS + limit + 1 <= S.cpu_soft:
        return
    cpu = _cpu_now()
    S.cpu_checked_cpu, S.cpu_checked_at = cpu, now
    if S.cpu_soft - cpu < limit + 1:
        import resource

        S.cpu_soft = int(cpu + 4 * limit) + 2
        S.internal += 1
        try:
            resource.setrlimit(resource.RLIMIT_CPU, (S.cpu_soft, resource.RLIM_INFINITY))
        except (ValueError, OSError):
            pass
        finally:
            S.internal -= 1


class Armed:
    """Time limits for one outermost call: ITIMER_REAL and RLIMIT_CPU."""

    __slots__ = ("limit", "outer")

    def __init__(self) -> None:
        self.limit = S.time_limit
        self.outer = False

    def __enter__(self) -> "Armed":
        limit = self.limit
        if limit and not S.timer_armed:
            self.outer = True
            S.timer_armed = True
            S.pending_timeout = False
            now = _monotonic()
            deadline = now + limit
            S.call_deadline = deadline
            _refresh_cpu_limit(limit, now)
            if not S.timer_at or S.timer_at <= now or S.timer_at > deadline:
                S.timer_at = deadline
                _setitimer(_ITIMER_REAL, limit)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.outer:
            S.call_deadline = None  # the timer may still fire: the handler then does nothing
            S.timer_armed = False
            S.pending_timeout = False
