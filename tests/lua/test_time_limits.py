"""Time limits on every path a sandboxed Lua script can take: long-running C
library functions, coroutines, finalizers, metamethods the host would run,
message handlers. Each attack runs under a 0.5 s budget; the limit must fire
(ScriptTimeoutError) within 1.5x of it, and the engine keeps working."""

import time

import pytest

pytest.importorskip("kryon_lua")

from kryon_core import AccessDeniedError, FunctionNotFoundError, ScriptManager, ScriptTimeoutError, SecurityPolicy  # noqa: E402

BUDGET = 0.5

# name -> a function `f` that would run far beyond the budget without bounds
ATTACKS = {
    # pattern backtracking: (n)^(quantifiers + 1) steps in C
    "find_backtracking": 'return string.find(string.rep("a", 20000), ".-.-.-.-b")',
    "find_method_call": 'local s = ("a"):rep(20000) local r = s:find("a*a*a*a*b") return r',
    "match_captures": 'local r = ("a"):rep(20000):match("(.-)(.-)(.-)b") return r',
    "match_anchored": 'local r = ("a"):rep(20000):match("^(.*)(.*)(.*)b") return r',
    "gsub_backtracking": 'local r = (("a"):rep(20000):gsub(".-.-.-b", "")) return r',
    "gsub_function": 'local r = (("ab"):rep(10000):gsub("(a.-)(a.-)(a.-)c", print)) return r',
    "gmatch_backtracking": 'for x in ("a"):rep(20000):gmatch(".-.-.-b") do end',
    "balanced_and_backref": 'local r = ("(("):rep(10000):find("(%b()).-%1x") return r',
    "plain_find": 'local r = ("a"):rep(1e7):find(("a"):rep(3e4) .. "b", 1, true) return r',
    "pattern_in_loop": 'local s = ("a"):rep(3000) while true do s:find(".-.-b") end',
    # C loops that copy nothing or call C metamethods
    "rep_of_nothing_in_loop": 'while true do string.rep("", 1e15) end',
    "concat_with_index": 'return #table.concat(setmetatable({}, {__index = function() return "" end}), "", 1, 1e12)',
    "concat_c_index": 'return #table.concat(setmetatable({}, {__index = rawlen}), "", 1, 1e12)',
    "move_huge_range": 'table.move({}, 1, 1e12, 2)',
    "remove_with_len": 'table.remove(setmetatable({}, {__len = function() return 2^53 end}), 1)',
    "insert_with_len": 'table.insert(setmetatable({}, {__len = function() return 2^53 end}), 1, "x")',
    "sort_c_elements": 'table.sort(setmetatable({}, {__len = function() return 1e9 end, __index = rawlen, __newindex = rawequal}))',
    "sort_c_comparator": 'local t = setmetatable({}, {__len = function() return 1e9 end, __index = rawlen, __newindex = rawequal}) '
                         'table.sort(t, math.ult)',
    "sort_lua_comparator": 'local t = {} for i = 1, 200000 do t[i] = i end '
                           'while true do table.sort(t, function(a, b) return a > b end) end',
    # coroutines: each one needs the hook
    "coroutine_create": 'local co = coroutine.create(function() while true do end end) return coroutine.resume(co)',
    "coroutine_wrap": 'return coroutine.wrap(function() while true do end end)()',
    "nested_coroutines": 'return coroutine.wrap(function() return coroutine.wrap(function() while true do end end)() end)()',
    "coroutine_made_at_load": 'return coroutine.resume(made)',
    # limits cannot be swallowed
    "pcall_loop": 'while true do pcall(function() while true do end end) end',
    "xpcall_handler_loop": 'while true do xpcall(error, function() while true do end end) end',
    "coroutine_resume_loop": 'while true do coroutine.resume(coroutine.create(function() while true do end end)) end',
    "coroutine_close_handler": 'local co = coroutine.create(function() local x <close> = setmetatable({}, '
                               '{__close = function() while true do end end}) coroutine.yield() end) '
                               'coroutine.resume(co) return coroutine.close(co)',
    "close_handler": 'local x <close> = setmetatable({}, {__close = function() while true do end end}) while true do end',
    "tostring_metamethod": 'return tostring(setmetatable({}, {__tostring = function() while true do end end}))',
}


@pytest.fixture(scope="module")
def manager():
    m = ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=BUDGET), cache=False, output=lambda lang, text: None)
    m.load_script_from_source("ok", "lua", "count = 0\nfunction bump() count = count + 1 return count end")
    yield m
    m.close()


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_limit_fires_within_budget(manager, name):
    source = "made = coroutine.create(function() while true do end end)\nfunction f()\n  " + ATTACKS[name] + "\nend\n"
    manager.load_script_from_source(name, "lua", source)
    before = manager.call_function("ok.bump")
    started, cpu = time.monotonic(), time.process_time()
    with pytest.raises(ScriptTimeoutError) as info:
        manager.call_function(f"{name}.f")
    elapsed, used = time.monotonic() - started, time.process_time() - cpu
    # CPU time is what the script could take (the machine is shared: wall time
    # also counts other processes); the wall bound is a generous one
    assert used < BUDGET * 1.5, f"{name}: limit fired after {used:.2f} s of CPU"
    assert elapsed < BUDGET * 3, f"{name}: limit fired after {elapsed:.2f} s"
    assert info.value.script == name and info.value.language == "lua"
    # the engine and other scripts keep working
    assert manager.call_function("ok.bump") == before + 1
    manager.unload_script(name)


