"""What the debugger costs, measured side by side, for Python, Kryon Lisp, Lua and JavaScript.

Python and Kryon Lisp are measured twice: trusted (in process) and sandboxed
(``-sandboxed``: in a worker process, whose tracer the debugger drives).

For each language, a bound handle calls a function that loops over a small
amount of script work (so both the per-call and the per-line cost show),
in four managers side by side:

- ``plain``: no debugger ever asked for (the baseline, ratio 1.00);
- ``detached``: a debugger was attached and detached again (must cost nothing);
- ``attached``: a debugger attached, no breakpoints;
- ``breakpoints``: a breakpoint set in another function of the same script
  (never hit), so line events are on where the engine cannot avoid them.

JavaScript scripts get their statement probes only when they load while a
debugger is attached, so its script loads after attaching (``detached``:
loaded with probes, then detached: the probes stay, quiet).

Rounds alternate between the variants so machine noise hits them alike; the
best round counts (CPU time of this process, which other processes on a
shared machine disturb less than wall time). Ratios are to ``plain``.

    python benchmarks/debugger_cost.py [--rounds N] [--calls N]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from kryon_core import ScriptManager, SecurityPolicy
from kryon_core.debug import BreakpointSpec

PROGRAMS = {
    "python": ("py", "def work(n):\n    s = 0\n    for i in range(n):\n        s += i\n    return s\n\n"
               "def other():\n    return 1\n", 7),
    "lisp": ("kl", "(defn work [n]\n  (setv s 0)\n  (for [i (range n)]\n    (+= s i))\n  s)\n\n"
             "(defn other []\n  1)\n", 7),
    "lua": ("lua", "function work(n)\n  local s = 0\n  for i = 1, n do\n    s = s + i\n  end\n  return s\nend\n\n"
            "function other()\n  return 1\nend\n", 10),
    "javascript": ("js", "function work(n) {\n  let s = 0;\n  for (let i = 0; i < n; i++) {\n    s += i;\n  }\n"
                   "  return s;\n}\n\nfunction other() {\n  return 1;\n}\n", 10),
}
#: languages whose scripts must load after the debugger attaches to be debugged
LOAD_AFTER_ATTACH = {"javascript"}
PROGRAMS["python-sandboxed"] = PROGRAMS["python"]
PROGRAMS["lisp-sandboxed"] = PROGRAMS["lisp"]
VARIANTS = ("plain", "detached", "attached", "breakpoints")


def manager(language: str, variant: str) -> tuple[ScriptManager, Callable[..., object]]:
    _, source, other_line = PROGRAMS[language]
    sandboxed = language.endswith("-sandboxed")
    language = language.removesuffix("-sandboxed")
    m = ScriptManager(policy=SecurityPolicy.sandboxed() if sandboxed else SecurityPolicy.trusted(), cache=False)
    late = language in LOAD_AFTER_ATTACH and variant != "plain"
    if not late:
        m.load_script_from_source("bench", language, source)
    if variant != "plain":
        dbg = m.debugger()
        if late:
            m.load_script_from_source("bench", language, source)
        if variant == "detached":
            dbg.detach()
        elif variant == "breakpoints":
            dbg.set_breakpoints("bench", [BreakpointSpec(other_line)])
    return m, m.function("bench.work")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--loop", type=int, default=20, help="loop iterations inside each call")
    parser.add_argument("--languages", default=",".join(PROGRAMS), help="comma-separated, of: " + ", ".join(PROGRAMS))
    args = parser.parse_args()
    print(f"{'language':18}{'variant':13}{'CPU us/call':>12}{'ratio':>8}")
    for language in args.languages.split(","):
        setups = {v: manager(language, v) for v in VARIANTS}
        best = {v: float("inf") for v in VARIANTS}
        for _ in range(args.rounds):
            for variant in VARIANTS:
                fn = setups[variant][1]
                start = time.process_time()
                for _ in range(args.calls):
                    fn(args.loop)
                best[variant] = min(best[variant], (time.process_time() - start) / args.calls)
        for variant in VARIANTS:
            print(f"{language:18}{variant:13}{best[variant] * 1e6:12.2f}{best[variant] / best['plain']:8.2f}")
        for m, _ in setups.values():
            m.close()


if __name__ == "__main__":
    main()
