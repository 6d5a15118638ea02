"""What debugging costs a Wren script, measured side by side in one run.

One Wren program (a loop calling a method, ``P.work(n)``) runs through
``ScriptManager.call_function`` in three managers, interleaved round by round:

- ``off``: no debugger (twice: ``off again`` is another manager the same,
  whose ratio shows the machine's noise);
- ``attached``: the manager's debugger attached, with a breakpoint in a
  function the program never calls (only that line is patched);
- ``every line``: the Wren debug target told to report every line (the mode
  stepping and pausing use) to a listener that never stops, so each line
  calls back into Python.

Prints seconds (best of the rounds) and the ratio to ``off``; three managers
doing the same work differ by up to ~30% on a busy machine, so the fuel count
below is the reliable comparison. Also prints
the wasm instructions the VM executes for the same call in each mode (wasmtime
fuel), a count the machine's noise does not touch. Usage:
``python benchmarks/wren_debug_cost.py [--quick]``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from kryon_core import ScriptManager, SecurityPolicy
from kryon_core.debug.session import BreakpointSpec
from kryon_core.debug.target import DebugEvents, DebugTarget, TraceMode

SOURCE = """\
class P {
  static step(i) { i % 7 }
  static work(n) {
    var total = 0
    var i = 0
    while (i < n) {
      total = total + step(i)
      i = i + 1
    }
    return total
  }
  static never() {
    return 0
  }
}
"""


class _Listener(DebugEvents):
    """Counts events and never stops."""

    def __init__(self) -> None:
        self.lines = 0

    def line(self, target: DebugTarget, script: str, line: int) -> None:
        self.lines += 1

    def call(self, target: DebugTarget) -> None:
        pass

    def ret(self, target: DebugTarget) -> None:
        pass

    def exception(self, target: DebugTarget, error: Any) -> None:
        pass


def _manager() -> ScriptManager:
    m = ScriptManager(cache=False, policy=SecurityPolicy.trusted(), output=lambda lang, text: None)
    m.load_script_from_source("bench", "wren", SOURCE)
    return m


def main() -> None:
    quick = "--quick" in sys.argv
    n, rounds = (20_000, 3) if quick else (200_000, 7)

    off = _manager()
    attached = _manager()
    attached.debugger().set_breakpoints("bench", [BreakpointSpec(13)])
    every = _manager()
    target = every.engine("wren").debug_target()
    listener = _Listener()
    target.attach(listener)
    target.set_mode(TraceMode.EVERY_LINE, {})
    variants = {"off": off, "off again": _manager(), "attached": attached, "every line": every}
    n_every = max(1, n // 20)  # every line calls Python: a shorter run, scaled

    best = {name: float("inf") for name in variants}
    for _ in range(rounds):
        for name, m in variants.items():
            count = n_every if name == "every line" else n
            started = time.perf_counter()
            m.call_function("bench.P.work", [count])
            best[name] = min(best[name], (time.perf_counter() - started) * n / count)

    print(f"Wren debugging cost: P.work({n}) (every line: {n_every} scaled), best of {rounds}")
    print(f"{'mode':<12}{'seconds':>10}{'ratio':>8}")
    for name, seconds in best.items():
        print(f"{name:<12}{seconds:>10.4f}{seconds / best['off']:>8.2f}")
    print(f"line events reported in 'every line' mode: {listener.lines}")
    print("wasm instructions for P.work(2000) (fuel):")
    for name, m in variants.items():
        print(f"  {name:<12}{_fuel(m, 2000):>14}")
    for m in variants.values():
        m.close()


def _fuel(m: ScriptManager, n: int) -> int:
    """Wasm instructions one call runs, counted by a fuel-metered copy of the
    script's VM state: the same program in a VM with fuel, under the mode the
    manager's debugger left the engine's scripts in."""
    from kryon_wren.vm import WrenVM

    engine = m.engine("wren")
    state = engine._scripts["bench"]
    budget = 1 << 50
    vm = WrenVM(fuel=budget, capture=True)
    inst = vm.instance
    target = engine._debug
    inst.enter()
    try:
        vm.interpret(SOURCE, module="bench")
        if target is not None:
            applied = target._applied.get(state.vm)
            if applied is not None:
                for script, line in applied.lines:
                    vm.add_breakpoint(script, line)
                if applied.step_all:
                    vm._c("wren_debug_step_all", 1)
        inst.store.set_fuel(budget)
        vm.interpret(f"P.work({n})", module="bench")
        return budget - inst.store.get_fuel()
    finally:
        inst.leave()


if __name__ == "__main__":
    main()
