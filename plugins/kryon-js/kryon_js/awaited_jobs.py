"""What an awaited call scheduled on the host: the timers its code set
(``setTimeout``, ``setInterval``), so that a call ended by its deadline or
by the host's cancellation leaves nothing of it to run later.

QuickJS's job queue holds the call's promise reactions, which ``end_jobs``
ends; a timer lives on the document's clock instead, and when it fires its
callback resumes what awaited it. So while an awaited call's code runs (its
first run, each pump of the job queue while it is pending, and the callback
of a timer it set, which may set more: nested timers, a timer set by a
function the call called, a promise chain resolved by a timer), the
script's state names the call (``ScriptState.awaited_call``), and
``kryon.setTimeout``/``setInterval`` record their timer under it
(:func:`track`). Ended early, the call clears every timer it still has, and
a callback of its already on its way out of the clock does nothing.

A pump runs every job of the script's queue, so while two awaited calls of
one script are pending, a job of the other one that runs in this call's pump
has its timers counted as this call's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .state import ScriptState

#: the API entries that schedule a callback on the document's clock
TIMER_ENTRIES = frozenset({"setTimeout", "setInterval"})


class AwaitedJobs:
    """The timers of one awaited call (see the module doc)."""

    __slots__ = ("state", "timers", "ended", "settled")

    def __init__(self, state: "ScriptState") -> None:
        self.state = state
        self.timers: set[int] = set()
        #: ended by its deadline or a cancellation: its timers were cleared and run no more
        self.ended = False
        #: the call's promise settled: its timers are the script's own from now on
        self.settled = False

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` as this call's code (inside the script's gate)."""
        state = self.state
        outer = state.awaited_call
        state.awaited_call = self
        try:
            return fn(*args)
        finally:
            state.awaited_call = outer

    def timer_callback(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        """``callback`` of a timer this call set, run as this call's code."""

        def fire(*args: Any) -> Any:
            if self.ended:
                return None
            if self.settled:
                return callback(*args)
            return self.state.gate.run(self.run, callback, *args)

        fire.__name__ = str(getattr(callback, "name", None) or getattr(callback, "__name__", "timer"))
        return fire

    def end(self) -> None:
        """The call was left early: clear its timers (an interval too)."""
        self.ended = True
        view = self.state.view
        timers, self.timers = self.timers, set()
        if view is None:
            return
        for tid in timers:
            try:
                view.clear_timer(tid)
            except Exception:  # noqa: BLE001 - the document went away: nothing is left to fire
                pass


def track(state: "ScriptState", values: Any) -> tuple[AwaitedJobs | None, Any]:
    """For ``kryon.setTimeout``/``setInterval`` called while an awaited call's
    code runs: that call, and the arguments with its callback wrapped (see
    :meth:`AwaitedJobs.timer_callback`). Otherwise (None, the arguments)."""
    owner = state.awaited_call
    if owner is None or owner.settled or not values:
        return None, values
    return owner, (owner.timer_callback(values[0]), *values[1:])
