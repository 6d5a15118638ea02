"""What a Lua state per sandboxed script costs: load many small scripts into
one manager under the sandboxed policy (a Lua state each) and under the
trusted one (one shared state), side by side in this run, and print per
script the load time, the Lua memory the engine reports and the process's
RSS growth, with the sandboxed/trusted ratios; then the time to unload them.

    python benchmarks/lua_states.py [--scripts 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gc
import time

from kryon_core import ScriptManager, SecurityPolicy

SOURCE = "count = 0\nfunction bump(n) count = count + n return count end\n"


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4  # resident pages of 4 KiB


def measure(policy: SecurityPolicy, scripts: int) -> dict[str, float]:
    m = ScriptManager(policy=policy, cache=False, output=lambda lang, text: None)
    m.load_script_from_source("first", "lua", SOURCE)  # the engine and a first state exist before measuring
    engine = m.engine("lua")
    gc.collect()
    used0, rss0 = engine.get_memory_usage().used_bytes, rss_kib()
    start = time.perf_counter()
    for i in range(scripts):
        m.load_script_from_source(f"s{i}", "lua", SOURCE)
    load = (time.perf_counter() - start) / scripts
    for i in range(scripts):
        m.call_function(f"s{i}.bump", [1])
    gc.collect()
    used, rss = engine.get_memory_usage().used_bytes - used0, rss_kib() - rss0
    start = time.perf_counter()
    for i in range(scripts):
        m.unload_script(f"s{i}")
    gc.collect()
    unload = (time.perf_counter() - start) / scripts
    m.close()
    return {"load_ms": load * 1000, "lua_kib": used / 1024 / scripts, "rss_kib": rss / scripts,
            "unload_ms": unload * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scripts", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    policies = {"sandboxed": SecurityPolicy.sandboxed(time_limit=30), "trusted": SecurityPolicy.trusted()}
    best: dict[str, dict[str, float]] = {}
    for _ in range(args.rounds):  # alternate, so machine noise hits both alike; the best round counts
        for name, policy in policies.items():
            got = measure(policy, args.scripts)
            prev = best.setdefault(name, got)
            for k in ("load_ms", "unload_ms"):  # RSS counts in the first round (later ones reuse freed pages)
                prev[k] = min(prev[k], got[k])
    print(f"lua: {args.scripts} scripts per manager, per script (times: best of {args.rounds}; memory: first round)")
    print(f"  {'policy':10s} {'load ms':>8s} {'Lua KiB':>8s} {'RSS KiB':>8s} {'unload ms':>10s}")
    for name, r in best.items():
        print(f"  {name:10s} {r['load_ms']:8.2f} {r['lua_kib']:8.1f} {r['rss_kib']:8.1f} {r['unload_ms']:10.3f}")
    s, t = best["sandboxed"], best["trusted"]
    print(f"  sandboxed/trusted: load {s['load_ms'] / t['load_ms']:.1f}x, "
          f"Lua memory {s['lua_kib'] / max(t['lua_kib'], 0.01):.1f}x, RSS {s['rss_kib'] / max(t['rss_kib'], 0.01):.1f}x")


if __name__ == "__main__":
    main()
