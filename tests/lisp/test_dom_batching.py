"""Sandboxed Lisp's DOM writes go to the host in batches (kryon_core/isolation/dombatch.py): a
refused one still names its .kl line and column, and reads see the writes before them."""

from __future__ import annotations

import pytest

from kryon_core import DOMError

SCRIPT = """\
(defn go []
  (set-property! "box" "x" 1)
  (set-property! "nowhere" "x" 2)
  (set-property! "box" "x" 3)
  "done")

(defn frame [n]
  (for [i (range n)] (set-property! "box" "x" i))
  (add-class! "box" "seen")
  [(get-property "box" "x") (has-class? "box" "seen")])
"""


@pytest.fixture
def ui(sandboxed_ui):
    sandboxed_ui[0].load_script_from_source("s", "lisp", SCRIPT)
    return sandboxed_ui


def test_a_refused_batched_write_names_its_lisp_line(ui):
    m, doc = ui
    with pytest.raises(DOMError) as info:
        m.call_function("s.go")
    err = info.value
    assert (err.language, err.script, err.line, err.column) == ("lisp", "s", 3, 3)
    assert doc.get_property("box", "x") == 1, "the write before the refused one was applied, the one after it not"


def test_reads_see_the_batched_writes(ui):
    m, doc = ui
    assert m.call_function("s.frame", [600]) == [599, True]
    assert doc.get_property("box", "x") == 599
