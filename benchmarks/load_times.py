"""Cold and warm loads per engine and policy, each in a fresh process: cold
with an empty compile cache, warm with the cache the cold run left. A warm
load should skip every compiler (the cache holds the engine's compiled form),
in isolated workers too; a sandboxed warm load should take at most 2x the
trusted warm load of the same script. The script is generated: ``--functions``
small functions per language. Wren also loads the script with the modules
it may import without the host (``io``, ``random``, ``meta``) imported
(row ``wren +imports``), side by side with the same script importing nothing:
those modules come with the VM image, so the warm load of both compiles
nothing ("runs": Wren compiler entries in the script's instance).

    python benchmarks/load_times.py [--functions 500] [--languages lua,lisp] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

from kryon_core import ScriptManager

FUNCTION = {
    "lua": "function f{i}(a, b)\n  local s = a + b * {i}\n  if s > 10 then return s - 1 end\n  return s\nend\n",
    "javascript": "function f{i}(a, b) {{\n  let s = a + b * {i};\n  if (s > 10) return s - 1;\n  return s;\n}}\n",
    "python": "def f{i}(a, b):\n    s = a + b * {i}\n    if s > 10:\n        return s - 1\n    return s\n",
    "lisp": "(defn f{i} [a b]\n  (setv s (+ a (* b {i})))\n  (if (> s 10) (- s 1) s))\n",
    "wren": "class F{i} {{\n  static f(a, b) {{\n    var s = a + b * {i}\n    if (s > 10) return s - 1\n    return s\n  }}\n}}\n",
}

#: (row suffix, text put before the generated functions) per language
VARIANTS = {
    "wren": [("", ""), (" +imports", 'import "io" for File\nimport "random" for Random\nimport "meta" for Meta\n')],
}

CHILD = """
import contextlib, json, sys, time
from kryon_core import ScriptManager, SecurityPolicy
from kryon_core.isolation import forkserver
from kryon_core.isolation.testing import cached_bytecode_off
language, policy, cache, path = sys.argv[1:5]
forkserver.ENABLED.on = policy != "fresh-worker"
pol = SecurityPolicy.trusted() if policy == "trusted" else SecurityPolicy.sandboxed(time_limit=60)
m = ScriptManager(policy=pol, cache_dir=cache, output=lambda lang, text: None)
engine = m.engine(language)  # engine start-up is not part of the load
if policy in ("sandboxed", "worker-compiles") and hasattr(engine, "runtime"):
    engine.runtime.prestart(wait=60)  # nor is the fork server's warm-up, which the engine's start began
source = open(path, encoding="utf-8").read()
switch = cached_bytecode_off() if policy == "worker-compiles" else contextlib.nullcontext()
start = time.perf_counter()
with switch:
    m.load_script_from_source("big", language, source)
seconds = time.perf_counter() - start
worker = ""
if pol.sandboxed and hasattr(engine, "runtime"):
    worker = engine.runtime.worker_info("big").get("compiled_from", "")
if language == "wren":
    worker = f"runs {engine._scripts['big'].vm.compiler_runs()}"
print(json.dumps({"seconds": seconds, "from_cache": m.scripts["big"].compiled.from_cache, "worker": worker}))
m.close()
"""


def run(language: str, policy: str, cache: str, path: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, language, policy, cache, path], capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=500)
    parser.add_argument("--languages", default=",".join(FUNCTION))
    parser.add_argument("--repeat", type=int, default=3, help="warm loads measured (best counts)")
    args = parser.parse_args()
    installed = ScriptManager(cache=False).languages
    print(f"load of a {args.functions}-function script in a fresh process: cold (empty cache) and warm (best of {args.repeat})")
    print("  (sandboxed Python and Lisp: 'worker' says whether the worker ran the cached code or compiled;")
    print("   'worker-compiles' is the sandboxed load with the cached code withheld from the worker, side by side;")
    print("   'sandboxed' forks the worker from the fork server the engine's start warmed up, 'sandboxed-first'")
    print("   loads at once after the engine's start and waits for that warm-up, 'fresh-worker' starts a new")
    print("   interpreter per worker, as without a fork server)")
    print(f"  {'language':14s} {'policy':16s} {'cold':>10s} {'warm':>10s} {'cached':>7s} {'worker':>9s}  warm vs trusted warm")
    trusted_warm: dict[str, float] = {}
    for language in args.languages.split(","):
        if language not in installed:
            continue
        policies = ["trusted", "sandboxed"]
        if language in ("python", "lisp"):
            policies += ["sandboxed-first", "fresh-worker", "worker-compiles"]
        variants = VARIANTS.get(language, [("", "")])
        for policy in policies:
            # the variants of one language side by side, alternated per run
            with tempfile.TemporaryDirectory() as tmp:
                rows = []
                for n, (suffix, head) in enumerate(variants):
                    path = f"{tmp}/big{n}"
                    with open(path, "w", encoding="utf-8") as f:
                        f.write(head + "".join(FUNCTION[language].format(i=i) for i in range(args.functions)))
                    rows.append((language + suffix, path, f"{tmp}/cache{n}"))
                colds = [run(language, policy, cache, path) for _, path, cache in rows]
                warms: list[list[dict]] = [[] for _ in rows]
                for _ in range(args.repeat):
                    for n, (_, path, cache) in enumerate(rows):
                        warms[n].append(run(language, policy, cache, path))
                for (label, _, _), cold, warm in zip(rows, colds, warms, strict=True):
                    if "error" in cold or any("error" in w for w in warm):
                        print(f"  {label:14s} {policy:16s} failed: {cold.get('error') or warm[0].get('error')}")
                        continue
                    best = min(w["seconds"] for w in warm)
                    if policy == "trusted":
                        trusted_warm[label] = best
                    base = trusted_warm.get(label)
                    ratio = f"{best / base:5.2f}x" if base else ""
                    print(f"  {label:14s} {policy:16s} {cold['seconds'] * 1e3:7.1f} ms {best * 1e3:7.1f} ms "
                          f"{str(all(w['from_cache'] for w in warm)):>7s} {warm[0].get('worker', ''):>9s}  {ratio}")


if __name__ == "__main__":
    main()
