"""Call counts and times per function and per script, and hot-function detection.

The manager records every call it routes (and every call through a bound
:class:`~kryon_core.FunctionRef` from ``manager.function``). A function whose
call count reaches ``hot_threshold`` is *hot*: it is listed by
:meth:`Profiler.hot_functions` and reported to its engine's ``on_hot_function``
(engines with a JIT, such as LuaJIT, use it; others ignore it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

__all__ = ["CallStats", "Profiler", "HotFunctionInfo"]


class CallStats:
    """Counts and times of one function or script. Times in nanoseconds."""

    __slots__ = ("name", "language", "calls", "errors", "total_ns", "max_ns", "hot")

    def __init__(self, name: str, language: str) -> None:
        self.name = name
        self.language = language
        self.calls = 0
        self.errors = 0
        self.total_ns = 0
        self.max_ns = 0
        self.hot = False

    @property
    def average_ns(self) -> float:
        return self.total_ns / self.calls if self.calls else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "language": self.language,
            "calls": self.calls,
            "errors": self.errors,
            "total_ms": self.total_ns / 1e6,
            "average_us": self.average_ns / 1e3,
            "max_us": self.max_ns / 1e3,
            "hot": self.hot,
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


class Profiler:
    """Per-function and per-script statistics for one manager."""

    def __init__(self, *, enabled: bool = True, hot_threshold: int = 1000) -> None:
        self.enabled = enabled
        self.hot_threshold = hot_threshold
        self.functions: dict[str, CallStats] = {}
        self.scripts: dict[str, CallStats] = {}
        self.on_hot: Callable[[str, str], None] | None = None

    def stats_for(self, qualified: str, script: str, language: str) -> tuple[CallStats, CallStats]:
        """The (function, script) stats records, created on first use. Bound
        handles keep these and update them without a dict look-up."""
        fn = self.functions.get(qualified)
        if fn is None:
            fn = self.functions[qualified] = CallStats(qualified, language)
        sc = self.scripts.get(script)
        if sc is None:
            sc = self.scripts[script] = CallStats(script, language)
        return fn, sc

    def record(self, fn: CallStats, sc: CallStats, elapsed_ns: int, ok: bool) -> None:
        fn.calls += 1
        fn.total_ns += elapsed_ns
        if elapsed_ns > fn.max_ns:
            fn.max_ns = elapsed_ns
        sc.calls += 1
        sc.total_ns += elapsed_ns
        if not ok:
            fn.errors += 1
            sc.errors += 1
        if fn.calls == self.hot_threshold:
            fn.hot = True
            if self.on_hot is not None:
                self.on_hot(fn.name, fn.language)

    def forget_script(self, script: str) -> None:
        self.scripts.pop(script, None)
        prefix = script + "."
        for key in [k for k in self.functions if k.startswith(prefix)]:
            del self.functions[key]

    def hot_functions(self) -> list[HotFunctionInfo]:
        return [
            HotFunctionInfo(s.name, s.language, s.calls, s.total_ns / 1e6, s.average_ns / 1e3, True)
            for s in sorted(self.functions.values(), key=lambda s: -s.calls)
            if s.hot
        ]

    def report(self) -> dict[str, list[dict[str, object]]]:
        return {
            "functions": [s.as_dict() for s in sorted(self.functions.values(), key=lambda s: -s.total_ns)],
            "scripts": [s.as_dict() for s in sorted(self.scripts.values(), key=lambda s: -s.total_ns)],
        }

    def reset(self) -> None:
        self.functions.clear()
        self.scripts.clear()
