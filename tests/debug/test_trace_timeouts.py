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
            s.dbg.resume(stop.thread, "next")  # every line reported for a step: the tracer is on each line
            stop = s.stop()
            s.dbg.detach()  # the loop's frame keeps its line tracer, which now does nothing
            assert isinstance(s.result(), ScriptTimeoutError)
        finally:
            s.close()
