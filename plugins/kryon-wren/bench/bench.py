"""Micro benchmarks of the Kryon Wren VM (CPU time, best of N).

    python bench/bench.py          # after building kryon_wren.wasm

Reports recursive fib(27) in Wren vs CPython, and the cost of one
host-to-Wren call through the fast numeric path and through slots.
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from kryon_wren import WrenVM  # noqa: E402

FIB_WREN = """
class Fib {
  static get(n) {
    if (n < 2) return n
    return get(n - 1) + get(n - 2)
  }
}
"""


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def best(fn, repeat=5):
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def main():
    vm = WrenVM(capture=True)
    vm.interpret(FIB_WREN)
    fib_class = vm.variable_handle("main", "Fib")
    get = vm.make_call_handle("get(_)")
    assert vm.call_num(fib_class, get, 27) == 196418
    wren = best(lambda: vm.call_num(fib_class, get, 27))
    python = best(lambda: fib(27))
    print(f"fib(27): wren {wren * 1000:.1f} ms, CPython {python * 1000:.1f} ms")

    vm.interpret("class Calc {\n  static add(a, b) { a + b }\n}")
    calc = vm.variable_handle("main", "Calc")
    add = vm.make_call_handle("add(_,_)")
    n = 20000
    fast = best(lambda: [vm.call_num(calc, add, i, 1) for i in range(n)]) / n
    slots = best(lambda: [vm.call(calc, add, "a", "b") for _ in range(n // 10)]) / (n // 10)
    print(f"host->Wren call: numeric fast path {fast * 1e6:.2f} us, string arguments via slots {slots * 1e6:.2f} us")


if __name__ == "__main__":
    main()
