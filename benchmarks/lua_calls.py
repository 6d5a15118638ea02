"""Lua calls through Kryon against the raw lupa call, side by side, for the
default (sandboxed) and the trusted policy: ``manager.call_function`` and a
bound handle (``manager.function``) of an (int, int) -> int function, each
with its ratio to raw lupa. Rounds alternate between the variants so machine
noise hits them alike; the best round counts. Targets (issue 15): default
policy at most 3x raw for call_function and 2x for a bound handle; trusted
at most 2x and 1.3x. With kryon-core's compiled core, "call_function (Py)" is
the same call through the Python method (as with KRYON_CORE_NO_CEXT=1). The trusted+limit rows are a trusted policy with a
time limit, whose state runs the count hook as a sandboxed one does.

    python benchmarks/lua_calls.py [--rounds N] [--calls N] [--cpu]

``--cpu`` times the calling thread's CPU time instead of the wall clock: a
loaded machine disturbs it far less (every variant runs Lua on the calling
thread, so all of its time counts).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from kryon_core import ScriptManager, SecurityPolicy

SOURCE = "function add(a, b) return a + b end"


def per_call(loop: Callable[[int], None], calls: int, timer: Callable[[], float] = time.perf_counter) -> float:
    start = timer()
    loop(calls)
    return (timer() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--cpu", action="store_true", help="time the thread's CPU time, not the wall clock")
    args = parser.parse_args()
    timer = time.thread_time if args.cpu else time.perf_counter

    import lupa.lua54 as lua54

    raw_rt = lua54.LuaRuntime(unpack_returned_tuples=True)
    raw_rt.execute(SOURCE)
    raw_add = raw_rt.globals().add

    def raw(n: int) -> None:
        for _ in range(n):
            raw_add(2, 3)

    variants: dict[str, Callable[[int], None]] = {"raw lupa": raw}
    managers = []
    policies = (("default", SecurityPolicy()), ("trusted", SecurityPolicy.trusted()),
                # a trusted limit runs the count hook (a state of its own): what that costs
                ("trusted+limit", SecurityPolicy.trusted(time_limit=5.0)))
    for label, policy in policies:
        m = ScriptManager(policy=policy, cache=False)
        managers.append(m)
        m.load_script_from_source("bench", "lua", SOURCE)
        call, bound = m.call_function, m.function("bench.add")
        assert call("bench.add", [2, 3]) == bound(2, 3) == raw_add(2, 3) == 5

        def by_name(n: int, call: Callable[..., object] = call) -> None:
            for _ in range(n):
                call("bench.add", [2, 3])

        def by_handle(n: int, bound: Callable[..., object] = bound) -> None:
            for _ in range(n):
                bound(2, 3)

        variants[f"{label} call_function"] = by_name
        variants[f"{label} bound handle"] = by_handle
        python_method = getattr(ScriptManager.call_function, "__wrapped__", None)  # the compiled core is on
        if python_method is not None and label != "trusted+limit":  # side by side: the method without it

            def by_python(n: int, m: ScriptManager = m, method: Callable[..., object] = python_method) -> None:
                for _ in range(n):
                    method(m, "bench.add", [2, 3])

            variants[f"{label} call_function (Py)"] = by_python

    best = dict.fromkeys(variants, float("inf"))
    for _ in range(args.rounds):
        for name, loop in variants.items():
            best[name] = min(best[name], per_call(loop, args.calls, timer))
    raw_time = best["raw lupa"]
    clock = "thread CPU time" if args.cpu else "wall clock"
    print(f"Lua calls, best of {args.rounds} alternating rounds of {args.calls} calls ({clock})")
    for name, seconds in best.items():
        print(f"  {name:30s} {seconds * 1e9:8.0f} ns  {seconds / raw_time:6.2f}x raw")
    for m in managers:
        m.close()


if __name__ == "__main__":
    main()
