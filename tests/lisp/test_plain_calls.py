"""Sandboxed Lisp through a bound handle's hot path (kryon_core/isolation/host_calls.py):
the kebab-case name reaches the worker mangled, errors name the .kl line and column with the
language's names on the stack, and DOM writes are applied before the call returns."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from kryon_core import Document, ScriptManager, SecurityPolicy
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
def ui():
    m = ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=30), cache=False, output=lambda lang, text: None)
    doc = m.setup_dom_bridge(Document())
    doc.append_child(doc.root, doc.create_element("div", {"id": "box"}))
    m.load_script_from_source("s", "lisp", SCRIPT)
    yield m, doc
    m.close()


def test_a_kebab_case_function_through_the_hot_path(ui):
    m, _ = ui
    add_two = m.function("s.add-two")
    assert add_two(2, 3) == 5
    names: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            names.append(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        assert add_two(4, 5) == 9
    finally:
        sys.setprofile(None)
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
