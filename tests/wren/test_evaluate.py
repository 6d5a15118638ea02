"""ScriptEngine.evaluate for Wren: code run inside a loaded script's module
(what ``kryon eval`` and ``kryon repl`` use)."""

from __future__ import annotations

import pytest

from kryon_core import (
    CompileError,
    ScriptManager,
    ScriptRuntimeError,
    ScriptTimeoutError,
    SecurityPolicy,
)


@pytest.fixture
def m():
    with ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=1.0), cache=False,
                       output=lambda lang, text: None) as manager:
        manager.load_script_from_source("lib", "wren", "var base = 40\nclass Tool {\n  static twice(x) { x * 2 }\n}\n")
        yield manager


def test_expressions_see_the_scripts_names_and_return_values(m):
    assert m.evaluate("wren", "base + 2", script="lib") == 42
    assert m.evaluate("wren", "Tool.twice(base)", script="lib") == 80
    assert m.evaluate("wren", "[base,\n  \"x\"]", script="lib") == [40, "x"]
    assert m.evaluate("wren", '{"a": base}', script="lib") == {"a": 40}
    assert m.evaluate("wren", "null", script="lib") is None


def test_statements_define_names_that_stay(m):
    assert m.evaluate("wren", "var more = base + 1", script="lib") is None
    assert m.evaluate("wren", "more", script="lib") == 41
    assert m.evaluate("wren", "base = 1", script="lib") == 1
    assert m.evaluate("wren", "base", script="lib") == 1


def test_functions_the_code_defines_become_callable(m):
    m.evaluate("wren", "var triple = Fn.new { |x| x * 3 }", script="lib")
    assert m.call_function("lib.triple", [5]) == 15
    m.evaluate("wren", "class Extra {\n  static hello(name) { \"hi \" + name }\n}", script="lib")
    assert m.call_function("lib.Extra.hello", ["wren"]) == "hi wren"
    assert m.call_function("lib.Tool.twice", [4]) == 8, "the script's own functions still work"


def test_errors_name_the_script_and_the_line_within_the_code(m):
    with pytest.raises(CompileError) as info:
        m.evaluate("wren", "var ok = 1\nvar broken = Fn.new {\n  return = 2\n}", script="lib")
    assert info.value.script == "lib" and info.value.line == 3 and info.value.language == "wren"
    with pytest.raises(ScriptRuntimeError) as info:
        m.evaluate("wren", "var a = 1\nFiber.abort(\"nope\")", script="lib")
    assert info.value.script == "lib" and info.value.line == 2 and "nope" in info.value.message
    assert m.evaluate("wren", "base + 2", script="lib") == 42, "a failed evaluation keeps the script working"


def test_evaluation_runs_under_the_scripts_time_limit(m):
    m.evaluate("wren", "var count = 5", script="lib")
    with pytest.raises(ScriptTimeoutError):
        m.evaluate("wren", "while (true) {}", script="lib")
    assert m.evaluate("wren", "base + 2", script="lib") == 42, "the script restarted from its source"


def test_the_console_script_keeps_state(m):
    m.evaluate("wren", "var x = 40")
    assert m.evaluate("wren", "x + 2") == 42
    with pytest.raises(ScriptRuntimeError):
        m.evaluate("wren", "x.nope")
    assert m.evaluate("wren", "x") == 40
