"""The near-cap sweep helpers (kryon_core.testing.near_cap) that every
engine's near-cap tests use: the search finds the boundary, the grid steps
over it, outcomes are named, and a sweep that fails, hangs or does not report
fails the test."""

from __future__ import annotations

import subprocess
import textwrap

import pytest

from kryon_core import MemoryLimitError, ScriptRuntimeError, ScriptTimeoutError
from kryon_core.testing.near_cap import GRID, Grid, capped_host, most_that_fits, outcome, run_sweep, sweep


@pytest.mark.parametrize("boundary", [0, 1, 37, 999, 1000])
def test_the_search_finds_the_largest_count_that_fits(boundary: int) -> None:
    tried: list[int] = []

    def attempt(n: int) -> None:
        tried.append(n)
        if n > boundary:
            raise MemoryLimitError("full", script="s")

    assert most_that_fits(attempt, 1000) == boundary
    assert len(tried) <= 10, tried  # a binary search: log2(1000) steps
    assert most_that_fits(attempt, 2000, lower=boundary) == boundary


def test_the_search_lets_other_errors_out() -> None:
    def attempt(n: int) -> None:
        raise ScriptRuntimeError("not a memory error", script="s")

    with pytest.raises(ScriptRuntimeError):
        most_that_fits(attempt, 10)


def test_the_grid_steps_over_the_boundary() -> None:
    points = list(GRID.points(100))
    assert len(points) == 26 * 24
    assert points[0] == (76, 0) and points[1] == (76, 4) and points[-1] == (101, 92)
    assert list(Grid(below=1, above=1, pad_stop=8, pad_step=4).points(5)) == [(4, 0), (4, 4), (5, 0), (5, 4)]


def _raise(exc: Exception) -> None:
    raise exc


def test_outcomes_are_named() -> None:
    assert outcome(lambda: 1, "s") == "returned"
    assert outcome(lambda: _raise(MemoryLimitError("no room", script="s")), "s") == "full"
    host = MemoryLimitError("no room for a value the host hands over", script="s")
    assert outcome(lambda: _raise(host), "s", refused_when="host") == "refused"
    assert outcome(lambda: _raise(host), "s") == "full"
    assert outcome(lambda: _raise(ScriptTimeoutError("slow", script="s")), "s") == "ScriptTimeoutError"
    with pytest.raises(ZeroDivisionError):  # not a ScriptError: the sweep ends
        outcome(lambda: 1 / 0, "s")


def test_an_error_must_name_the_script_that_entered_the_host() -> None:
    other = ScriptRuntimeError("boom", script="h")
    with pytest.raises(AssertionError, match="names script 'h'"):
        outcome(lambda: _raise(other), "s")
    assert outcome(lambda: _raise(other), "s", raisers=("h",)) == "ScriptRuntimeError"
    with pytest.raises(AssertionError):  # a memory error is always the entering script's
        outcome(lambda: _raise(MemoryLimitError("no room", script="h")), "s", raisers=("h",))
    assert outcome(lambda: _raise(MemoryLimitError("no room")), None) == "full"


def test_a_sweep_stops_when_asked() -> None:
    def enter(n: int) -> None:
        if n >= 3:
            raise MemoryLimitError("full", script="s")

    assert sweep(range(10), enter, "s") == ["returned"] * 3 + ["full"] * 7
    assert sweep(range(10), enter, "s", stop=lambda seen: seen[-2:] == ["full"] * 2) == ["returned"] * 3 + ["full"] * 2


REPORTS = textwrap.dedent("""
    import sys
    from kryon_core.testing.near_cap import report
    print("noise")
    report(sys.argv[1:])
""")


def test_run_sweep_returns_what_the_program_reported() -> None:
    assert run_sweep(REPORTS, "full", "returned", timeout=120) == ["full", "returned"]


@pytest.mark.parametrize("program, why", [
    ("import sys; sys.exit(3)", "exited with 3"),
    ("raise SystemExit('a check failed')", "a check failed"),
    ("print('alive')", "did not report"),
    ("print('near-cap outcomes: {\"a\": 1}')", "reported"),
])
def test_run_sweep_fails_a_sweep_that_did_not_finish(program: str, why: str) -> None:
    with pytest.raises(AssertionError, match=why):
        run_sweep(program, timeout=120)


def test_run_sweep_fails_a_sweep_that_hangs() -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        run_sweep("import time; time.sleep(600)", timeout=1)


def test_the_host_of_a_sweep_caps_each_script() -> None:
    m, doc = capped_host(3 << 20, cache=False)
    try:
        assert m.policy.sandboxed and m.policy.memory_limit == 3 << 20 and m.policy.time_limit == 20
        assert doc.get_property("box", "title") == "\u00e9" * 300
    finally:
        m.close()
