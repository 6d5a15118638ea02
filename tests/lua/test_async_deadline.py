"""Awaited Lua calls (a coroutine stepped on the caller's loop): the shared
cases of kryon_core.testing.awaited, and Lua's own. Past the deadline the
coroutine is closed (its <close> variables run, under the limits, trusted or
sandboxed: both states run the count hook when the policy has a time limit),
a kryon.callAsync into another script is inside the budget, and the host's
cancellation closes the coroutine too."""

from __future__ import annotations

import asyncio

import pytest

from kryon_core import ScriptManager, ScriptTimeoutError
from kryon_core.testing.awaited import LIMIT, AwaitedContract, AwaitedScripts

pytest.importorskip("kryon_lua")

SOURCE = """n = 0
function bump() n = n + 1 return n end
function sleeper() kryon.sleep(10000000) end
function ticker(cb)
  while true do
    cb()
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

LUA = AwaitedScripts(
    language="lua",
    source=SOURCE,
    bystander="k = 0 function inc() k = k + 1 return k end",
    bump="s.bump", quick="s.quick", sleeper="s.sleeper", sleeper_line=3, ticker="s.ticker",
    host_step="s.host_step", inc="bystander.inc",
)


class TestLuaAwaited(AwaitedContract):
    scripts = LUA

    def make(self, kind: str) -> ScriptManager:
        m = super().make(kind)
        m.load_script_from_source("other", "lua", "function sleeper() kryon.sleep(10000000) end")
        return m

    def test_endless_short_yields_time_out(self, m: ScriptManager) -> None:
        with pytest.raises(ScriptTimeoutError) as info:
            self.awaited(m, "s.yielder")
        assert info.value.line in (11, None)  # None: the deadline landed in a step (the synchronous error)
        n = m.call_function("s.bump")
        assert n > 10
        self.still_usable(m, n)

    def test_the_abandoned_coroutine_is_closed(self, m: ScriptManager) -> None:
        with pytest.raises(ScriptTimeoutError):
            self.awaited(m, "s.closing")
        assert m.call_function("s.bump") == -99  # its <close> variable ran
        self.still_usable(m, -99)

    def test_a_close_handler_that_never_ends_is_cut(self, m: ScriptManager) -> None:
        with pytest.raises(ScriptTimeoutError):
            self.awaited(m, "s.stubborn")
        self.still_usable(m, 0)

    def test_an_awaited_call_into_another_script_is_inside_the_budget(self, m: ScriptManager) -> None:
        with pytest.raises(ScriptTimeoutError):
            self.awaited(m, "s.via_call")
        self.still_usable(m, 0)

    def test_the_hosts_cancellation_closes_the_coroutine(self, m: ScriptManager) -> None:
        async def main() -> None:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(m.call_function_async("s.closing"), LIMIT / 5)

        asyncio.run(main())
        assert m.call_function("s.bump") == -99  # closed on cancellation too
        self.still_usable(m, -99)
