"""Call overhead of the Kryon API over the raw lupa call, measured side by side.

Prints, for an (int, int) -> int Lua function and for a call with a
100-element list argument, the time per call of: the raw lupa function,
``manager.call_function`` (profiling on), and a bound handle from
``manager.function``; and each one's ratio to raw. A last row runs the scalar
call under the default sandboxed policy (time, recursion and memory limits
enforced on every call). Rounds alternate between the variants so machine
noise hits them alike; the best round counts.

    python benchmarks/call_overhead.py [--rounds N] [--calls N]
"""

from __future__ import annotations

import argparse
import time

from kryon_core import ScriptManager, SecurityPolicy

SOURCE = """
function add(a, b) return a + b end
function total(list) local s = 0 for i = 1, #list do s = s + list[i] end return s end
"""


def best_per_call(fn, calls: int) -> float:
    start = time.perf_counter()
    fn(calls)
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=50_000)
    args = parser.parse_args()

    import lupa.lua54 as lua54

    raw_rt = lua54.LuaRuntime(unpack_returned_tuples=True)
    raw_rt.execute(SOURCE)
    raw_add, raw_total = raw_rt.globals().add, raw_rt.globals().total

    m = ScriptManager(policy=SecurityPolicy.trusted(), cache=False)
    m.load_script_from_source("bench", "lua", SOURCE)
    bound_add, bound_total = m.function("bench.add"), m.function("bench.total")
    call = m.call_function
    numbers = list(range(100))

    def raw_scalar(n):
        for _ in range(n):
            raw_add(2, 3)

    def manager_scalar(n):
        for _ in range(n):
            call("add", [2, 3])

    def bound_scalar(n):
        for _ in range(n):
            bound_add(2, 3)

    def raw_list(n):
        table_from = raw_rt.table_from
        for _ in range(n):
            raw_total(table_from(numbers))

    def manager_list(n):
        for _ in range(n):
            call("total", [numbers])

    def bound_list(n):
        for _ in range(n):
            bound_total(numbers)

    sandboxed = ScriptManager(policy=SecurityPolicy.sandboxed(), cache=False)
    sandboxed.load_script_from_source("bench", "lua", SOURCE)
    sandboxed_call, sandboxed_add = sandboxed.call_function, sandboxed.function("bench.add")

    def sandboxed_manager_scalar(n):
        for _ in range(n):
            sandboxed_call("add", [2, 3])

    def sandboxed_bound_scalar(n):
        for _ in range(n):
            sandboxed_add(2, 3)

    assert raw_add(2, 3) == call("add", [2, 3]) == bound_add(2, 3) == sandboxed_add(2, 3) == 5
    assert raw_total(raw_rt.table_from(numbers)) == call("total", [numbers]) == bound_total(numbers) == 4950

    rows = [
        ("scalar (int, int) -> int", raw_scalar, manager_scalar, bound_scalar, args.calls),
        ("100-element list argument", raw_list, manager_list, bound_list, args.calls // 5),
        ("sandboxed scalar", raw_scalar, sandboxed_manager_scalar, sandboxed_bound_scalar, args.calls // 5),
    ]
    print(f"Lua call overhead, best of {args.rounds} alternating rounds (lupa {lua54.LuaRuntime().lua_implementation})")
    for label, raw, manager, bound, calls in rows:
        best = {"raw": float("inf"), "manager": float("inf"), "bound": float("inf")}
        for _ in range(args.rounds):
            for key, fn in (("raw", raw), ("manager", manager), ("bound", bound)):
                best[key] = min(best[key], best_per_call(fn, calls))
        print(
            f"  {label:28s} raw {best['raw'] * 1e9:8.0f} ns | manager.call_function {best['manager'] * 1e9:8.0f} ns"
            f" ({best['manager'] / best['raw']:.2f}x) | bound handle {best['bound'] * 1e9:8.0f} ns"
            f" ({best['bound'] / best['raw']:.2f}x)"
        )


if __name__ == "__main__":
    main()
