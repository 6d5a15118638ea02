"""Wren language behaviour seen through the engine: error columns, stack
frames that name script code only, shebang lines, relative imports from
sub-folders, classes redefining ``is`` and limit errors that carry a line.
(The language itself is covered by the cases/lang_*.wren files.)"""

from __future__ import annotations

import pytest

from kryon_core import (
    CompileError,
    RecursionLimitError,
    ScriptManager,
    ScriptRuntimeError,
    SecurityPolicy,
)

kryon_wren = pytest.importorskip("kryon_wren")
from kryon_wren import WrenCompileError, WrenRuntimeError, WrenVM  # noqa: E402


@pytest.fixture
def m():
    manager = ScriptManager(policy=SecurityPolicy.trusted(), cache=False, output=lambda lang, text: None)
    yield manager
    manager.close()


# ---- columns ------------------------------------------------------------------------------


def test_compile_error_column_counts_characters():
    with WrenVM(capture=True) as vm:
        with pytest.raises(WrenCompileError) as info:
            vm.interpret('var s = "éé"\n  var t = 1 + )\n')
        assert (info.value.line, info.value.column) == (2, 15)
        with pytest.raises(WrenCompileError) as info:
            vm.interpret('var é = 1\n', module="other")
        assert (info.value.line, info.value.column) == (1, 5)
        assert "'é'" in info.value.message  # the whole character, not its first byte


@pytest.mark.parametrize(
    ("source", "line", "column"),
    [
        ('var s = "éé" + 1.nope\n', 1, 18),  # a getter: its name
        ("var x = 1\nSystem.print(x.foo(1, 2))\n", 2, 16),  # a method call: its name
        ('var x = 1\n  System.print(x + "a")\n', 2, 18),  # an operator: the operator
        ("var l = [1]\nvar y = l [5]\n", 2, 11),  # a subscript: the '['
        ("var f = Fn.new { |a, b| a }\n\n   f.call(1)\n", 3, 6),  # a wrong arity
    ],
)
def test_runtime_error_column_is_the_failing_call(source, line, column):
    with WrenVM(capture=True) as vm:
        with pytest.raises(WrenRuntimeError) as info:
            vm.interpret(source)
        assert (info.value.line, info.value.column) == (line, column), info.value.trace
        assert f"[main line {line}:{column}]" in info.value.trace


def test_script_errors_and_frames_carry_columns(m):
    with pytest.raises(CompileError) as info:
        m.load_script_from_source("bad", "wren", "var a = 1\nvar b = [1\n, 2]\n")
    assert (info.value.script, info.value.line, info.value.column) == ("bad", 3, 1)
    m.load_script_from_source("err", "wren", "class A {\n  static f() { g() }\n  static g() { 1.x }\n}\n")
    with pytest.raises(ScriptRuntimeError) as info:
        m.call_function("err.A.f", [])
    error = info.value
    assert (error.script, error.line, error.column) == ("err", 3, 18)
    assert [(f.script, f.line, f.column, f.function) for f in error.stack] == [
        ("err", 3, 18, "g()"), ("err", 2, 16, "f()")]


def test_a_module_longer_than_the_line_limit_is_a_compile_error():
    with WrenVM(capture=True) as vm:
        with pytest.raises(WrenCompileError, match="at most 2097151 lines") as info:
            vm.interpret("\n" * 2097151 + "System.print(1)\n")
        assert info.value.line == 2097151
        # one line less is fine
        vm.interpret("\n" * 2097150 + "System.print(1)\n", module="long")
        assert vm.output == ["1\n"]


# ---- stack frames ---------------------------------------------------------------------------

ERRORS = """\
class M {
  static add(a, b) { a + b }
  static boom(x) { x.nope }
  static make() { Fn.new { |x|
    x.nope
  } }
}
class P {
  construct new(x) {
    x.nope
  }
}
var run = Fn.new { |x|
  [1, 2].map { |y| y.nope }.toList
}
var build = Fn.new { P.new(1) }
"""


def _frames(error):
    return [(f.script, f.line, f.function) for f in error.stack]


def test_frames_name_methods_and_fns_never_the_engine(m):
    m.load_script_from_source("app", "wren", ERRORS)
    with pytest.raises(ScriptRuntimeError) as info:
        m.call_function("app.M.boom", [1])  # through the engine's own call module
    assert _frames(info.value) == [("app", 3, "boom(_)")]
    with pytest.raises(ScriptRuntimeError) as info:
        m.call_function("app.run", [1])
    assert _frames(info.value) == [("app", 14, "Fn (line 14)"), ("app", 14, "Fn (line 13)")]
    with pytest.raises(ScriptRuntimeError) as info:
        m.call_function("app.build", [])
    assert _frames(info.value) == [("app", 10, "new(_)"), ("app", 16, "Fn (line 16)")]
    fn = m.call_function("app.M.make", [])
    with pytest.raises(ScriptRuntimeError) as info:
        fn(2)  # a Fn called back from the host
    assert _frames(info.value) == [("app", 5, "Fn (line 4)")]
    for error in (info.value,):
        text = "\n".join(str(f) for f in error.stack)
        assert "kryon:" not in text and "#call" not in text and "block argument" not in text


