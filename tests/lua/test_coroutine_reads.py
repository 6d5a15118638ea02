"""Every host function the Lua bridge hands scripts, called from inside a
coroutine: ``coroutine.wrap``, ``coroutine.resume``, nested coroutines and
after a yield, under the sandboxed and the trusted policy (with and without a
memory cap, and on LuaJIT).

lupa reads a Lua table field (``t[k]``, ``t.k``) by pushing onto the stack of
the thread the table's wrapper belongs to (the main thread, for almost every
object the host holds) and takes *everything* on that thread's current frame
as the result. While a coroutine runs, the main thread's current frame is
that of the C function that resumed it, and Lua's ``coroutine.resume`` keeps
the coroutine there: the read came back as ``(thread, value)``. lupa's calls
into Lua clear that frame first (``lua_settop(L, 0)``), which drops the
resumer's only reference to a coroutine it is resuming: collected while it
waited on a coroutine it had resumed, the host process crashed. The prelude's
``coroutine.resume`` now runs every resume inside a resumer coroutine made by
``coroutine.wrap`` (whose C function keeps nothing on the caller's frame), so
neither happens (``prelude.lua``, "Resumes"), and a Lua function the host keeps
belongs to the main thread, not to the coroutine that handed it over.
"""

from __future__ import annotations

import pytest

pytest.importorskip("kryon_lua")

from kryon_core import Document, ScriptError, ScriptManager, SecurityPolicy  # noqa: E402

POLICIES = {
    "sandboxed": lambda: SecurityPolicy.sandboxed(),
    "trusted": lambda: SecurityPolicy.trusted(),
    "trusted-cap": lambda: SecurityPolicy.trusted(memory_limit=64 * 1024 * 1024),
    "jit": lambda: SecurityPolicy.sandboxed(use_jit=True),
    "jit-trusted": lambda: SecurityPolicy.trusted(use_jit=True),
}

#: how the route's body (a Lua function body returning one value) runs
SHAPES = {
    "plain": "return (function() BODY end)()",
    "wrap": "return coroutine.wrap(function() BODY end)()",
    "resume": "local co = coroutine.create(function() BODY end)\n"
              "local ok, v = coroutine.resume(co)\nassert(ok, v)\nreturn v",
    "nested": "return coroutine.wrap(function()\n"
              "  local ok, v = coroutine.resume(coroutine.create(function() BODY end))\n"
              "  assert(ok, v)\n  return v\nend)()",
    "nested_resume": "local ok, v = coroutine.resume(coroutine.create(function()\n"
                     "  local ok, v = coroutine.resume(coroutine.create(function() BODY end))\n"
                     "  assert(ok, v)\n  return v\nend))\nassert(ok, v)\nreturn v",
    "after_yield": "local co = coroutine.create(function() coroutine.yield(0); BODY end)\n"
                   "assert(coroutine.resume(co))\nlocal ok, v = coroutine.resume(co)\nassert(ok, v)\nreturn v",
}

LIB = """\
function sum(t) local s = 0 for _, v in ipairs(t) do s = s + v end return s end
function pair(x) return {x, x + 1} end
function apply(f, x) return f(x) end
function count(t) local n = 0 for _ in pairs(t) do n = n + 1 end return n end
"""
JS = """\
function empty() { return {}; }
function apply(f, x) { return f(x); }
function keys(o) { return Object.keys(o).sort().join(","); }
"""

