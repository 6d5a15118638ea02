"""One deadline for a whole awaited call (``call_function_async``).

A policy's ``time_limit`` is the wall-clock time one call may take. An awaited
call runs in steps (a Lua coroutine resumed, a Wren fiber stepped, QuickJS's
job queue pumped, a Python coroutine sent a value) with the loop's turns in
between; the limit counts from the call's start through every step and every
suspension, so a call that sleeps, waits for a promise that never settles or
keeps the loop busy with short steps still ends at its deadline.

Each engine runs its steps under :attr:`AwaitDeadline.at` (its own interrupt
stops a step at that deadline, not at a fresh ``time_limit``), and wraps the
waiting in :func:`bounded`: one timer of the running loop (``asyncio.timeout_at``)
cancels the suspended await at the deadline, no polling. The engine's driver
then abandons what it was stepping (closes the coroutine, drops the fiber,
forgets the promise) and :func:`bounded` raises the engine's
:class:`~kryon_core.errors.ScriptTimeoutError`. Unwinding code the script
runs on the way (``finally``, Lua ``<close>`` variables) gets
``CLEANUP_SHARE`` of the limit past the deadline, under the engine's limits,
so the error comes within 1.25 times the limit even then.

A cancellation from outside (the host's own ``wait_for``) is not turned into
a timeout: it reaches the caller as ``CancelledError`` as before.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .errors import ScriptTimeoutError

__all__ = ["AwaitDeadline", "bounded", "CLEANUP_SHARE"]

T = TypeVar("T")

#: the share of ``time_limit`` an abandoned coroutine or fiber gets past the
#: deadline to run its unwinding code (``finally`` blocks, Lua ``<close>``)
CLEANUP_SHARE = 0.25


class AwaitDeadline:
    """The deadline of one awaited call: ``at`` in ``time.monotonic()``
    seconds, or None for a policy without a time limit (it waits as long as
    the awaited thing takes)."""

    __slots__ = ("limit", "at")

    def __init__(self, time_limit: float | None) -> None:
        self.limit = time_limit
        self.at = None if time_limit is None else time.monotonic() + time_limit

    def passed(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at

    def remaining(self) -> float | None:
        """Seconds left (never below zero), None without a limit."""
        return None if self.at is None else max(0.0, self.at - time.monotonic())

    async def expired(self) -> None:
        """Wait until :func:`bounded`'s timer cancels the awaiting task (for a
        driver that finds the deadline passed before a step and must not
        start it); the wait is a few timer turns, never a busy loop."""
        while True:
            await asyncio.sleep(max(0.001, self.remaining() or 0.0))

    def cleanup_at(self) -> float | None:
        """The deadline of the unwinding after an abandonment (see the module docstring)."""
        if self.at is None or self.limit is None:
            return None
        return max(self.at, time.monotonic()) + self.limit * CLEANUP_SHARE


#: ``asyncio.timeout_at`` (Python 3.11 and later)
_timeout_at: Any = getattr(asyncio, "timeout_at", None)


async def bounded(deadline: AwaitDeadline, drive: Awaitable[T], timed_out: Callable[[], ScriptTimeoutError]) -> T:
    """Await ``drive`` until ``deadline``; past it ``drive`` is cancelled (its
    driver abandons what it stepped) and ``timed_out()`` is raised. Without a
    limit ``drive`` is awaited as it is."""
    if deadline.at is None:
        return await drive
    if _timeout_at is None:
        return await _bounded_by_wait_for(deadline, drive, timed_out)
    loop = asyncio.get_running_loop()
    when = loop.time() + (deadline.at - time.monotonic())  # the loop's clock need not be monotonic()'s
    timer = _timeout_at(when)
    try:
        async with timer:
            return await drive
    except TimeoutError:
        if not timer.expired():  # the script's own TimeoutError, not the deadline's
            raise
        raise timed_out() from None


async def _bounded_by_wait_for(
    deadline: AwaitDeadline, drive: Awaitable[T], timed_out: Callable[[], ScriptTimeoutError]
) -> T:
    """:func:`bounded` on Python 3.10, which has no ``asyncio.timeout``:
    ``wait_for`` runs ``drive`` as a task of its own and cancels it at the deadline."""
    try:
        return await asyncio.wait_for(drive, deadline.remaining())
    except asyncio.TimeoutError:
        if not deadline.passed():
            raise
        raise timed_out() from None
