"""Many small sandboxed scripts in one host: per-script memory growth (PSS,
from /proc/self/smaps_rollup; RSS where that is missing) and load time at
N = 1, 100, 1,000, 10,000 scripts, per language.

    python benchmarks/scale.py [--languages javascript] [--max 10000]
"""

from __future__ import annotations

import argparse
import gc
import time

from kryon_core import ScriptManager, SecurityPolicy

SOURCES = {
    "javascript": "let n = {i}; function bump() {{ n += 1; return n; }}",
}


def pss_kib() -> int:
    try:
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def measure(language: str, counts: list[int]) -> list[tuple[int, float, float]]:
    rows = []
    for n in counts:
        m = ScriptManager(cache_dir=False, policy=SecurityPolicy.sandboxed(), output=lambda lang, text: None)
        m.load_script_from_source("warm", language, SOURCES[language].format(i=0))  # the engine itself
        gc.collect()
        before = pss_kib()
        start = time.perf_counter()
        for i in range(n):
            m.load_script_from_source(f"s{i}", language, SOURCES[language].format(i=i))
        elapsed = time.perf_counter() - start
        gc.collect()
        grown = pss_kib() - before
        assert m.call_function(f"s{n - 1}.bump") == n
        rows.append((n, grown / n, elapsed / n * 1000))
        m.close()
        del m
        gc.collect()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--languages", nargs="*", default=sorted(SOURCES))
    parser.add_argument("--max", type=int, default=10_000)
    args = parser.parse_args()
    counts = [n for n in (1, 100, 1_000, 10_000) if n <= args.max]
    print(f"{'language':12} {'N':>7} {'KiB/script':>11} {'ms/load':>8}")
    for language in args.languages:
        for n, kib, ms in measure(language, counts):
            print(f"{language:12} {n:7d} {kib:11.1f} {ms:8.2f}")


if __name__ == "__main__":
    main()
