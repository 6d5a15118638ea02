"""Wren load with and without the serialized bytecode, side by side in one
process: the same compiled script loaded from its bytecode and from its
source (bytecode withheld), alternately, best of --repeat each. The
difference is the Wren compiler's share of a warm load."""

from __future__ import annotations

import argparse
import dataclasses
import time

from kryon_core import ScriptManager, SecurityPolicy

FUNCTION = "class F{i} {{\n  static f(a, b) {{\n    var s = a + b * {i}\n    if (s > 10) return s - 1\n    return s\n  }}\n}}\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    source = "".join(FUNCTION.format(i=i) for i in range(args.functions))
    m = ScriptManager(policy=SecurityPolicy.trusted(), cache=False, output=lambda lang, text: None)
    engine = m.engine("wren")
    compiled = engine.compile(source, "big")
    plain = dataclasses.replace(compiled, bytecode=b"")
    best = {"bytecode": float("inf"), "source": float("inf")}
    for _ in range(args.repeat):
        for label, script in (("bytecode", compiled), ("source", plain)):
            start = time.perf_counter()
            engine.load_script(script)
            best[label] = min(best[label], time.perf_counter() - start)
            engine.unload_script("big")
    print(f"load of a {args.functions}-function Wren script ({len(compiled.bytecode)} bytes of bytecode), best of {args.repeat}")
    print(f"  from bytecode {best['bytecode'] * 1e3:7.1f} ms")
    print(f"  from source   {best['source'] * 1e3:7.1f} ms")
    print(f"  bytecode / source = {best['bytecode'] / best['source']:.2f}")
    m.close()


if __name__ == "__main__":
    main()
