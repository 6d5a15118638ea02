"""The debugger on the JavaScript engine, through the library API: where
breakpoints land, probes that keep every statement's line and column, the
rewritten source running exactly as the original does (a corpus of the
language's tricky corners), scopes and values, stepping between JavaScript
functions and through host calls, pausing an endless loop, conditions,
evaluation in a sandboxed script (it reaches only what the script reaches),
the time limit while debugging, and detaching."""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import Any

import pytest

from kryon_core import ScriptError, ScriptManager, ScriptTimeoutError, SecurityPolicy
from kryon_core.debug import BreakpointSpec, Stop
from kryon_core.testing.debugging import DebugSession

pytest.importorskip("tree_sitter_javascript")

from kryon_js.probes import code_lines, rewrite  # noqa: E402

PROG = """\
let counter = 10, stopping = false;
const config = {name: "demo", sizes: [1, 2, [3]], tags: new Set(["a"]), index: new Map([["k", 1]])};
function main(n) {
  let double = n * 2;
  counter = counter + double;
  return counter;
}
function outer(x) {
  const y = x + 1;
  const r = inner(y);
  return r + 1;
}
function inner(v) {
  const tripled = v * 3;
  return tripled;
}
function spin() {
  let i = 0;
  while (!stopping) { i = i + 1; }
  return i;
}
function across(x) {
  const got = kryon.call("helper.twice", x);
  return got + 1;
}
"""

HELPER = "def twice(v):\n    doubled = v * 2\n    return doubled\n"


class Session(DebugSession):
    """A manager with the debugger attached *before* the script loads (scripts
    loaded while it is attached run with probes)."""

    def __init__(self, policy: SecurityPolicy | None = None, source: str = PROG) -> None:
        m = ScriptManager(cache=False, policy=policy or SecurityPolicy.trusted())
        super().__init__(m)
        m.load_script_from_source("prog", "javascript", source)

    def close(self) -> None:
        self.dbg.detach()
        self.m.close()


@pytest.fixture
def s():
    session = Session()
    yield session
    session.close()


# -- where breakpoints land ------------------------------------------------------------------------
def test_breakpoint_lines_move_to_the_next_statement_without_running():
    source = "throw new Error('never run')\n\nfunction f(a) {\n  // a comment\n\n  return a\n}\nlet x = 1\n"
    assert code_lines(source) == (1, 6, 8)
    m = ScriptManager(cache=False, policy=SecurityPolicy.trusted())
    try:
        target = m.engine("javascript").debug_target()
        assert [target.resolve_line("later", source, n) for n in (1, 2, 3, 4, 7, 8, 9)] == [1, 6, 6, 6, 8, 8, None]
        assert target.resolve_line("broken", "function (", 1) is None  # does not parse: not verified
    finally:
        m.close()


def test_breakpoints_in_a_file_resolve_before_it_loads(tmp_path):
    path = tmp_path / "later.js"
    path.write_text("function f() {\n\n  return 1;\n}\n")
    m = ScriptManager(cache=False, policy=SecurityPolicy.trusted())
    try:
        got = m.debugger().set_breakpoints(str(path), [BreakpointSpec(1), BreakpointSpec(4)])
        assert [(b.verified, b.line) for b in got] == [(True, 3), (False, None)]
    finally:
        m.close()


