"""An awaited JavaScript call ended by its deadline or by the host's
cancellation leaves no timer behind: whatever it scheduled on the
document's clock (nested timers, an interval, a timer set by a function it
called, a promise chain a timer resolves) is cleared, so nothing of the dead
call runs later. A call that settles keeps its timers (fire and forget)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from kryon_core import ScriptManager, ScriptTimeoutError
from kryon_core.testing.awaited import LIMIT, OUTER, AwaitedContract

pytest.importorskip("kryon_js")

from test_async_deadline import JS  # noqa: E402 - the contract's scripts, with the ones below added

TIMERS = """
async function nested(cb) {
  for (;;) await new Promise((r) => setTimeout(() => setTimeout(() => { cb(); r(); }, 2), 2));
}
async function interval(cb) {
  setInterval(cb, 3);
  await new Promise(() => {});
}
function later(cb) { return new Promise((r) => setTimeout(() => { cb(); r(); }, 3)); }
async function viaCallee(cb) { for (;;) await later(cb); }
async function chain(cb) {
  for (;;) await new Promise((r) => setTimeout(r, 3)).then(() => cb()).then(() => null);
}
async function leaveTimer(cb) { setTimeout(cb, 5); await null; return 1; }
"""

CASES = ["s.nested", "s.interval", "s.viaCallee", "s.chain"]


class _Driver(AwaitedContract):
    """The awaited-call driver's helpers (make, run, awaited, still_usable) for the scripts above; its own
    cases run in test_async_deadline.py."""

    __test__ = False
    scripts = replace(JS, source=JS.source + TIMERS)


def _after(d: _Driver, m: ScriptManager, ticks: list[int]) -> int:
    """The ticks seen while the clock runs on for half a limit after the call ended."""

    async def wait() -> int:
        seen = len(ticks)
        await asyncio.sleep(LIMIT / 2)  # many steps of the call, were it still running
        return len(ticks) - seen

    return d.run(m, wait)


@pytest.mark.parametrize("kind", ["sandboxed with a limit", "trusted with a limit", "sandboxed without a limit",
                                  "trusted without a limit"])
@pytest.mark.parametrize("name", CASES)
def test_a_cancelled_call_leaves_no_timer(kind: str, name: str) -> None:
    d = _Driver()
    m = d.make(kind)
    ticks: list[int] = []

    async def main() -> None:
        task = asyncio.ensure_future(m.call_function_async(name, [lambda: ticks.append(1)]))
        while len(ticks) < 3 and not task.done():
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        d.run(m, lambda: asyncio.wait_for(main(), OUTER))
        assert ticks, "the call ran"
        assert _after(d, m, ticks) == 0, "nothing of the cancelled call ran later"
        assert d.doc is not None and d.doc.pending_timers == 0, "its timers were cleared"
        d.still_usable(m, 0)
    finally:
        m.close()


@pytest.mark.parametrize("kind", ["sandboxed with a limit", "trusted with a limit"])
@pytest.mark.parametrize("name", CASES)
def test_a_timed_out_call_leaves_no_timer(kind: str, name: str) -> None:
    d = _Driver()
    m = d.make(kind)
    ticks: list[int] = []
    try:
        with pytest.raises(ScriptTimeoutError):
            d.awaited(m, name, lambda: ticks.append(1))
        assert ticks, "the call ran"
        assert _after(d, m, ticks) == 0, "nothing of the timed-out call ran later"
        assert d.doc is not None and d.doc.pending_timers == 0, "its timers were cleared"
        d.still_usable(m, 0)
    finally:
        m.close()


def test_a_settled_call_keeps_its_timers() -> None:
    d = _Driver()
    m = d.make("trusted with a limit")
    ticks: list[int] = []
    try:
        assert d.awaited(m, "s.leaveTimer", lambda: ticks.append(1)) == 1
        _after(d, m, ticks)
        assert ticks == [1], "a timer of a call that settled still fires, once"
    finally:
        m.close()
