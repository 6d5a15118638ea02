"""The debugger on the real Python and Kryon Lisp engines, through the
library API (``ScriptManager.debugger()``), driven the way the DAP server
drives it: the program on its own thread, questions from another.

Covers what the per-language DAP tests do not: columns and Lisp spellings,
structured values expanded level by level, evaluation errors, stepping in
and out across the two languages through ``kryon.call``, an exception
reported once where it was raised, the engines' own limits still firing
while a debugger is attached, breakpoints in sandboxed files set before they load, and
detaching taking every hook off.

Every test taking the ``s`` fixture runs twice: with trusted scripts (debugged
in this interpreter) and with sandboxed ones (debugged inside their worker
processes, see ``kryon_core.isolation.debugging``)."""

from __future__ import annotations

import time

import pytest

from kryon_core import ScriptError, ScriptManager, ScriptTimeoutError, SecurityPolicy
from kryon_core.debug import BreakpointSpec
from kryon_core.testing.debugging import DebugSession

PY = """\
import kryon
def main(n):
    data = {"list": [1, [2, 3]], "name": "x"}
    result = n + 1
    return result

def across(x):
    y = x + 1
    r = kryon.call("lib.twice", y)
    return r + 1

def outer():
    return inner()

def inner():
    raise ValueError("deep")

def spin():
    i = 0
    while not stopping:
        i = i + 1

def deep(k):
    return deep(k + 1)

stopping = False
"""

LISP = """\
(defn twice [v]
  (setv my-total (* v 2))
  my-total)

(defn add-one! [x]
  (setv the-result (+ x 1))
  the-result)
"""


class Session(DebugSession):
    def __init__(self, policy: SecurityPolicy | None = None) -> None:
        m = ScriptManager(cache=False, policy=policy or SecurityPolicy.trusted())
        self.sandboxed = m.policy.sandboxed
        m.load_script_from_source("prog", "python", PY)
        m.load_script_from_source("lib", "lisp", LISP)
        super().__init__(m)


@pytest.fixture(params=["trusted", "sandboxed"])
def s(request):
    session = Session(SecurityPolicy.sandboxed() if request.param == "sandboxed" else None)
    yield session
    session.dbg.detach()
    session.m.close()


def test_python_frame_scopes_values_and_evaluation(s):
    stop = s.stop_at("prog", 4, "prog.main", 4)
    frame = s.top(stop)
    assert (frame.name, frame.language, frame.script, frame.line, frame.column) == ("main", "python", "prog", 4, 5)
    assert [sc.name for sc in s.dbg.scopes(frame.id)] == ["Locals", "Globals"]
    local = s.scope(frame.id)
    assert set(local) == {"n", "data"}
    data = local["data"]
    assert data.reference and data.count == 2
    top = {v.name: v for v in s.dbg.variables(data.reference)}
    assert top["name"].value == "'x'" and top["list"].count == 2
    inner = s.dbg.variables(top["list"].reference)
    assert [v.value for v in inner] == ["1", "[2, 3]"]
    assert [v.value for v in s.dbg.variables(inner[1].reference)] == ["2", "3"]
    assert "main" in s.scope(frame.id, "Globals") and "__kryon_script__" not in s.scope(frame.id, "Globals")
    assert s.dbg.evaluate("n * 10", frame.id).value == "40"
    assert s.dbg.evaluate("len(data['list'])", frame.id).value == "2"
    with pytest.raises(ScriptError) as err:
        s.dbg.evaluate("n +", frame.id)
    assert err.value.language == "python"
    with pytest.raises(ScriptError, match="ZeroDivisionError"):
        s.dbg.evaluate("n / 0", frame.id)
    s.dbg.resume(stop.thread)
    assert s.result() == 5


def test_lisp_names_columns_and_evaluation(s):
    s.dbg.set_breakpoints("lib", [BreakpointSpec(3)])
    s.run("lib.add-one!", 1)
    s.run("lib.twice", 5)
    stop = s.stop()
    frame = s.top(stop)
    assert (frame.name, frame.language, frame.line, frame.column) == ("twice", "lisp", 3, 3)
    local = s.scope(frame.id)
    assert local["my-total"].value == "10" and local["v"].value == "5"
    assert s.dbg.evaluate("(+ my-total 1)", frame.id).value == "11"
    assert s.dbg.evaluate("[my-total v]", frame.id).value == "[10 5]"
    with pytest.raises(ScriptError, match="NameError: name 'no-such-name' is not defined"):
        s.dbg.evaluate("no-such-name", frame.id)
    s.dbg.resume(stop.thread)
    assert s.result() == 2 and s.result() == 10


def test_lisp_breakpoint_on_a_blank_line_moves_to_the_next_form(s, tmp_path):
    [bp] = s.dbg.set_breakpoints("lib", [BreakpointSpec(4)])
    assert bp.verified and bp.line == 5
    [bp] = s.dbg.set_breakpoints("lib", [BreakpointSpec(40)])
    assert not bp.verified