# -- probes keep positions and behaviour ----------------------------------------------------------------
CORPUS = {
    "closures": """\
function counterFrom(start) {
  let n = start
  return { next() { n += 1; return n }, get value() { return n } }
}
function run() { const c = counterFrom(5); c.next(); c.next(); return c.value }
""",
    "arrows_and_classes": """\
class Shape {
  static count = 0
  #secret = 7
  constructor(name) { this.name = name; Shape.count++ }
  get label() { return `${this.name}:${this.#secret}` }
  static { this.kind = "shape" }
}
class Square extends Shape {
  constructor(side) { super("square"); this.side = side }
  area = () => this.side * this.side
}
function run() {
  const sq = new Square(3)
  const doubled = [1, 2, 3].map(x => x * 2).filter((x) => { return x > 2 })
  return [sq.area(), sq.label, Shape.count, Shape.kind, doubled]
}
""",
    "generators_and_for_of": """\
function* range(a, b) { for (let i = a; i < b; i++) yield i }
function* pairs(o) { for (const k in o) { yield [k, o[k]] } }
function run() {
  const out = []
  for (const i of range(0, 4)) { if (i === 2) continue; out.push(i) }
  for (const [k, v] of pairs({a: 1, b: 2})) out.push(k + v)
  const g = range(10, 12)
  out.push(g.next().value, g.next().value, g.next().done)
  return out
}
""",
    "switch_labels_loops": """\
function run() {
  const out = []
  outer: for (let i = 0; i < 4; i++) {
    inner: for (let j = 0; j < 4; j++) {
      if (j > i) continue outer
      if (i === 3) break outer
      switch ((i + j) % 3) {
        case 0: out.push("zero")
        case 1: { out.push("one"); break }
        default:
          out.push("two")
      }
    }
  }
  let k = 0
  do k++; while (k < 5)
  while (k < 9) k += 2
  if (k) out.push(k); else out.push(-1)
  return out
}
""",
    "templates_regex_asi": """\
const text = `first line
  second ${1 + 1} line
third`
const re = /a\\/b[/]c/g
let a = 1
let b = a
;[a, b] = [b + 1, a + 2]
const f = function () { return "ok" }
;(function () { a += 10 })()
function run() {
  const m = "a/b/c a/b/c".match(re)
  const lines = text.split("\\n").length
  let x = 5
  x
  ++x
  return [m.length, lines, a, b, f(), x, typeof /x/.test]
}
""",
    "strict_and_errors": """\
"use strict"
function run() {
  "use strict"
  const results = []
  try { undefinedThing.x } catch ({name}) { results.push(name) } finally { results.push("finally") }
  try { (function () { return this })().x } catch (e) { results.push(e.constructor.name) }
  label: { results.push("in block"); break label }
  return results
}
""",
    "async_functions": """\
async function later(v) { await null; return v * 2 }
const arrow = async (v) => { const w = await later(v); return w + 1 }
async function run() {
  const parts = await Promise.all([later(1), arrow(2)])
  for await (const x of [Promise.resolve(7)]) parts.push(x)
  return parts
}
""",
}


def _run(source: str, debugger: bool) -> Any:
    import asyncio

    m = ScriptManager(cache=False, policy=SecurityPolicy.trusted())
    try:
        dbg = m.debugger() if debugger else None
        if dbg is not None:
            dbg.set_exception_breakpoints(uncaught=False)
        m.load_script_from_source("corpus", "javascript", source)
        engine = m.engine("javascript")
        if engine.list_functions("corpus")["run"].is_async:
            return asyncio.run(m.call_function_async("corpus.run", []))
        return m.call_function("corpus.run", [])
    finally:
        m.close()


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_rewritten_source_runs_exactly_as_the_original(name):
    source = CORPUS[name]
    rewritten = rewrite(source).source
    assert rewritten.count("\n") == source.count("\n") and rewritten != source
    plain = _run(source, debugger=False)
    assert plain is not None
    assert _run(source, debugger=True) == plain


def test_examples_and_corpus_keep_every_statements_line():
    """Each probe stands on its statement's own line, at the statement's column."""
    for source in CORPUS.values():
        out = rewrite(source)
        lines = source.split("\n")
        for probe in out.probes:
            text = lines[probe.line - 1]
            assert text[probe.column - 1:].strip(), (probe, text)


ERRORS = """\
function deep(o) {
  return o.missing.field;
}
function thrower(n) {
  if (n > 1) {
    throw new RangeError("too big: " + n);
  }
  return n;
}
"""


