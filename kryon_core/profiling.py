"""Call counts and times per function and per script, and hot-function detection.

The manager counts every call it routes through ``call_function`` and
``kryon.call`` (bound handles from ``manager.function`` skip the statistics
for speed). It times the first :data:`SAMPLE_EVERY` calls of a function, then
one call in :data:`SAMPLE_EVERY`. Two clock reads cost about as much as a
whole call of a small function, so timing every call would double the price
of the manager's path. Counts and errors are exact; a function called a few
times is timed exactly; past that the untimed calls are estimated from the
periodic sample (``CallStats.total_ns``), which leaves the first, often cold,
calls out of the estimate. A function whose
call count reaches ``hot_threshold`` is *hot*: it is listed by
:meth:`Profiler.hot_functions` and reported to its engine's
``on_hot_function``. An engine with a faster tier for it (Lua: a LuaJIT
runtime, under a policy that asks for it) moves the function there and says
which tier and the speed-up it measured; ``is_jit_candidate`` is true only
where the engine has such a tier for the function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["CallStats", "Profiler", "HotFunctionInfo", "SAMPLE_EVERY", "estimate_total", "is_timed", "next_timed"]

#: one call in this many is timed (a power of two: the test is a bit mask on the call count)
SAMPLE_EVERY = 16
#: a call whose count ``n`` (counting from 1) is at most SAMPLE_EVERY or has ``n & SAMPLE_MASK == 1`` is timed
SAMPLE_MASK = SAMPLE_EVERY - 1


def is_timed(n: int, hot: int) -> bool:
    """Whether call number ``n`` (counting from 1) of a function is timed:
    the first SAMPLE_EVERY, one in SAMPLE_EVERY after them, and the call
    that makes the function hot (the ``hot`` threshold)."""
    return n <= SAMPLE_EVERY or n & SAMPLE_MASK == 1 or n == hot


def next_timed(n: int, hot: int) -> int:
    """The number of the first timed call after call ``n`` (see :func:`is_timed`)."""
    m = n + 1 if n < SAMPLE_EVERY else ((n - 1) | SAMPLE_MASK) + 2
    return hot if n < hot < m else m


def estimate_total(calls: int, timed: int, timed_ns: int, steady: int, steady_ns: int) -> int:
    """Time of ``calls`` calls of which ``timed`` took ``timed_ns``: the untimed
    ones at the average of the ``steady`` periodic sample (past the first
    SAMPLE_EVERY calls), or of every timed call while there is none yet."""
    untimed = calls - timed
    if untimed <= 0:
        return timed_ns
    if steady:
        return timed_ns + untimed * steady_ns // steady
    return timed_ns + untimed * timed_ns // timed if timed else 0


class TimedSample:
    """The timed calls of one function: every call while it has had at most
    SAMPLE_EVERY, then the periodic sample (the module docstring says which).
    ``steady`` and ``steady_ns`` hold the periodic sample alone, which
    :func:`estimate_total` scales up to the untimed calls."""

    __slots__ = ("timed", "timed_ns", "steady", "steady_ns")

    def __init__(self) -> None:
        #: how many of the calls were timed, and their total time
        self.timed = 0
        self.timed_ns = 0
        #: the timed calls past the first SAMPLE_EVERY (the periodic sample), and their time
        self.steady = 0
        self.steady_ns = 0

    def record(self, elapsed: int, n: int) -> None:
        """Timed call number ``n`` took ``elapsed`` ns (it was counted already).
        Threads may record at once: each field is updated in one statement with
        no call in it, which no other thread interrupts (see
        ``CrossLanguageRegistry.router``), so every sum stays exact."""
        self.timed += 1
        self.timed_ns += elapsed
        if n > SAMPLE_EVERY:
            self.steady += 1
            self.steady_ns += elapsed


class CallStats(TimedSample):
    """Counts and times of one function or script. Times in nanoseconds, of
    the timed sample of the calls (see the module docstring)."""

    __slots__ = ("name", "language", "calls", "errors", "max_ns", "hot", "tier", "speedup", "next_timed")

    def __init__(self, name: str, language: str) -> None:
        super().__init__()
        self.name = name
        self.language = language
        self.calls = 0
        self.errors = 0
        #: the longest timed call
        self.max_ns = 0
        self.hot = False
        #: the faster tier the engine moved the function to, and its measured speed-up
        self.tier: str | None = None
        self.speedup: float | None = None
        #: a call numbered below this is not timed: the manager's one comparison per call
        #: (``ScriptManager.call_function``). Never above the next timed call's number: it is set
        #: from the call numbers counted so far, which only grow (a reset or a new hot threshold
        #: sets it back to 1), so a stale value only sends a call to the exact test (:func:`is_timed`)
        self.next_timed = 1

    def record(self, elapsed: int, n: int) -> None:
        """Timed call number ``n`` took ``elapsed`` ns (it was counted already)."""
        self.timed += 1  # TimedSample.record, written out (one frame less on a sampled call)
        self.timed_ns += elapsed
        if n > SAMPLE_EVERY:
            self.steady += 1
            self.steady_ns += elapsed
        self.max_ns = elapsed if elapsed > self.max_ns else self.max_ns  # one statement: no thread between

    @property
    def average_ns(self) -> float:
        return self.total_ns / self.calls if self.calls else 0.0

    @property
    def total_ns(self) -> int:
        """Time spent in all the calls: exact while every call was timed, else
        estimated (see :func:`estimate_total`)."""
        return estimate_total(self.calls, self.timed, self.timed_ns, self.steady, self.steady_ns)

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "language": self.language,
            "calls": self.calls,
            "errors": self.errors,
            "timed": self.timed,
            "total_ms": self.total_ns / 1e6,
            "average_us": self.average_ns / 1e3,
            "max_us": self.max_ns / 1e3,
            "hot": self.hot,
            "tier": self.tier,
            "speedup": self.speedup,
        }


@dataclass(frozen=True)
class HotFunctionInfo:
    """The specification's HotFunctionInfo: a function called often enough
    to be worth a JIT's attention."""

    function_name: str
    language: str
    call_count: int
    total_execution_ms: float
    average_execution_us: float
    is_jit_candidate: bool
    #: the faster tier it runs in now (None: where it started)
    tier: str | None = None
    #: the speed-up the engine measured after the move (None: not moved)
    speedup_factor: float | None = None


