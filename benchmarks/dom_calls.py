"""Scripts driving the UI: the time of one ``kryon.setProperty`` made by a
script in a loop, per language and policy, over a raw lupa loop calling
``Document.set_property`` directly (the floor any binding can reach), measured
side by side in one run. Targets: at most 2x the raw loop for in-process
engines, at most 5 us for Wren, at most 10 us for isolated (sandboxed Python
and Lisp) workers; a frame of 1,000 updates must fit in 16 ms.

    python benchmarks/dom_calls.py [--calls N] [--rounds N] [--languages lua,javascript] [--cpu]

``--cpu`` times with the process's CPU time instead of the wall clock (less
sensitive to other programs on a loaded machine; worker processes of
isolated engines are not counted, so leave it off for sandboxed Python and
Lisp).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from kryon_core import Document, ScriptManager, SecurityPolicy

LOOPS = {
    "lua": 'function frame(n) local el = kryon.getElementById("box") local set = kryon.setProperty\n'
           '  for i = 1, n do set(el, "x", i) end return n end',
    "javascript": 'function frame(n) { const el = kryon.getElementById("box");\n'
                  '  for (let i = 0; i < n; i++) kryon.setProperty(el, "x", i); return n; }',
    "python": "import kryon\ndef frame(n):\n    el = kryon.get_element_by_id('box')\n    set_ = kryon.set_property\n"
              "    for i in range(n):\n        set_(el, 'x', i)\n    return n",
    "lisp": '(defn frame [n] (setv el (get-element-by-id "box")) (for [i (range n)] (set-property! el "x" i)) n)',
    "wren": 'import "kryon" for Kryon\nclass Bench {\n  static frame(n) {\n    var el = Kryon.getElementById("box")\n'
            '    for (i in 0...n) Kryon.setProperty(el, "x", i)\n    return n\n  }\n}',
}
FRAME = {"wren": "Bench.frame"}


def raw_lupa_per_call(doc: Document, calls: int, clock: Callable[[], float] = time.perf_counter) -> float:
    import lupa.lua54 as lua54

    lua = lua54.LuaRuntime()
    loop = lua.eval("function(set, el, n) for i = 1, n do set(el, 'x', i) end end")
    el = doc.get_element_by_id("box")
    start = clock()
    loop(doc.set_property, el, calls)
    return (clock() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--languages", default=",".join(LOOPS))
    parser.add_argument("--cpu", action="store_true", help="time with process CPU time, not the wall clock")
    args = parser.parse_args()
    clock = time.process_time if args.cpu else time.perf_counter
    installed = ScriptManager(cache=False).languages
    rows = []
    for policy_name, policy in (("trusted", SecurityPolicy.trusted()), ("sandboxed", SecurityPolicy.sandboxed(time_limit=60))):
        m = ScriptManager(policy=policy, cache=False, output=lambda lang, text: None)
        doc = m.setup_dom_bridge(Document())
        doc.append_child(doc.root, doc.create_element("div", {"id": "box"}))
        for lang in args.languages.split(","):
            if lang not in installed:
                continue
            m.load_script_from_source(f"ui_{lang}", lang, LOOPS[lang])
            name = f"ui_{lang}.{FRAME.get(lang, 'frame')}"
            isolated = policy.sandboxed and lang in ("python", "lisp")
            calls = max(200, args.calls // 20) if isolated else args.calls
            best_script = best_raw = float("inf")
            for _ in range(args.rounds):  # alternate, so machine noise hits both alike
                best_raw = min(best_raw, raw_lupa_per_call(doc, calls, clock))
                start = clock()
                m.call_function(name, [calls])
                best_script = min(best_script, (clock() - start) / calls)
            rows.append((lang, policy_name, best_script, best_raw))
        m.close()
    print("one kryon.setProperty from a script loop, best of rounds, vs a raw lupa loop calling Document.set_property"
          + (" (CPU time)" if args.cpu else ""))
    print(f"  {'language':12s} {'policy':10s} {'per call':>10s} {'raw lupa':>10s}  ratio  1,000/frame")
    for lang, policy_name, script, raw in rows:
        print(f"  {lang:12s} {policy_name:10s} {script * 1e6:7.2f} us {raw * 1e6:7.2f} us  {script / raw:5.2f}x"
              f"  {script * 1000 * 1e3:6.2f} ms")


if __name__ == "__main__":
    main()
