"""What a Python script call costs through Kryon, measured side by side.

Trusted scripts run in-process: the manager call is compared with calling
the very same function object directly. Untrusted scripts run in a worker
process: the round trip (host -> worker -> host) is measured next to the
same direct call and next to a bare pipe ping-pong between two processes
(the floor any process boundary pays).

    python benchmarks/python_call_overhead.py [--quick]

Prints times per call and ratios from one run; claims are ratios, never
bare times.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from kryon_core import FunctionRef, ScriptManager, SecurityPolicy

SOURCE = """\
def add(a, b):
    return a + b

def work(n):
    total = 0
    for i in range(n):
        total += i * i
    return total
"""


def per_call(fn, n: int, repeat: int = 5) -> float:
    """Best of ``repeat`` runs of ``n`` calls, in microseconds per call."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(n)
        best = min(best, (time.perf_counter() - start) / n)
    return best * 1e6


def loop(call, args):
    def run(n: int) -> None:
        for _ in range(n):
            call(*args)

    return run


def pipe_floor(n: int) -> float:
    child = "import os\nwhile True:\n    d = os.read(0, 64)\n    if not d: break\n    os.write(1, d)\n"
    p = subprocess.Popen([sys.executable, "-I", "-S", "-c", child], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    w, r = p.stdin.fileno(), p.stdout.fileno()  # type: ignore[union-attr]

    def run(k: int) -> None:
        for _ in range(k):
            os.write(w, b"x" * 24)
            os.read(r, 64)

    try:
        return per_call(run, n)
    finally:
        p.stdin.close()  # type: ignore[union-attr]
        p.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer iterations (for CI smoke runs)")
    opts = parser.parse_args()
    n_fast, n_slow = (20_000, 1_000) if opts.quick else (200_000, 10_000)

    trusted = ScriptManager(policy=SecurityPolicy.trusted(), cache=False)
    trusted.load_script_from_source("bench", "python", SOURCE)
    engine = trusted.engine("python")
    ns = engine.local.script("bench").ns  # the script's own function objects, for the direct baseline
    add, work = ns["add"], ns["work"]

    rows = []
    direct_add = per_call(loop(add, (2, 3)), n_fast)
    direct_work = per_call(loop(work, (50,)), n_fast // 4)
    bound_add = trusted.function("bench.add")
    bound_work = trusted.function("bench.work")
    rows.append(("trusted add: manager.call_function", per_call(loop(trusted.call_function, ("add", [2, 3])), n_fast), direct_add))
    rows.append(("trusted add: manager.function() handle", per_call(loop(bound_add, (2, 3)), n_fast), direct_add))
    python_caller = getattr(bound_add._call, "python", None)  # set when the compiled core made the caller
    if python_caller is not None:  # the same handle without it (as with KRYON_CORE_NO_CEXT=1), side by side
        plain = FunctionRef.direct(python_caller, name="add", language="python", script="bench")
        rows.append(("trusted add: handle, Python caller (no C core)", per_call(loop(plain, (2, 3)), n_fast), direct_add))
    def engine_add() -> object:
        return engine.call_function("add", (2, 3), script="bench")

    rows.append(("trusted add: engine.call_function", per_call(loop(engine_add, ()), n_fast), direct_add))
    rows.append(("trusted work(50): manager.call_function",
                 per_call(loop(trusted.call_function, ("work", [50])), n_fast // 4), direct_work))
    rows.append(("trusted work(50): manager.function() handle",
                 per_call(loop(bound_work, (50,)), n_fast // 4), direct_work))

    untrusted = ScriptManager(policy=SecurityPolicy.sandboxed(), cache=False)
    untrusted.load_script_from_source("bench", "python", SOURCE)
    unlimited = ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=None), cache=False)
    unlimited.load_script_from_source("bench", "python", SOURCE)
    floor = pipe_floor(n_slow)
    rows.append(("untrusted add: round trip (5 s time limit)",
                 per_call(loop(untrusted.call_function, ("add", [2, 3])), n_slow), direct_add))
    rows.append(("untrusted add: round trip (no time limit)", per_call(loop(unlimited.call_function, ("add", [2, 3])), n_slow), direct_add))
    rows.append(("untrusted work(50): round trip",
                 per_call(loop(untrusted.call_function, ("work", [50])), n_slow), direct_work))
    big = list(range(1000))
    rows.append(("untrusted add: 1000-int list argument",
                 per_call(loop(untrusted.call_function, ("add", [big, [1]])), n_slow // 2), direct_add))

    print(f"compiled core (kryon_core._speedups): {'on' if python_caller is not None else 'off'}")
    print(f"Python {sys.version.split()[0]}; direct call of add: {direct_add:.3f} us, of work(50): {direct_work:.3f} us")
    print(f"bare pipe ping-pong between two processes: {floor:.1f} us")
    print()
    print(f"{'path':48} {'us/call':>10} {'x direct':>10} {'x pipe':>8}")
    for name, us, base in rows:
        pipe = f"{us / floor:8.1f}" if name.startswith("untrusted") else ""
        print(f"{name:48} {us:10.3f} {us / base:10.2f} {pipe}")
    trusted.close()
    untrusted.close()
    unlimited.close()


if __name__ == "__main__":
    main()
