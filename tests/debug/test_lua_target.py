"""The debugger on the Lua engine, through the library API: scopes and
values, evaluation (and what a sandboxed script's evaluation cannot reach),
coroutines, the sandbox's limits while debugging, stepping between Lua and
Python through ``kryon.call``, and detaching."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import pytest

from kryon_core import RecursionLimitError, ScriptError, ScriptManager, ScriptTimeoutError, SecurityPolicy
from kryon_core.debug import BreakpointSpec, Stop
from kryon_core.testing.debugging import DebugSession

LUA = """\
local counter = 10
config = {name = "demo", sizes = {1, 2, {3}}}
function main(n)
  local double = n * 2
  counter = counter + double
  return counter
end
function in_coroutine(x)
  local co = coroutine.create(function(a)
    local inside = a + 1
    coroutine.yield(inside)
    return inside * 2
  end)
  local _, first = coroutine.resume(co, x)
  local _, second = coroutine.resume(co)
  return first + second
end
function spin()
  local i = 0
  while not stopping do i = i + 1 end
  return i
end
function across(x)
  local y = x + 1
  local r = kryon.call("helper.triple", y)
  return r + 1
end
"""

PY = """\
import kryon

def triple(v):
    tripled = v * 3
    return tripled

def into_lua(x):
    got = kryon.call("prog.main", x)
    return got
"""


class Session(DebugSession):
    def __init__(self, policy: SecurityPolicy | None = None) -> None:
        m = ScriptManager(cache=False, policy=policy or SecurityPolicy.trusted())
        m.load_script_from_source("prog", "lua", LUA)
        super().__init__(m)


@pytest.fixture
def s():
    session = Session()
    yield session
    session.close()


def test_scopes_values_and_evaluation(s):
    stop = s.stop_at("prog", 5, "prog.main", 3)
    frame = s.top(stop)
    assert (frame.name, frame.language, frame.script, frame.line) == ("main", "lua", "prog", 5)
    assert [sc.name for sc in s.dbg.scopes(frame.id)] == ["Locals", "Closure", "Globals"]
    assert {k: v.value for k, v in s.scope(frame.id).items()} == {"n": "3", "double": "6"}
    assert s.scope(frame.id, "Closure")["counter"].value == "10"
    config = s.scope(frame.id, "Globals")["config"]
    assert config.type == "table" and config.count == 2 and config.reference
    assert config.value in ('{name = "demo", sizes = {...}}', '{sizes = {...}, name = "demo"}')
    fields = {v.name: v for v in s.dbg.variables(config.reference)}
    assert fields["name"].value == '"demo"'
    sizes = s.dbg.variables(fields["sizes"].reference)
    assert [(v.name, v.value) for v in sizes] == [("[1]", "1"), ("[2]", "2"), ("[3]", "{3}")]
    assert s.dbg.evaluate("double + counter", frame.id).value == "16"
    assert s.dbg.evaluate("#config.sizes", frame.id).value == "3"
    assert s.dbg.evaluate("string.format('%d-%s', n, config.name)", frame.id).value == '"3-demo"'
    with pytest.raises(ScriptError) as err:
        s.dbg.evaluate("n +", frame.id)
    assert err.value.language == "lua"
    with pytest.raises(ScriptError, match="attempt to perform arithmetic"):
        s.dbg.evaluate("n + {}", frame.id)
    with pytest.raises(ScriptError, match="budget"):
        s.dbg.evaluate("(function() while true do end end)()", frame.id)
    s.dbg.evaluate("double = 100", frame.id)  # assigns the frame's local
    s.dbg.resume(stop.thread)
    assert s.result() == 110


def test_breakpoint_inside_a_coroutine(s):
    stop = s.stop_at("prog", 11, "prog.in_coroutine", 4)
    frames = s.stack(stop)
    assert [(f.line, f.script) for f in frames] == [(11, "prog"), (14, "prog")]
    assert frames[1].name == "in_coroutine"
    assert s.scope(frames[0].id)["inside"].value == "5"
    assert s.scope(frames[1].id)["x"].value == "4"
    assert s.dbg.evaluate("inside * 10", frames[0].id).value == "50"
    stop = s.step(stop, "next")
    assert s.top(stop).line == 15  # back in the caller after the yield
    s.dbg.resume(stop.thread)
    assert s.result() == 15


def test_pause_then_detach_lets_the_loop_run_on(s):
    s.run("prog.spin")
    time.sleep(0.3)
    s.dbg.pause()
    stop = s.stop()
    frame = s.top(stop)
    assert (stop.reason, frame.name, frame.line) == ("pause", "spin", 20)
    first = int(s.scope(frame.id)["i"].value)
    stop = s.step(stop, "next")
    frame = s.top(stop)
    assert int(s.dbg.evaluate("i", frame.id).value) > first
    s.dbg.evaluate("stopping = true", frame.id)  # a global of the script: the loop ends
    s.dbg.detach()
    assert s.result() > first


def test_stepping_between_lua_and_python():
    s = Session()
    try:
        s.m.load_script_from_source("helper", "python", PY)
        stop = s.stop_at("prog", 25, "prog.across", 1)
        stop = s.step(stop, "stepIn")
        frames = s.stack(stop)
        assert [(f.language, f.name, f.line) for f in frames[:2]] == [("python", "triple", 4), ("lua", "across", 25)]
        assert s.scope(frames[1].id)["y"].value == "2"
        stop = s.step(stop, "stepOut")
        top = s.top(stop)
        assert (top.language, top.line) == ("lua", 26)
        assert s.scope(top.id)["r"].value == "6"
        s.dbg.resume(stop.thread)
        assert s.result() == 7

        s.dbg.set_breakpoints("prog", [])
        stop = s.stop_at("helper", 8, "helper.into_lua", 2)
        stop = s.step(stop, "stepIn")
        frames = s.stack(stop)
        assert [(f.language, f.name, f.line) for f in frames[:2]] == [("lua", "main", 4), ("python", "into_lua", 8)]
        stop = s.step(stop, "stepOut")
        top = s.top(stop)
        assert (top.language, top.line) == ("python", 9)
        s.dbg.resume(stop.thread)
        assert s.result() == 14
    finally:
        s.close()


SANDBOXED = """\
function probe(n)
  local secret = n + 1
  return secret