@pytest.mark.parametrize("call,args", [("deep", [{}]), ("thrower", [5])])
def test_an_errors_line_and_column_are_the_same_in_debug_mode(call, args):
    def error_of(debugger: bool) -> ScriptError:
        m = ScriptManager(cache=False, policy=SecurityPolicy.trusted())
        try:
            if debugger:
                m.debugger().set_breakpoints("errs", [BreakpointSpec(8)])
            m.load_script_from_source("errs", "javascript", ERRORS)
            with pytest.raises(ScriptError) as info:
                m.call_function(f"errs.{call}", args)
            return info.value
        finally:
            m.close()

    plain, debugged = error_of(False), error_of(True)
    assert (debugged.line, debugged.column, debugged.message) == (plain.line, plain.column, plain.message)
    assert plain.line in (2, 6)
    assert [(f.function, f.line, f.column) for f in debugged.stack or []] == \
        [(f.function, f.line, f.column) for f in plain.stack or []]


# -- stops, scopes, values, stepping ------------------------------------------------------------------
def test_scopes_values_and_evaluation(s):
    stop = s.stop_at("prog", 5, "prog.main", 3)
    frame = s.top(stop)
    assert (frame.name, frame.line, frame.column, frame.language) == ("main", 5, 3, "javascript")
    assert [sc.name for sc in s.dbg.scopes(frame.id)] == ["Locals", "Globals"]
    assert {k: v.value for k, v in s.scope(frame.id).items()} == {"double": "6", "n": "3"}
    glob = s.scope(frame.id, "Globals")
    assert glob["counter"].value == "10"
    config = {v.name: v for v in s.dbg.variables(glob["config"].reference)}
    assert config["name"].value == '"demo"'
    sizes = s.dbg.variables(config["sizes"].reference)
    assert [v.value for v in sizes] == ["1", "2", "[3]"] and sizes[2].reference
    assert [v.value for v in s.dbg.variables(config["tags"].reference)] == ['"a"']
    assert [(v.name, v.value) for v in s.dbg.variables(config["index"].reference)] == [('"k"', "1")]
    assert s.dbg.evaluate("double * counter", frame.id).value == "60"
    assert s.dbg.evaluate("config.sizes", frame.id).count == 3
    s.dbg.evaluate("double = 100", frame.id)  # assignments go to the frame's own variable
    with pytest.raises(ScriptError, match="nope"):
        s.dbg.evaluate("nope.x", frame.id)
    with pytest.raises(ScriptError):
        s.dbg.evaluate("(", frame.id)
    s.dbg.resume(stop.thread)
    assert s.result() == 110


def test_step_in_over_and_out_between_functions(s):
    stop = s.stop_at("prog", 10, "prog.outer", 1)
    s.dbg.set_breakpoints("prog", [])
    stop = s.step(stop, "stepIn")
    frames = s.stack(stop)
    assert [(f.name, f.line) for f in frames] == [("inner", 14), ("outer", 10)]
    assert s.scope(frames[1].id)["y"].value == "2"  # the caller's variables, as they are now
    stop = s.step(stop, "stepOut")
    assert (s.top(stop).name, s.top(stop).line) == ("outer", 11)
    assert s.scope(s.top(stop).id)["r"].value == "6"
    s.dbg.resume(stop.thread, "next")  # off the end of the call: nothing more to stop at
    assert s.result() == 7


