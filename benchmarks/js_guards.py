"""What the sandbox's guards cost on long inputs, measured side by side.

Each row runs one builtin on an input above the guard's threshold in a trusted
script (the native builtin) and in a sandboxed one (the guard, under a time
limit it does not reach), alternating, best of ``--repeat`` runs of CPU time
(``time.thread_time``; the script runs on the calling thread). The ratio is
guarded / native. Usage: ``python benchmarks/js_guards.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import time

from kryon_core import ScriptManager, SecurityPolicy

#: name -> (setup run once at load, the measured expression)
CASES = {
    "replaceAll, 4M matches": ("const s = 'a'.repeat(2 ** 22);", "s.replaceAll('a', 'b').length"),
    "replaceAll $&, 4M matches": ("const s = 'a'.repeat(2 ** 22);", "s.replaceAll('a', '[$&]').length"),
    "JSON.parse, 4M numbers": ("const s = '[' + '1,'.repeat(2 ** 22) + '1]';", "JSON.parse(s).length"),
    "JSON.parse, 256K objects": ("const s = '[' + '{\"a\":[1,\"x,y\"],\"b\":{}},'.repeat(2 ** 18) + '0]';",
                                 "JSON.parse(s).length"),
    "JSON.parse, nested strings": ("const s = '{\"a\":[[' + '\"s\",'.repeat(2 ** 21) + '\"t\"]]}';", "JSON.parse(s).a.length"),
    "normalize NFD, 8M": ("const s = 'e\\u0301x'.repeat(2 ** 23 / 3 | 0);", "s.normalize('NFD').length"),
    "toUpperCase, 16M": ("const s = 'ab'.repeat(2 ** 23);", "s.toUpperCase().length"),
    "encodeURIComponent, 8M": ("const s = 'a\\u00e9'.repeat(2 ** 22);", "encodeURIComponent(s).length"),
    "direct eval, 100K short": ("", "(() => { let x = 1, t = 0; for (let i = 0; i < 1e5; i++) t += eval('x + ' + (i & 7)); return t; })()"),
    "indirect eval, 100K short": ("", "(() => { let t = 0; for (let i = 0; i < 1e5; i++) t += (0, eval)('1 + ' + (i & 7)); return t; })()"),
    "new Function, 20K short": ("", "(() => { let t = 0; for (let i = 0; i < 2e4; i++) "
                                   "t += new Function('a', 'return a + ' + (i & 7))(i); return t; })()"),
    "eval, 1 MiB source": ("const s = '1+'.repeat(2 ** 19) + '1';", "eval(s)"),
    "eval, 2 MiB source (host measures)": ("const s = '1+'.repeat(2 ** 20) + '1';", "eval(s)"),
    "eval of code naming eval, 2K": ("", "(() => { let t = 0; for (let i = 0; i < 2000; i++) "
                                        "t += eval('eval(' + (i & 7) + ')'); return t; })()"),
    "new RegExp, 200K short": ("", "(() => { let t = 0; for (let i = 0; i < 2e5; i++) "
                                   "t += new RegExp('a+b' + (i & 7)).source.length; return t; })()"),
    "match with a string, 200K": ("", "(() => { let t = 0; for (let i = 0; i < 2e5; i++) "
                                      "t += 'xaab3'.match('a+b' + (i & 7)) ? 1 : 0; return t; })()"),
    "split with a RegExp, 200K": ("const r = /,/;", "(() => { let t = 0; for (let i = 0; i < 2e5; i++) "
                                                   "t += 'a,b,c'.split(r).length; return t; })()"),
    "new RegExp, 12K alternatives": ("const p = Array.from({length: 12000}, (_, i) => 'w' + i).join('|');",
                                     "new RegExp(p).source.length"),
    "Map.get, 1M short keys": ("const m = new Map(); for (let i = 0; i < 1000; i++) m.set('k' + i, i);",
                               "(() => { let t = 0; for (let i = 0; i < 2 ** 20; i++) t += m.get('k' + (i % 1000)); return t; })()"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    repeat = parser.parse_args().repeat
    policies = {"native": SecurityPolicy.trusted(), "guarded": SecurityPolicy.sandboxed(time_limit=600, memory_limit=1 << 30)}
    managers = {k: ScriptManager(cache_dir=False, policy=p, output=lambda lang, text: None) for k, p in policies.items()}
    print(f"{'case':32} {'native s':>9} {'guarded s':>10} {'ratio':>6}")
    for i, (name, (setup, expr)) in enumerate(CASES.items()):
        best = {k: float("inf") for k in managers}
        for m in managers.values():
            m.load_script_from_source(f"c{i}", "javascript", f"{setup}\nfunction run() {{ return {expr}; }}")
        for _ in range(repeat):
            for k, m in managers.items():  # alternating, so load changes hit both
                start = time.thread_time()
                m.call_function(f"c{i}.run")
                best[k] = min(best[k], time.thread_time() - start)
        for m in managers.values():
            m.unload_script(f"c{i}")
        print(f"{name:32} {best['native']:9.3f} {best['guarded']:10.3f} {best['guarded'] / best['native']:6.2f}", flush=True)
    load_costs(managers, repeat)
    for m in managers.values():
        m.close()


def load_costs(managers: dict[str, ScriptManager], repeat: int) -> None:
    """Loading a script: without the token eval the source is not read again; with it,
    tree-sitter parses it to rewrite its direct-eval sites; with a line long enough and with
    '|' enough to hold a regex literal too costly to compile, to find the literals."""
    body = "".join(f"function f{i}(a, b) {{ const o = {{x: a, y: [b, {i}]}}; return o.x + o.y[1] * 2; }}\n" for i in range(4000))
    sources = {"load 300 KB, no eval": body, "load 300 KB, one eval": body + "function g() { return eval('1'); }\n",
               # a line with '|' enough to hold a costly regex literal: tree-sitter reads it (regexcost.py)
               "load 300 KB + a 100 KB line of ||": body + "function h(a) { return " + " || ".join(["a"] * 20000) + "; }\n"}
    print(f"{'case':32} {'native s':>9} {'guarded s':>10} {'ratio':>6}")
    for name, source in sources.items():
        best = {k: float("inf") for k in managers}
        for r in range(repeat):
            for k, m in managers.items():
                start = time.thread_time()
                m.load_script_from_source(f"load{r}", "javascript", source)
                best[k] = min(best[k], time.thread_time() - start)
                m.unload_script(f"load{r}")
        print(f"{name:32} {best['native']:9.3f} {best['guarded']:10.3f} {best['guarded'] / best['native']:6.2f}", flush=True)


if __name__ == "__main__":
    main()
