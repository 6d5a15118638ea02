"""Soak cycles: load, call, hot reload, call, unload, over and over, and how
memory grows while they run. Used by ``benchmarks/soak.py`` (thousands of
cycles, every language and policy) and by the soak tests (a short run each).

The figure is a slope: KiB of growth per 1,000 cycles after a warm-up,
fitted by least squares over samples taken every ``every`` cycles, for the
process's resident set and for what the engine says it holds. A steady
state has a slope near zero; a leak of 12 KiB per cycle shows as 12,000.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass, field

from ..manager import ScriptManager
from ..policy import SecurityPolicy

__all__ = ["COUNTERS", "SOURCES", "SoakResult", "soak", "rss_bytes"]

#: version 1 and 2 of a small stateful script per language: a counter and its reader
_LISTEN = {
    "lua": 'kryon.addEventListener(kryon.getElementById("btn"), "click", function(e) count = count + 1 end)\n',
    "javascript": 'kryon.addEventListener(kryon.getElementById("btn"), "click", function(e) { count += 1; });\n',
    "python": 'import kryon\nkryon.add_event_listener(kryon.get_element_by_id("btn"), "click", lambda e: None)\n',
    "lisp": '(add-event-listener! (get-element-by-id "btn") "click" (fn [e] None))\n',
    "wren": 'import "kryon" for Kryon\nKryon.addEventListener(Kryon.getElementById("btn"), "click") {|e| Count = Count + 1 }\n',
}
#: a small stateful script per language: a counter and a version
COUNTERS = {
    "lua": "count = 0\nfunction bump(n) count = count + n return count end\nfunction version() return 1 end\n",
    "javascript": "var count = 0;\nfunction bump(n) { count += n; return count; }\nfunction version() { return 1; }\n",
    "python": "count = 0\ndef bump(n):\n    global count\n    count += n\n    return count\ndef version(): return 1\n",
    "lisp": "(setv count 0)\n(defn bump [n] (global count) (setv count (+ count n)) count)\n(defn version [] 1)\n",
    "wren": "var Count = 0\nclass C {\n  static bump(n) {\n    Count = Count + n\n    return Count\n  }\n  static version() { 1 }\n}\n",
}

#: version 1 and 2 of a small stateful script per language: a counter, its reader, and a click listener
SOURCES: dict[str, tuple[str, str]] = {
    lang: (v1 + _LISTEN[lang], v1.replace("version() { 1 }", "version() { 2 }").replace("return 1", "return 2")
           .replace("(defn version [] 1)", "(defn version [] 2)").replace("return 1;", "return 2;") + _LISTEN[lang])
    for lang, v1 in COUNTERS.items()
}
FUNCTIONS = {"wren": ("C.bump", "C.version")}


def rss_bytes() -> int:
    """The process's resident set size now."""
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass
class SoakResult:
    language: str
    policy: str
    cycles: int
    #: (cycle, RSS bytes, engine-reported bytes) samples after warm-up
    samples: list[tuple[int, int, int]] = field(default_factory=list)
    #: callbacks still registered after the last unload (a leak if not all zero)
    leftover: dict[str, int] = field(default_factory=dict)

    def slope(self, column: int) -> float:
        """KiB per 1,000 cycles of column 1 (RSS) or 2 (engine), least squares."""
        points = [(sample[0], sample[column]) for sample in self.samples]
        n = len(points)
        if n < 2:
            return 0.0
        mx = sum(x for x, _ in points) / n
        my = sum(y for _, y in points) / n
        var = sum((x - mx) ** 2 for x, _ in points)
        cov = sum((x - mx) * (y - my) for x, y in points)
        return (cov / var) * 1000 / 1024 if var else 0.0

    @property
    def rss_slope(self) -> float:
        return self.slope(1)

    @property
    def engine_slope(self) -> float:
        return self.slope(2)


def soak(language: str, policy: SecurityPolicy, *, cycles: int, warmup: int, every: int) -> SoakResult:
    """Run ``cycles`` load/call/reload/call/unload cycles of ``language``
    under ``policy``; sample memory every ``every`` cycles after ``warmup``."""
    v1, v2 = SOURCES[language]
    bump, version = FUNCTIONS.get(language, ("bump", "version"))
    m = ScriptManager(policy=policy, cache_dir=False, output=lambda lang, text: None)
    doc = m.setup_dom_bridge()
    doc.append_child(doc.root, doc.create_element("button", {"id": "btn"}))
    result = SoakResult(language, "trusted" if not policy.sandboxed else "sandboxed", cycles)
    try:
        for cycle in range(1, cycles + 1):
            name = f"soak{cycle}"  # a new script each time, as an app loading plugins would
            m.load_script_from_source(name, language, v1)
            m.call_function(f"{name}.{bump}", [1])
            m.hot_reload_script(name, v2)
            assert m.call_function(f"{name}.{version}") == 2
            doc.click("btn")
            m.unload_script(name)
            result.leftover = doc.callback_counts()
            if cycle >= warmup and cycle % every == 0:
                gc.collect()
                engine = m.engine(language)
                result.samples.append((cycle, rss_bytes(), engine.get_memory_usage().used_bytes))
    finally:
        m.close()
    return result
