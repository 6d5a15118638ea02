"""A sandboxed script's time limit while the worker traces it.

When a trace function raises, CPython turns tracing off itself through an
audited ``sys.settrace``, which the worker's audit hook refuses: a timeout
that landed in the debugger's or the breakpoints' trace function reached the
host as ``AccessDeniedError("'sys.settrace' is not allowed ...")`` instead of
a ``ScriptTimeoutError``. Every line of a traced loop runs a trace function,
so most timeouts landed there. Each case below runs several calls in a row:
on the old code the breakpoint cases failed every time.
"""

from __future__ import annotations

import time

import pytest

from kryon_core import ScriptManager, ScriptTimeoutError, SecurityPolicy
from kryon_core.debug import BreakpointSpec
from kryon_core.testing.debugging import DebugSession

SPIN_PY = """\
def spin():
    i = 0
    while True:
        i = i + 1
    return i

def answer():
    return 42
"""

SPIN_LISP = """\
(defn spin []
  (setv i 0)
  (while True
    (setv i (+ i 1)))
  i)

(defn answer [] 42)
"""

CALLS = 6


def manager() -> ScriptManager:
    return ScriptManager(cache=False, policy=SecurityPolicy.sandboxed(time_limit=0.3))


@pytest.mark.parametrize(("language", "source", "line"), [("python", SPIN_PY, 5), ("lisp", SPIN_LISP, 5)], ids=["python", "lisp"])
def test_breakpoints_in_the_looping_function_without_a_debugger(language: str, source: str, line: int) -> None:
    m = manager()
    try:
        m.load_script_from_source("prog", language, source)
        engine = m.engine(language)
        hits: list[object] = []
        engine.set_breakpoint_handler(hits.append)
        engine.set_breakpoint("prog", line)  # after the loop: never hit, but every line of spin is traced
        for _ in range(CALLS):
            with pytest.raises(ScriptTimeoutError):
                m.call_function("prog.spin")
        assert m.call_function("prog.answer") == 42 and hits == []
    finally:
        m.close()


def test_a_debuggers_breakpoint_in_the_looping_function() -> None:
    s = DebugSession(manager())
    try:
        s.m.load_script_from_source("prog", "python", SPIN_PY)
        s.dbg.set_breakpoints("prog", [BreakpointSpec(5)])  # never reached: the debugger's tracer sees each line
        for _ in range(CALLS):
            with pytest.raises(ScriptTimeoutError):
                s.m.call_function("prog.spin", [])
        assert s.m.call_function("prog.answer", []) == 42
        assert s.stops.empty()
    finally:
        s.close()


def test_paused_stepped_and_detached_loops_end_by_their_time_limit() -> None:
    for _ in range(3):
        s = DebugSession(ScriptManager(cache=False, policy=SecurityPolicy.sandboxed(time_limit=1.5)))
        try:
            s.m.load_script_from_source("prog", "python", SPIN_PY)
            s.run("prog.spin")
            time.sleep(0.2)
            s.dbg.pause()
            stop = s.stop()
            stop = s.step(stop, "next")  # every line reported for a step: the tracer is on each line
            s.dbg.detach()  # the loop's frame keeps its line tracer, which now does nothing
            assert isinstance(s.result(), ScriptTimeoutError)
        finally:
            s.close()


BAD_TEXT_PY = """\
class Odd(Exception):
    def __str__(self):
        raise ValueError("no text for you")

def caught():
    try:
        raise Odd()
    except Odd:
        pass
    return 7
"""


def test_an_exception_whose_text_fails_does_not_break_a_traced_call() -> None:
    """The debugger's trace function reports an exception with its text, which runs the script's own
    ``__str__``: when that raised, the trace function raised, and CPython's audited turning-off of
    tracing made the call an ``AccessDeniedError``. A trace function never raises now: the script goes
    on as without a debugger."""
    s = DebugSession(ScriptManager(cache=False, policy=SecurityPolicy.sandboxed(time_limit=5)))
    try:
        s.m.load_script_from_source("prog", "python", BAD_TEXT_PY)
        s.dbg.set_breakpoints("prog", [BreakpointSpec(10)])  # the frame is traced: line 10 is after the raise
        s.run("prog.caught")
        stop = s.stop()  # line 10: the exception before it was reported, or skipped, without breaking the call
        assert stop.reason == "breakpoint" and s.top(stop).line == 10
        s.dbg.resume(stop.thread, "continue")
        assert s.result() == 7
    finally:
        s.close()


BAD_LOCAL_PY = """\
class Odd:
    def __repr__(self):
        raise ValueError("no text for you")

def holds():
    o = Odd()
    x = 1
    return 7
"""


def test_a_local_whose_text_fails_does_not_break_a_breakpoint() -> None:
    """Without a debugger: a breakpoint's hit sends the frame's locals, one of them not encodable and
    with a ``__repr__`` that raises; the hit still reaches the handler and the call returns."""
    m = ScriptManager(cache=False, policy=SecurityPolicy.sandboxed(time_limit=5))
    try:
        m.load_script_from_source("prog", "python", BAD_LOCAL_PY)
        engine = m.engine("python")
        hits: list[object] = []
        engine.set_breakpoint_handler(hits.append)
        engine.set_breakpoint("prog", 7)
        assert m.call_function("prog.holds") == 7
        assert len(hits) == 1
    finally:
        m.close()
