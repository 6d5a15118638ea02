"""What sandboxed ``hy.eval`` and a file beside the script cost, side by side
in one run, in one sandboxed Lisp worker:

- a call whose body adds two numbers, the same call evaluating the same
  form through ``hy.eval`` (compiled by Hy, rewritten and checked by the
  guard, then run), and one reading it from text first (``hy.read``);
- loading a script whose macro is defined in it, and one that requires the
  same macro from a file beside it (one ``mod`` request to the host, the
  file compiled in the worker).

Times are the host's wall clock per call (best of 5 rounds), printed as
ratios to the plain call / the inline load.

    python benchmarks/lisp_sandbox_eval.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kryon_core import ScriptManager, SecurityPolicy

SCRIPT = """\
(defn plain [] (+ 1 2))
(defn evaluated [] (hy.eval '(+ 1 2)))
(defn read-and-evaluated [] (hy.eval (hy.read "(+ 1 2)")))
"""


def best(fn: Callable[[], object], n: int, rounds: int = 5) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - start) / n)
    return min(times)


def main() -> int:
    policy = SecurityPolicy.sandboxed(time_limit=30)
    with ScriptManager(cache=False, policy=policy) as m, tempfile.TemporaryDirectory() as tmp:
        m.load_script_from_source("bench", "lisp", SCRIPT)
        calls = {name: best(m.function(f"bench.{name}"), 200) for name in ("plain", "evaluated", "read-and-evaluated")}
        base = calls["plain"]
        for name, t in calls.items():
            print(f"call {name:<20} {t * 1e6:9.1f} us  {t / base:6.2f}x")
        folder = Path(tmp)
        (folder / "macros.kl").write_text("(defmacro twice [x] `(* 2 ~x))\n")
        (folder / "inline.kl").write_text("(defmacro twice [x] `(* 2 ~x))\n(defn f [] (twice 21))\n")
        (folder / "beside.kl").write_text("(require .macros [twice])\n(defn f [] (twice 21))\n")

        def load(name: str) -> Callable[[], object]:
            def run() -> object:
                m.load_script_file(folder / f"{name}.kl")
                result = m.call_function(f"{name}.f")
                m.unload_script(name)
                return result

            return run

        loads = {name: best(load(name), 3) for name in ("inline", "beside")}
        for name, t in loads.items():
            print(f"load {name:<20} {t * 1e3:9.1f} ms  {t / loads['inline']:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