def test_wrong_arity_blames_the_calling_line(m):
    m.load_script_from_source("app", "wren", ERRORS)
    m.load_script_from_source(
        "caller", "wren",
        'import "kryon" for Kryon\nclass C {\n  static go() {\n    return Kryon.call("app.M.add", [1])\n  }\n}\n')
    with pytest.raises(ScriptRuntimeError) as info:
        m.call_function("caller.C.go", [])
    error = info.value
    assert error.message == "M metaclass does not implement 'add(_)'."
    assert (error.script, error.line) == ("caller", 4)
    assert _frames(error) == [("caller", 4, "go()")]
    # called from the host directly, no Wren line is to blame
    with pytest.raises(ScriptRuntimeError) as info:
        m.call_function("app.M.add", [1])
    assert info.value.script != "core" and info.value.line is None


# ---- script forms ----------------------------------------------------------------------------


def test_shebang_line_through_the_engine(m):
    m.load_script_from_source("tool", "wren", '#!/usr/bin/env kryon\nvar answer = Fn.new { 42 }\n')
    assert m.call_function("tool.answer", []) == 42
    with pytest.raises(CompileError) as info:
        m.load_script_from_source("late", "wren", 'var a = 1\n#!/usr/bin/env kryon\n')
    assert info.value.line == 2


def test_relative_imports_from_a_module_in_a_sub_folder(tmp_path):
    (tmp_path / "lib" / "deep").mkdir(parents=True)
    (tmp_path / "main.wren").write_text('import "./lib/a" for A\nvar name = Fn.new { A.name }\n')
    (tmp_path / "lib" / "a.wren").write_text('import "./deep/b" for B\nclass A {\n  static name { "A+" + B.name }\n}\n')
    (tmp_path / "lib" / "deep" / "b.wren").write_text(
        'import "../c" for C\nclass B {\n  static name { "B+" + C.name }\n}\n')
    (tmp_path / "lib" / "c.wren").write_text('class C {\n  static name { "C" }\n}\n')
    with ScriptManager(policy=SecurityPolicy.trusted(), cache=False) as m:
        m.load_script_file(tmp_path / "main.wren", name="main")
        assert m.call_function("main.name", []) == "A+B+C"


def test_a_class_redefining_is_loads_and_converts(m):
    m.load_script_from_source(
        "liar", "wren",
        "class Liar {\n  construct new() {}\n  is(other) { true }\n  static is(other) { true }\n}\n"
        "var one = Liar.new()\nvar cls = Liar\nvar get = Fn.new { Liar.new() }\n")
    value = m.call_function("liar.get", [])  # an instance claiming to be a Fn stays a Wren object
    assert not callable(value)


# ---- limits carry a line ----------------------------------------------------------------------


def test_limit_errors_name_their_line(m):
    with pytest.raises(RecursionLimitError) as info:
        m.load_script_from_source("deep", "wren", "class R {\n  static f(n) { f(n + 1) }\n}\nR.f(0)\n",
                                  policy=SecurityPolicy(max_recursion=50))
    assert (info.value.script, info.value.line) == ("deep", 2)
    locals_source = "{\n" + "".join(f"var a{i} = {i}\n" for i in range(256)) + "}\n"
    with pytest.raises(CompileError, match="Too many local variables") as info:
        m.load_script_from_source("wide", "wren", locals_source)
    assert info.value.line == 257
    with pytest.raises(CompileError, match="nested too deeply") as info:
        m.load_script_from_source("nested", "wren", "var a = 1\nvar x = " + "(" * 500 + "1" + ")" * 500 + "\n")
    assert info.value.line == 2


def test_time_and_memory_limits_name_the_running_line(m):
    from kryon_core import MemoryLimitError, ScriptTimeoutError

    spin = "class Spin {\n  static forever() {\n    var i = 0\n    while (true) {\n      i = i + 1\n    }\n  }\n}\nSpin.forever()\n"
    with pytest.raises(ScriptTimeoutError) as info:
        m.load_script_from_source("spin", "wren", spin, policy=SecurityPolicy(time_limit=0.5))
    assert (info.value.script, info.value.line) == ("spin", 4)  # the loop that never ended
    assert info.value.stack == [] or info.value.stack[0].line == 4
    grow = 'var l = []\nvar s = "x" * 1000\nwhile (true) {\n  l.add(s + s)\n}\n'
    with pytest.raises(MemoryLimitError) as info:
        m.load_script_from_source("grow", "wren", grow, policy=SecurityPolicy(memory_limit=16 << 20))
    assert (info.value.script, info.value.line) == ("grow", 4)
    # the engine is usable afterwards
    m.load_script_from_source("after", "wren", "var ok = Fn.new { 1 + 1 }\n")
    assert m.call_function("after.ok", []) == 2
