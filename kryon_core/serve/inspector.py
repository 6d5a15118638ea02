"""What the inspector panel of ``kryon serve`` shows, gathered from a live app.

A snapshot holds the installed engines (version, capabilities, memory now),
the loaded scripts (language, policy, file, reloads), per-function calls and
mean time from the manager's profiler, memory per engine sampled over time,
the latest lines scripts printed or logged, and the latest errors with
their file, line and stack. Everything is read under the app's lock by the
caller; nothing here runs a script.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from ..app import App
from ..cli.report import describe

__all__ = ["MemoryHistory", "snapshot", "HOT_SHARE", "HOT_SHARE_MIN_CALLS", "ERRORS_SHOWN"]

#: a function taking at least this share of all profiled time is marked hot ...
HOT_SHARE = 0.5
#: ... once it has been called this often: with two functions one always takes half the time,
#: and a function called twice is slow, not hot
HOT_SHARE_MIN_CALLS = 100
#: how many of the latest errors the panel lists
ERRORS_SHOWN = 10
#: how many lines of output the panel lists
OUTPUT_SHOWN = 100


class MemoryHistory:
    """Memory per engine over time: one sample per engine every ``interval``
    seconds, the last ``keep`` of them."""

    def __init__(self, *, interval: float = 1.0, keep: int = 120) -> None:
        self.interval = interval
        self.samples: dict[str, deque[tuple[float, int]]] = {}
        self._keep = keep
        self._last = 0.0

    def due(self, now: float) -> bool:
        return now - self._last >= self.interval

    def sample(self, app: App, now: float | None = None) -> None:
        """Record each started engine's memory use now."""
        now = time.time() if now is None else now
        self._last = now
        for language, usage in app.manager.memory_usage().items():
            series = self.samples.setdefault(language, deque(maxlen=self._keep))
            series.append((now, int(usage.used_bytes)))

    def as_dict(self) -> dict[str, list[list[float]]]:
        return {lang: [[t, b] for t, b in series] for lang, series in self.samples.items()}


def snapshot(app: App, memory: MemoryHistory) -> dict[str, Any]:
    """The whole panel's data as plain JSON-ready values."""
    return {
        "time": time.time(),
        "engines": _engines(app),
        "scripts": _scripts(app),
        "functions": _functions(app),
        "memory": memory.as_dict(),
        "output": [{"time": t, "source": source, "text": text} for t, source, text in list(app.output)[-OUTPUT_SHOWN:]],
        "errors": _errors(app),
        "skipped": list(app.skipped),
    }


def _engines(app: App) -> list[dict[str, Any]]:
    manager = app.manager
    memory = manager.memory_usage()
    rows = []
    for language, spec in sorted(manager.engine_specs.items()):
        row: dict[str, Any] = {"language": language, "distribution": spec.distribution or "(in-process)",
                               "started": manager.is_loaded(language)}
        if row["started"]:
            engine = manager.engine(language)
            row["version"] = engine.version
            row["capabilities"] = [k.removeprefix("supports_") for k, v in engine.capabilities.as_dict().items() if v]
            usage = memory.get(language)
            row["memory_bytes"] = usage.used_bytes if usage else None
            row["memory_limit"] = usage.limit if usage else None
        rows.append(row)
    return rows


def _scripts(app: App) -> list[dict[str, Any]]:
    files = app.files()
    return [
        {"id": script.id, "language": script.language, "policy": script.policy.describe(),
         "file": files.get(script.id), "reloads": script.reloads, "functions": sorted(script.functions)}
        for script in sorted(app.manager.scripts.values(), key=lambda s: s.id)
    ]


def _functions(app: App) -> list[dict[str, Any]]:
    stats = list(app.manager.profiler.functions.values())
    total_ns = sum(s.total_ns for s in stats) or 1
    rows = []
    for s in sorted(stats, key=lambda s: -s.total_ns):
        share = s.total_ns / total_ns
        rows.append({
            "name": s.name, "language": s.language, "calls": s.calls, "errors": s.errors,
            "mean_us": s.average_ns / 1e3, "max_us": s.max_ns / 1e3, "total_ms": s.total_ns / 1e6,
            "share": share, "hot": s.hot or (s.calls >= HOT_SHARE_MIN_CALLS and share >= HOT_SHARE and len(stats) > 1),
        })
    return rows


def _errors(app: App) -> list[dict[str, Any]]:
    files = app.files()
    rows = []
    for failure in app.failures[-ERRORS_SHOWN:]:
        row: dict[str, Any] = {"time": failure.time, "summary": failure.message, "status": failure.status,
                               "message": failure.message, "file": None, "line": None, "stack": []}
        if failure.error is not None:
            row.update(describe(failure.error, files))
        rows.append(row)
    return rows
