"""DOM writes from isolated workers go to the host in batches (kryon_core/isolation/dombatch.py):
their order, reads after writes, the error of a batched write, a time limit or a kill during a
batch, and a worker that lies about its batch."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from worker_support import LIAR, box_manager

from kryon_core import Document, DOMError, ScriptError, ScriptManager, ScriptTimeoutError
from kryon_core.isolation import dombatch, process

pytest.importorskip("kryon_python")
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the worker sandbox uses Linux limits")


@pytest.fixture
def ui() -> Iterator[tuple[ScriptManager, Document]]:
    m, doc = box_manager(time_limit=30)
    yield m, doc
    m.close()


@pytest.fixture
def applied(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many writes each message the host received carried (one entry per message with writes)."""
    counts: list[int] = []
    original = process.WorkerProcess._apply_writes

    def counting(self: process.WorkerProcess, msg: dict[str, Any]) -> Any:
        counts.append(len(msg["w"]) if isinstance(msg.get("w"), list) else -1)
        return original(self, msg)

    monkeypatch.setattr(process.WorkerProcess, "_apply_writes", counting)
    return counts


def test_writes_arrive_in_order_and_in_few_messages(ui: tuple[ScriptManager, Document], applied: list[int]) -> None:
    m, doc = ui
    seen: list[tuple[str, Any]] = []
    doc.observe(lambda kind, d: seen.append((kind, d.get("value", d.get("classes", d.get("child"))))))
    m.load_script_from_source("s", "python", """\
import kryon
def frame(n):
    box = kryon.get_element_by_id("box")
    for i in range(n):
        kryon.set_property(box, "x", i)
    kryon.add_class(box, "a")
    kryon.set_style(box, "color", "red")
    kryon.remove_class(box, "a")
    return n
""")
    assert m.call_function("s.frame", [1100]) == 1100
    assert [v for k, v in seen if k == "property"] == list(range(1100))
    assert [k for k, _ in seen[-3:]] == ["class", "style", "class"] and seen[-1][1] == []
    # 1,103 writes in three messages: two full batches and the call's reply
    assert applied == [dombatch.MAX_PENDING, dombatch.MAX_PENDING, 1103 - 2 * dombatch.MAX_PENDING]


def test_a_read_sees_the_writes_before_it(ui: tuple[ScriptManager, Document], applied: list[int]) -> None:
    m, doc = ui
    seen_by_host: list[Any] = []

    def peek() -> int:
        seen_by_host.append(doc.get_property("box", "x"))
        return len(seen_by_host)

    m.load_script_from_source("other", "python", "import kryon\ndef x():\n    return kryon.get_property('box', 'x')\n")
    m.load_script_from_source("s", "python", """\
import kryon
def go(peek):
    box = kryon.get_element_by_id("box")
    kryon.set_property(box, "x", 1)
    a = kryon.get_property(box, "x")
    kryon.set_property(box, "x", 2)
    kryon.add_class(box, "on")
    b = kryon.has_class(box, "on")
    kryon.set_property(box, "x", 3)
    peek()
    kryon.set_property(box, "x", 4)
    c = kryon.call("other.x")
    kryon.set_property(box, "x", 5)
    return [a, b, c]
""")
    assert m.call_function("s.go", [peek]) == [1, True, 4]
    assert seen_by_host == [3], "a host function called by the script sees the writes made before the call"
    assert doc.get_property("box", "x") == 5, "the call's last write reached the document before the call returned"
    assert applied == [1, 2, 1, 1, 1]


def test_a_callback_run_by_the_host_sends_its_writes_with_its_reply(ui: tuple[ScriptManager, Document]) -> None:
    m, doc = ui
    doc.append_child(doc.root, doc.create_element("button", {"id": "go"}))
    m.load_script_from_source("s", "python", """\
import kryon
def on_click(event):
    kryon.set_property("box", "clicked", True)
    kryon.add_class("box", "busy")
kryon.add_event_listener(kryon.get_element_by_id("go"), "click", on_click)
kryon.set_property("box", "loaded", True)
""")
    assert doc.get_property("box", "loaded") is True, "the top level's writes were applied when the load returned"
    doc.click("go")
    assert doc.get_property("box", "clicked") is True and doc.has_class("box", "busy")
    assert not doc.errors, doc.errors


def test_a_refused_write_names_its_own_line_and_stops_the_batch(ui: tuple[ScriptManager, Document]) -> None:
    m, doc = ui
    m.load_script_from_source("s", "python", """\
import kryon
def helper(box):
    kryon.set_property(box, "x", 1)
    kryon.set_property("nowhere", "x", 2)
    kryon.set_property(box, "x", 3)
def go():
    helper(kryon.get_element_by_id("box"))
    return "finished"
def caught():
    kryon.set_property("nowhere", "y", 1)
    try:
        kryon.get_property("box", "x")
    except kryon.KryonError as exc:
        return "caught: " + str(exc)
""")
    with pytest.raises(DOMError) as info:
        m.call_function("s.go")
    err = info.value
    assert (err.script, err.line, err.language) == ("s", 4, "python"), "the write's line, not the call's end"
    assert [(f.function, f.line) for f in err.stack[:2]] == [("helper", 4), ("go", 7)]
    assert "nowhere" in err.message
    assert doc.get_property("box", "x") == 1, "the write before it was applied, the one after it was not"
    # the failing write rode on a read: the read raises it, and the script may catch it there
    assert m.call_function("s.caught").startswith("caught: ")
    assert doc.get_property("box", "y") is None