def test_step_over_a_call_and_through_a_host_call_into_python():
    m = ScriptManager(cache=False, policy=SecurityPolicy.trusted())
    s = DebugSession(m)
    try:
        m.load_script_from_source("prog", "javascript", PROG)
        m.load_script_from_source("helper", "python", HELPER)
        stop = s.stop_at("prog", 9, "prog.outer", 1)
        stop = s.step(stop, "next")
        assert s.top(stop).line == 10
        stop = s.step(stop, "next")  # over inner(): its lines do not stop
        assert (s.top(stop).name, s.top(stop).line) == ("outer", 11)
        s.dbg.set_breakpoints("prog", [BreakpointSpec(23)])
        s.dbg.resume(stop.thread)
        assert s.result() == 7
        s.run("prog.across", 4)
        stop = s.stop()
        s.dbg.set_breakpoints("prog", [])
        stop = s.step(stop, "stepIn")
        frames = s.stack(stop)
        assert [(f.language, f.line) for f in frames[:2]] == [("python", 2), ("javascript", 23)]
        stop = s.step(stop, "stepOut")
        assert (s.top(stop).language, s.top(stop).line) in {("javascript", 23), ("javascript", 24)}
        s.dbg.resume(stop.thread)
        assert s.result() == 9
    finally:
        s.dbg.detach()
        m.close()


def test_pause_an_endless_loop_and_conditions(s):
    s.run("prog.spin")
    time.sleep(0.2)
    s.dbg.pause()
    stop = s.stop()
    assert stop.reason == "pause"
    frame = s.top(stop)
    assert frame.name == "spin" and frame.line == 19
    s.dbg.evaluate("i = -5", frame.id)
    assert int(s.dbg.evaluate("i", frame.id).value) <= -4
    s.dbg.set_breakpoints("prog", [BreakpointSpec(19, condition="i >= 1000")])
    s.dbg.resume(stop.thread)
    stop = s.stop()
    assert stop.reason == "breakpoint"
    assert s.dbg.evaluate("i", s.top(stop).id).value == "1000"
    s.dbg.evaluate("stopping = true", s.top(stop).id)
    s.dbg.set_breakpoints("prog", [])
    s.dbg.resume(stop.thread)
    assert s.result() == 1001  # it stopped before the statement adding one


def test_a_script_loaded_twice_and_detaching(s):
    s.dbg.set_breakpoints("prog", [BreakpointSpec(4)])
    s.run("prog.main", 1)
    s.dbg.resume(s.stop().thread)
    assert s.result() == 12
    s.dbg.detach()
    assert s.m.call_function("prog.main", [1]) == 14  # no stop: the probes went quiet
    assert s.stops.empty()


# -- the sandbox ---------------------------------------------------------------------------------------
SANDBOXED = """\
const secret = 2;
function probe(x) {
  const hidden = secret + x;
  return hidden - 1;
}
function forever() {
  let n = 0;
  for (;;) { n++; }
}
"""


def test_sandboxed_evaluation_stays_in_the_sandbox_and_the_time_limit_still_fires():
    policy = SecurityPolicy.sandboxed(time_limit=0.5)
    m = ScriptManager(cache=False, policy=policy)
    dbg = m.debugger()
    stops: "queue.Queue[Stop]" = queue.Queue()
    dbg.on_stop = stops.put
    results: "queue.Queue[Any]" = queue.Queue()
    try:
        m.load_script_from_source("box", "javascript", SANDBOXED)
        dbg.set_breakpoints("box", [BreakpointSpec(4)])
        threading.Thread(target=lambda: results.put(m.call_function("box.probe", [1])), daemon=True).start()
        stop = stops.get(timeout=10)
        frame = dbg.stack(stop.thread)[0]
        assert dbg.evaluate("hidden * 2", frame.id).value == "6"
        for name in ("__kryon_host", "__kryon_dbgline", "__kryon_dbgsync", "__kryon_invoke", "__kryon_internal"):
            assert dbg.evaluate(f"typeof {name}", frame.id).value == '"undefined"'
        with pytest.raises(ScriptError):  # an endless evaluation gets its own budget, then fails
            dbg.evaluate("(() => { for (;;) {} })()", frame.id)
        time.sleep(0.8)  # stopped longer than the time limit: not counted against the call
        dbg.resume(stop.thread)
        assert results.get(timeout=10) == 2
        dbg.set_breakpoints("box", [BreakpointSpec(3)])  # a breakpoint elsewhere: the loop's probes run
        with pytest.raises(ScriptTimeoutError):
            m.call_function("box.forever", [])
        dbg.set_breakpoints("box", [])

        def forever() -> None:
            try:
                results.put(m.call_function("box.forever", []))
            except ScriptError as exc:
                results.put(exc)

        threading.Thread(target=forever, daemon=True).start()
        time.sleep(0.1)
        dbg.pause()  # stopped inside the loop, longer than the time limit, then on: the deadline still fires
        stop = stops.get(timeout=10)
        assert stop.reason == "pause" and dbg.stack(stop.thread)[0].name == "forever"
        time.sleep(0.8)
        dbg.resume(stop.thread)
        assert isinstance(results.get(timeout=10), ScriptTimeoutError)
    finally:
        dbg.detach()
        m.close()


