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
    s.dbg.set_breakpoints("prog", [BreakpointSpec(5)])
    s.run("prog.main", 3)
    stop = s.stop()
    frame = s.dbg.stack(stop.thread)[0]
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
    s.dbg.set_breakpoints("prog", [BreakpointSpec(11)])
    s.run("prog.in_coroutine", 4)
    stop = s.stop()
    frames = s.dbg.stack(stop.thread)
    assert [(f.line, f.script) for f in frames] == [(11, "prog"), (14, "prog")]
    assert frames[1].name == "in_coroutine"
    assert s.scope(frames[0].id)["inside"].value == "5"
    assert s.scope(frames[1].id)["x"].value == "4"
    assert s.dbg.evaluate("inside * 10", frames[0].id).value == "50"
    s.dbg.resume(stop.thread, "next")
    stop = s.stop()
    assert s.dbg.stack(stop.thread)[0].line == 15  # back in the caller after the yield
    s.dbg.resume(stop.thread)
    assert s.result() == 15


def test_pause_then_detach_lets_the_loop_run_on(s):
    s.run("prog.spin")
    time.sleep(0.3)
    s.dbg.pause()
    stop = s.stop()
    frame = s.dbg.stack(stop.thread)[0]
    assert (stop.reason, frame.name, frame.line) == ("pause", "spin", 20)
    first = int(s.scope(frame.id)["i"].value)
    s.dbg.resume(stop.thread, "next")
    stop = s.stop()
    frame = s.dbg.stack(stop.thread)[0]
    assert int(s.dbg.evaluate("i", frame.id).value) > first
    s.dbg.evaluate("stopping = true", frame.id)  # a global of the script: the loop ends
    s.dbg.detach()
    assert s.result() > first


def test_stepping_between_lua_and_python():
    s = Session()
    try:
        s.m.load_script_from_source("helper", "python", PY)
        s.dbg.set_breakpoints("prog", [BreakpointSpec(25)])
        s.run("prog.across", 1)
        stop = s.stop()
        s.dbg.resume(stop.thread, "stepIn")
        stop = s.stop()
        frames = s.dbg.stack(stop.thread)
        assert [(f.language, f.name, f.line) for f in frames[:2]] == [("python", "triple", 4), ("lua", "across", 25)]
        assert s.scope(frames[1].id)["y"].value == "2"
        s.dbg.resume(stop.thread, "stepOut")
        stop = s.stop()
        top = s.dbg.stack(stop.thread)[0]
        assert (top.language, top.line) == ("lua", 26)
        assert s.scope(top.id)["r"].value == "6"
        s.dbg.resume(stop.thread)
        assert s.result() == 7

        s.dbg.set_breakpoints("prog", [])
        s.dbg.set_breakpoints("helper", [BreakpointSpec(8)])
        s.run("helper.into_lua", 2)
        stop = s.stop()
        s.dbg.resume(stop.thread, "stepIn")
        stop = s.stop()
        frames = s.dbg.stack(stop.thread)
        assert [(f.language, f.name, f.line) for f in frames[:2]] == [("lua", "main", 4), ("python", "into_lua", 8)]
        s.dbg.resume(stop.thread, "stepOut")
        stop = s.stop()
        top = s.dbg.stack(stop.thread)[0]
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
        frames = s.dbg.stack(stop.thread)
        assert [(f.language, f.name, f.line) for f in frames[:2]] == [("lua", "triple", 3), ("lua", "across", 25)]
        assert s.scope(frames[0].id)["tripled"].value == "6"
        assert s.scope(frames[1].id)["y"].value == "2"
        s.dbg.resume(stop.thread)
        assert s.result() == 7
        s.m.unload_script("helper")
        assert len(engine.debug_target()._helpers) == 1, "the unloaded script's state is forgotten"
    finally:
        s.close()