end
function forever()
  while true do end
end
function calls_forever()
  local function f() end
  while true do f() end
end
function recurse(n)
  return recurse(n + 1) + 1
end
"""


def test_sandboxed_lua_evaluation_stays_in_the_sandbox_and_limits_still_fire():
    policy = SecurityPolicy.sandboxed(time_limit=0.5, max_recursion=100)
    m = ScriptManager(cache=False, policy=policy)
    m.load_script_from_source("box", "lua", SANDBOXED)
    dbg = m.debugger()
    stops: "queue.Queue[Stop]" = queue.Queue()
    dbg.on_stop = stops.put
    results: "queue.Queue[Any]" = queue.Queue()
    try:
        dbg.set_breakpoints("box", [BreakpointSpec(3)])
        threading.Thread(target=lambda: results.put(m.call_function("box.probe", [1])), daemon=True).start()
        stop = stops.get(timeout=10)
        frame = dbg.stack(stop.thread)[0]
        assert dbg.evaluate("secret * 2", frame.id).value == "4"
        for reach in ("debug.getinfo(1)", "python.eval('1')", "io.open('x')", "os.exit()", "require('os')",
                      "load('\\27Lua')", "getmetatable('').__index"):
            with pytest.raises(ScriptError):
                dbg.evaluate(reach, frame.id)
        time.sleep(0.8)  # stopped longer than the time limit: not counted against the call
        dbg.resume(stop.thread)
        assert results.get(timeout=10) == 2
        for endless in ("box.forever", "box.calls_forever"):  # the sandbox's count hook still keeps the deadline
            start = time.monotonic()
            with pytest.raises(ScriptTimeoutError):
                m.call_function(endless, [])
            assert time.monotonic() - start < 0.5 * 1.5 + 0.5
        with pytest.raises(RecursionLimitError):  # and its call hook the recursion limit
            m.call_function("box.recurse", [0])
        dbg.detach()
        with pytest.raises(ScriptTimeoutError):  # and after detaching, its own hook again
            m.call_function("box.forever", [])
    finally:
        dbg.detach()
        m.close()


def test_breakpoint_lines_resolve_before_load_and_without_running(tmp_path):
    path = tmp_path / "later.lua"
    path.write_text("error('never run')\n\nfunction f()\n\n  return 1\nend\n")
    m = ScriptManager(cache=False, policy=SecurityPolicy.trusted())
    try:
        dbg = m.debugger()
        got = dbg.set_breakpoints(str(path), [BreakpointSpec(2), BreakpointSpec(4), BreakpointSpec(6), BreakpointSpec(9)])
        assert [(b.verified, b.line) for b in got] == [(True, 3), (True, 5), (True, 6), (False, None)]
    finally:
        m.close()


LUA_HELPER = """\
function triple(v)
  local tripled = v * 3
  return tripled
