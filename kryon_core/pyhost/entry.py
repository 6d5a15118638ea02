"""The way into script code: every call into an in-process script runs here.

:meth:`Entry.run` enters the engine's gate (``kryon_core.threads``), applies
the script's limits and the debugger's trace hook, runs the script's code,
turns its result into a host value (``finish``) while still inside, and turns
any exception into a Kryon error. Calls with nothing to watch (no limit, no
breakpoint) take the short path: the gate, the call, the result.

Limits kept here, as conveniences against mistakes in trusted code (a script
in the host interpreter can defeat any of them; untrusted code runs in worker
processes instead):

- ``time_limit``: :class:`kryon_core.watchdog.Watchdog` raises into the
  thread's outermost script call when it runs past its deadline;
- ``max_recursion``: script calls nested deeper than the limit are stopped by
  the tracer (:mod:`.tracing`), counted from the call that entered;
- ``max_value_size``: strings, lists and maps crossing in or out (:mod:`.values`).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..threads import EngineGate
from ..watchdog import TimeLimitExceeded, Watchdog
from .state import HostedScript
from .tracing import Tracer

__all__ = ["Entry", "PASSTHROUGH", "is_cancellation"]

#: exceptions that leave script code untranslated: the user's Ctrl-C and a
#: coroutine being closed; task cancellation too, through the translation
#: (``is_cancellation``), so that naming asyncio's class here does not
#: import asyncio into every host that runs a trusted script
PASSTHROUGH = (KeyboardInterrupt, GeneratorExit)


def is_cancellation(exc: BaseException) -> bool:
    """Whether ``exc`` is asyncio's CancelledError (which, like PASSTHROUGH,
    leaves script code untranslated). Only a loaded asyncio can have made one."""
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and isinstance(exc, asyncio.CancelledError)

Finish = Callable[[Any, HostedScript], Any]
Fail = Callable[[BaseException, HostedScript], BaseException]


class Entry:
    """Runs script code for one engine (see the module docstring)."""

    def __init__(self, gate: EngineGate, tracer: Tracer, fail: Fail) -> None:
        self.gate = gate
        self.tracer = tracer
        self.fail = fail
        self.watchdog: Watchdog | None = None
        self._local = threading.local()  # .depth: script calls of this thread in progress

    def run(self, script: HostedScript, fn: Callable[..., Any], args: Sequence[Any], finish: Finish) -> Any:
        """``finish(fn(*args), script)`` inside the engine (see the module docstring)."""
        if script.guarded or self.tracer.breakpoints.active:
            return self.gate.run(self._guarded, script, fn, args, finish)
        return self.gate.run(self._plain, script, fn, args, finish)

    def run_until(self, until: float | None, script: HostedScript, fn: Callable[..., Any], args: Sequence[Any],
                  finish: Finish) -> Any:
        """:meth:`run` with the outermost call's deadline no later than ``until``
        (``time.monotonic()`` seconds): a step of an awaited call ends at the
        call's one deadline, not at a fresh ``time_limit`` (``kryon_core.awaited``)."""
        if until is None:
            return self.run(script, fn, args, finish)
        local = self._local
        previous = getattr(local, "until", None)
        local.until = until
        try:
            return self.run(script, fn, args, finish)
        finally:
            local.until = previous

    def _plain(self, script: HostedScript, fn: Callable[..., Any], args: Sequence[Any], finish: Finish) -> Any:
        try:
            return finish(fn(*args), script)
        except PASSTHROUGH:
            raise
        except BaseException as exc:
            raise self.fail(exc, script) from None

    def _guarded(self, script: HostedScript, fn: Callable[..., Any], args: Sequence[Any], finish: Finish) -> Any:
        local = self._local
        depth = getattr(local, "depth", 0)
        local.depth = depth + 1
        token = None
        traced = None
        try:
            try:
                if depth == 0 and script.time_limit is not None:
                    token = self._arm(script)
                traced = self.tracer.enter(script.policy.max_recursion)
                return finish(fn(*args), script)
            finally:
                # Disarm before anything else: until it is done an interrupt may land on any
                # line here (leave() included), and one that skipped the disarm would leave
                # the watchdog firing into this thread for good. One landing now is retried.
                while token is not None:
                    try:
                        self.watchdog.disarm(token)  # type: ignore[union-attr]
                        token = None
                    except TimeLimitExceeded:
                        pass
                local.depth = depth
                self.tracer.leave(traced)
        except PASSTHROUGH:
            raise
        except BaseException as exc:
            raise self.fail(exc, script) from None

    def _arm(self, script: HostedScript) -> Any:
        if self.watchdog is None:
            self.watchdog = Watchdog()
        seconds: float = script.time_limit  # type: ignore[assignment]
        until = getattr(self._local, "until", None)
        if until is not None:
            seconds = min(seconds, max(0.0, until - time.monotonic()))
        return self.watchdog.arm(seconds)

    def close(self) -> None:
        if self.watchdog is not None:
            self.watchdog.close()
            self.watchdog = None

