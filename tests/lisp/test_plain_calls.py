"""Sandboxed Lisp through a bound handle's hot path (kryon_core/isolation/host_calls.py):
the kebab-case name reaches the worker mangled, errors name the .kl line and column with the
language's names on the stack, and DOM writes are applied before the call returns."""

from __future__ import annotations

import pytest
from worker_support import python_calls

from kryon_core.errors import ScriptRuntimeError

SCRIPT = """\
(defn add-two [a b]
  (+ a b))

(defn fail-with [x]
  (raise (ValueError (+ "bad " (str x)))))

(defn paint [n]
  (for [i (range n)] (set-property! "box" "x" i))
  n)
"""


@pytest.fixture
def ui(sandboxed_ui):
    sandboxed_ui[0].load_script_from_source("s", "lisp", SCRIPT)
    return sandboxed_ui


def test_a_kebab_case_function_through_the_hot_path(ui):
    m, _ = ui
    add_two = m.function("s.add-two")
    assert add_two(2, 3) == 5
    result, names = python_calls(lambda: add_two(4, 5))
    assert result == 9
    assert "call_plain" in names and "request" not in names
    assert m.call_function("s.add-two", [1, 1]) == 2


def test_errors_name_the_lisp_line_and_function(ui):
    m, _ = ui
    with pytest.raises(ScriptRuntimeError) as info:
        m.function("s.fail-with")(3)
    err = info.value
    assert (err.language, err.script, err.line) == ("lisp", "s", 5) and "bad 3" in str(err)
    assert any(f.function == "fail-with" for f in err.stack), err.stack


def test_dom_writes_are_applied_before_the_call_returns(ui):
    m, doc = ui
    assert m.function("s.paint")(30) == 30
    assert doc.get_property("box", "x") == 29
