"""Scale with the number of scripts: load N copies of a small stateful script
per language under the default sandboxed policy (and trusted with
``--trusted``), and print the growth of the process tree's PSS (the host and
any worker processes) and the load time, per script. Targets: sandboxed
Python at most 3 MiB and 10 ms per script, sandboxed Lisp at most 4 MiB and
15 ms; 10,000 small sandboxed Lua, JavaScript or Wren scripts load in one host,
each with its own memory limit.

    python benchmarks/scale.py [--counts 1,100,1000] [--languages lua,wren] [--trusted]
"""

from __future__ import annotations

import argparse
import gc
import os
import time

from kryon_core import ScriptManager, SecurityPolicy
from kryon_core.testing.soak import COUNTERS

#: isolated workers cost a process each: larger counts only when asked for
ISOLATED_MAX = 100


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid``: the children of each of its threads (the
    host starts workers and zygotes from its spawner thread, not its main one)."""
    kids: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids += [int(p) for p in f.read().split()]
        except OSError:
            pass  # a thread that just ended
    return kids + [g for k in kids for g in _children(k)]


def tree_pss() -> int:
    """PSS in bytes of this process and every descendant."""
    total = 0
    for pid in [os.getpid(), *_children(os.getpid())]:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            pass  # a worker that just ended
    return total


_TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu() -> dict[int, float]:
    """CPU seconds (user and system) of every descendant, by pid."""
    cpu: dict[int, float] = {}
    for pid in _children(os.getpid()):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            cpu[pid] = (int(fields[11]) + int(fields[12])) / _TICK
        except OSError:
            pass  # a worker that just ended
    return cpu


def measure(language: str, policy: SecurityPolicy, count: int) -> tuple[float, float, float]:
    """(bytes, seconds, CPU seconds) per script for ``count`` copies, after
    one warm-up load. The CPU time is the host's and its descendants' (the
    zygote forking, the workers starting): on a busy machine the wall time
    mostly measures waiting for a core."""
    source = COUNTERS[language]
    m = ScriptManager(policy=policy, cache_dir=False, output=lambda lang, text: None)
    m.setup_dom_bridge()
    try:
        m.load_script_from_source("warm", language, source)
        gc.collect()
        before = tree_pss()
        cpu_before = tree_cpu()
        host_cpu = time.process_time()
        start = time.perf_counter()
        for i in range(count):
            m.load_script_from_source(f"s{i}", language, source)
        seconds = time.perf_counter() - start
        cpu = time.process_time() - host_cpu
        cpu += sum(t - cpu_before.get(pid, 0.0) for pid, t in tree_cpu().items())
        gc.collect()
        grown = tree_pss() - before
    finally:
        m.close()
    return grown / count, seconds / count, cpu / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1,100,1000")
    parser.add_argument("--languages", default=",".join(COUNTERS))
    parser.add_argument("--trusted", action="store_true", help="also measure the trusted policy")
    args = parser.parse_args()
    installed = ScriptManager(cache=False).languages
    policies = [("sandboxed", SecurityPolicy.sandboxed())]
    if args.trusted:
        policies.append(("trusted", SecurityPolicy.trusted()))
    print("per-script growth of the process tree's PSS, load time and CPU time, N copies of a small stateful script")
    print(f"  {'language':12s} {'policy':10s} {'N':>6s} {'PSS/script':>12s} {'load/script':>12s} {'CPU/script':>12s}")
    for language in args.languages.split(","):
        if language not in installed:
            continue
        for name, policy in policies:
            for count in (int(c) for c in args.counts.split(",")):
                if name == "sandboxed" and language in ("python", "lisp") and count > ISOLATED_MAX:
                    print(f"  {language:12s} {name:10s} {count:6d}   (skipped: a worker each; pass --counts to force)")
                    continue
                try:
                    per_bytes, per_seconds, per_cpu = measure(language, policy, count)
                except Exception as exc:  # a limit hit at scale is a result, not a crash
                    print(f"  {language:12s} {name:10s} {count:6d}   failed: {type(exc).__name__}: {exc}")
                    continue
                print(f"  {language:12s} {name:10s} {count:6d} {per_bytes / 1024:9.1f} KiB"
                      f" {per_seconds * 1e3:9.2f} ms {per_cpu * 1e3:9.2f} ms")


if __name__ == "__main__":
    main()
