"""Call counts stay exact when threads call the same function at once.

``kryon.call`` bumps the route's count (``interop.call_stats``) and the
profiler's record of the callee, ``call_function`` the profiler's record of
what it calls; none of them takes a lock. Each bump is one statement with no
call in it, which under the GIL no other thread interrupts, even with a line
tracer (a debugger, a coverage tool) running between the statements: written
over two statements (read, then store), these counts lost calls here as
soon as the tracer let the threads take turns between lines.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import pytest
from prog_engine import prog_manager

from kryon_core import ScriptError, ScriptManager, SecurityPolicy
from kryon_core.profiling import SAMPLE_EVERY
from kryon_core.testing.concurrency import run_threads

THREADS = 4
CALLS = 300


@pytest.fixture
def m() -> Iterator[ScriptManager]:
    manager = prog_manager(policy=SecurityPolicy.trusted())
    manager.load_script_from_source("lib", "prog", "def f(x): return x\ndef bad(x): raise ValueError(x)")
    manager.load_script_from_source("app", "prog", "")
    yield manager
    manager.close()


@pytest.fixture
def switching() -> Iterator[None]:
    """Threads switch as often as the interpreter lets them."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def line_tracer(frame: FrameType, event: str, arg: Any) -> Any:
    """Runs Python before every line of every frame, as a debugger or a
    coverage tool does, and gives the other threads their turn there (the
    worst a tracer can do: the threads interleave line by line)."""
    if event == "line":
        time.sleep(0)
    return line_tracer


def in_threads(work: Callable[[], None], traced: bool) -> None:
    start = threading.Barrier(THREADS)

    def run() -> None:
        start.wait()
        if traced:
            sys.settrace(line_tracer)
        try:
            work()
        finally:
            sys.settrace(None)

    run_threads([run] * THREADS)


def script_calls(m: ScriptManager, target: str) -> Callable[[], None]:
    """What one script's ``kryon.call`` does from several threads at once (an
    engine's own gate would take them one at a time): the script's cached
    routes are shared, so are the counters they bump."""
    policy, routes = m.scripts["app"].policy, {}

    def work() -> None:
        for i in range(CALLS):
            try:
                m.interop.call_routed("prog", target, (i,), "app", policy, routes)
            except ScriptError:  # lib.bad: counted as failed
                pass

    return work


@pytest.mark.parametrize("traced", [False, True], ids=["plain", "line-traced"])
def test_counts_of_one_target_called_from_several_threads_add_up(m, switching, traced):
    in_threads(script_calls(m, "lib.f"), traced)
    total = THREADS * CALLS
    cross = m.interop.call_stats["lib.f"]
    assert cross.by_caller == {"prog": total}
    assert (cross.successful_calls, cross.failed_calls) == (total, 0)
    assert m.profiler.functions["lib.f"].calls == total
    # the sampled timings add up too: every call up to SAMPLE_EVERY, then one in SAMPLE_EVERY
    assert SAMPLE_EVERY + (total - SAMPLE_EVERY) // SAMPLE_EVERY <= cross.timed < total


@pytest.mark.parametrize("traced", [False, True], ids=["plain", "line-traced"])
def test_failed_calls_from_several_threads_add_up(m, switching, traced):
    in_threads(script_calls(m, "lib.bad"), traced)
    total = THREADS * CALLS
    cross = m.interop.call_stats["lib.bad"]
    assert (cross.by_caller, cross.failed_calls, cross.successful_calls) == ({"prog": total}, total, 0)
    assert (m.profiler.functions["lib.bad"].calls, m.profiler.functions["lib.bad"].errors) == (total, total)


@pytest.mark.parametrize("traced", [False, True], ids=["plain", "line-traced"])
def test_call_function_from_several_threads_counts_every_call(m, switching, traced):
    def work() -> None:
        for i in range(CALLS):
            m.call_function("lib.f", [i])

    in_threads(work, traced)
    assert m.profiler.functions["lib.f"].calls == THREADS * CALLS
