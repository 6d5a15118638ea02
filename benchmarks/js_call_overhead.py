"""What Kryon costs on top of QuickJS for a JavaScript call, measured side by side.

Rows: a scalar call add(int, int) -> int, and a call with a 100-element list
argument. Columns (ns per call, and ratios):

- ``raw``: the bare binding, ``quickjs.Context().get(fn)(...)`` (lists passed
  as ``ctx.parse_json(json.dumps(xs))``, what the binding itself does);
- ``Function``: the binding's documented ``quickjs.Function`` helper (runs
  every call on a worker thread; ``run_gc=False`` to leave its per-call GC out);
- ``manager``: ``ScriptManager.call_function("add", [...])``;
- ``bound``: the handle from ``manager.function("bench.add")``;
- ``py bound``: the same handle made with ``KRYON_JS_NO_CEXT=1``, i.e. through the
  generated Python caller rather than the compiled one (``kryon_js/_ccall.c``), for
  ``add`` only (the list call takes the Python caller either way).

Ratios are printed against ``raw`` and against ``Function``; run under a
trusted and a sandboxed policy. Usage: ``python benchmarks/js_call_overhead.py
[--quick] [--cpu]``; ``--cpu`` times the calling thread's CPU time instead of
the wall clock, which a loaded machine disturbs far less (the binding runs
JavaScript on the calling thread, so its time counts; not so for
``Function``, whose worker thread's time it leaves out).
"""

from __future__ import annotations

import json
import os
import sys
import time
import timeit

import quickjs

from kryon_core import ScriptManager, SecurityPolicy

SOURCE = """
function add(a, b) { return a + b; }
function total(xs) { let s = 0; for (let i = 0; i < xs.length; i++) s += xs[i]; return s; }
"""


TIMER = time.thread_time if "--cpu" in sys.argv else time.perf_counter


def interleaved(variants: dict, numbers: dict, rounds: int) -> dict:
    """ns per call of each variant: the best of ``rounds`` batches, the
    variants' batches interleaved so a change in machine load hits them alike."""
    best = {name: float("inf") for name in variants}
    for fn in variants.values():
        fn()
    for _ in range(rounds):
        for name, fn in variants.items():
            n = numbers[name]
            best[name] = min(best[name], timeit.timeit(fn, number=n, timer=TIMER) / n * 1e9)
    return best


def main() -> None:
    quick = "--quick" in sys.argv
    n_scalar, n_list = (2_000, 400) if quick else (10_000, 1_000)
    rounds = 5 if quick else 15
    xs = list(range(100))

    ctx = quickjs.Context()
    ctx.eval(SOURCE)
    raw_add, raw_total = ctx.get("add"), ctx.get("total")
    f_add = quickjs.Function("add", SOURCE)
    f_total = quickjs.Function("total", SOURCE)

    rows = []
    # with kryon-core's compiled core: call_function through the Python method too (as with KRYON_CORE_NO_CEXT=1)
    python_method = getattr(ScriptManager.call_function, "__wrapped__", None)
    for label, policy in (("trusted", SecurityPolicy.trusted()), ("sandboxed", SecurityPolicy.sandboxed())):
        m = ScriptManager(cache_dir=False, policy=policy, output=lambda lang, text: None)
        m.load_script_from_source("bench", "javascript", SOURCE)
        add, total = m.function("bench.add"), m.function("bench.total")
        saved = os.environ.get("KRYON_JS_NO_CEXT")
        os.environ["KRYON_JS_NO_CEXT"] = "1"  # callers are made when first asked for: this one in Python
        try:
            m_py = ScriptManager(cache_dir=False, policy=policy, output=lambda lang, text: None)
            m_py.load_script_from_source("bench", "javascript", SOURCE)
            py_add = m_py.function("bench.add")
        finally:
            if saved is None:
                del os.environ["KRYON_JS_NO_CEXT"]
            else:
                os.environ["KRYON_JS_NO_CEXT"] = saved
        assert py_add(2, 3) == 5
        assert m.call_function("add", [2, 3]) == 5 and add(2, 3) == 5 and raw_add(2, 3) == 5
        assert m.call_function("total", [xs]) == total(xs) == 4950
        scalar = interleaved(
            {
                "raw": lambda: raw_add(2, 3),
                "Function": lambda: f_add(2, 3, run_gc=False),
                "manager": lambda: m.call_function("add", [2, 3]),
                "bound": lambda: add(2, 3),
                "py bound": lambda: py_add(2, 3),
                **({"py manager": lambda: python_method(m, "add", [2, 3])} if python_method else {}),
            },
            {"raw": n_scalar, "Function": max(50, n_scalar // 100), "manager": n_scalar, "bound": n_scalar,
             "py bound": n_scalar, "py manager": n_scalar},
            rounds,
        )
        listed = interleaved(
            {
                "raw": lambda: raw_total(ctx.parse_json(json.dumps(xs))),
                "Function": lambda: f_total(xs, run_gc=False),
                "manager": lambda: m.call_function("total", [xs]),
                "bound": lambda: total(xs),
            },
            {"raw": n_list, "Function": max(50, n_list // 20), "manager": n_list, "bound": n_list},
            rounds,
        )
        rows.append((label, "add(int, int)", scalar))
        rows.append((label, "total(100 ints)", listed))
        m.close()
        m_py.close()

    print(f"{'policy':10} {'call':16} {'raw ns':>8} {'Function':>9} {'manager':>8} {'bound':>8}"
          f"  {'mgr/raw':>7} {'bound/raw':>9} {'mgr/Fn':>7} {'bound/Fn':>8} {'py bound':>8} {'py/raw':>6} {'pymgr/raw':>9}")
    for label, call, t in rows:
        py = f" {t['py bound']:8.0f} {t['py bound'] / t['raw']:6.2f}" if "py bound" in t else ""
        py += f" {t['py manager'] / t['raw']:9.2f}" if "py manager" in t else ""
        print(f"{label:10} {call:16} {t['raw']:8.0f} {t['Function']:9.0f} {t['manager']:8.0f} {t['bound']:8.0f}"
              f"  {t['manager'] / t['raw']:7.2f} {t['bound'] / t['raw']:9.2f}"
              f" {t['manager'] / t['Function']:7.3f} {t['bound'] / t['Function']:8.3f}{py}")


if __name__ == "__main__":
    main()
