"""The debugger's core: breakpoints (conditions, hit counts), stepping within
and across languages, pausing a running loop, exceptions, inspection and
evaluation, driven the way the Debug Adapter Protocol server drives it (the
program on its own thread, questions from another). The engines here are the
``prog``/``prog2`` test doubles, whose target is the shared ``settrace`` one."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import pytest
from prog_engine import prog_manager

from kryon_core import ScriptError, SecurityPolicy
from kryon_core.debug import BreakpointSpec, DebugError, Stop
from kryon_core.testing.debugging import DebugSession

LIB = """\
def add(a, b):
    total = a + b
    items = [a, b, [total]]
    return total

def loop():
    n = 0
    while not done:
        n += 1

def across(x):
    y = x + 1
    r = kryon.call("other.twice", y)
    return r

def boom():
    value = 3
    raise ValueError("boom at line 18")
"""

OTHER = """\
def twice(v):
    doubled = v * 2
    return doubled
"""


class Session(DebugSession):
    """A program thread running calls, and the stops it reports."""

    def __init__(self) -> None:
        m = prog_manager(policy=SecurityPolicy.trusted())
        m.load_script_from_source("lib", "prog", LIB + "\ndone = False\n")
        m.load_script_from_source("other", "prog2", OTHER)
        super().__init__(m)

    def locals(self, stop: Stop) -> dict[str, Any]:
        scopes = self.dbg.scopes(self.top(stop).id)
        assert scopes[0].name == "Locals"
        return {v.name: v for v in self.dbg.variables(scopes[0].reference)}


@pytest.fixture
def s():
    session = Session()
    yield session
    session.dbg.resume_all()
    session.m.close()


def test_breakpoint_stack_locals_step_evaluate_expand(s):
    [bp] = s.dbg.set_breakpoints("lib", [BreakpointSpec(2)])
    assert bp.verified and bp.line == 2
    s.run("add", 2, 3)
    stop = s.stop()
    assert stop.reason == "breakpoint" and stop.breakpoints == (bp.id,)
    frame = s.top(stop)
    assert (frame.name, frame.script, frame.line, frame.language) == ("add", "lib", 2, "prog")
    assert {k: v.value for k, v in s.locals(stop).items()} == {"a": "2", "b": "3"}
    stop = s.step(stop, "next")
    assert stop.reason == "step" and s.top(stop).line == 3
    assert s.locals(stop)["total"].value == "5"
    assert s.dbg.evaluate("total * 10", s.top(stop).id).value == "50"
    stop = s.step(stop, "next")
    items = s.locals(stop)["items"]
    assert items.reference and items.count == 3
    children = s.dbg.variables(items.reference)
    assert [c.value for c in children][:2] == ["2", "3"]
    assert [c.value for c in s.dbg.variables(children[2].reference)] == ["5"]
    s.dbg.resume(stop.thread)
    assert s.result() == 5
    with pytest.raises(DebugError):
        s.dbg.variables(items.reference)  # references die when the thread goes on


def test_conditions_and_hit_counts(s):
    s.dbg.set_breakpoints("lib", [BreakpointSpec(2, condition="a > 100")])
    s.run("add", 1, 1)
    assert s.result() == 2 and s.stops.empty(), "a condition that never holds never stops"
    s.dbg.set_breakpoints("lib", [BreakpointSpec(2, condition="a == 7")])
    s.run("add", 7, 0)
    stop = s.stop()
    s.dbg.resume(stop.thread)
    assert s.result() == 7
    s.dbg.set_breakpoints("lib", [BreakpointSpec(2, hit_condition="% 3")])
    stopped_at = []
    for i in range(7):
        s.run("add", i, 0)
        while s.results.empty():  # either it stops, or it finishes
            try:
                stop = s.stops.get(timeout=0.01)
            except queue.Empty:
                continue
            stopped_at.append(i)
            s.dbg.resume(stop.thread)
        s.result()
    assert stopped_at == [2, 5], "every third hit"
    with pytest.raises(DebugError):
        s.dbg.set_breakpoints("lib", [BreakpointSpec(2, hit_condition="sometimes")])


def test_step_in_across_languages_and_out(s):
    stop = s.stop_at("lib", 13, "across", 4)
    assert s.top(stop).line == 13
    stop = s.step(stop, "stepIn")
    stack = s.stack(stop)
    assert [(f.language, f.name, f.line) for f in stack] == [("prog2", "twice", 2), ("prog", "across", 13)]
    assert s.locals(stop)["v"].value == "5"
    stop = s.step(stop, "stepOut")
    assert (s.top(stop).language, s.top(stop).line) == ("prog", 14)
    assert s.locals(stop)["r"].value == "10"
    s.dbg.resume(stop.thread)
    assert s.result() == 10


def test_pause_an_endless_loop(s):
    s.run("loop")
    time.sleep(0.2)
    s.dbg.pause()
    stop = s.stop()
    assert stop.reason == "pause"
    assert s.top(stop).name == "loop" and s.top(stop).line in (8, 9)
    n = int(s.locals(stop)["n"].value)
    stop = s.step(stop, "next")
    assert int(s.dbg.evaluate("n", s.top(stop).id).value) >= n
    s.m.engine("prog").namespaces["lib"]["done"] = True  # the loop ends on its next test
    s.dbg.resume(stop.thread)
    assert s.result() is None


def test_break_on_raised_and_uncaught(s):
    s.dbg.set_exception_breakpoints(raised=True)
    s.run("boom")
    stop = s.stop()
    assert stop.reason == "exception" and "boom" in stop.description
    assert s.top(stop).line == 18 and s.locals(stop)["value"].value == "3"
    s.dbg.resume(stop.thread)
    assert isinstance(s.result(), ScriptError)
    s.dbg.set_exception_breakpoints(uncaught=True)
    s.run("boom")
    stop = s.stop()
    assert stop.reason == "exception"
    frame = s.top(stop)
    assert (frame.name, frame.line) == ("boom", 18), "shown at the line that raised it"
    s.dbg.resume(stop.thread)
    assert isinstance(s.result(), ScriptError)


def test_stop_on_entry_and_breakpoints_set_before_load(tmp_path):
    m = prog_manager(policy=SecurityPolicy.trusted())
    dbg = m.debugger()
    stops: "queue.Queue[Stop]" = queue.Queue()
    dbg.on_stop = stops.put
    changed = []
    dbg.on_breakpoint_changed = changed.append
    path = tmp_path / "late.prog"
    path.write_text("x = 1\ny = 2\n\n\nz = 3\n")
    [bp] = dbg.set_breakpoints(str(path), [BreakpointSpec(3)])
    assert bp.verified and bp.line == 5 and bp.script is None, "resolved in the file before it loads"
    done = threading.Event()

    def load() -> None:
        dbg.stop_on_entry()
        m.load_script_file(path)
        done.set()

    threading.Thread(target=load, daemon=True).start()
    stop = stops.get(timeout=10)
    assert stop.reason == "entry" and dbg.stack(stop.thread)[0].line == 1
    dbg.resume(stop.thread)
    stop = stops.get(timeout=10)  # the breakpoint set on the file hits in its top level
    assert stop.reason == "breakpoint" and dbg.stack(stop.thread)[0].line == 5
    dbg.resume(stop.thread)
    assert done.wait(10)
    assert changed and changed[0].script == "late" and changed[0].line == 5, "blank lines move it to the next code"
    m.close()


def test_detached_debugger_costs_nothing(s):
    s.dbg.set_breakpoints("lib", [BreakpointSpec(2)])
    s.dbg.detach()
    s.run("add", 1, 2)
    assert s.result() == 3 and s.stops.empty()
    import sys

    assert sys.gettrace() is None
