"""What the compile guards cost a memory-capped script without a time limit, side by side.

Every memory-limited JavaScript context gets the compile guards (their room
check keeps QuickJS's compiler from meeting the cap midway, which crashes the
process). This compares, in one run, a script under ``SecurityPolicy.trusted(
memory_limit=...)`` with the guards (as shipped) and the same script in a
context made with them switched off (as before): calls from the host (the bound
handle and ``call_function``, which never pass the guards: they are a load-time
rewrite and wrappers of ``eval`` and the Function constructors), compiles at
run time (which do) and loads. Batches alternate; the best of ``--repeat`` runs
of CPU time (``time.thread_time``: the script runs on the calling thread).
Usage: ``python benchmarks/js_capped_guard.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import time
import timeit
from collections.abc import Callable
from typing import Any

import kryon_js.sandbox as sandbox

from kryon_core import ScriptManager, SecurityPolicy

POLICY = SecurityPolicy.trusted(memory_limit=256 << 20)
SOURCE = """
function add(a, b) { return a + b; }
function directEval() { let x = 1, t = 0; for (let i = 0; i < 20000; i++) t += eval('x + ' + (i & 7)); return t; }
function indirectEval() { let t = 0; for (let i = 0; i < 20000; i++) t += (0, eval)('1 + ' + (i & 7)); return t; }
function newFunction() { let t = 0; for (let i = 0; i < 5000; i++) t += new Function('a', 'return a + ' + (i & 7))(i); return t; }
function evalNamingEval() { let t = 0; for (let i = 0; i < 500; i++) t += eval('eval(' + (i & 7) + ')'); return t; }
"""


def manager(guarded: bool) -> ScriptManager:
    m = ScriptManager(cache_dir=False, policy=POLICY, output=lambda lang, text: None)
    original = sandbox.compile_guarded
    if not guarded:
        sandbox.compile_guarded = lambda policy: False  # read once, as the context is made
    try:
        m.load_script_from_source("bench", "javascript", SOURCE)
    finally:
        sandbox.compile_guarded = original
    return m


def best_of(variants: dict[str, Callable[[], Any]], number: int, repeat: int) -> dict[str, float]:
    """Seconds per call of each variant: the best of ``repeat`` alternating batches."""
    best = {k: float("inf") for k in variants}
    for fn in variants.values():
        fn()
    for _ in range(repeat):
        for k, fn in variants.items():
            best[k] = min(best[k], timeit.timeit(fn, number=number, timer=time.thread_time) / number)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    repeat = parser.parse_args().repeat
    managers = {"off": manager(False), "on": manager(True)}
    rows: list[tuple[str, dict[str, float], float]] = []
    adds = {k: m.function("bench.add") for k, m in managers.items()}
    rows.append(("bound add(2, 3)", best_of({k: (lambda f=f: f(2, 3)) for k, f in adds.items()}, 20000, repeat), 1e9))
    rows.append(("call_function add", best_of({k: (lambda m=m: m.call_function("add", [2, 3]))
                                               for k, m in managers.items()}, 20000, repeat), 1e9))
    for name, label in (("directEval", "20K short direct evals"), ("indirectEval", "20K short indirect evals"),
                        ("newFunction", "5K short new Function"), ("evalNamingEval", "500 evals naming eval")):
        rows.append((label, best_of({k: (lambda m=m, name=name: m.call_function(name))
                                     for k, m in managers.items()}, 1, repeat), 1e3))
    body = "".join(f"function f{i}(a, b) {{ const o = {{x: a, y: [b, {i}]}}; return o.x + o.y[1] * 2; }}\n"
                   for i in range(4000))
    for label, source in (("load 300 KB, no eval", body),
                          ("load 300 KB, one eval", body + "function g() { return eval('1'); }\n")):
        loads: dict[str, float] = {"off": float("inf"), "on": float("inf")}
        for r in range(repeat):
            for k, m in managers.items():
                if k == "off":
                    sandbox.compile_guarded = lambda policy: False
                try:
                    start = time.thread_time()
                    m.load_script_from_source(f"load{r}", "javascript", source)
                    loads[k] = min(loads[k], time.thread_time() - start)
                finally:
                    sandbox.compile_guarded = _ORIGINAL
                m.unload_script(f"load{r}")
        rows.append((label, loads, 1e3))
    print(f"{'case':28} {'off':>10} {'on':>10} {'on/off':>7}   (ns per call, or ms)")
    for label, t, scale in rows:
        print(f"{label:28} {t['off'] * scale:10.1f} {t['on'] * scale:10.1f} {t['on'] / t['off']:7.2f}")
    for m in managers.values():
        m.close()


_ORIGINAL = sandbox.compile_guarded

if __name__ == "__main__":
    main()