#: route -> (Lua body, expected result)
ROUTES = {
    "call_with_table": ('return kryon.call("lib.sum", {1, 2, 3})', 6),
    "call_table_result": ('local r = kryon.call("lib.pair", 4) return r[1] + r[2]', 9),
    "call_js_object": ('return kryon.call("js.keys", {b = 1, a = {2}})', "a,b"),
    "empty_object_result": ('local e = kryon.call("js.empty") return getmetatable(e) ~= nil and next(e) == nil', True),
    "function_to_lua": ('return kryon.call("lib.apply", function(x) return x * 2 end, 21)', 42),
    "function_to_js": ('return kryon.call("js.apply", function(x) return x * 2 end, 21)', 42),
    "shared": ('made = (made or 0) + 1\nlocal id = "cfg" .. made\n'
               'kryon.createShared(id, {a = 1, b = {2, 3}})\n'
               'kryon.setShared(id, {a = 2, b = {3, 4}})\n'
               'local v = kryon.getShared(id) return v.a + v.b[2]', 6),
    "log_table": ('kryon.log({a = 1, b = {1, 2}}) return 1', 1),
    "variables": ('kryon.setVariable("v", {n = 5}) return kryon.getVariable("v").n', 5),
    "dom_table": ('made = (made or 0) + 1\nlocal id = "made" .. made\n'
                  'local el = kryon.createElement("div", {id = id, title = "t"})\n'
                  'kryon.appendChild(kryon.getElementById("root"), el)\n'
                  'return kryon.getProperty(kryon.getElementById(id), "title")', "t"),
    "dom_callback": ('kryon.addEventListener(kryon.getElementById("root"), "click",\n'
                     '  function(ev) clicks = (clicks or 0) + 1 end)\n'
                     'return 1', 1),
    "timer_callback": ('kryon.setTimeout(function() ticks = (ticks or 0) + 1 end, 5) return 1', 1),
    "metatable": ('local t = setmetatable({1, 2}, {__index = function() return 99 end,\n'
                  '  __len = function() return 50 end, __pairs = function() error("no __pairs") end})\n'
                  'local r = kryon.call("lib.count", t)\n'
                  'return r', 2),
    "host_error_caught": ('local ok, e = pcall(kryon.call, "nowhere.f") return (not ok) and tostring(e):find("nowhere") ~= nil',
                          True),
}


def make(policy_name: str) -> ScriptManager:
    m = ScriptManager(policy=POLICIES[policy_name](), cache=False, output=lambda lang, text: None)
    doc = m.setup_dom_bridge(Document())
    doc.append_child(doc.root, doc.create_element("div", {"id": "root"}))
    m.load_script_from_source("lib", "lua", LIB)
    m.load_script_from_source("js", "javascript", JS)
    return m


@pytest.fixture(scope="module", params=sorted(POLICIES))
def policy_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_host_function_from_a_coroutine(policy_name: str, route: str, shape: str) -> None:
    body, expected = ROUTES[route]
    m = make(policy_name)
    try:
        code = SHAPES[shape].replace("BODY", body)
        m.load_script_from_source("caller", "lua", f"function run()\n{code}\nend\n")
        for _ in range(2):  # the first call binds kryon's names (inside the coroutine); the second finds them bound
            assert m.call_function("caller.run") == expected
    finally:
        m.close()


ERROR_SHAPES = {
    "wrap": "coroutine.wrap(f)()",
    "resume": "local ok, e = coroutine.resume(coroutine.create(f))\nerror(e, 0)",
    "nested": "coroutine.wrap(function()\n  local ok, e = coroutine.resume(coroutine.create(f))\n  error(e, 0)\nend)()",
}


@pytest.mark.parametrize("shape", sorted(ERROR_SHAPES))
def test_a_host_error_names_the_coroutines_line(policy_name: str, shape: str) -> None:
    """The position of a host function's error raised inside a coroutine is
    the coroutine's line: the stack walk runs on the thread that called the
    host (it walked the main thread's, and named the line of the resume).
    Lua 5.4 only: LuaJIT shows no frames past a host call (positions come
    from the recording wrapper of host functions there)."""
    if policy_name.startswith("jit"):
        pytest.skip("LuaJIT: positions from K.hostfn, unchanged")
    m = make(policy_name)
    try:
        m.load_script_from_source("caller", "lua", "function run()\n  local f = function()\n"
                                  "    kryon.setProperty(nil, 'x', 1)\n  end\n" + ERROR_SHAPES[shape] + "\nend\n")
        with pytest.raises(ScriptError) as info:
            m.call_function("caller.run")
        assert (info.value.script, info.value.line) == ("caller", 3), info.value
    finally:
        m.close()