end
"""


def test_sandboxed_scripts_each_in_their_own_state_are_all_seen():
    """Each sandboxed script has a Lua state of its own: a breakpoint in a
    script loaded after the debugger attached stops, and the stack runs
    through both states with the variables of each."""
    s = Session(SecurityPolicy.sandboxed(time_limit=30))
    try:
        s.dbg.set_breakpoints("helper", [BreakpointSpec(3)])
        s.m.load_script_from_source("helper", "lua", LUA_HELPER)
        engine = s.m.engine("lua")
        assert engine._scripts["helper"].runtime is not engine._scripts["prog"].runtime
        s.run("prog.across", 1)
        stop = s.stop()
        frames = s.stack(stop)
        assert [(f.language, f.name, f.line) for f in frames[:2]] == [("lua", "triple", 3), ("lua", "across", 25)]
        assert s.scope(frames[0].id)["tripled"].value == "6"
        assert s.scope(frames[1].id)["y"].value == "2"
        s.dbg.resume(stop.thread)
        assert s.result() == 7
        s.m.unload_script("helper")
        assert len(engine.debug_target()._helpers) == 1, "the unloaded script's state is forgotten"
    finally:
        s.close()


RAISING = """\
function raises(n)
  local mine = n * 2
  error("bad " .. mine)
end
function vm(n)
  local t = nil
  local here = n + 1
  return t.x
end
function catches(n)
  local ok, e = pcall(raises, n)
  local ok2 = pcall(vm, n)
  local ok3, e3 = pcall(function() local flag = false; assert(flag, "asserted") end)
  local ok4, e4 = xpcall(vm, function(m) return "handled: " .. m end, n)
  return tostring(ok) .. tostring(ok2) .. tostring(ok3) .. " " .. e .. " | " .. e3 .. " | " .. e4
end
function limited()
  local ok = pcall(function() while true do end end)
  return ok
end
"""


@pytest.mark.parametrize("policy", [SecurityPolicy.trusted(), SecurityPolicy.sandboxed(time_limit=0.5)],
                         ids=["trusted", "sandboxed"])
def test_raised_filter_stops_where_lua_raises_even_when_pcall_catches(policy):
    m = ScriptManager(cache=False, policy=policy)
    m.load_script_from_source("prog", "lua", RAISING)
    s = DebugSession(m)
    try:
        s.dbg.set_exception_breakpoints(raised=True)
        s.run("prog.catches", 5)
        seen = []
        for _ in range(4):
            stop = s.stop()
            frames = s.stack(stop)
            assert stop.reason == "exception"
            seen.append((stop.description, [(f.name, f.line) for f in frames[:2]],
                         {k: v.value for k, v in s.scope(frames[0].id).items()}))
            s.dbg.resume(stop.thread)
        assert seen == [
            ("bad 10", [("raises", 3), ("catches", 11)], {"n": "5", "mine": "10"}),  # error(), caught by pcall
            ("attempt to index a nil value (local 't')", [("vm", 8), ("catches", 12)],  # raised by the VM
             {"n": "5", "t": "nil", "here": "6"}),
            ("asserted", [("function <prog:13>", 13), ("catches", 13)], {"flag": "false"}),  # assert
            ("attempt to index a nil value (local 't')", [("vm", 8), ("catches", 14)],  # xpcall, its handler kept
             {"n": "5", "t": "nil", "here": "6"}),
        ]
        assert s.result() == ("falsefalsefalse prog:3: bad 10 | prog:13: asserted"
                              " | handled: prog:8: attempt to index a nil value (local 't')")
        if policy.time_limit:  # a limit is not the script's error: no stop, and pcall does not swallow it
            with pytest.raises(ScriptTimeoutError):
                m.call_function("prog.limited", [])
        s.dbg.set_exception_breakpoints()  # off again: the same calls run through
        assert m.call_function("prog.catches", [1]).startswith("falsefalsefalse prog:3: bad 2")
    finally:
        s.close()


COROUTINE_LATE = """\
function resumer()
  local co = coroutine.create(function()
    set_breakpoint()
    coroutine.yield(1)
  end)
  coroutine.resume(co)
  local after = 2
  local w = coroutine.wrap(function() set_breakpoint_2() coroutine.yield() end)
  w()
  local later = after + 1
  return later