def test_lisp_conditional_breakpoint(s):
    s.dbg.set_breakpoints("lib", [BreakpointSpec(2, condition="(> v 100)")])
    s.run("lib.twice", 5)
    assert s.result() == 10
    s.run("lib.twice", 500)
    stop = s.stop()
    assert stop.reason == "breakpoint"
    s.dbg.resume(stop.thread)
    assert s.result() == 1000


def test_step_in_from_python_into_lisp_and_out(s):
    stop = s.stop_at("prog", 9, "prog.across", 1)
    stop = s.step(stop, "stepIn")
    frames = s.stack(stop)
    assert [(f.language, f.name, f.line) for f in frames[:2]] == [("lisp", "twice", 2), ("python", "across", 9)]
    stop = s.step(stop, "next")
    assert s.top(stop).line == 3
    stop = s.step(stop, "stepOut")
    top = s.top(stop)
    assert (top.language, top.name, top.line) == ("python", "across", 10)
    assert s.scope(top.id)["r"].value == "4"
    s.dbg.resume(stop.thread)
    assert s.result() == 5


def test_step_over_a_cross_language_call_stays_in_python(s):
    stop = s.stop_at("prog", 9, "prog.across", 1)
    stop = s.step(stop, "next")
    top = s.top(stop)
    assert (top.language, top.line) == ("python", 10)
    s.dbg.resume(stop.thread)
    assert s.result() == 5


def test_raised_error_stops_once_where_it_was_raised(s):
    s.dbg.set_exception_breakpoints(raised=True)
    s.run("prog.outer")
    stop = s.stop()
    assert stop.reason == "exception" and "deep" in stop.description
    frames = s.stack(stop)
    assert [(f.name, f.line) for f in frames] == [("inner", 16), ("outer", 13)]
    s.dbg.resume(stop.thread)
    error = s.result()
    assert isinstance(error, ScriptError) and error.line == 16
    assert s.stops.empty()  # not again in outer, as it passed through


def test_pause_a_python_loop_then_detach_lets_it_run(s):
    s.run("prog.spin")
    time.sleep(0.3)
    s.dbg.pause()
    stop = s.stop()
    assert stop.reason == "pause"
    frame = s.top(stop)
    assert frame.name == "spin" and frame.line in (20, 21)
    assert int(s.scope(frame.id)["i"].value) > 0
    stop = s.step(stop, "next")
    assert stop.reason == "step"
    s.dbg.detach()
    engine = s.m.engine("python")
    assert engine.tracing is False and engine.local.tracer.debug is None
    if s.sandboxed:  # the worker runs on untraced until its time limit ends the loop
        assert isinstance(s.result(), ScriptTimeoutError)
        assert engine.sandboxed.runtime.debug is None  # every worker was told: the hook is off
        return
    engine.local.table.get("prog").ns["stopping"] = True  # the loop ends on its next test
    assert s.result() is None


def test_limits_still_fire_while_debugging():
    s = Session(SecurityPolicy.trusted(max_recursion=50, time_limit=0.5))
    try:
        s.dbg.set_breakpoints("lib", [BreakpointSpec(2)])  # the tracer runs for every call now
        with pytest.raises(ScriptError, match="max_recursion"):
            s.m.call_function("prog.deep", [0])
        start = time.monotonic()
        with pytest.raises(ScriptTimeoutError):
            s.m.call_function("prog.spin", [])
        assert time.monotonic() - start < 0.5 * 1.5 + 1.0
        s.run("prog.across", 1)  # and the breakpoint still stops
        stop = s.stop()
        assert s.top(stop).language == "lisp"
        stop = s.step(stop, "stepOut")  # stepping chains with the recursion counting
        assert s.top(stop).line == 10
        s.dbg.resume(stop.thread)
        assert s.result() == 5
        with pytest.raises(ScriptError, match="max_recursion"):  # the count is still right afterwards
            s.m.call_function("prog.deep", [0])
    finally:
        s.dbg.detach()
        s.m.close()


@pytest.mark.parametrize("language, source, name", [
    ("python", "def f(x):\n    y = x * 2\n    return y\n", "sand.py"),
    ("lisp", "(defn f [x]\n  (setv y (* x 2))\n  y)\n", "sand.kl"),
])
def test_sandboxed_file_breakpoints_set_before_loading_stop_in_the_worker(tmp_path, language, source, name):
    path = tmp_path / name
    path.write_text(source)
    s = DebugSession(ScriptManager(cache=False, policy=SecurityPolicy.sandboxed()))
    try:
        [before] = s.dbg.set_breakpoints(str(path), [BreakpointSpec(2)])  # not loaded yet: resolved from the text
        assert before.verified and before.line == 2
        s.m.load_script_file(path)
        s.run("sand.f", 4)
        stop = s.stop()
        assert stop.reason == "breakpoint" and stop.breakpoints == (before.id,)
        frame = s.top(stop)
        assert (frame.name, frame.language, frame.line, frame.file) == ("f", language, 2, str(path))
        assert s.scope(frame.id)["x"].value == "4"
        s.dbg.resume(stop.thread)
        assert s.result() == 8
    finally:
        s.close()
