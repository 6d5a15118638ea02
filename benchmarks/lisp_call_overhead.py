"""Call overhead of Kryon Lisp over calling the compiled Hy function directly.

The baseline is Hy alone: the same source read with ``hy.read_many``,
compiled with ``hy.compiler.hy_compile`` and run in a plain dict, its
function called directly. Against it, side by side: a bound handle from
``manager.function`` and ``manager.call_function`` (profiling on), for an
(int, int) -> int function, a 100-element list argument and a function
returning a list. Rounds alternate between the variants so machine noise
hits them alike; the best round counts. Prints ratios, never bare claims.

    python benchmarks/lisp_call_overhead.py [--rounds N] [--calls N]
"""

from __future__ import annotations

import argparse
import time
import types

import hy
from hy.compiler import hy_compile

from kryon_core import ScriptManager, SecurityPolicy

SOURCE = """
(defn add [a b] (+ a b))
(defn total [numbers] (sum numbers))
(defn pair [a b] [a b])
"""


def raw_functions() -> dict:
    tree = hy.read_many(SOURCE, filename="raw")
    code = compile(hy_compile(tree, types.ModuleType("raw"), filename="raw", source=SOURCE), "raw", "exec")
    ns: dict = {}
    exec(code, ns)
    return ns


def per_call(fn, calls: int) -> float:
    start = time.perf_counter()
    fn(calls)
    return (time.perf_counter() - start) / calls


def loops(f, args):
    a = tuple(args)

    def run(n):
        for _ in range(n):
            f(*a)

    return run


def manager_loop(call, name, args):
    a = list(args)

    def run(n):
        for _ in range(n):
            call(name, a)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=100_000)
    args = parser.parse_args()

    raw = raw_functions()
    m = ScriptManager(policy=SecurityPolicy.trusted(), cache=False)
    m.load_script_from_source("bench", "lisp", SOURCE)
    numbers = list(range(100))
    cases = [
        ("scalar (int, int) -> int", "add", (2, 3), 5),
        ("100-element list argument", "total", (numbers,), 4950),
        ("list result [a b]", "pair", (1, 2), [1, 2]),
    ]
    print(f"Kryon Lisp call overhead, best of {args.rounds} alternating rounds ({m.engine('lisp').version})")
    for label, name, call_args, expected in cases:
        direct, bound = raw[name], m.function(f"bench.{name}")
        assert direct(*call_args) == bound(*call_args) == m.call_function(name, list(call_args)) == expected
        variants = {
            "direct": loops(direct, call_args),
            "bound": loops(bound, call_args),
            "manager": manager_loop(m.call_function, name, call_args),
        }
        best = dict.fromkeys(variants, float("inf"))
        for _ in range(args.rounds):
            for key, run in variants.items():
                best[key] = min(best[key], per_call(run, args.calls))
        base = best["direct"]
        print(
            f"  {label:27s} direct Hy {base * 1e9:7.0f} ns | bound handle {best['bound'] * 1e9:7.0f} ns"
            f" ({best['bound'] / base:.2f}x) | manager.call_function {best['manager'] * 1e9:7.0f} ns"
            f" ({best['manager'] / base:.2f}x)"
        )
    m.close()


if __name__ == "__main__":
    main()
