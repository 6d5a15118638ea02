"""Near-cap sweeps: a script fills its memory to just under its cap and then
enters the host, over a grid of steps that crosses the cap, and every entry
must end in a result or a clean ``ScriptError``, never a hang or a crash.

A sweep runs in a subprocess of its own (a hang then fails the test through
the subprocess's timeout, a crash through its exit status), so it has two
halves. The sweep program, run by :func:`run_sweep`, builds its manager
(:func:`capped_host`),
finds where the cap is (:func:`most_that_fits`), steps towards it
(:class:`Grid`, :func:`sweep`, or :func:`sweep_host_entries` for both at
once), checks the host and the other scripts still work, and ends with
:func:`report`. The test reads the outcomes :func:`run_sweep` returns::

    outcomes = run_sweep(SWEEP, "log", timeout=240)
    assert "full" in outcomes      # the sweep crossed the cap

An outcome is ``"returned"``, ``"full"`` (a ``MemoryLimitError``),
``"refused"`` (a ``MemoryLimitError`` saying the host's value found no room,
where the sweep asks to tell the two apart) or the class name of any other
``ScriptError``. Anything else the host raises ends the sweep program, and
the test fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from ..dom import Document
from ..errors import MemoryLimitError, ScriptError
from ..manager import ScriptManager
from ..policy import SecurityPolicy

__all__ = ["GRID", "Grid", "capped_host", "most_that_fits", "outcome", "report", "run_sweep", "sweep",
           "sweep_host_entries"]

P = TypeVar("P")

#: the line :func:`report` prints last, before the outcomes as JSON
MARKER = "near-cap outcomes: "


def capped_host(cap: int, **options: Any) -> tuple[ScriptManager, Document]:
    """The host of a sweep: a manager (``options`` passed on) whose sandboxed
    policy caps a script's memory at ``cap`` bytes with a time limit of 20 s,
    output dropped, and a document holding ``div#box`` whose title is 300
    "é" (a string result that must be made in the script, and is not ASCII)."""
    options.setdefault("output", lambda lang, text: None)
    m = ScriptManager(policy=SecurityPolicy.sandboxed(memory_limit=cap, time_limit=20), **options)
    doc = m.setup_dom_bridge(Document())
    doc.append_child(doc.root, doc.create_element("div", {"id": "box", "title": "\u00e9" * 300}))
    return m, doc


def most_that_fits(attempt: Callable[[int], object], upper: int, lower: int = 0) -> int:
    """The largest ``n`` in ``[lower, upper]`` for which ``attempt(n)`` raises
    no ``MemoryLimitError``, by binary search: ``attempt`` must succeed for
    ``lower`` and, past the largest ``n`` that fits, fail for every larger one."""
    lo, hi = lower, upper
    while lo < hi:
        mid = (lo + hi + 1) // 2
        try:
            attempt(mid)
            lo = mid
        except MemoryLimitError:
            hi = mid - 1
    return lo


@dataclass(frozen=True)
class Grid:
    """The steps of a sweep around ``most``, the largest count that fits:
    counts from ``most - below`` to ``most + above - 1``, and for each, pads
    from 0 below ``pad_stop`` in steps of ``pad_step`` bytes. A count is a
    number of small objects (tens of bytes each), a pad a string's length,
    so the steps cross the cap a few bytes at a time."""

    below: int = 24
    above: int = 2
    pad_stop: int = 96
    pad_step: int = 4

    def points(self, most: int) -> Iterator[tuple[int, int]]:
        """``(count, pad)`` pairs, the count in the outer loop."""
        for count in range(most - self.below, most + self.above):
            for pad in range(0, self.pad_stop, self.pad_step):
                yield count, pad


#: the grid the engines' near-cap tests step over
GRID = Grid()


def outcome(enter: Callable[[], object], script: str | None, refused_when: str | None = None,
            raisers: Collection[str] = ()) -> str:
    """What ``enter()`` ended in (see the module docstring). An error must
    name ``script``, the one that entered the host (``None``: not checked),
    or for a ``ScriptError`` other than a memory one, one of ``raisers``
    (scripts the entry calls whose own errors pass through); a
    ``MemoryLimitError`` whose message contains ``refused_when`` is
    ``"refused"`` rather than ``"full"``."""
    try:
        enter()
    except MemoryLimitError as exc:
        _names(exc, script, ())
        return "refused" if refused_when is not None and refused_when in str(exc) else "full"
    except ScriptError as exc:
        _names(exc, script, raisers)
        return type(exc).__name__
    return "returned"


def _names(exc: ScriptError, script: str | None, raisers: Collection[str]) -> None:
    if script is not None and exc.script != script and exc.script not in raisers:
        raise AssertionError(f"the error names script {exc.script!r}, not {script!r}: {exc!r}")


def sweep(points: Iterable[P], enter: Callable[[P], object], script: str | None, *, refused_when: str | None = None,
          raisers: Collection[str] = (), stop: Callable[[list[str]], bool] | None = None) -> list[str]:
    """``enter(point)`` for each point, in order: the outcome of each (see
    :func:`outcome`), until ``stop(outcomes so far)`` holds."""
    outcomes: list[str] = []
    for point in points:
        outcomes.append(outcome(partial(enter, point), script, refused_when, raisers))
        if stop is not None and stop(outcomes):
            break
    return outcomes


def sweep_host_entries(manager: ScriptManager, attack: str, how: str, script: str, *, upper: int,
                       grid: Grid = GRID, after: Callable[[], object] | None = None,
                       raisers: Collection[str] = (), release: str | None = None) -> list[str]:
    """The sweep of an engine's host entries. ``attack(count, pad, how)`` is
    a script function that fills the script's memory with ``count`` small
    objects and a string ``pad`` long, keeps them alive, then enters the host
    the way ``how`` names; ``how == "fill"`` only fills. The largest count
    that fits (up to ``upper``) is found with pad 0, then every point of
    ``grid`` around it is entered, ``after()`` (a listener to fire, a job to
    run) following each, and last the script lets go of what it holds.
    ``release`` names a function of the script without parameters that lets
    go of it first: a listener or a job that failed for memory leaves the
    script's own state holding its heap, and a call with a string argument
    cannot enter then (the string needs memory), while one without can.
    ``script`` and ``raisers`` are as for :func:`outcome`."""
    most = most_that_fits(lambda count: manager.call_function(attack, [count, 0, "fill"]), upper)

    def enter(point: tuple[int, int]) -> None:
        manager.call_function(attack, [*point, how])
        if after is not None:
            after()

    outcomes = sweep(grid.points(most), enter, script, raisers=raisers)
    if release is not None:
        manager.call_function(release)
    manager.call_function(attack, [0, 0, "fill"])
    return outcomes


def report(outcomes: list[str]) -> None:
    """The sweep program's last act: the outcomes, for :func:`run_sweep`.
    Call it after the checks that the host and other scripts still work."""
    print(MARKER + json.dumps(outcomes), flush=True)


def run_sweep(program: str, *args: str, timeout: float) -> list[str]:
    """Run ``program`` (Python source ending in :func:`report`) with
    ``args`` in a fresh interpreter and return the outcomes it reported. An
    exit status other than 0 (an assertion, an error the host let out, a
    crash), a missing report or a run longer than ``timeout`` seconds (a
    hang) fails the test."""
    done = subprocess.run([sys.executable, "-c", program, *args], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"the sweep exited with {done.returncode}\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    last = done.stdout.rstrip().rpartition("\n")[2]
    if not last.startswith(MARKER):
        raise AssertionError(f"the sweep did not report its outcomes\n{done.stdout[-3000:]}")
    outcomes = json.loads(last[len(MARKER):])
    if not isinstance(outcomes, list) or not all(isinstance(kind, str) for kind in outcomes):
        raise AssertionError(f"the sweep reported {outcomes!r}")
    return outcomes