end
"""


@pytest.mark.parametrize("policy", [SecurityPolicy.trusted(), SecurityPolicy.sandboxed()], ids=["trusted", "sandboxed"])
def test_breakpoint_set_while_a_coroutine_runs_reaches_the_thread_that_resumed_it(policy):
    m = ScriptManager(cache=False, policy=policy)
    m.load_script_from_source("prog", "lua", COROUTINE_LATE)
    s = DebugSession(m)
    try:
        def setter(*lines: int) -> Any:
            def set_breakpoints() -> None:  # called from the coroutine, while it runs
                s.dbg.set_breakpoints("prog", [BreakpointSpec(n) for n in lines])
            return set_breakpoints

        m.set_global("lua", "set_breakpoint", setter(7))
        m.set_global("lua", "set_breakpoint_2", setter(7, 10))
        s.run("prog.resumer")
        for line in (7, 10):
            stop = s.stop()
            assert (stop.reason, s.top(stop).line) == ("breakpoint", line)
            s.dbg.resume(stop.thread)
        assert s.result() == 3
    finally:
        s.close()


LINES_WHERE_NEEDED = """\
function mask()
  local _, m = debug.gethook()
  return m
end
function plain()
  return mask()
end
function with_breakpoint()
  local inner = plain()
  local here = mask()
  return inner .. "/" .. here
end
"""


def test_line_events_only_in_functions_holding_a_breakpoint(s):
    m = s.m
    m.load_script_from_source("masks", "lua", LINES_WHERE_NEEDED)
    s.dbg.set_breakpoints("masks", [BreakpointSpec(10)])
    s.run("masks.with_breakpoint")
    stop = s.stop()  # line 10 still stops: leaving plain() turned line events back on
    assert (stop.reason, s.top(stop).line) == ("breakpoint", 10)
    s.dbg.resume(stop.thread)
    inner, here = s.result().split("/")
    # mask() and plain() hold no breakpoint line: no line events there
    assert "l" not in inner and "l" not in here and "c" in inner
    s.dbg.set_breakpoints("masks", [BreakpointSpec(3, condition="false")])
    assert "l" in m.call_function("masks.mask", [])  # a function holding one has them


@pytest.mark.parametrize("policy", [SecurityPolicy.trusted(), SecurityPolicy.sandboxed()], ids=["trusted", "sandboxed"])
def test_error_and_assert_messages_are_lua_s_own_with_a_debugger_attached(policy):
    source = """\
function positions()
  local _, a = pcall(error, "plain")
  local _, b = pcall(function() error("one") end)
  local _, c = pcall(function() local function inner() error("two", 2) end
    inner() end)
  local _, d = pcall(function() assert(false) end)
  local _, e = pcall(function() assert(nil, {}) end)
  local _, f = pcall(function() error("none", 0) end)
  return table.concat({a, b, c, d, type(e), f}, "|")
