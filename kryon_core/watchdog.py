"""Time limits for scripts that run as Python bytecode in the host process.

Trusted Python and Kryon Lisp scripts run in the host interpreter, where no
hook can stop them from outside. :class:`Watchdog` is one thread that raises
:class:`TimeLimitExceeded` in a thread whose call ran past its deadline
(CPython delivers it at the script's next bytecode boundary). It interrupts
script code, not a blocking call into C, and a script that catches every
BaseException in a loop can outlast it: a convenience against mistakes in
trusted code, not a security boundary (sandboxed scripts run in worker
processes with OS limits instead, see :mod:`kryon_core.isolation`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["TimeLimitExceeded", "Watchdog", "async_exc_setter"]


class TimeLimitExceeded(BaseException):
    """Raised inside a script's thread by the watchdog (a BaseException, so
    ``except Exception`` in a script does not swallow it)."""


_setter: Callable[[int, type], None] | None = None


def async_exc_setter() -> Callable[[int, type], None]:
    """A function scheduling an exception in a thread (``PyThreadState_SetAsyncExc``
    through ctypes). ctypes is loaded by the first caller that sets a limit,
    not on import: a script run without limits never needs it."""
    global _setter
    if _setter is None:
        import ctypes

        raw = ctypes.pythonapi.PyThreadState_SetAsyncExc

        def set_async_exc(thread: int, exc: type) -> None:
            raw(ctypes.c_ulong(thread), ctypes.py_object(exc))

        _setter = set_async_exc
    return _setter


def _absorb_pending() -> None:
    """Let a TimeLimitExceeded still pending for this thread land here.

    A pending asynchronous exception is delivered at the next backward jump,
    so a short loop catches it. (Clearing it with PyThreadState_SetAsyncExc(
    NULL) instead leaves CPython 3.11's eval breaker set for good, and any
    later traced call, a breakpoint in another engine say, then spins forever
    on its first instruction.)"""
    try:
        for _ in range(64):
            pass
    except TimeLimitExceeded:
        pass


class _Arm:
    __slots__ = ("thread", "deadline", "armed", "fired")

    def __init__(self, thread: int, deadline: float) -> None:
        self.thread = thread
        self.deadline = deadline
        self.armed = True
        self.fired = False


class Watchdog:
    """One thread that interrupts calls running past their deadline.

    ``arm(seconds)`` returns a token for the calling thread; when the
    deadline passes while it is armed, :class:`TimeLimitExceeded` is raised
    in that thread, and again every ``repeat`` seconds while the call
    runs on (a script that swallowed one interrupt is still stopped; one
    catching every BaseException in a loop is not: trusted limits are a
    convenience, not a boundary). ``disarm(token)`` stops it and clears an exception still
    pending, so none lands in host code after the call returned; callers
    retry ``disarm`` if the exception arrives while they call it."""

    def __init__(self, repeat: float = 0.05) -> None:
        #: loaded here, in the thread that wants a limit, rather than in the watchdog's thread as it fires
        self._set_async_exc = async_exc_setter()
        self._cond = threading.Condition()
        self._arms: list[_Arm] = []
        self._repeat = repeat
        self._thread: threading.Thread | None = None
        self._closed = False

    def arm(self, seconds: float) -> _Arm:
        token = _Arm(threading.get_ident(), time.monotonic() + seconds)
        with self._cond:
            self._arms.append(token)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="kryon-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()
        return token

    def disarm(self, token: _Arm) -> None:
        with self._cond:
            if token.armed:
                token.armed = False
                if token in self._arms:
                    self._arms.remove(token)
            fired = token.fired
        if fired:
            _absorb_pending()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                wait = 1.0
                for token in self._arms:
                    if token.deadline <= now:
                        token.fired = True
                        self._set_async_exc(token.thread, TimeLimitExceeded)
                        token.deadline = now + self._repeat
                    wait = min(wait, token.deadline - now)
                self._cond.wait(max(wait, 0.001))