def test_a_refused_write_in_a_read_names_the_write_when_uncaught(ui: tuple[ScriptManager, Document]) -> None:
    m, _ = ui
    m.load_script_from_source("s", "python", """\
import kryon
def go():
    kryon.add_class("nowhere", "c")
    return kryon.get_property("box", "x")
""")
    with pytest.raises(DOMError) as info:
        m.call_function("s.go")
    assert (info.value.script, info.value.line) == ("s", 3)


def test_time_limit_during_a_batch() -> None:
    m, doc = box_manager(time_limit=0.5)
    m.load_script_from_source("s", "python", """\
import kryon
def go(n):
    for i in range(n):
        kryon.set_property("box", "x", i)
    while True:
        pass
def ok():
    kryon.set_property("box", "x", "ok")
    return 1
""")
    with pytest.raises(ScriptTimeoutError) as info:
        m.call_function("s.go", [700])
    assert info.value.script == "s"
    assert doc.get_property("box", "x") == 699, "writes made before the time ran out were applied, as unbatched ones"
    assert m.engine("python").runtime.worker_info("s")["restarts"] == 0
    assert m.call_function("s.ok") == 1 and doc.get_property("box", "x") == "ok"
    m.close()


def test_a_worker_killed_mid_batch_loses_only_its_pending_writes() -> None:
    m, doc = box_manager(time_limit=0.5)
    m.load_script_from_source("s", "python", """\
import kryon
def go(n):
    for i in range(n):
        kryon.set_property("box", "x", i)
    return sum(range(10**12))
def ok():
    kryon.set_property("box", "x", "ok")
    return 1
""")
    n = dombatch.MAX_PENDING + 100
    with pytest.raises(ScriptTimeoutError):  # C code the worker's timer cannot stop: the host kills it
        m.call_function("s.go", [n])
    assert doc.get_property("box", "x") == dombatch.MAX_PENDING - 1, "the full batch was applied, the rest died with the worker"
    assert m.engine("python").runtime.worker_info("s")["restarts"] == 1
    assert m.call_function("s.ok") == 1 and doc.get_property("box", "x") == "ok"
    m.close()


# -- a worker that lies about its writes ----------------------------------------------------------
@pytest.mark.parametrize(
    "message",
    [
        '{"t":"wb","i":99,"w":[["call",["x.y"],0]],"ws":[[]]}',  # a method that is not a batched write
        '{"t":"wb","i":99,"w":[["set_property",["box","x",1],1]],"ws":[[]]}',  # a stack index out of range
        '{"t":"wb","i":99,"w":[["set_property",["box","x",1]]],"ws":[[]]}',  # an entry of the wrong shape
        '{"t":"wb","i":99,"w":{"set_property":1},"ws":[]}',  # not a list
        '{"t":"wb","i":99,"w":[["set_property",["box","x",1],0]],"ws":[3]}',  # a stack that is not a list
        '{"t":"out","x":"hi","w":[["set_property",["box","x",1],0]],"ws":[[]]}',  # writes on a one-way message
        '{"t":"wb","i":99,"w":[' + ",".join(['["set_property",["box","x",1],0]'] * (dombatch.MAX_PENDING + 1))
        + '],"ws":[[]]}',  # more writes than a message may carry
    ],
)
def test_malformed_writes_end_the_worker(message: str) -> None:
    m, doc = box_manager(allow_imports=True)
    m.load_script_from_source("liar", "python", LIAR)
    with pytest.raises(ScriptError) as info:
        m.call_function("liar.lie", [message])
    assert "protocol" in str(info.value)
    assert doc.get_property("box", "x") is None, "nothing the lie asked for was applied"
    assert m.call_function("liar.ok") == "fine", "the worker was restarted with its script"
    m.close()


def test_parse_writes_is_strict() -> None:
    good = [["set_property", ["box", "x", 1], 0]]
    assert dombatch.parse_writes(good, [[]]) == [("set_property", ["box", "x", 1], 0)]
    for writes, stacks in [
        (good, []), (good, [[], [], []]), ([["set_property", "box", 0]], [[]]), ([["set_property", [], True]], [[]]),
        ([[1, [], 0]], [[]]), ([["get_property", [], 0]], [[]]), (None, [[]]), (good, None), (good, [{}]),
    ]:
        assert dombatch.parse_writes(writes, stacks) is None, (writes, stacks)


def test_while_a_batched_write_applies_the_host_sees_its_stack(ui: tuple[ScriptManager, Document]) -> None:
    m, doc = ui
    runtime = m.engine("python").runtime
    lines: list[list[tuple[str, int | None]]] = []
    doc.observe(lambda kind, d: lines.append([(f.function, f.line) for f in runtime.current_stack()]))
    m.load_script_from_source("s", "python", """\
import kryon
def paint(box, n):
    for i in range(n):
        kryon.set_property(box, "x", i)
    kryon.add_class(box, "done")
def go():
    paint(kryon.get_element_by_id("box"), 3)
""")
    m.call_function("s.go")
    assert lines == [[("paint", 4), ("go", 7)]] * 3 + [[("paint", 5), ("go", 7)]]
    assert runtime.current_stack() == []
