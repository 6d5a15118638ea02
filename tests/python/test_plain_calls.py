"""The host's hot path into a sandboxed worker (kryon_core/isolation/host_calls.py):
a plain call (worker idle, no debugger, no releases pending, scalar
arguments, gate free) skips the engine, the runtime and the generic request;
every other call takes the full path, and the hot path keeps what that path
does (time limits, restarts, errors naming the line, DOM batches, releases)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from worker_support import SCALARS, box_manager, python_calls

from kryon_core import Document, ScriptManager
from kryon_core.errors import ScriptNotFoundError, ScriptRuntimeError, ScriptTimeoutError
from kryon_core.isolation import protocol
from kryon_core.testing.concurrency import run_threads

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the worker sandbox uses Linux limits")

SOURCE = """\
import kryon
def add(a, b):
    return a + b
def fail(x):
    raise ValueError(f"bad {x}")
def frame(n):
    box = kryon.get_element_by_id("box")
    for i in range(n):
        kryon.set_property(box, "x", i)
    return n
def adder(n):
    return lambda x: x + n
def outer(x):
    return host_add(x) + 1
def attack():
    return sum(range(10**12))
"""


def _manager(time_limit: float | None = 5.0) -> tuple[ScriptManager, Document]:
    m, doc = box_manager(time_limit=time_limit)
    m.load_script_from_source("b", "python", SOURCE)
    return m, doc


@pytest.fixture
def md() -> Iterator[tuple[ScriptManager, Document]]:
    m, doc = _manager()
    yield m, doc
    m.close()


@pytest.mark.parametrize("time_limit", [None, 5.0])
def test_a_plain_call_skips_the_engine_and_the_generic_request(time_limit: float | None) -> None:
    m, _ = _manager(time_limit)
    try:
        bound = m.function("b.add")
        assert bound(2, 3) == 5
        result, names = python_calls(lambda: bound(2, 3))
        assert result == 5
        assert "call_plain" in names
        assert not {"request", "_call", "_send", "run", "_live", "encode_args"} & set(names), names
        # after the test's lambda: the handle's caller, call_plain, kill_after (with a limit), call_frame,
        # loads (and _wait, _receive for a reply split over reads)
        assert len(names[1:]) <= 7, names
        assert set(names[1:]) <= {"call", "call_plain", "kill_after", "call_frame", "loads", "_wait",
                                  "_receive", "_fill", "_read"}, names
        result, names = python_calls(lambda: m.call_function("b.add", [1.5, True]))
        assert result == 2.5 and "call_plain" in names and "request" not in names
        assert m.call_function("b.add", ["a", "b"]) == "ab"
    finally:
        m.close()


def test_values_that_need_encoding_take_the_full_path(md: tuple[ScriptManager, Document]) -> None:
    m, _ = md
    result, names = python_calls(lambda: m.call_function("b.add", [[1], [2]]))
    assert result == [1, 2] and "request" in names and "call_plain" not in names
    add5 = m.call_function("b.adder", [5])
    assert add5(1) == 6


def test_a_call_back_into_the_same_worker_during_a_call(md: tuple[ScriptManager, Document]) -> None:
    """Inside a call (the worker waits on a host function) the worker is busy:
    the nested call is the generic request, one level deeper."""
    m, _ = md
    add = m.function("b.add")
    inner: list[list[str]] = []

    def host_add(x: int) -> int:
        r, names = python_calls(lambda: add(x, 10))
        inner.append(names)
        return int(r)

    m.set_global("python", "host_add", host_add)
    assert m.function("b.outer")(1) == 12
    assert "request" in inner[0] and "call_plain" not in inner[0]
    assert add(1, 1) == 2  # and the next outer call is plain again
    _, names = python_calls(lambda: add(1, 1))
    assert "call_plain" in names


def test_pending_releases_go_with_the_next_call(md: tuple[ScriptManager, Document]) -> None:
    m, _ = md
    add = m.function("b.add")
    proc = m.engine("python").runtime._scripts["b"].proc
    handle = m.call_function("b.adder", [1])
    handle.release()
    assert proc.pending_release, "the released handle waits for the next message"
    result, names = python_calls(lambda: add(1, 2))
    assert result == 3 and "_send" in names and not proc.pending_release


def test_an_attached_debugger_sees_every_outgoing_call(md: tuple[ScriptManager, Document]) -> None:
    m, _ = md
    runtime = m.engine("python").runtime
    add = m.function("b.add")
    seen: list[str] = []

    class Debug:
        def outgoing(self, proc: Any, msg: dict[str, Any]) -> None:
            seen.append(msg["t"])

    runtime.debug = Debug()
    try:
        assert add(2, 2) == 4 and m.call_function("b.add", [1, 1]) == 2
    finally:
        runtime.debug = None
    assert seen == ["call", "call"]


def test_errors_name_the_script_and_line(md: tuple[ScriptManager, Document]) -> None:
    m, _ = md
    with pytest.raises(ScriptRuntimeError) as info:
        m.function("b.fail")(7)
    assert info.value.script == "b" and info.value.line == 5 and "bad 7" in str(info.value)
    assert m.function("b.add")(1, 2) == 3


def test_dom_writes_are_applied_before_the_call_returns(md: tuple[ScriptManager, Document]) -> None:
    m, doc = md
    frame = m.function("b.frame")
    assert frame(40) == 40
    assert doc.get_property("box", "x") == 39


def test_a_held_gate_makes_the_call_wait_for_it(md: tuple[ScriptManager, Document]) -> None:
    m, _ = md
    script = m.engine("python").runtime._scripts["b"]
    add = m.function("b.add")
    entered, leave = threading.Event(), threading.Event()

    def hold() -> None:
        entered.set()
        leave.wait(10)

    holder = threading.Thread(target=lambda: script.gate.run(hold))
    holder.start()
    assert entered.wait(10)
    threading.Timer(0.2, leave.set).start()
    assert add(3, 4) == 7
    assert leave.is_set(), "the call ran while another thread held the script's gate"
    holder.join(10)


def test_threads_sharing_a_handle_each_get_their_own_results(md: tuple[ScriptManager, Document]) -> None:
    """One thread's plain call holds the gate; the others wait on it (the full
    path) and run after it: every reply goes to the call that asked."""
    m, _ = md
    add = m.function("b.add")
    wrong: list[tuple[int, int, Any]] = []

    def run(t: int) -> None:
        for i in range(150):
            r = add(t, i)
            if r != t + i:
                wrong.append((t, i, r))

    run_threads([partial(run, t * 1000) for t in range(4)], timeout=60)
    assert not wrong


def test_a_time_limit_kills_and_the_next_call_runs_on_the_standby() -> None:
    m, _ = _manager(time_limit=1.0)
    try:
        runtime = m.engine("python").runtime
        first = runtime.worker_info("b")
        with pytest.raises(ScriptTimeoutError) as info:
            m.function("b.attack")()
        assert info.value.script == "b"
        after = runtime.worker_info("b")
        assert after["restarts"] == 1 and after["from_standby"] and after["pid"] != first["pid"]
        _, names = python_calls(lambda: m.function("b.add")(2, 2))
        assert "call_plain" in names
        assert m.call_function("b.add", [2, 2]) == 4
    finally:
        m.close()


def test_a_worker_killed_between_calls_is_restarted(md: tuple[ScriptManager, Document]) -> None:
    m, _ = md
    runtime = m.engine("python").runtime
    add = m.function("b.add")
    assert add(1, 1) == 2
    runtime._scripts["b"].proc.kill("runtime", "killed by the test")
    assert add(2, 2) == 4
    assert runtime.worker_info("b")["restarts"] == 1


def test_an_unloaded_script_fails_as_the_engine_says(md: tuple[ScriptManager, Document]) -> None:
    m, _ = md
    engine = m.engine("python")
    add = engine.get_function("add", script="b")
    assert add(1, 1) == 2
    engine.unload_script("b")
    with pytest.raises(ScriptNotFoundError):
        add(1, 1)


@given(script=st.text(min_size=1), function=st.text(min_size=1), args=st.lists(SCALARS, max_size=6),
       rid=st.integers(min_value=1, max_value=2**53))
def test_a_call_frame_is_the_frame_dumps_makes(script: str, function: str, args: list[Any], rid: int) -> None:
    expected = protocol.dumps({"t": "call", "script": script, "fn": function, "a": args, "i": rid})
    assert protocol.call_frame(protocol.call_prefix(script, function), args, rid) == expected