def test_probe_ids_from_the_script_itself_are_ignored():
    s = Session(source="function f() {\n  __kryon_dbg({}, 99999, () => 1);\n  __kryon_dbg({}, -1, 0);\n  return 1;\n}\n")
    try:
        stop = s.stop_at("prog", 4, "prog.f")
        assert s.top(stop).line == 4
        s.dbg.resume(stop.thread)
        assert s.result() == 1
        s.dbg.set_breakpoints("prog", [])
        assert json.dumps(s.m.call_function("prog.f", [])) == "1"
    finally:
        s.close()


def _scripts_of_the_js_tests() -> list[str]:
    """Every multi-line string in tests/js that is a JavaScript program (it parses)."""
    import ast
    from pathlib import Path

    out = []
    for path in sorted((Path(__file__).parent.parent / "js").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.count("\n") >= 2:
                try:
                    rewrite(node.value)
                except ValueError:
                    continue
                out.append(node.value)
    return out


def test_every_script_of_the_js_tests_compiles_the_same_with_probes():
    """The rewrite of each program the JavaScript tests use compiles exactly
    when the original does, with the same lines."""
    from kryon_core import CompileError

    scripts = _scripts_of_the_js_tests()
    assert len(scripts) > 30
    m = ScriptManager(cache=False, policy=SecurityPolicy.trusted())
    try:
        engine = m.engine("javascript")
        compiled = 0
        for i, source in enumerate(scripts):
            try:
                plain = engine.compile(source, f"t{i}")
            except CompileError:
                continue
            probed = engine.compile(rewrite(source).source, f"t{i}")
            assert probed.source.count("\n") == source.count("\n")
            assert plain.source != probed.source
            compiled += 1
        assert compiled > 30
    finally:
        m.close()


RAISING = """\
function check(v) {
  const limit = 3;
  if (v > limit) {
    throw new RangeError("too big: " + v);
  }
  return v;
}
function guarded(v) {
  try {
    return check(v);
  } catch (e) {
    return -1;
  }
}
function local(v) {
  const parts = [v];
  try {
    null.x;
  } catch (err) {
    parts.push(err.constructor.name);
  }
  return parts;
}
function spread(v) {
  const r = [1,
    v.missing.deeper];
  return r;
}
"""


def test_raised_errors_stop_where_raised_with_their_variables():
    s = Session(source=RAISING)
    try:
        s.dbg.set_exception_breakpoints(raised=True)
        s.run("prog.guarded", 5)
        stop = s.stop()
        assert stop.reason == "exception" and "too big: 5" in stop.description
        frames = s.stack(stop)
        assert [(f.name, f.line, f.column) for f in frames] == [("check", 4, 40), ("guarded", 10, 5)]  # QuickJS: where the Error is made
        assert {k: v.value for k, v in s.scope(frames[0].id).items()} == {"limit": "3", "v": "5"}
        s.dbg.resume(stop.thread)
        assert s.result() == -1  # reported once: not again as it left check(), nor in guarded's catch
        s.run("prog.local", 1)  # raised and caught in one function: reported by the catch clause
        stop = s.stop()
        assert stop.reason == "exception" and "TypeError" in stop.description
        assert s.top(stop).line == 18
        s.dbg.resume(stop.thread)
        assert s.result() == [1, "TypeError"]
        s.dbg.set_exception_breakpoints(raised=False, uncaught=True)
        assert s.m.call_function("prog.guarded", [9]) == -1  # caught: no stop
        s.run("prog.spread", {})
        stop = s.stop()
        assert stop.reason == "exception"
        assert [(f.name, f.line) for f in s.stack(stop)][:1] == [("spread", 26)]  # the error's line, not its statement's
        s.dbg.resume(stop.thread)
        assert isinstance(s.result(), ScriptError)
    finally:
        s.close()


def test_a_reload_while_debugging_runs_the_new_version_with_probes():
    s = Session()
    try:
        s.dbg.set_breakpoints("prog", [BreakpointSpec(5)])
        s.run("prog.main", 1)
        s.dbg.resume(s.stop().thread)
        assert s.result() == 12
        s.m.hot_reload_script("prog", PROG.replace("counter + double", "counter + double + 100"))
        s.run("prog.main", 1)
        stop = s.stop()
        assert s.top(stop).line == 5
        assert s.scope(s.top(stop).id, "Globals")["counter"].value == "10"  # the new version sets it itself
        s.dbg.resume(stop.thread)
        assert s.result() == 112
    finally:
        s.close()


def _programs() -> Any:
    """Random small programs: statements of several kinds, nested, one per line
    or several to a line, with and without semicolons."""
    from hypothesis import strategies as st

    names = st.sampled_from(["a", "b", "c"])
    expr = st.one_of(st.integers(-5, 5).map(str), names,
                     st.tuples(names, st.sampled_from(["+", "-", "*", "%"]), st.integers(1, 4)).map(
                         lambda t: f"({t[0]} {t[1]} {t[2]})"))
    simple = st.one_of(
        st.tuples(names, expr).map(lambda t: f"{t[0]} = {t[1]}"),
        expr.map(lambda e: f"out.push({e})"),
        st.just("out.push(`t\n${a}`)"),
    )

    def compound(inner: Any) -> Any:
        body = st.lists(inner, min_size=1, max_size=3)
        return st.one_of(
            st.tuples(expr, body, body).map(lambda t: "if (" + t[0] + ") {\n" + "\n".join(t[1]) + "\n} else {\n"
                                            + "\n".join(t[2]) + "\n}"),
            st.tuples(expr, inner).map(lambda t: f"if ({t[0]}) {t[1]}"),
            st.tuples(st.integers(0, 3), body).map(lambda t: f"for (let i = 0; i < {t[0]}; i++) {{\n"
                                                   + "\n".join(t[1]) + "\n}"),
            st.tuples(names, inner).map(lambda t: f"switch ({t[0]} % 3) {{ case 0: {t[1]}; break\n"
                                        f"default: out.push(-1) }}"),
            body.map(lambda b: "(() => {\n" + "\n".join(b) + "\n})()"),
            body.map(lambda b: "try {\n" + "\n".join(b) + "\nnull.x\n} catch (e) { out.push(e.name) }"),
        )

    statement = st.recursive(simple, compound, max_leaves=6)
    separator = st.sampled_from(["\n", ";\n", "; "])
    return st.tuples(st.lists(statement, min_size=1, max_size=6), separator).map(
        lambda t: "function run() {\nlet a = 1, b = 2, c = 3\nconst out = []\n" + t[1].join(t[0]) + "\nreturn out\n}\n")


def test_random_programs_run_the_same_with_probes():
    from hypothesis import HealthCheck, given, settings

    def outcome(source: str, debugger: bool) -> Any:
        try:
            return _run(source, debugger)
        except ScriptError as exc:  # an ASI hazard the generator made: the same error, at the same place
            return type(exc).__name__, exc.message, exc.line, exc.column

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_programs())
    def check(source: str) -> None:
        assert rewrite(source).source.count("\n") == source.count("\n")
        assert outcome(source, True) == outcome(source, False)

    check()
