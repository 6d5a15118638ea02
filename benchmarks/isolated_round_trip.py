"""An isolated worker's round trip, next to a bare pipe round trip between two
processes, measured side by side in one run: wall time per round trip (median
of rounds) and the CPU time both processes spend on it, and the worker's alone (read from
``/proc/<pid>/schedstat``, which counts nanoseconds on a CPU and is much less
disturbed by a loaded machine than wall time), for a trivial call with and
without a time limit (through ``call_function`` and through a bound handle,
``ScriptManager.function``), for one DOM write made from a script loop (writes
travel in batches), and for a ``kryon.call`` the worker's script makes to a Lua
``noop`` (worker -> host -> Lua -> back: one round trip the other way, with
the callee's call on the host; CPU "worker" is the calling worker's).

    python benchmarks/isolated_round_trip.py [--calls N] [--rounds N]

Claims are ratios to the pipe round trip, never bare times.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from kryon_core import Document, ScriptManager, SecurityPolicy

SOURCE = """\
import kryon
def add(a, b):
    return a + b
def frame(n):
    box = kryon.get_element_by_id("box")
    for i in range(n):
        kryon.set_property(box, "x", i)
    return n
def kcalls(n):
    call = kryon.call
    for i in range(n):
        call("l.noop", i)
    return n
"""


def cpu_ns(pid: int) -> int:
    """Nanoseconds process ``pid`` has run on a CPU (all its threads)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def measure(run: Callable[[int], None], n: int, rounds: int, pids: tuple[int, ...]) -> tuple[float, float, float]:
    """(median wall us, median CPU us of ``pids``, median CPU us of the last
    pid alone) per unit, ``run(n)`` doing ``n`` units."""
    walls, cpus, lasts = [], [], []
    for _ in range(rounds):
        c0 = [cpu_ns(p) for p in pids]
        t0 = time.perf_counter()
        run(n)
        walls.append((time.perf_counter() - t0) / n * 1e6)
        c1 = [cpu_ns(p) for p in pids]
        cpus.append((sum(c1) - sum(c0)) / n / 1e3)
        lasts.append((c1[-1] - c0[-1]) / n / 1e3)
    return statistics.median(walls), statistics.median(cpus), statistics.median(lasts)


def pipe_round_trip(n: int, rounds: int) -> tuple[float, float, float]:
    child = "import os\nwhile True:\n    d = os.read(0, 64)\n    if not d: break\n    os.write(1, d)\n"
    p = subprocess.Popen([sys.executable, "-I", "-S", "-c", child], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    w, r = p.stdin.fileno(), p.stdout.fileno()  # type: ignore[union-attr]

    def run(k: int) -> None:
        for _ in range(k):
            os.write(w, b"x" * 24)
            os.read(r, 64)

    try:
        run(100)
        return measure(run, n, rounds, (os.getpid(), p.pid))
    finally:
        p.stdin.close()  # type: ignore[union-attr]
        p.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=7)
    opts = parser.parse_args()
    n, rounds = opts.calls, opts.rounds

    rows: list[tuple[str, float, float, float]] = []
    floor = pipe_round_trip(n, rounds)
    for label, policy in (("no time limit", SecurityPolicy.sandboxed(time_limit=None)),
                          ("5 s time limit", SecurityPolicy.sandboxed(time_limit=5))):
        m = ScriptManager(policy=policy, cache=False, output=lambda lang, text: None)
        doc = m.setup_dom_bridge(Document())
        doc.append_child(doc.root, doc.create_element("div", {"id": "box"}))
        m.load_script_from_source("b", "python", SOURCE)
        pids = (os.getpid(), m.engine("python").runtime.worker_info("b")["pid"])
        call = m.call_function

        def calls(k: int) -> None:
            for _ in range(k):
                call("b.add", [2, 3])

        bound = m.function("b.add")

        def bound_calls(k: int) -> None:
            for _ in range(k):
                bound(2, 3)

        calls(200)
        bound_calls(200)
        rows.append((f"call add(2, 3), {label}", *measure(calls, n, rounds, pids)))
        rows.append((f"bound add(2, 3), {label}", *measure(bound_calls, n, rounds, pids)))
        writes = max(n, 1000)
        rows.append((f"one DOM write in a loop, {label}",
                     *measure(lambda k: call("b.frame", [k]), writes, rounds, pids)))
        if "lua" in m.languages:
            m.load_script_from_source("l", "lua", "function noop(x) return x end")
            call("b.kcalls", [200])
            rows.append((f"kryon.call to Lua noop, {label}", *measure(lambda k: call("b.kcalls", [k]), n, rounds, pids)))
        m.close()

    print(f"median of {rounds} rounds; CPU: host and other process together (schedstat)")
    print(f"bare pipe round trip: {floor[0]:.1f} us wall, {floor[1]:.1f} us CPU ({floor[2]:.1f} the echoing child)")
    print()
    print(f"{'path':40} {'wall us':>9} {'x pipe':>7} {'CPU us':>8} {'x pipe':>7} {'worker':>7} {'host':>7}")
    for name, wall, cpu, worker in rows:
        print(f"{name:40} {wall:9.1f} {wall / floor[0]:7.1f} {cpu:8.1f} {cpu / floor[1]:7.1f} {worker:7.1f}"
              f" {cpu - worker:7.1f}")


if __name__ == "__main__":
    main()
