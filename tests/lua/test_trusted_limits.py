"""A trusted policy's time and recursion limits in Lua (Lua 5.4 and LuaJIT):
its state runs the count hook that sandboxed states run, so script code that
loops in a coroutine or behind pcall still ends at the limit, while trusted
scripts without limits share a state with no hook at all (their fast path).
Trusted limits are a convenience against mistakes, not a boundary (a trusted
script has ``debug.sethook``, and Lua's C library functions run unbounded)."""

import time

import pytest

pytest.importorskip("kryon_lua")

from kryon_core import RecursionLimitError, ScriptManager, ScriptTimeoutError, SecurityPolicy  # noqa: E402

BUDGET = 0.5

# name -> the body of a function `f` that runs forever in script code
LOOPS = {
    "plain": "while true do end",
    "coroutine_create": "local co = coroutine.create(function() while true do end end) return coroutine.resume(co)",
    "coroutine_wrap": "return coroutine.wrap(function() while true do end end)()",
    "nested_coroutines": "return coroutine.wrap(function() return coroutine.wrap(function() while true do end end)() end)()",
    "pcall_loop": "while true do pcall(function() while true do end end) end",
    "pcall_returns": "pcall(function() while true do end end) return 1",
    "xpcall_handler_loop": "while true do xpcall(error, function() while true do end end) end",
    "xpcall_handler_swallows": "xpcall(function() while true do end end, function() return 'handled' end) return 1",
    "resume_loop": "while true do coroutine.resume(coroutine.create(function() while true do end end)) end",
}

JIT = [pytest.param(False, id="lua54"), pytest.param(True, id="luajit")]


def _manager(jit: bool, **limits: float) -> ScriptManager:
    m = ScriptManager(policy=SecurityPolicy.trusted(use_jit=jit, **limits), cache=False, output=lambda lang, text: None)
    m.load_script_from_source("ok", "lua", "count = 0\nfunction bump() count = count + 1 return count end")
    return m


@pytest.mark.parametrize("jit", JIT)
@pytest.mark.parametrize("name", sorted(LOOPS))
def test_endless_script_code_meets_the_limit(jit: bool, name: str) -> None:
    m = _manager(jit, time_limit=BUDGET)
    m.load_script_from_source("loop", "lua", f"function f()\n  {LOOPS[name]}\nend")
    start = time.thread_time()
    with pytest.raises(ScriptTimeoutError) as info:
        m.call_function("loop.f")
    assert time.thread_time() - start < 20 * BUDGET, "generous: CPU time, never wall time"
    assert info.value.script == "loop" and info.value.language == "lua"
    assert m.call_function("ok.bump") == 1, "the state works after the limit"
    m.close()


@pytest.mark.parametrize("jit", JIT)
def test_a_coroutine_made_at_load_meets_the_limit(jit: bool) -> None:
    m = _manager(jit, time_limit=BUDGET)
    m.load_script_from_source("loop", "lua", "made = coroutine.create(function() while true do end end)\n"
                                             "function f() return coroutine.resume(made) end")
    with pytest.raises(ScriptTimeoutError):
        m.call_function("loop.f")
    m.close()


@pytest.mark.parametrize("jit", JIT)
def test_only_a_trusted_state_with_limits_runs_the_hook(jit: bool) -> None:
    probe = "function hooked() return debug.gethook() ~= nil end"
    m = ScriptManager(policy=SecurityPolicy.trusted(use_jit=jit), cache=False)
    m.load_script_from_source("free", "lua", probe)
    m.load_script_from_source("timed", "lua", probe, policy=SecurityPolicy.trusted(use_jit=jit, time_limit=5.0))
    m.load_script_from_source("nested", "lua", probe, policy=SecurityPolicy.trusted(use_jit=jit, max_recursion=500))
    assert m.call_function("free.hooked") is False, "no hook slows trusted calls without limits"
    assert m.call_function("timed.hooked") is True
    assert m.call_function("nested.hooked") is True
    m.close()


@pytest.mark.parametrize("jit", JIT)
def test_a_script_may_still_catch_its_own_errors(jit: bool) -> None:
    m = _manager(jit, time_limit=5.0, max_recursion=100)
    m.load_script_from_source("s", "lua", "function f()\n  local ok, e = pcall(error, 'mine')\n  return e\nend")
    assert m.call_function("s.f") == "mine"
    m.close()


def test_recursion_behind_pcall_is_not_swallowed() -> None:
    m = _manager(False, max_recursion=50)
    m.load_script_from_source("s", "lua", "function deep(n) if n == 0 then return 0 end return deep(n - 1) + 1 end\n"
                                          "function f() local ok = pcall(deep, 5000) return ok end")
    with pytest.raises(RecursionLimitError):
        m.call_function("s.f")
    m.close()
