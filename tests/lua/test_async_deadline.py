"""An awaited Lua call (a coroutine stepped on the caller's loop) is bounded
by the policy's time_limit as a whole: every step and every kryon.sleep or
yield in between share one deadline (kryon_core.awaited). Past it the
coroutine is closed (its <close> variables run, under the limits) and the
call raises ScriptTimeoutError naming the line where it was suspended; the
script keeps its globals and a bystander its state. Trusted policies without
a limit keep waiting; the host's own cancellation still works. Wall times are
never asserted: "did not wait forever" is an outer wait_for of many budgets."""

from __future__ import annotations

import asyncio
import time

import pytest

from kryon_core import ScriptManager, ScriptTimeoutError, SecurityPolicy

LIMIT = 0.5
OUTER = LIMIT * 12

SOURCE = """n = 0
function bump() n = n + 1 return n end
function sleeper() kryon.sleep(10000000) end
function napper()
  while true do
    n = n + 1
    kryon.sleep(5)
  end
end
function yielder()
  while true do n = n + 1 coroutine.yield() end
end
function closing()
  local guard <close> = setmetatable({}, {__close = function() n = -100 end})
  kryon.sleep(10000000)
end
function stubborn()
  local guard <close> = setmetatable({}, {__close = function() while true do end end})
  kryon.sleep(10000000)
end
function host_step(wait, cb)
  kryon.sleep(wait)
  cb()
  local i = 0
  for k = 1, 1000000 do i = i + k end
  return "finished"
end
function via_call() return kryon.callAsync("other.sleeper") end
function quick(x) kryon.sleep(1) return x + n end
"""

POLICIES = {
    "sandboxed": SecurityPolicy.sandboxed(time_limit=LIMIT),
    "trusted with a limit": SecurityPolicy.trusted(time_limit=LIMIT),
}


def _manager(policy: SecurityPolicy) -> ScriptManager:
    mgr = ScriptManager(policy=policy, cache=False, output=lambda lang, text: None)
    mgr.load_script_from_source("s", "lua", SOURCE)
    mgr.load_script_from_source("other", "lua", "function sleeper() kryon.sleep(10000000) end")
    mgr.load_script_from_source("bystander", "lua", "k = 0 function inc() k = k + 1 return k end")
    assert mgr.call_function("bystander.inc") == 1
    return mgr


@pytest.fixture(params=sorted(POLICIES))
def m(request):
    mgr = _manager(POLICIES[request.param])
    yield mgr
    mgr.close()


@pytest.fixture
def sandboxed():
    """Steps themselves are bounded only where the policy is sandboxed: a trusted Lua state runs
    without the count hook (its time_limit bounds the waiting of an awaited call only)."""
    mgr = _manager(POLICIES["sandboxed"])
    yield mgr
    mgr.close()


def _await(m: ScriptManager, name: str, *args):
    return asyncio.run(asyncio.wait_for(m.call_function_async(name, list(args)), OUTER))


def _still_usable(m: ScriptManager, n: int) -> None:
    assert m.call_function("s.bump") == n + 1  # globals kept
    assert _await(m, "s.quick", 1) == n + 2
    assert m.call_function("bystander.inc") == 2


@pytest.mark.parametrize("name, line", [("sleeper", 3), ("napper", 7)])
def test_sleeps_past_the_budget_time_out(m, name, line):
    with pytest.raises(ScriptTimeoutError) as info:
        _await(m, f"s.{name}")
    assert (info.value.language, info.value.script, info.value.line) == ("lua", "s", line)
    n = m.call_function("s.bump") - 1
    assert n > 10 if name == "napper" else n == 0  # the napper stepped many times, each short
    _still_usable(m, n + 1)


def test_endless_short_yields_time_out(m):
    with pytest.raises(ScriptTimeoutError) as info:
        _await(m, "s.yielder")
    assert info.value.line in (11, None)  # None: the deadline landed in a step (the synchronous error)
    n = m.call_function("s.bump")
    assert n > 10
    _still_usable(m, n)


def test_the_abandoned_coroutine_is_closed(m):
    with pytest.raises(ScriptTimeoutError):
        _await(m, "s.closing")
    assert m.call_function("s.bump") == -99  # its <close> variable ran
    _still_usable(m, -99)


def test_a_close_handler_that_never_ends_is_cut(sandboxed):
    with pytest.raises(ScriptTimeoutError):
        _await(sandboxed, "s.stubborn")
    _still_usable(sandboxed, 0)


def test_the_deadline_lands_in_a_host_callback_during_a_step(sandboxed):
    m = sandboxed
    calls = []
    started = time.monotonic()

    def eat_the_budget() -> None:
        calls.append(1)
        time.sleep(max(0.0, started + LIMIT * 1.1 - time.monotonic()))  # the deadline has surely passed

    # 0.6 of the budget asleep, then a step whose callback takes it past the deadline: a step with a fresh
    # time_limit of its own would finish its loop
    with pytest.raises(ScriptTimeoutError):
        _await(m, "s.host_step", LIMIT * 600, eat_the_budget)
    assert calls == [1]
    _still_usable(m, 0)


def test_an_awaited_call_into_another_script_is_inside_the_budget(m):
    with pytest.raises(ScriptTimeoutError):
        _await(m, "s.via_call")
    _still_usable(m, 0)


def test_the_hosts_own_cancellation_is_not_a_timeout(m):
    async def main() -> None:
        with pytest.raises(asyncio.TimeoutError) as info:
            await asyncio.wait_for(m.call_function_async("s.closing"), LIMIT / 5)
        assert not isinstance(info.value, ScriptTimeoutError)

    asyncio.run(main())
    assert m.call_function("s.bump") == -99  # closed on cancellation too
    _still_usable(m, -99)


def test_trusted_without_a_limit_keeps_waiting():
    mgr = ScriptManager(policy=SecurityPolicy.trusted(), cache=False)
    try:
        mgr.load_script_from_source("s", "lua", SOURCE)

        async def main() -> None:
            task = asyncio.ensure_future(mgr.call_function_async("s.napper"))
            await asyncio.sleep(LIMIT * 2)
            assert not task.done()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        n = mgr.call_function("s.bump")
        assert n > 10
        assert asyncio.run(mgr.call_function_async("s.quick", [1])) == n + 1
    finally:
        mgr.close()
