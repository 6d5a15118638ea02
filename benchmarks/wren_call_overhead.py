"""What Kryon costs on top of the raw Wren VM for a Wren call, measured side by side.

Rows: ``Calc.add(int, int) -> int`` (a static method of a class) and
``add.call(int, int)`` (a top-level Fn variable). Columns (ns per call, and
ratios against ``raw``):

- ``raw``: the VM driver alone, ``WrenVM.call(receiver, call_handle, 2, 3)``
  (kryon_wren.vm; numeric arguments take its fast path), in a VM of its own;
- ``manager``: ``ScriptManager.call_function("Calc.add", [2, 3])``;
- ``bound``: the handle from ``manager.function("bench.Calc.add")``.

Note the raw driver returns 5.0 (a float); the engine returns the int 5.
Run under a trusted and a sandboxed policy (the sandbox adds the epoch
deadline of its time limit). Target: a host-to-Wren scalar call within 5 us.
Usage: ``python benchmarks/wren_call_overhead.py [--quick]``.
"""

from __future__ import annotations

import sys
import timeit

from kryon_wren.vm import WrenVM

from kryon_core import ScriptManager, SecurityPolicy

SOURCE = """
class Calc {
  static add(a, b) { a + b }
}
var add = Fn.new { |a, b| a + b }
"""


def interleaved(variants: dict, number: int, rounds: int) -> dict:
    """ns per call of each variant: best of ``rounds`` interleaved batches."""
    best = {name: float("inf") for name in variants}
    for fn in variants.values():
        fn()
    for _ in range(rounds):
        for name, fn in variants.items():
            best[name] = min(best[name], timeit.timeit(fn, number=number) / number * 1e9)
    return best


def main() -> None:
    quick = "--quick" in sys.argv
    number, rounds = (2_000, 5) if quick else (20_000, 15)

    vm = WrenVM(capture=True)
    vm.interpret(SOURCE, module="bench")
    calc = vm.variable_handle("bench", "Calc")
    fn = vm.variable_handle("bench", "add")
    add_sig = vm.make_call_handle("add(_,_)")
    call_sig = vm.make_call_handle("call(_,_)")
    raw_call = vm.call

    rows = []
    for label, policy in (("trusted", SecurityPolicy.trusted()), ("sandboxed", SecurityPolicy.sandboxed())):
        m = ScriptManager(cache_dir=False, policy=policy, output=lambda lang, text: None)
        m.load_script_from_source("bench", "wren", SOURCE)
        bound_method, bound_fn = m.function("bench.Calc.add"), m.function("bench.add")
        assert m.call_function("Calc.add", [2, 3]) == 5 == bound_method(2, 3) == bound_fn(2, 3)
        assert raw_call(calc, add_sig, 2, 3) == 5.0
        rows.append((label, "Calc.add(2, 3)", interleaved({
            "raw": lambda: raw_call(calc, add_sig, 2, 3),
            "manager": lambda: m.call_function("Calc.add", [2, 3]),
            "bound": lambda: bound_method(2, 3),
        }, number, rounds)))
        rows.append((label, "add.call(2, 3)", interleaved({
            "raw": lambda: raw_call(fn, call_sig, 2, 3),
            "manager": lambda: m.call_function("bench.add", [2, 3]),
            "bound": lambda: bound_fn(2, 3),
        }, number, rounds)))
        m.close()

    print(f"{'policy':10} {'call':16} {'raw ns':>8} {'manager':>8} {'bound':>8}  {'mgr/raw':>7} {'bound/raw':>9}")
    for label, call, t in rows:
        print(f"{label:10} {call:16} {t['raw']:8.0f} {t['manager']:8.0f} {t['bound']:8.0f}"
              f"  {t['manager'] / t['raw']:7.2f} {t['bound'] / t['raw']:9.2f}")


if __name__ == "__main__":
    main()
