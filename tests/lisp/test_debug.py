"""Breakpoints on .kl lines and script stacks, through the manager's engine."""

from __future__ import annotations

import pytest

from kryon_core import ScriptError

SOURCE = """\
(defn scale [value factor]
  (setv result (* value factor))
  result)

(defn total [items]
  (setv acc 0)
  (for [item items]
    (+= acc (scale item 2)))
  acc)
"""


def test_breakpoint_stops_on_the_kl_line_with_locals(manager, tmp_path):
    path = tmp_path / "maths.kl"
    path.write_text(SOURCE, encoding="utf-8")
    manager.load_script_file(path)
    engine = manager.engine("lisp")
    hits = []
    engine.set_breakpoint_handler(hits.append)
    bid = engine.set_breakpoint("maths.kl", 3)  # by file name; the script id works too
    assert manager.call_function("total", [[1, 2]]) == 6
    assert [h.line for h in hits] == [3, 3]
    hit = hits[0]
    assert (hit.breakpoint_id, hit.language, hit.script) == (bid, "lisp", "maths")
    assert hit.locals == {"value": 1, "factor": 2, "result": 2}
    assert [(f.function, f.line) for f in hit.stack] == [("scale", 3), ("total", 8)]
    assert hit.stack[1].locals["acc"] == 0
    engine.remove_breakpoint(bid)
    hits.clear()
    manager.call_function("total", [[1]])
    assert hits == []
    with pytest.raises(ScriptError):
        engine.remove_breakpoint(bid)


def test_breakpoint_at_top_level_and_in_callbacks(dom):
    m, doc = dom
    engine = m.engine("lisp")
    hits = []
    engine.set_breakpoint_handler(hits.append)
    engine.set_breakpoint("ui", 2)
    engine.set_breakpoint("ui", 4)
    m.load_script_from_source(
        "ui",
        "lisp",
        '(setv clicks 0)\n(setv label "clicks")\n'
        '(add-event-listener! (get-element-by-id "btn") "click"\n  (fn [e] (set-variable! label 1)))',
    )
    # line 4 runs once at load (making the fn) and again in the handler
    assert [(h.line, h.stack[0].function) for h in hits] == [(2, "<top level>"), (4, "<top level>")]
    assert hits[0].locals["clicks"] == 0
    doc.click("btn")
    assert [(h.line, h.stack[0].function) for h in hits][2:] == [(4, "fn")]
    assert hits[2].locals["e"]["type"] == "click"


def test_stack_trace_inside_host_callback(manager):
    engine = manager.engine("lisp")
    seen = []
    manager.load_script_from_source("s", "lisp", "(defn outer [f]\n  (inner f))\n(defn inner [f]\n  (f 1))")
    manager.call_function("outer", [lambda x: seen.append(engine.get_stack_trace())])
    assert [(f.function, f.line, f.script) for f in seen[0]] == [("inner", 4, "s"), ("outer", 2, "s")]
    assert engine.get_stack_trace() == []  # no script running now


def test_tracing_is_off_without_breakpoints(manager):
    engine = manager.engine("lisp")
    bid = engine.set_breakpoint("s", 1)
    engine.remove_breakpoint(bid)
    assert engine.tracing is False