def test_finalizers_are_refused_in_every_form(manager):
    for source in (
        'setmetatable({}, {__gc = function() while true do end end})',
        'local mt = {__gc = false} setmetatable({}, mt)',  # a placeholder, replaced later, would still run
        'local mt = {__gc = true} setmetatable({}, mt) mt.__gc = function() end',
    ):
        with pytest.raises(AccessDeniedError, match="__gc"):
            manager.load_script_from_source("gc", "lua", source)
    # a __gc field added after setmetatable is never called (Lua marks objects at setmetatable)
    manager.load_script_from_source("gc", "lua", 'local mt = {} setmetatable({}, mt) mt.__gc = function() while true do end end')
    started = time.monotonic()
    manager.unload_script("gc")
    manager.engine("lua").collect_garbage()
    assert time.monotonic() - started < BUDGET


@pytest.mark.parametrize("returned", ["__pairs", "__index", "__len", "__tostring", "__name"])
def test_host_never_runs_script_metamethods(manager, returned):
    """Loading (listing functions), resolving and converting results use raw access."""
    meta = "{" + returned + " = function() while true do end end}"
    source = f"local M = setmetatable({{}}, {meta})\nfunction get() return M end\nreturn M\n"
    started = time.monotonic()
    manager.load_script_from_source("meta", "lua", source)
    assert manager.call_function("meta.get") == []
    with pytest.raises(FunctionNotFoundError):
        manager.call_function("meta.missing")
    assert time.monotonic() - started < BUDGET
    manager.unload_script("meta")


def test_a_limit_inside_a_host_function_stays_that_limit():
    """kryon.setTimeout makes a FunctionRef of its callback, which runs prelude
    code: a deadline that passes there was a ScriptRuntimeError ("kryon.setTimeout
    failed: LuaError: ... kryon-limit:timeout") in about two calls of three."""
    from kryon_core import Document

    # no DOM quota: the loop's timers would meet it before the time limit this test is about
    policy = SecurityPolicy.sandboxed(time_limit=0.2, max_dom_entries=None)
    m = ScriptManager(policy=policy, cache=False, output=lambda lang, text: None)
    try:
        m.setup_dom_bridge(Document())
        m.load_script_from_source("t", "lua", "function f()\n  while true do kryon.setTimeout(function() end, 1e9) end\nend\n"
                                  "function ok() return 1 end")
        for _ in range(12):
            with pytest.raises(ScriptTimeoutError) as caught:
                m.call_function("t.f")
            assert (caught.value.script, caught.value.language) == ("t", "lua")
        assert m.call_function("t.ok") == 1
    finally:
        m.close()

SAME = r'''
function f()
  local s = ("ab "):rep(1500) .. "x=1"
  local out = {}
  out[1] = select(3, s:find("(%w+)=(%d)$"))
  out[2] = s:match("^(.-)x") == ("ab "):rep(1500)
  out[3] = select(2, s:gsub("a(b)", "%1%0"))
  out[4] = (s:gsub("(%w)(%w)", function(a, b) return b .. a end)):sub(1, 12)
  local n = 0 for w in s:gmatch("%a+") do n = n + 1 end
  out[5] = n
  out[6] = #("xy"):rep(100000, ",")
  local t = {} for i = 1, 200000 do t[i] = (i * 7919) % 200000 end
  table.sort(t) out[7] = t[1] == 0 and t[200000] == 199999
  table.sort(t, function(a, b) return a > b end) out[8] = t[1]
  out[9] = #table.concat(t, ",", 1, 10000)
  local m = table.move(t, 1, 150000, 2, {}) out[10] = m[2] == t[1] and #m == 150001
  local p = setmetatable({}, {__index = function(_, k) return k end})
  out[11] = table.concat(p, "", 1, 5000):sub(1, 5)
  out[12] = ("a"):rep(1e6):find("b", 1, true) == nil
  table.insert(t, 1, -1) out[13] = t[1] == -1 and t[2] == 199999 and #t == 200001
  out[14] = table.remove(t, 1) == -1 and t[1] == 199999
  return out
end'''


def test_bounded_functions_keep_their_results():
    """Big inputs take the bounded paths in a sandbox; the results are what
    Lua's own C functions give a trusted script."""
    results = []
    for policy in (SecurityPolicy.trusted(), SecurityPolicy.sandboxed(time_limit=30)):
        m = ScriptManager(policy=policy, cache=False)
        try:
            m.load_script_from_source("same", "lua", SAME)
            results.append(m.call_function("same.f"))
        finally:
            m.close()
    assert results[0] == results[1]
    assert results[0][:3] == ["x", True, 1500]