class Profiler:
    """Per-function and per-script statistics for one manager."""

    def __init__(self, *, enabled: bool = True, hot_threshold: int = 1000) -> None:
        self.enabled = enabled
        self.functions: dict[str, CallStats] = {}
        #: the call count that makes a function hot (a plain attribute: the routed path reads it per call)
        self.hot_threshold = hot_threshold
        self._script_of: dict[str, str] = {}
        self.on_hot: Callable[[str, str], None] | None = None
        #: whether an engine has a faster tier for a function (qualified, language) -> bool
        self.has_faster_tier: Callable[[str, str], bool] = lambda qualified, language: False

    def __setattr__(self, name: str, value: object) -> None:
        super().__setattr__(name, value)
        if name == "hot_threshold":  # a new threshold: the call that reaches it must be timed
            for stats in list(getattr(self, "functions", {}).values()):
                stats.next_timed = 1

    def stats_for(self, qualified: str, script: str, language: str) -> CallStats:
        """The stats record of one function, created on first use. The
        manager keeps it beside the function's location and updates it
        inline (see ``ScriptManager.call_function``): no look-up per call."""
        stats = self.functions.get(qualified)
        if stats is None:
            stats = self.functions[qualified] = CallStats(qualified, language)
            self._script_of[qualified] = script
        return stats

    def became_hot(self, stats: CallStats) -> None:
        """Called by the manager when a function's count reaches the threshold."""
        stats.hot = True
        if self.on_hot is not None:
            self.on_hot(stats.name, stats.language)

    def script_stats(self) -> dict[str, CallStats]:
        """Per-script totals, summed from the functions' records."""
        totals: dict[str, CallStats] = {}
        for qualified, fn in self.functions.items():
            script = self._script_of.get(qualified, qualified.rsplit(".", 1)[0])
            sc = totals.get(script)
            if sc is None:
                sc = totals[script] = CallStats(script, fn.language)
            sc.calls += fn.calls
            sc.errors += fn.errors
            sc.timed += fn.calls  # the functions' estimates add up to the script's
            sc.timed_ns += fn.total_ns
            sc.max_ns = max(sc.max_ns, fn.max_ns)
        return totals

    @property
    def scripts(self) -> dict[str, CallStats]:
        return self.script_stats()

    def forget_script(self, script: str) -> None:
        for key in [k for k, s in self._script_of.items() if s == script]:
            self.functions.pop(key, None)
            self._script_of.pop(key, None)

    def hot_functions(self) -> list[HotFunctionInfo]:
        return [
            HotFunctionInfo(
                s.name, s.language, s.calls, s.total_ns / 1e6, s.average_ns / 1e3,
                s.tier is not None or self.has_faster_tier(s.name, s.language), s.tier, s.speedup,
            )
            for s in sorted(self.functions.values(), key=lambda s: -s.calls)
            if s.hot
        ]

    def report(self) -> dict[str, list[dict[str, object]]]:
        return {
            "functions": [s.as_dict() for s in sorted(self.functions.values(), key=lambda s: -s.total_ns)],
            "scripts": [s.as_dict() for s in sorted(self.script_stats().values(), key=lambda s: -s.total_ns)],
        }

    def reset(self) -> None:
        for stats in self.functions.values():
            stats.next_timed = 1  # first: a call between the two lines then takes the exact test
            stats.calls = stats.errors = stats.timed = stats.timed_ns = stats.steady = stats.steady_ns = stats.max_ns = 0
            stats.hot = False
