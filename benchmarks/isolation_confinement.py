"""What the kernel confinement of untrusted workers costs, and how soon a
runaway call stops, measured side by side in one run.

1. The round trip of a sandboxed call (host -> worker -> host) with every
   kernel mechanism applied (Landlock, seccomp, namespaces) next to the same
   call into a worker started without them (the test-only switch), and next
   to a bare pipe ping-pong between two processes. Rounds alternate between
   the configurations, so machine load falls on both alike.
2. How long a call over its time limit takes to fail, as a ratio to the
   limit: a Python-level loop (the worker interrupts it itself) and a
   C-level loop (``sum(range(10**12))``: the host kills the worker at its
   deadline, then restarts it and reruns the script's top level before the
   error is raised), for Python and for Lisp.
3. How long starting a sandboxed worker takes, confined vs not (a ratio).

    python benchmarks/isolation_confinement.py [--quick]

Claims are ratios, never bare times.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from kryon_core import ScriptError, ScriptManager, SecurityPolicy
from kryon_core.isolation.testing import kernel_mechanisms_off

ALL_OFF = ("landlock", "seccomp", "namespaces")


def manager(off: tuple[str, ...], **policy: object) -> ScriptManager:
    return ScriptManager(policy=SecurityPolicy.sandboxed(accept_weaker_isolation=set(off), **policy), cache=False)


def load(m: ScriptManager, off: tuple[str, ...], name: str, language: str, source: str) -> float:
    start = time.perf_counter()
    with kernel_mechanisms_off(*off):
        m.load_script_from_source(name, language, source)
    return time.perf_counter() - start


def pipe_round_trip(n: int) -> float:
    child = "import os\nwhile True:\n    d = os.read(0, 64)\n    if not d: break\n    os.write(1, d)\n"
    p = subprocess.Popen([sys.executable, "-I", "-S", "-c", child], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    w, r = p.stdin.fileno(), p.stdout.fileno()  # type: ignore[union-attr]
    start = time.perf_counter()
    for _ in range(n):
        os.write(w, b"x" * 24)
        os.read(r, 64)
    elapsed = (time.perf_counter() - start) / n
    p.stdin.close()  # type: ignore[union-attr]
    p.wait()
    return elapsed


def round_trips(rounds: int, n: int) -> None:
    confined, open_, pipe = manager(()), manager(ALL_OFF), []
    load(confined, (), "b", "python", "def add(a, b): return a + b")
    load(open_, ALL_OFF, "b", "python", "def add(a, b): return a + b")
    times: dict[str, list[float]] = {"confined": [], "unconfined": []}
    for _ in range(rounds):
        for label, m in (("confined", confined), ("unconfined", open_)):
            start = time.perf_counter()
            for _ in range(n):
                m.call_function("b.add", [2, 3])
            times[label].append((time.perf_counter() - start) / n)
        pipe.append(pipe_round_trip(n))
    c, u, p = (statistics.median(v) for v in (times["confined"], times["unconfined"], pipe))
    print(f"round trip of a sandboxed call (median of {rounds} alternating rounds of {n} calls):")
    print(f"  confined / unconfined worker: {c / u:5.2f}x")
    print(f"  confined / bare pipe ping-pong: {c / p:5.1f}x   (unconfined / pipe: {u / p:5.1f}x)")
    confined.close()
    open_.close()


def stop_ratios(limit: float) -> None:
    cases = {
        "python": {"Python-level loop": "def f():\n    while True:\n        pass\n",
                   "C-level loop": "def f():\n    return sum(range(10**12))\n"},
        "lisp": {"Python-level loop": "(defn f [] (while True (continue)))",
                 "C-level loop": "(defn f [] (sum (range (** 10 12))))"},
    }
    print(f"a call over its time limit ({limit:g} s) fails after, as a ratio to the limit:")
    for language, sources in cases.items():
        m = manager((), time_limit=limit)
        for label, source in sources.items():
            load(m, (), "spin", language, source)
            start = time.perf_counter()
            try:
                m.call_function("spin.f")
            except ScriptError:
                pass
            elapsed = time.perf_counter() - start
            info = m.engine(language).runtime.worker_info("spin")
            how = "worker killed, restarted, top level rerun" if info["restarts"] else "interrupted in the worker"
            print(f"  {language:6} {label:18} {elapsed / limit:5.2f}x  ({how})")
            m.unload_script("spin")
        m.close()


def start_ratio(rounds: int) -> None:
    times: dict[str, list[float]] = {"confined": [], "unconfined": []}
    for i in range(rounds):
        for label, off in (("confined", ()), ("unconfined", ALL_OFF)):
            m = manager(off)
            times[label].append(load(m, off, f"s{i}", "python", "def f(): return 1\n"))
            m.close()
    c, u = statistics.median(times["confined"]), statistics.median(times["unconfined"])
    print(f"starting a sandboxed Python worker, confined / unconfined: {c / u:5.2f}x (median of {rounds})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer rounds (for smoke runs)")
    opts = parser.parse_args()
    rounds, n = (5, 200) if opts.quick else (15, 1000)
    round_trips(rounds, n)
    print()
    stop_ratios(1.0)
    print()
    start_ratio(rounds)


if __name__ == "__main__":
    main()