end
"""
    m = ScriptManager(cache=False, policy=policy)
    m.load_script_from_source("prog", "lua", source)
    expected = m.call_function("prog.positions", [])
    assert expected == "plain|prog:3: one|prog:5: two|prog:6: assertion failed!|table|none"
    s = DebugSession(m)
    try:
        for raised in (False, True):
            s.dbg.set_exception_breakpoints(raised=raised)
            s.run("prog.positions")
            if raised:
                for _ in range(6):  # each of the six raises
                    s.dbg.resume(s.stop().thread)
            assert s.result() == expected
    finally:
        s.close()


UNWOUND = """\
function fails()
  local t = nil
  return t.x
end
function guarded()
  local ok = pcall(fails)
  local co = coroutine.create(fails)
  local ok2 = coroutine.resume(co)
  local after = tostring(ok) .. tostring(ok2)
  return after
end
"""


@pytest.mark.parametrize("policy", [SecurityPolicy.trusted(), SecurityPolicy.sandboxed()], ids=["trusted", "sandboxed"])
def test_breakpoints_after_an_error_unwound_a_function_without_line_events(policy):
    """An error unwinds without return events: the protected call returning
    (pcall, coroutine.resume) turns line events back on for its caller."""
    m = ScriptManager(cache=False, policy=policy)
    m.load_script_from_source("prog", "lua", UNWOUND)
    s = DebugSession(m)
    try:
        s.dbg.set_breakpoints("prog", [BreakpointSpec(7), BreakpointSpec(9)])
        s.run("prog.guarded")
        for line in (7, 9):
            stop = s.stop()
            assert (stop.reason, s.top(stop).line) == ("breakpoint", line)
            s.dbg.resume(stop.thread)
        assert s.result() == "falsefalse"
    finally:
        s.close()


TRAPPED_ERROR = """\
ran = 0
local trap = {}
for _, name in ipairs {"__eq", "__tostring", "__index", "__len", "__concat", "__call"} do
  trap[name] = function() ran = ran + 1 return "" end
end
function raise_object()
  local ok = pcall(error, setmetatable({code = 7}, trap))
  local ok2 = pcall(function() error(setmetatable({}, trap)) end)
  return ran
end
"""


def test_reporting_a_raised_error_object_runs_none_of_its_metamethods():
    m = ScriptManager(cache=False, policy=SecurityPolicy.sandboxed())
    m.load_script_from_source("prog", "lua", TRAPPED_ERROR)
    s = DebugSession(m)
    try:
        s.dbg.set_exception_breakpoints(raised=True)
        s.run("prog.raise_object")
        descriptions = []
        for _ in range(2):
            stop = s.stop()
            descriptions.append(stop.description)
            s.dbg.resume(stop.thread)
        assert descriptions == ["{code = 7}", "{}"]
        assert s.result() == 0
    finally:
        s.close()


@pytest.mark.parametrize("policy", [SecurityPolicy.trusted(), SecurityPolicy.sandboxed(time_limit=5.0)],
                         ids=["trusted", "sandboxed"])
def test_raised_filter_stops_where_an_error_no_script_catches_is_raised(policy):
    """An error that reaches the host (the VM's own, or `error` with nothing
    around it) stops where it is raised, with the raising frame's locals,
    once: the host's message handler reports it before the stack unwinds."""
    m = ScriptManager(cache=False, policy=policy)
    m.load_script_from_source("prog", "lua", RAISING)
    s = DebugSession(m)
    try:
        s.dbg.set_exception_breakpoints(raised=True)
        for function, expected in (("prog.vm", ("vm", 8, {"n": "5", "t": "nil", "here": "6"})),
                                   ("prog.raises", ("raises", 3, {"n": "5", "mine": "10"}))):
            s.run(function, 5)
            stop = s.stop()
            assert stop.reason == "exception"
            frame = s.top(stop)
            assert (frame.name, frame.line, {k: v.value for k, v in s.scope(frame.id).items()}) == expected
            s.dbg.resume(stop.thread)
            assert isinstance(s.results.get(timeout=20), ScriptError)  # the host still gets the error
            assert s.stops.empty(), "reported once"
    finally:
        s.close()
