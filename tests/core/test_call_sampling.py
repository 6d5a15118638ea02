"""Which calls through ``call_function`` are timed: exactly the ones
``profiling.is_timed`` names (the first SAMPLE_EVERY, one in SAMPLE_EVERY
after them, the call that makes a function hot), although the manager tests
a single bound per call (``CallStats.next_timed``). A reset or a new hot
threshold sets the bound back, so the calls they make timed are timed."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any

import pytest
from prog_engine import ProgPlugin

from kryon_core import ScriptManager, SecurityPolicy
from kryon_core.profiling import SAMPLE_EVERY, is_timed, next_timed


@pytest.fixture
def m() -> Iterator[ScriptManager]:
    manager = ScriptManager(discover=False, plugins=[ProgPlugin()], cache=False, policy=SecurityPolicy.trusted(),
                            hot_threshold=3 * SAMPLE_EVERY + 7)
    manager.load_script_from_source("lib", "prog", "def f(x): return x")
    yield manager
    manager.close()


def _timed_numbers(m: ScriptManager, calls: int) -> list[int]:
    """Which of the next ``calls`` calls of lib.f were timed (by their numbers)."""
    stats = m.profiler.functions["lib.f"]
    timed = []
    for _ in range(calls):
        before = stats.timed
        m.call_function("lib.f", [1])
        if stats.timed > before:
            timed.append(stats.calls)
    return timed


@pytest.mark.parametrize("hot", [5, SAMPLE_EVERY, SAMPLE_EVERY + 1, 2 * SAMPLE_EVERY + 3, 10_000])
def test_next_timed_is_the_first_timed_call_after_n(hot: int) -> None:
    for n in range(0, 8 * SAMPLE_EVERY):
        following = next_timed(n, hot)
        assert following > n and is_timed(following, hot)
        assert not any(is_timed(k, hot) for k in range(n + 1, following))


def test_the_timed_calls_are_the_sample_and_the_one_that_makes_the_function_hot(m: ScriptManager) -> None:
    hot = m.profiler.hot_threshold
    assert _timed_numbers(m, 6 * SAMPLE_EVERY) == [n for n in range(1, 6 * SAMPLE_EVERY + 1) if is_timed(n, hot)]
    stats = m.profiler.functions["lib.f"]
    assert stats.hot and stats.calls == 6 * SAMPLE_EVERY and stats.steady == stats.timed - SAMPLE_EVERY


def test_a_reset_times_the_first_calls_again(m: ScriptManager) -> None:
    _timed_numbers(m, 3 * SAMPLE_EVERY + 2)
    m.profiler.reset()
    assert _timed_numbers(m, SAMPLE_EVERY + 2) == list(range(1, SAMPLE_EVERY + 2))


def test_a_new_hot_threshold_times_the_call_that_reaches_it(m: ScriptManager) -> None:
    _timed_numbers(m, SAMPLE_EVERY + 3)  # the bound is now SAMPLE_EVERY + 17
    m.profiler.hot_threshold = SAMPLE_EVERY + 6
    assert _timed_numbers(m, 5) == [SAMPLE_EVERY + 6]
    assert m.profiler.functions["lib.f"].hot


def _line_tracer(frame: FrameType, event: str, arg: Any) -> Any:
    """Gives the other threads their turn before every line (test_call_counts.py's worst case)."""
    if event == "line":
        time.sleep(0)
    return _line_tracer


@pytest.mark.parametrize("traced", [False, True], ids=["plain", "line-traced"])
def test_calls_from_several_threads_time_exactly_the_sample(m: ScriptManager, traced: bool) -> None:
    threads, calls = 4, 200
    start = threading.Barrier(threads)
    before = sys.getswitchinterval()

    def work() -> None:
        if traced:
            sys.settrace(_line_tracer)
        try:
            start.wait()
            for i in range(calls):
                m.call_function("lib.f", [i])
        finally:
            sys.settrace(None)

    sys.setswitchinterval(1e-6)
    try:
        pool = [threading.Thread(target=work) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(60)
    finally:
        sys.setswitchinterval(before)
    stats = m.profiler.functions["lib.f"]
    total = threads * calls
    assert stats.calls == total
    # every call number the sample names was timed by the thread that drew it, and no other
    assert stats.timed == sum(1 for n in range(1, total + 1) if is_timed(n, m.profiler.hot_threshold))
