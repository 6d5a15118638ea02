"""Soak: load, call, hot reload, call, unload for many cycles per language
and policy, and the memory slope after warm-up in KiB per 1,000 cycles (the
process's RSS, and what the engine reports). Target: at most 256 in every
language and policy. Sandboxed Python and Lisp start a worker process per
load, so they run a tenth of the cycles (said in the output).

    python benchmarks/soak.py [--cycles 10000] [--languages lua,wren] [--policies trusted,sandboxed]
"""

from __future__ import annotations

import argparse
import time

from kryon_core import ScriptManager, SecurityPolicy
from kryon_core.testing.soak import SOURCES, soak

TARGET_KIB = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=10_000)
    parser.add_argument("--languages", default=",".join(SOURCES))
    parser.add_argument("--policies", default="trusted,sandboxed")
    args = parser.parse_args()
    installed = ScriptManager(cache=False).languages
    print(f"soak: load/call/reload/call/unload; slope after warm-up in KiB per 1,000 cycles (target <= {TARGET_KIB})")
    print(f"  {'language':12s} {'policy':10s} {'cycles':>7s} {'RSS slope':>10s} {'engine slope':>13s} {'s/1000':>7s}")
    for language in args.languages.split(","):
        if language not in installed:
            print(f"  {language:12s} (not installed)")
            continue
        for name in args.policies.split(","):
            policy = SecurityPolicy.trusted() if name == "trusted" else SecurityPolicy.sandboxed(time_limit=30)
            isolated = name == "sandboxed" and language in ("python", "lisp")
            cycles = max(200, args.cycles // 10) if isolated else args.cycles
            start = time.perf_counter()
            result = soak(language, policy, cycles=cycles, warmup=cycles // 5, every=max(1, cycles // 50))
            seconds = (time.perf_counter() - start) / cycles * 1000
            flag = "" if max(result.rss_slope, result.engine_slope) <= TARGET_KIB else "  over target"
            note = " (a worker per load)" if isolated else ""
            print(f"  {language:12s} {name:10s} {cycles:7d} {result.rss_slope:10.1f} {result.engine_slope:13.1f} "
                  f"{seconds:7.2f}{flag}{note}")


if __name__ == "__main__":
    main()
