"""Cross-language call overhead: for every ordered pair of installed languages
(A calls B through ``kryon.call``), the time of A calling B's ``noop`` over A
calling its own ``noop`` the same way, measured side by side in one run.

    python benchmarks/cross_language.py [--calls N] [--rounds N] [--cpu] [--callers LANG,...] [--policy sandboxed]

``--cpu`` times the calling thread's CPU time instead of the wall clock, which
a loaded machine disturbs far less (every in-process engine runs its calls on
the calling thread, so their time counts). ``--policy sandboxed`` loads every
script under the default sandboxed policy users get (a long time limit, so the
loops finish); sandboxed Python and Lisp then run in worker processes, whose
CPU time ``--cpu`` does not see: read their rows in wall time.
"""

from __future__ import annotations

import argparse
import itertools
import time

from kryon_core import ScriptManager, SecurityPolicy

SOURCES = {
    "lua": "function noop(x) return x end\n"
           "function loop(name, n) local c = kryon.call for i = 1, n do c(name, i) end return n end",
    "javascript": "function noop(x) { return x; }\n"
                  "function loop(name, n) { for (let i = 0; i < n; i++) kryon.call(name, i); return n; }",
    "python": "import kryon\ndef noop(x): return x\n"
              "def loop(name, n):\n    for i in range(n):\n        kryon.call(name, i)\n    return n",
    "lisp": "(defn noop [x] x)\n(defn loop [name n] (for [i (range n)] (kryon-call name i)) n)",
    "wren": "import \"kryon\" for Kryon\nclass Bench {\n  static noop(x) { x }\n"
            "  static loop(name, n) {\n    for (i in 0...n) Kryon.call(name, [i])\n    return n\n  }\n}",
}


TIMER = time.perf_counter


def per_call(m: ScriptManager, caller: str, target: str, calls: int) -> float:
    loop = "Bench.loop" if caller == "wren" else "loop"
    start = TIMER()
    m.call_function(f"b_{caller}.{loop}", [target, calls])
    return (TIMER() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cpu", action="store_true", help="time the thread's CPU time, not the wall clock")
    parser.add_argument("--callers", default="", help="only these calling languages (comma-separated)")
    parser.add_argument("--policy", choices=("trusted", "sandboxed"), default="trusted")
    args = parser.parse_args()
    callers = {c for c in args.callers.split(",") if c}
    global TIMER
    TIMER = time.thread_time if args.cpu else time.perf_counter
    policy = SecurityPolicy.trusted() if args.policy == "trusted" else SecurityPolicy.sandboxed(time_limit=600)
    m = ScriptManager(policy=policy, cache=False, output=lambda lang, text: None)
    langs = []
    for lang, source in SOURCES.items():
        if lang in m.languages:
            try:
                m.load_script_from_source(f"b_{lang}", lang, source)
                langs.append(lang)
            except Exception as exc:  # an engine that cannot run the loop is reported, not fatal
                print(f"  {lang}: skipped ({exc})")
    noop = {lang: f"b_{lang}.Bench.noop" if lang == "wren" else f"b_{lang}.noop" for lang in langs}
    clock = "thread CPU time" if args.cpu else "wall clock"
    print(f"cross-language kryon.call overhead, {args.policy} policy, best of {args.rounds} rounds of {args.calls} calls ({clock})")
    print(f"  {'caller -> callee':24s} {'same-language':>14s} {'cross':>10s}  ratio")
    for caller, callee in itertools.permutations(langs, 2):
        if callers and caller not in callers:
            continue
        same = cross = float("inf")
        for _ in range(args.rounds):
            same = min(same, per_call(m, caller, noop[caller], args.calls))
            cross = min(cross, per_call(m, caller, noop[callee], args.calls))
        print(f"  {caller + ' -> ' + callee:24s} {same * 1e6:11.2f} us {cross * 1e6:7.2f} us  {cross / same:5.2f}x")
    m.close()


if __name__ == "__main__":
    main()
