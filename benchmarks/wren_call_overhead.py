"""What Kryon costs on top of the raw Wren VM for a Wren call, measured side by side.

Rows: ``Calc.add(int, int) -> int`` (a static method of a class) and
``add.call(int, int)`` (a top-level Fn variable). Columns (ns per call, and
ratios against ``raw``):

- ``raw``: the cheapest call the VM offers, in a VM of its own: a
  ``ScalarCall``'s parameter block (kryon_wren.vm) with the two numbers
  written, one ``wasmtime_func_call_unchecked``, the result read as the
  integer ``wren_call_scalar`` gives for an integral number;
  no gate, no limits, no trap check, no conversion: the floor of any call;
- ``driver``: the VM wrapper's general entry, ``WrenVM.call(receiver,
  call_handle, 2, 3)`` (numeric arguments take its ``wren_call_num`` path);
- ``manager``: ``ScriptManager.call_function("Calc.add", [2, 3])``;
- ``bound``: the handle from ``manager.function("bench.Calc.add")``.

Note driver returns 5.0 (a float); raw and the engine return the int 5.
With the compiled caller (kryon_wren/_ccall.c) ``manager`` and ``bound``
make the same wasm call from C, without ctypes' argument handling, so a
bound call can cost less than ``raw``; ``KRYON_WREN_NO_CEXT=1`` times the
Python caller instead.
Run under a trusted and a sandboxed policy (the sandbox adds the epoch
deadline of its time limit). Target: a host-to-Wren scalar call within 5 us.
Usage: ``python benchmarks/wren_call_overhead.py [--quick] [--cpu]`` (``--cpu``
times the calling thread's CPU time instead of the wall clock).
"""

from __future__ import annotations

import sys
import time
import timeit
from collections.abc import Callable
from typing import Any

from kryon_wren.vm import WrenVM

from kryon_core import ScriptManager, SecurityPolicy

SOURCE = """
class Calc {
  static add(a, b) { a + b }
}
var add = Fn.new { |a, b| a + b }
"""


TIMER = time.perf_counter


def interleaved(variants: dict, number: int, rounds: int) -> dict:
    """ns per call of each variant: best of ``rounds`` interleaved batches."""
    best = {name: float("inf") for name in variants}
    for fn in variants.values():
        fn()
    for _ in range(rounds):
        for name, fn in variants.items():
            best[name] = min(best[name], timeit.timeit(fn, number=number, timer=TIMER) / number * 1e9)
    return best


def raw_caller(vm: WrenVM, receiver: Any, signature: str) -> Callable[[float, float], float]:
    """The bare one-crossing call of ``signature`` on ``receiver``."""
    sc = vm.scalar_call(receiver, vm.make_call_handle(signature))
    f64, i64, second, call, call_args = sc.f64, sc.i64, sc.at[1], sc.call, sc.call_args

    def raw(a: float, b: float) -> int:
        f64[0] = a
        f64[second] = b
        call(*call_args)
        return i64[0]  # an integral result comes as the integer (wren_call_scalar)

    return raw


def main() -> None:
    quick = "--quick" in sys.argv
    if "--cpu" in sys.argv:  # the thread's CPU time: a loaded machine disturbs it far less
        global TIMER
        TIMER = time.thread_time
    number, rounds = (2_000, 5) if quick else (20_000, 15)

    vm = WrenVM(capture=True)
    vm.interpret(SOURCE, module="bench")
    calc = vm.variable_handle("bench", "Calc")
    fn = vm.variable_handle("bench", "add")
    add_sig = vm.make_call_handle("add(_,_)")
    call_sig = vm.make_call_handle("call(_,_)")
    driver = vm.call
    raw_add, raw_fn = raw_caller(vm, calc, "add(_,_)"), raw_caller(vm, fn, "call(_,_)")

    rows = []
    for label, policy in (("trusted", SecurityPolicy.trusted()), ("sandboxed", SecurityPolicy.sandboxed())):
        m = ScriptManager(cache_dir=False, policy=policy, output=lambda lang, text: None)
        m.load_script_from_source("bench", "wren", SOURCE)
        bound_method, bound_fn = m.function("bench.Calc.add"), m.function("bench.add")
        assert m.call_function("Calc.add", [2, 3]) == 5 == bound_method(2, 3) == bound_fn(2, 3)
        assert driver(calc, add_sig, 2, 3) == 5.0 == raw_add(2, 3) == raw_fn(2, 3) and type(raw_add(2, 3)) is int
        rows.append((label, "Calc.add(2, 3)", interleaved({
            "raw": lambda: raw_add(2, 3),
            "driver": lambda: driver(calc, add_sig, 2, 3),
            "manager": lambda: m.call_function("Calc.add", [2, 3]),
            "bound": lambda: bound_method(2, 3),
        }, number, rounds)))
        rows.append((label, "add.call(2, 3)", interleaved({
            "raw": lambda: raw_fn(2, 3),
            "driver": lambda: driver(fn, call_sig, 2, 3),
            "manager": lambda: m.call_function("bench.add", [2, 3]),
            "bound": lambda: bound_fn(2, 3),
        }, number, rounds)))
        m.close()

    print(f"{'policy':10} {'call':16} {'raw ns':>8} {'driver':>8} {'manager':>8} {'bound':>8}"
          f"  {'mgr/raw':>7} {'bound/raw':>9}")
    for label, call, t in rows:
        print(f"{label:10} {call:16} {t['raw']:8.0f} {t['driver']:8.0f} {t['manager']:8.0f} {t['bound']:8.0f}"
              f"  {t['manager'] / t['raw']:7.2f} {t['bound'] / t['raw']:9.2f}")


if __name__ == "__main__":
    main()
