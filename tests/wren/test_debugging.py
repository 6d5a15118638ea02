"""The Wren debug target through the library's debugger (``ScriptManager.debugger()``):
breakpoints on any line holding code (a lone ``}`` included), stepping in,
over and out, pausing an endless loop, frames with the locals of every frame
and module variables, lists, maps and instances expanded lazily (a cyclic
list too), evaluation with a frame's locals under the script's policy,
errors stopped where they are raised, time limits while debugging, and
detaching. The DAP server's view of the same is in tests/debug."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import pytest

from kryon_core import ScriptManager, SecurityPolicy
from kryon_core.debug.session import BreakpointSpec, Frame, Stop, Variable
from kryon_core.errors import CompileError, ScriptError, ScriptTimeoutError

CALLS = """\
class P {
  static twice(x) {
    var y = x * 2
    return y
  }
  static main(n) {
    var a = twice(n)
    var b = a + 1
    return b
  }
  static noReturn() {
    var c = 1
    // a comment

    var d = c + 1
  }
}
"""


class Session:
    """A manager with its debugger and one loaded Wren script; calls run on
    their own thread, stops arrive in a queue."""

    def __init__(self, source: str, policy: SecurityPolicy | None = None) -> None:
        self.m = ScriptManager(cache=False)
        self.d = self.m.debugger()
        self.m.load_script_from_source("prog", "wren", source, policy=policy)
        self.stops: "queue.Queue[Stop]" = queue.Queue()
        self.d.on_stop = self.stops.put
        self.results: "queue.Queue[tuple[str, Any]]" = queue.Queue()

    def run(self, function: str, *args: Any) -> threading.Thread:
        def call() -> None:
            try:
                self.results.put(("ok", self.m.call_function(f"prog.{function}", list(args))))
            except ScriptError as exc:
                self.results.put(("error", exc))

        t = threading.Thread(target=call, daemon=True)
        t.start()
        return t

    def stop(self) -> Stop:
        return self.stops.get(timeout=20)

    def result(self) -> tuple[str, Any]:
        return self.results.get(timeout=20)

    def stack(self, stop: Stop) -> list[Frame]:
        return self.d.stack(stop.thread)

    def scope(self, frame: Frame, index: int = 0) -> dict[str, Variable]:
        scope = self.d.scopes(frame.id)[index]
        return {v.name: v for v in self.d.variables(scope.reference)}

    def close(self) -> None:
        self.d.detach()
        self.m.close()


@pytest.fixture
def calls() -> Any:
    s = Session(CALLS)
    yield s
    s.close()


def test_breakpoint_lines_are_lines_holding_code(calls: Session) -> None:
    target = calls.m.engine("wren").debug_target()
    assert target.resolve_line("prog", CALLS, 3) == 3
    assert target.resolve_line("prog", CALLS, 5) == 5  # a lone "}": the method's implicit return
    assert target.resolve_line("prog", CALLS, 13) == 15  # a comment, then a blank line
    assert target.resolve_line("prog", CALLS, 16) == 16
    assert target.resolve_line("prog", CALLS, 18) is None  # past the last code
    assert target.resolve_line("prog", "class P {\n  static f( {\n}\n", 1) is None  # does not compile
    [bp, past] = calls.d.set_breakpoints("prog", [BreakpointSpec(14), BreakpointSpec(40)])
    assert (bp.verified, bp.line) == (True, 15)
    assert not past.verified and past.line is None


def test_breakpoint_on_a_closing_brace_stops_there(calls: Session) -> None:
    calls.d.set_breakpoints("prog", [BreakpointSpec(16)])
    calls.run("P.noReturn")
    stop = calls.stop()
    assert stop.reason == "breakpoint"
    frame = calls.stack(stop)[0]
    assert (frame.line, frame.name, frame.language) == (16, "noReturn()", "wren")
    assert {k: v.value for k, v in calls.scope(frame).items()} == {"c": "1", "d": "2"}
    calls.d.resume(stop.thread)
    assert calls.result() == ("ok", None)


def test_step_in_out_and_over(calls: Session) -> None:
    calls.d.set_breakpoints("prog", [BreakpointSpec(7)])
    calls.run("P.main", 5)
    stop = calls.stop()
    calls.d.resume(stop.thread, "stepIn")
    stop = calls.stop()
    assert stop.reason == "step"
    frames = calls.stack(stop)
    assert [(f.name, f.line) for f in frames] == [("twice(_)", 3), ("main(_)", 7)]
    assert frames[0].column == 13 and frames[0].script == "prog"
    assert calls.scope(frames[1])["n"].value == "5"  # the caller's locals too
    calls.d.resume(stop.thread, "stepOut")
    stop = calls.stop()
    frames = calls.stack(stop)
    assert [(f.name, f.line) for f in frames] == [("main(_)", 8)]
    assert calls.scope(frames[0])["a"].value == "10"
    calls.d.resume(stop.thread, "next")
    assert calls.stack(calls.stop())[0].line == 9
    calls.d.set_breakpoints("prog", [])
    calls.d.resume(stop.thread)
    assert calls.result() == ("ok", 11)
    # step over a line that calls: no stop inside the callee
    calls.d.set_breakpoints("prog", [BreakpointSpec(7)])
    calls.run("P.main", 1)
    stop = calls.stop()
    calls.d.resume(stop.thread, "next")
    stop = calls.stop()
    assert [(f.name, f.line) for f in calls.stack(stop)] == [("main(_)", 8)]
    calls.d.set_breakpoints("prog", [])
    calls.d.resume(stop.thread)
    assert calls.result() == ("ok", 3)


STRUCTURES = """\
var Limit = 7
class Point {
  construct new(x, y) {
    _x = x
    _y = y
  }
}
class P {
  static main() {
    var items = [1, "two", [3]]
    items.add(items)
    var m = {"k": [4]}
    var p = Point.new(1, Point)
    var none = null
    return items.count
  }
}
"""


def test_values_expand_lazily_and_module_variables_show() -> None:
    s = Session(STRUCTURES)
    try:
        s.d.set_breakpoints("prog", [BreakpointSpec(15)])
        s.run("P.main")
        stop = s.stop()
        frame = s.stack(stop)[0]
        scopes = s.d.scopes(frame.id)
        assert [sc.name for sc in scopes] == ["Locals", "Module"]
        local = s.scope(frame)
        items = local["items"]
        assert (items.value, items.type, items.count) == ('[1, "two", [...], [...]]', "List", 4)
        children = s.d.variables(items.reference)
        assert [(c.name, c.value) for c in children] == [
            ("[0]", "1"), ("[1]", '"two"'), ("[2]", "[3]"), ("[3]", '[1, "two", [...], [...]]')]
        again = s.d.variables(children[3].reference)  # the list holds itself: expanding never ends eagerly
        assert len(again) == 4 and again[3].reference > 0
        m = local["m"]
        assert (m.type, m.count) == ("Map", 1)
        [entry] = s.d.variables(m.reference)
        assert (entry.name, entry.value) == ('"k"', "[4]")
        p = local["p"]
        assert (p.value, p.type, p.count) == ("instance of Point", "Point", 2)
        assert [(c.name, c.value, c.type) for c in s.d.variables(p.reference)] == [
            ("field 1", "1", "Num"), ("field 2", "Point", "Class")]
        assert (local["none"].value, local["none"].reference) == ("null", 0)
        module = s.scope(frame, 1)
        assert module["Limit"].value == "7"
        assert module["Point"].value == "Point" and module["Point"].type == "Class"
        s.d.resume(stop.thread)
        assert s.result() == ("ok", 4)
    finally:
        s.close()


def test_evaluate_in_a_frame_with_its_locals(calls: Session) -> None:
    calls.d.set_breakpoints("prog", [BreakpointSpec(4)])
    calls.run("P.main", 5)
    stop = calls.stop()
    inner, outer = calls.stack(stop)
    assert calls.d.evaluate("x + y", inner.id).value == "15"
    assert calls.d.evaluate("n * 100", outer.id).value == "500"  # the caller's frame, its own locals
    assert calls.d.evaluate("P.twice(1) + x", inner.id).value == "7"
    assert calls.d.evaluate("[x, y]", inner.id).count == 2
    with pytest.raises(CompileError):
        calls.d.evaluate("x +", inner.id)
    with pytest.raises(ScriptError, match="does not implement"):
        calls.d.evaluate("x.nope", inner.id)
    # a condition that is false never stops; the run goes on unchanged
    calls.d.resume(stop.thread)
    assert calls.result() == ("ok", 11)
    calls.d.set_breakpoints("prog", [BreakpointSpec(8, condition="a > 1000")])
    calls.run("P.main", 5)
    assert calls.result() == ("ok", 11)
    assert calls.stops.empty()


def test_pause_an_endless_loop_and_time_limits_keep_firing() -> None:
    s = Session("class P {\n  static spin() {\n    var i = 0\n    while (true) { i = i + 1 }\n  }\n}\n",
                policy=SecurityPolicy.sandboxed_policy(time_limit=1.0))
    try:
        s.run("P.spin")
        time.sleep(0.3)
        s.d.pause()
        stop = s.stop()
        assert stop.reason == "pause"
        frame = s.stack(stop)[0]
        assert (frame.name, frame.line) == ("spin()", 4)
        assert float(s.scope(frame)["i"].value) > 0
        time.sleep(1.2)  # stopped longer than the time limit: that time is not the script's
        assert s.d.evaluate("i > 0", frame.id).value == "true"  # an evaluation gets a budget of its own
        s.d.resume(stop.thread)
        started = time.perf_counter()
        kind, error = s.result()
        assert kind == "error" and isinstance(error, ScriptTimeoutError)
        assert time.perf_counter() - started > 0.3  # what was left of the budget when it stopped
    finally:
        s.close()


FAILING = """\
class P {
  static fail() {
    var why = "it broke"
    Fiber.abort(why)
  }
  static caught() {
    var f = Fiber.new { fail() }
    f.try()
    return f.error
  }
}
"""


def test_errors_stop_where_they_are_raised() -> None:
    s = Session(FAILING)
    try:
        s.d.set_exception_breakpoints(raised=True)
        s.run("P.caught")
        stop = s.stop()
        assert stop.reason == "exception" and "it broke" in stop.description
        frames = s.stack(stop)
        assert [(f.name, f.line) for f in frames[:2]] == [("fail()", 4), ("Fn (line 7)", 7)]
        assert s.scope(frames[0])["why"].value == '"it broke"'
        s.d.resume(stop.thread)
        assert s.result() == ("ok", "it broke")
        # uncaught only: the caught error runs through, the uncaught one stops at its line
        s.d.set_exception_breakpoints(uncaught=True)
        s.run("P.caught")
        assert s.result() == ("ok", "it broke")
        s.run("P.fail")
        stop = s.stop()
        assert stop.reason == "exception"
        assert (s.stack(stop)[0].name, s.stack(stop)[0].line) == ("fail()", 4)
        s.d.resume(stop.thread)
        kind, error = s.result()
        assert kind == "error" and "it broke" in error.message and error.line == 4
    finally:
        s.close()


def test_sandboxed_script_evaluation_stays_in_its_policy() -> None:
    source = 'import "io" for File\nclass P {\n  static main() {\n    var x = 1\n    return x\n  }\n}\n'
    s = Session(source, policy=SecurityPolicy.sandboxed_policy())
    try:
        [bp] = s.d.set_breakpoints("prog", [BreakpointSpec(5)])
        assert bp.verified  # Wren runs in its wasm VM in this process: its scripts can be debugged
        s.run("P.main")
        stop = s.stop()
        frame = s.stack(stop)[0]
        with pytest.raises(ScriptError, match="file system"):
            s.d.evaluate('File.read("/etc/hostname")', frame.id)
        assert s.d.evaluate("x + 1", frame.id).value == "2"
        s.d.resume(stop.thread)
        assert s.result() == ("ok", 1)
    finally:
        s.close()


def test_detach_takes_every_hook_away(calls: Session) -> None:
    engine = calls.m.engine("wren")
    hits: list[Any] = []
    engine.set_breakpoint_handler(hits.append)
    engine.set_breakpoint("prog", 8)  # the engine's own breakpoint API, on a line the debugger also uses
    calls.d.set_breakpoints("prog", [BreakpointSpec(8)])
    calls.run("P.main", 2)
    stop = calls.stop()
    calls.d.resume(stop.thread, "next")  # stepping: every line patched
    stop = calls.stop()
    calls.d.detach()
    assert calls.result() == ("ok", 5)
    assert len(hits) == 1
    calls.run("P.main", 2)  # nothing of the debugger is left; the engine's breakpoint still is
    assert calls.result() == ("ok", 5)
    assert calls.stops.empty() and len(hits) == 2
    target = engine.debug_target()
    vm = engine._scripts["prog"].vm
    applied = target._applied[vm]
    assert (applied.lines, applied.step_all, applied.errors) == (set(), False, False)


def test_limits_of_inspection_and_evaluation() -> None:
    names = [f"v{i}" for i in range(17)]
    declared = "".join(f"    var {n} = {i}\n" for i, n in enumerate(names))
    source = f"class P {{\n  static main() {{\n    var big = (1..1500).toList\n{declared}    return big.count\n  }}\n}}\n"
    s = Session(source)
    try:
        s.d.set_breakpoints("prog", [BreakpointSpec(21)])
        s.run("P.main")
        stop = s.stop()
        frame = s.stack(stop)[0]
        big = s.scope(frame)["big"]
        assert big.count == 1500 and len(big.value) <= 200 and big.value.endswith(", ...]")
        assert len(s.d.variables(big.reference)) == 1000  # children listed at most
        assert s.d.evaluate(" + ".join(names[:16]), frame.id).value == str(sum(range(16)))
        with pytest.raises(ScriptError, match="more than 16 locals"):
            s.d.evaluate(" + ".join(names), frame.id)
        s.d.resume(stop.thread)
        assert s.result() == ("ok", 1500)
    finally:
        s.close()


def test_stepping_across_languages_with_python(calls: Session) -> None:
    calls.m.load_script_from_source("caller", "python", 'import kryon\ndef run(x):\n'
                                    '    y = kryon.call("prog.P.twice", x)\n    return y + 1\n', policy=SecurityPolicy.trusted())
    calls.d.set_breakpoints("caller", [BreakpointSpec(3)])

    def run_caller() -> None:
        calls.results.put(("ok", calls.m.call_function("caller.run", [4])))

    threading.Thread(target=run_caller, daemon=True).start()
    stop = calls.stop()
    calls.d.resume(stop.thread, "stepIn")  # lands on the Wren callee's first line
    stop = calls.stop()
    frames = calls.stack(stop)
    assert [(f.language, f.name, f.line) for f in frames[:2]] == [("wren", "twice(_)", 3), ("python", "run", 3)]
    calls.d.resume(stop.thread, "stepOut")  # back in the Python caller
    stop = calls.stop()
    top = calls.stack(stop)[0]
    assert (top.language, top.line) in {("python", 3), ("python", 4)}
    calls.d.resume(stop.thread)
    assert calls.result() == ("ok", 9)
    # stepping over the line that calls Wren does not stop inside Wren
    threading.Thread(target=run_caller, daemon=True).start()
    stop = calls.stop()
    calls.d.resume(stop.thread, "next")
    stop = calls.stop()
    top = calls.stack(stop)[0]
    assert (top.language, top.line) == ("python", 4)
    calls.d.resume(stop.thread)
    assert calls.result() == ("ok", 9)


def test_attach_while_a_loop_runs_then_pause_it() -> None:
    m = ScriptManager(cache=False)
    try:
        m.load_script_from_source("prog", "wren", "class P {\n  static spin() {\n    var i = 0\n"
                                  "    while (i >= 0) { i = i + 1 }\n  }\n}\n", policy=SecurityPolicy.sandboxed_policy(time_limit=2.0))
        outcome: "queue.Queue[BaseException]" = queue.Queue()

        def spin() -> None:
            try:
                m.call_function("prog.P.spin")
            except ScriptError as exc:
                outcome.put(exc)

        threading.Thread(target=spin, daemon=True).start()
        time.sleep(0.3)  # running, with no debugger yet
        d = m.debugger()  # attaching does not wait for the running call
        stops: "queue.Queue[Stop]" = queue.Queue()
        d.on_stop = stops.put
        d.pause()
        stop = stops.get(timeout=20)
        assert stop.reason == "pause"
        frame = d.stack(stop.thread)[0]
        assert (frame.name, frame.line) == ("spin()", 4)
        d.evaluate("i = 5", frame.id)  # an assignment reaches the paused loop's own i
        assert d.variables(d.scopes(frame.id)[0].reference)[0].value == "5"
        # a condition evaluated at every pass neither stops nor stretches the time limit
        d.set_breakpoints("prog", [BreakpointSpec(4, condition="i > 1000000000")])
        d.resume(stop.thread)
        time.sleep(0.5)
        d.detach()
        assert isinstance(outcome.get(timeout=20), ScriptTimeoutError)  # the limit still ends it
    finally:
        m.close()


def test_closure_scope_shows_captured_variables() -> None:
    source = ("class P {\n  static main(n) {\n    var base = n * 10\n    var add = Fn.new { |k|\n"
              "      var sum = base + k\n      return sum\n    }\n    return add.call(3)\n  }\n}\n")
    s = Session(source)
    try:
        s.d.set_breakpoints("prog", [BreakpointSpec(6)])
        s.run("P.main", 2)
        stop = s.stop()
        block, outer = s.stack(stop)[:2]
        assert block.name == "Fn (line 4)" and outer.name == "main(_)"
        assert [sc.name for sc in s.d.scopes(block.id)] == ["Locals", "Closure", "Module"]
        assert {k: v.value for k, v in s.scope(block).items()} == {"k": "3", "sum": "23"}
        assert {k: v.value for k, v in s.scope(block, 1).items()} == {"base": "20"}
        assert [sc.name for sc in s.d.scopes(outer.id)] == ["Locals", "Module"]  # captures nothing
        assert s.d.evaluate("base + k + sum", block.id).value == "46"  # captured and own locals
        s.d.resume(stop.thread)
        assert s.result() == ("ok", 23)
    finally:
        s.close()


COUNTER = """\
class Counter {
  construct new(start) {
    _n = start
  }
  n { _n }
  bump(by) {
    var total = _n + by
    _n = total
    return total
  }
}
var C = Counter.new(10)
var Outer = 1
var F = Fn.new { |k|
  var local = k + Outer
  return local
}
class P {
  static go() { C.bump(5) + F.call(2) + Outer }
}
"""


def test_evaluate_sees_this_and_assignments_change_the_paused_frame() -> None:
    """`this` in a method's frame, in the expression's code and interpolations
    (not in its strings); an assignment to a local, a parameter or a module
    variable changes what the paused code goes on with; `this` elsewhere is
    a clear error, and a failed evaluation leaves the module as it was."""
    s = Session(COUNTER)
    try:
        s.d.set_breakpoints("prog", [BreakpointSpec(8), BreakpointSpec(16)])
        s.run("P.go")
        stop = s.stop()
        frame = s.stack(stop)[0]
        assert (frame.name, frame.line) == ("bump(_)", 8)
        assert s.d.evaluate("this.n + total", frame.id).value == "25"
        assert s.d.evaluate('"this %(this.n)"', frame.id).value == '"this 10"'
        assert s.d.evaluate("this is Counter", frame.id).value == "true"
        with pytest.raises(CompileError):
            s.d.evaluate("notDefinedAnywhere + 1", frame.id)
        assert s.d.evaluate("total = 100", frame.id).value == "100"
        assert s.scope(frame)["total"].value == "100"
        s.d.resume(stop.thread)
        stop = s.stop()
        frame = s.stack(stop)[0]
        assert frame.line == 16
        with pytest.raises(ScriptError, match="'this' is defined only in a method's frame"):
            s.d.evaluate("this", frame.id)
        s.d.evaluate("local = local * 10", frame.id)  # 3 -> 30
        s.d.evaluate("Outer = 7", frame.id)
        s.d.resume(stop.thread)
        assert s.result() == ("ok", 100 + 30 + 7)
    finally:
        s.close()


def test_a_pause_asked_before_the_script_loads_stops_in_its_code() -> None:
    """The debugger's wish (here: pause, so every line) reaches a VM made after
    it was expressed, including code the VM reads from its compiled form."""
    m = ScriptManager(cache=False)
    try:
        d = m.debugger()
        stops: "queue.Queue[Stop]" = queue.Queue()
        d.on_stop = stops.put
        go = threading.Event()

        def program() -> None:
            go.wait()
            m.load_script_from_source("prog", "wren", "class P {\n  static spin() {\n    var i = 0\n"
                                      "    while (i >= 0) { i = i + 1 }\n  }\n}\n",
                                      policy=SecurityPolicy.sandboxed_policy(time_limit=1.0))
            try:
                m.call_function("prog.P.spin")
            except ScriptError:
                pass

        thread = threading.Thread(target=program, daemon=True)
        thread.start()
        assert thread.ident is not None
        d.pause(thread.ident)
        go.set()
        stop = stops.get(timeout=20)
        assert stop.reason == "pause"
        frame = d.stack(stop.thread)[0]
        assert (frame.name, frame.line) == ("spin()", 3)
        d.detach()  # the loop runs on until its time limit ends it
        thread.join(30)
        assert not thread.is_alive()
    finally:
        m.close()
