"""Every way a script compiles at run time, just under its memory cap, with no
time limit (issue 10, "the host keeps running"). QuickJS's compiler is not safe
against an allocation refused midway: an ``eval`` whose parse met the cap
crashed the process (SIGSEGV). Every memory-limited context now has the compile
guards (compile_guards.js: the wrappers ask for room first, and direct eval
sites are rewritten at load, evalsites.py), not only the time-limited ones:
a trusted policy with a ``memory_limit`` and a sandboxed one with
``time_limit=None`` here.

Each route runs in a subprocess (a crash is its exit code): the script holds
its heap a little short of full, then compiles after pads of every size (4
bytes apart) that take the free room down to nothing, each compile's failure
caught; then, uncaught, just under the cap: a MemoryLimitError naming the
script and the language. Freed, the route works again, and a bystander keeps
its state. Without the guards seven eval routes crashed here (exit code -11:
indirect, direct, ``eval.call``, ``Reflect.apply``, ``eval?.()``, eval inside
eval, a regex literal in eval); the other eval routes, the Function
constructors, ``RegExp``, ``JSON.parse`` and ``import()`` did not in that run,
and are checked all the same."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("kryon_js")

SWEEP = textwrap.dedent(r'''
    import sys
    from kryon_core import MemoryLimitError, ScriptManager, SecurityPolicy
    from kryon_core.testing.near_cap import most_that_fits
    CAP = 2 * 1024 * 1024
    how = sys.argv[1]
    SCRIPT = r"""
    let held = null;
    function one() { return 1; }
    function fill(n) { let node = null; for (let i = 0; i < n; i++) node = {n: node}; return node; }
    function probeFill(n) { held = null; held = fill(n); held = null; return 0; }
    const SMALL = "one()", LARGE = "one()" + "//xxxxxxxxxxxxxxxxxxxxxxxxx\n".repeat(40);
    const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
    const GeneratorFunction = Object.getPrototypeOf(function* () {}).constructor;
    const AsyncGeneratorFunction = Object.getPrototypeOf(async function* () {}).constructor;
    const routes = {
      "indirect eval": (s) => (0, eval)(s),
      "direct eval": (s) => eval(s),
      "eval.call": (s) => eval.call(null, s),
      "globalThis.eval": (s) => globalThis.eval(s),
      "Reflect.apply(eval)": (s) => Reflect.apply(eval, null, [s]),
      "eval?.()": (s) => eval?.(s),
      "direct eval of a spread": (s) => eval(...[s]),
      "Function": (s) => Function("return " + s)(),
      "new Function": (s) => new Function("return " + s)(),
      "Reflect.construct(Function)": (s) => Reflect.construct(Function, ["return " + s])(),
      "a function's constructor": (s) => new ((function () {}).constructor)("return " + s)(),
      "AsyncFunction": (s) => { AsyncFunction("return " + s); return 1; },
      "GeneratorFunction": (s) => GeneratorFunction("return " + s)().next().value,
      "AsyncGeneratorFunction": (s) => { AsyncGeneratorFunction("return " + s); return 1; },
      "a Function subclass": (s) => new (class extends Function {})("return " + s)(),
      "eval inside Function": (s) => Function("s", "return eval(s)")(s),
      "eval inside eval": (s) => (0, eval)("eval(" + JSON.stringify(s) + ")"),
      "regex literal in eval": (s) => (0, eval)("/(a|b)*c[0-9]+x/u.test('ac1x') ? " + s + " : 0"),
      "new RegExp": (s) => new RegExp("(a|b)*c[\\p{L}\\p{N}]+" + s.slice(0, 64), "iu").test("") ? 0 : 1,
      "JSON.parse": (s) => JSON.parse("[" + "[1,2,{\"a\":3}],".repeat(s.length) + "1]")[s.length],
      "import()": (s) => { import("x" + s).catch(() => 0); return 1; },
    };
    const route = routes[HOW];
    // the heap is held `margin` nodes short of full; pads from the largest that fits down by `span`
    // bytes then take the free room from `span` to nothing, a compile at each step
    function sweep(margin, lo, span, step) {
      held = fill(lo - margin);
      let a = 0, b = margin * 1024;   // the largest pad that fits (its out-of-memory error caught)
      while (a < b) { const mid = (a + b + 1) >> 1; try { "y".repeat(mid).length; a = mid; } catch (e) { b = mid - 1; } }
      let refused = 0, done = 0;
      for (const src of [SMALL, LARGE]) {
        for (let k = Math.max(0, a - span); k <= a; k += step) {
          try { let pad = "y".repeat(k); route(src); pad = null; done++; } catch (e) { refused++; }
        }
      }
      held = null;
      return [done, refused];
    }
    function attack(n) { held = null; held = fill(n); try { return route(SMALL); } finally { held = null; } }
    """.replace("HOW", repr(how))
    for policy in (SecurityPolicy.trusted(memory_limit=CAP), SecurityPolicy.sandboxed(memory_limit=CAP, time_limit=None)):
        m = ScriptManager(policy=policy, cache_dir=False, output=lambda lang, text: None)
        m.load_script_from_source("bystander", "javascript", "let n = 0; function bump() { return ++n; }")
        m.load_script_from_source("evil", "javascript", SCRIPT)
        before = m.call_function("bystander.bump")
        assert m.call_function("evil.attack", [0]) == 1  # the route works with room
        lo = most_that_fits(lambda n: m.call_function("evil.probeFill", [n]), 200000)
        done, refused = m.call_function("evil.sweep", [300, lo, 8192, 4])
        assert refused > 0  # the sweep reached the cap
        full = 0
        for n in range(lo - 8, lo + 1):
            try:
                m.call_function("evil.attack", [n])
            except MemoryLimitError as exc:
                assert exc.script == "evil" and exc.language == "javascript", exc
                full += 1
        assert full > 0
        assert m.call_function("evil.attack", [0]) == 1  # memory freed: the route works again
        assert m.call_function("bystander.bump") == before + 1
        m.close()
    print("alive")
''')

ROUTES = ["indirect eval", "direct eval", "eval.call", "globalThis.eval", "Reflect.apply(eval)", "eval?.()",
          "direct eval of a spread", "Function", "new Function", "Reflect.construct(Function)",
          "a function's constructor", "AsyncFunction", "GeneratorFunction", "AsyncGeneratorFunction",
          "a Function subclass", "eval inside Function", "eval inside eval", "regex literal in eval", "new RegExp",
          "JSON.parse", "import()"]


@pytest.mark.parametrize("route", ROUTES)
def test_a_compile_just_under_the_cap_is_a_memory_limit_error(route):
    done = subprocess.run([sys.executable, "-c", SWEEP, route], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"exit code {done.returncode}\n" + done.stdout + done.stderr[-3000:]
    assert done.stdout.rstrip().endswith("alive"), done.stdout
