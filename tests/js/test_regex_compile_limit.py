"""Regular expressions QuickJS's compiler works on long without allocating
(so the watchdog's cut, which lands at an allocation, came up to about 1.9x
the time limit late): many alternatives, many empty alternatives, many
forward named references. Under a time limit such a pattern is refused
before it compiles (compile_guards.js, regexcost.py), through every route
that compiles a pattern from run-time text and for literals in a load: a
SizeLimitError naming the script and line, well inside the time limit, the
script usable afterwards and a bystander intact. Ordinary patterns give the
same results through every route as without the guard; trusted scripts are
not measured."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from js_budget import assert_stops, attacker_source, budget_manager

from kryon_core import ScriptManager, ScriptTimeoutError, SecurityPolicy, SizeLimitError

pytest.importorskip("kryon_js")

from kryon_js import regexcost  # noqa: E402

JS = "javascript"
BUDGET = 0.5
#: CPU seconds a stopped attack may take (the issue asks for 1.5x the budget)
BOUND = 1.5 * BUDGET
#: patterns built by doubling (fast under the budget), each far over the bound and seconds to compile
#: natively (so without the guard each test fails: a timeout, or a compile past the bound)
SHAPES = {
    "many alternatives": "let u = 'a0|a1|'; while (u.length < 2 ** 18) u = (u + u).slice(0); const p = u + 'b';",
    "many empty alternatives": "const p = '|'.repeat(2 ** 17);",
    "many forward named references":
        "let u = '\\\\k<zz>'; while (u.length < 2 ** 18) u = (u + u).slice(0); const p = u + '(?<zz>x)';",
}
#: a compile of p from run-time text (line 2 of the attacker's source)
ROUTES = {
    "new RegExp": "new RegExp(p)",
    "RegExp called": "RegExp(p)",
    "RegExp called with a RegExp-like": "RegExp({[Symbol.match]: true, source: p, flags: ''})",
    "Reflect.construct": "Reflect.construct(RegExp, [p])",
    "a Proxy of RegExp": "new (new Proxy(RegExp, {}))(p)",
    "RegExp.prototype.constructor": "new /x/.constructor(p)",
    "a subclass": "new (class extends RegExp {})(p)",
    "a subclass's parent": "new (Object.getPrototypeOf(class extends RegExp {}))(p)",
    "RegExp.prototype.compile": "/x/.compile(p)",
    "String.prototype.match": "'x'.match(p)",
    "String.prototype.match on an object": "String.prototype.match.call({}, {toString: () => p})",
    "String.prototype.matchAll": "[...'x'.matchAll(p)]",
    "String.prototype.search": "'x'.search(p)",
    "a species constructor": "'x'.split(Object.assign(/x/, {constructor: {[Symbol.species]: "
                             "function (s, fl) { return new RegExp(p, fl); }}}))",
    "Symbol.split's default species": "RegExp.prototype[Symbol.split].call("
                                      "{constructor: undefined, flags: '', [Symbol.match]: true, source: p}, 'x')",
    "Symbol.matchAll's default species": "[...RegExp.prototype[Symbol.matchAll].call({constructor: undefined, "
                                         "flags: 'g', lastIndex: 0, [Symbol.match]: true, source: p}, 'x')]",
    "a literal in eval": "eval('/' + p + '/')",
    "a literal in indirect eval": "(0, eval)('/' + p + '/')",
    "a literal in Function": "Function('return /' + p + '/')",
    "a literal in new Function's parameters": "new Function('a = /' + p + '/', 'return a')",
    "a literal in an AsyncFunction": "(async function () {}).constructor('return /' + p + '/')",
    "a literal in a GeneratorFunction": "(function* () {}).constructor('yield /' + p + '/')",
}


@pytest.fixture(scope="module")
def m():
    with budget_manager(BUDGET) as mgr:
        yield mgr


def _refused(m, setup: str, body: str, *, catching: bool = False) -> None:
    source = attacker_source(setup, body, catching=catching,
                             ok="eval('/a|b/.exec(\"b\")[0]') + new RegExp('[a-z]+', 'iu').exec('Ab')[0] + a.length")
    error = assert_stops(m, source, ScriptTimeoutError if catching else SizeLimitError, ok="bAb1000", within=BOUND,
                         what=body)
    assert error.language == JS
    if not catching:
        assert error.line == 2
        assert "too costly to compile under the policy's time_limit" in str(error)


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_a_costly_pattern_is_refused_before_it_compiles(m, route, shape):
    _refused(m, SHAPES[shape], ROUTES[route])


@pytest.mark.parametrize("route", ["new RegExp", "String.prototype.match", "Symbol.split's default species",
                                   "a literal in eval", "a literal in Function"])
def test_a_script_catching_the_refusal_still_stops_at_its_time_limit(m, route):
    _refused(m, SHAPES["many empty alternatives"], ROUTES[route], catching=True)


def test_the_shapes_are_slow_without_the_guard():
    """Sanity check: a trusted script compiling a quarter of the empty-alternatives shape
    takes more CPU time than the tests allow (the compile is quadratic)."""
    with ScriptManager(cache_dir=False, policy=SecurityPolicy.trusted()) as mgr:
        mgr.load_script_from_source("s", JS, "function f() { return new RegExp('|'.repeat(2 ** 17)).source.length; }")
        start = time.thread_time()
        assert mgr.call_function("s.f") == 2 ** 17
        assert time.thread_time() - start > BOUND


#: the bound: '|' x 32768 costs exactly REWORK (32768 x 32768 = 2^30)
AT_BOUND = 32768


@pytest.mark.parametrize("route", ["new RegExp", "String.prototype.search", "a literal in eval", "a literal in Function"])
def test_the_bound_is_exact(m, route):
    body = ROUTES[route]
    src = (f"function at() {{ const p = '|'.repeat({AT_BOUND}); {body}; return p.length; }}\n"
           f"function past() {{ const p = '|'.repeat({AT_BOUND + 1}); {body}; return p.length; }}\n")
    m.load_script_from_source("edge", JS, src)
    try:
        assert m.call_function("edge.at") == AT_BOUND
        with pytest.raises(SizeLimitError) as info:
            m.call_function("edge.past")
        assert info.value.line == 2
    finally:
        m.unload_script("edge")
    assert regexcost.over(AT_BOUND, AT_BOUND, 0) is False
    assert regexcost.over(AT_BOUND + 1, AT_BOUND + 1, 0) is True


def test_the_two_halves_share_their_constants():
    text = (Path(regexcost.__file__).parent / "compile_guards.js").read_text(encoding="utf-8")
    found = re.search(r"const REWORK = 2 \*\* (\d+), KREF = (\d+), FREE = (\d+);", text)
    assert found, "compile_guards.js no longer states the bound where this test looks"
    assert (2 ** int(found.group(1)), int(found.group(2)), int(found.group(3))) == (
        regexcost.REWORK, regexcost.KREF, regexcost.FREE)
    # FREE is safe: no pattern that short can be over the bound
    n = regexcost.FREE
    assert not regexcost.over(n, n, n // 3)


# -- attempts to reach the unchecked compiler ---------------------------------------------------------
SNEAKY = {   # a value that answers the check with a short text and the compiler with p, were it read twice
    "toString": "new RegExp(s)",
    "toString through match": "'x'.match(s)",
    "toString through matchAll": "[...'x'.matchAll(s)]",
    "toString through compile": "/x/.compile(s)",
    "a RegExp-like's source": "new RegExp(like)",
    "a stand-in's source for Symbol.split": "RegExp.prototype[Symbol.split].call(Object.assign(like, {constructor: undefined}), 'x')",
    "a stand-in's source for Symbol.matchAll": "[...RegExp.prototype[Symbol.matchAll].call("
                                               "Object.assign(like, {constructor: undefined, flags: 'g', lastIndex: 0}), 'x')]",
}


@pytest.mark.parametrize("name", sorted(SNEAKY))
def test_a_value_read_once_cannot_answer_the_check_and_the_compiler_differently(m, name):
    src = ("function f() { const p = '|'.repeat(2 ** 19); let k = 0;\n"
           "  const s = { toString() { return k++ === 0 ? 'a' : p; } };\n"
           "  const like = { [Symbol.match]: true, flags: '', get source() { return k++ === 0 ? 'a' : p; } };\n"
           f"  const r = {SNEAKY[name]}; return k; }}\n")
    m.load_script_from_source("sneaky", JS, src)
    try:
        start = time.thread_time()
        assert m.call_function("sneaky.f") == 1   # read once, and what was checked ('a') compiled
        assert time.thread_time() - start < BOUND
    finally:
        m.unload_script("sneaky")


LEAK = """
function f() {
  const p = '|'.repeat(2 ** 19), got = [];
  Error.prepareStackTrace = (e, sites) => { for (const s of sites) { const g = s.getFunction(); if (g) got.push(g); } return ''; };
  const capture = () => { const e = new Error('x'); e.stack; };
  // user code that runs while a wrapped native is on the stack
  const nt = new Proxy(function () {}, { get(t, k) { capture(); return Reflect.get(t, k); } });
  try { Reflect.construct(RegExp, ['a'], nt); } catch (e) {}
  Object.defineProperty(String.prototype, Symbol.match, { get() { capture(); return undefined; }, configurable: true });
  Object.defineProperty(String.prototype, Symbol.search, { get() { capture(); return undefined; }, configurable: true });
  Object.defineProperty(String.prototype, Symbol.matchAll, { get() { capture(); return undefined; }, configurable: true });
  'x'.match('a'); 'x'.search('a'); [...'x'.matchAll('a')];
  delete String.prototype[Symbol.match]; delete String.prototype[Symbol.search]; delete String.prototype[Symbol.matchAll];
  const fake = { get constructor() { capture(); return undefined; }, flags: 'g', lastIndex: 0, [Symbol.match]: true, source: 'a' };
  RegExp.prototype[Symbol.split].call(fake, 'x'); [...RegExp.prototype[Symbol.matchAll].call(fake, 'x')];
  const real = /a/; Object.defineProperty(real, 'constructor', { get() { capture(); return undefined; } });
  'x'.split(real); real.compile('b');
  Error.prepareStackTrace = undefined;
  const names = new Set(['RegExp', 'match', 'matchAll', 'search', 'compile', '[Symbol.split]', '[Symbol.matchAll]']);
  let tried = 0, refused = 0;
  for (const g of got) {
    if (!names.has(g.name)) continue;
    for (const attempt of [() => Reflect.construct(g, [p]), () => g.call('x', p), () => g.call(/x/, p),
                           () => g.call({constructor: undefined, flags: '', [Symbol.match]: true, source: p}, 'x')]) {
      tried++;
      try { attempt(); } catch (e) { if (e instanceof RangeError) refused++; }
    }
  }
  return [got.length > 0, tried === refused];
}
"""


def test_call_sites_never_hand_out_the_unchecked_natives(m):
    m.load_script_from_source("leak", JS, LEAK)
    try:
        start = time.thread_time()
        assert m.call_function("leak.f") == [True, True]
        assert time.thread_time() - start < BOUND
    finally:
        m.unload_script("leak")


def test_a_script_replacing_the_guarded_builtins_gains_nothing(m):
    """The guard holds its own references: a script that deletes or replaces
    RegExp, String.prototype.replaceAll (which the guard counts with) or Reflect
    afterwards cannot reach the native. (One attempt a call: the limit is wall time.)"""
    src = ("const p = '|'.repeat(2 ** 19), R = RegExp;\n"
           "globalThis.RegExp = function () {}; delete String.prototype.replaceAll; Reflect.construct = null;\n"
           "String.prototype.includes = () => true; Object.defineProperty = null; Reflect.apply = null;\n"
           "const tries = [() => new R(p), () => 'x'.match(p), () => eval('/' + p + '/'), () => /x/.compile(p),\n"
           "               () => 'x'.split(Object.assign(/x/, {constructor: undefined}))];\n"
           "function f(i) { try { tries[i](); } catch (e) { return e instanceof RangeError; } return 'compiled'; }\n")
    m.load_script_from_source("replacer", JS, src)
    try:
        for i in range(5):
            start = time.thread_time()
            # refused; the last splits with /x/, whose own source is short
            assert m.call_function("replacer.f", [i]) == (True if i < 4 else "compiled")
            assert time.thread_time() - start < BOUND
    finally:
        m.unload_script("replacer")


# -- loads: literals compile with the parse ------------------------------------------------------------
def test_a_load_with_a_costly_literal_is_refused_naming_script_and_line(m):
    before = m.call_function("bystander.bump")
    source = "let kept = 1;\nconst r = /" + "|" * 2 ** 19 + "/;\nfunction f() { return 1; }\n"
    start = time.thread_time()
    with pytest.raises(SizeLimitError) as info:
        m.load_script_from_source("costly", JS, source)
    assert time.thread_time() - start < BOUND
    assert (info.value.script, info.value.language, info.value.line, info.value.column) == ("costly", JS, 2, 12)
    assert m.call_function("bystander.bump") == before + 1


@pytest.mark.parametrize("source", [
    "// " + "|" * 2 ** 19 + "\nfunction f() { return 1; }\n",            # QuickJS and tree-sitter may read
    "var a = 1;\n-->" + "|" * 2 ** 19 + "\nfunction f() { return 1; }\n",  # comments differently: refused
    "const r = /" + "|" * 2 ** 19 + "/;\nfunction f() { return 1 +; }\n",  # does not parse: refused
], ids=["a line comment", "an HTML-like comment", "a source that does not parse"])
def test_a_long_line_the_host_cannot_read_for_sure_is_refused(m, source):
    with pytest.raises(SizeLimitError) as info:
        m.load_script_from_source("unsure", JS, source)
    assert info.value.script == "unsure"
    assert info.value.line is not None


def test_long_lines_of_logical_operators_and_strings_still_load(m):
    """Long lines with many '|' outside regex literals are read with tree-sitter and pass."""
    source = ("function f(a) { const s = '" + "|" * 40000 + "'; return (" + " || ".join(["a"] * 20000)
              + ") + s.length + /" + "x|" * 20000 + "y/.exec('y')[0]; }\n")
    m.load_script_from_source("ors", JS, source)
    try:
        assert m.call_function("ors.f", [0]) == "40000y"
    finally:
        m.unload_script("ors")


def test_trusted_scripts_are_not_measured():
    source = ("const r = /" + "|" * 40000 + "/;\n"
              "function f() { const p = '|'.repeat(40000);\n"
              "  return [new RegExp(p), eval('/' + p + '/'), RegExp.prototype.constructor === RegExp,\n"
              "          String(RegExp).includes('native code'), r].map(x => typeof x === 'object' ? x.source.length : x); }\n")
    with ScriptManager(cache_dir=False, policy=SecurityPolicy.trusted()) as mgr:
        mgr.load_script_from_source("s", JS, source)
        assert mgr.call_function("s.f") == [40000, 40000, True, True, 40000]


# -- ordinary patterns: the same results through every route, guarded or not ----------------------------
GRID = r"""
const CASES = [["a+", ""], ["(?<y>\\d{4})-(?<m>\\d\\d)", "g"], ["^b+", "m"], ["a.c", "s"], ["\\p{Lu}+", "u"],
  ["(?<=\\$)\\d+", ""], ["x*", "y"], ["[a-z]+", "gi"], ["", ""], ["a|b|c", "d"], ["\\/", ""], ["(a)|(b)", "g"],
  ["\\bx\\w*", "iu"], ["(?:ab){2,}", "v"], ["[\\p{L}--[a-z]]", "v"]];
const TEXT = "abc 2024-05 $42\nbbb xyz ABC aac a/b ababab";
const hit = (m) => m === null ? null : [...m, m.index, m.groups === undefined ? null : {...m.groups},
                                        m.indices === undefined ? null : m.indices.map(x => x && [...x])];
function row(p, f) {
  const src = new RegExp(p, f).source, r = {};
  const use = (name, fn) => { try { r[name] = fn(); } catch (e) { r[name] = "!" + e.name + ": " + e.message; } };
  use("new", () => hit(new RegExp(p, f).exec(TEXT)));
  use("called", () => hit(RegExp(p, f).exec(TEXT)));
  use("copy", () => String(new RegExp(new RegExp(p, f))));
  use("copyFlags", () => String(new RegExp(new RegExp(p, f), f.includes("g") ? "m" : "g")));
  use("same", () => { const x = new RegExp(p, f); return [RegExp(x) === x, RegExp(x, f) === x, new RegExp(x) === x]; });
  use("like", () => String(new RegExp({[Symbol.match]: true, source: p, flags: f})));
  use("compile", () => { const x = /z/g; x.lastIndex = 3; x.compile(p, f); return [x.source, x.flags, x.lastIndex, hit(x.exec(TEXT))]; });
  use("compileRE", () => { const x = /z/; x.compile(new RegExp(p, f)); return String(x); });
  use("match", () => hit(TEXT.match(p)));
  use("matchRE", () => { const m = TEXT.match(new RegExp(p, f)); return m && [...m]; });
  use("search", () => TEXT.search(p));
  use("matchAll", () => [...TEXT.matchAll(p)].map(hit));
  use("matchAllRE", () => [...TEXT.matchAll(new RegExp(p, f))].map(hit));
  use("split", () => TEXT.split(new RegExp(p, f)));
  use("splitLimit", () => TEXT.split(new RegExp(p, f), 2));
  use("replace", () => TEXT.replace(new RegExp(p, f), "<$&>"));
  use("sub", () => { class R extends RegExp { exec(s) { const m = super.exec(s); return m; } }
                     const x = new R(p, f); return [x instanceof R, x instanceof RegExp, TEXT.split(x).length, hit(x.exec(TEXT))]; });
  use("species", () => { const x = new RegExp(p, f), g = new RegExp(p, "g" + f.replace("g", ""));
                         x.constructor = undefined; g.constructor = undefined;
                         return [TEXT.split(x).length, [...TEXT.matchAll(g)].length]; });
  use("literal", () => hit(eval("/" + src + "/" + f).exec(TEXT)));
  use("function", () => hit(Function("return /" + src + "/" + f)().exec(TEXT)));
  return r;
}
function grid() {
  const shape = [RegExp.name, RegExp.length, typeof RegExp[Symbol.species], RegExp[Symbol.species] === RegExp,
                 /x/ instanceof RegExp, /x/.constructor === RegExp, Object.getPrototypeOf(/x/) === RegExp.prototype,
                 String.prototype.match.name, String.prototype.match.length, String.prototype.matchAll.length,
                 RegExp.prototype.compile.length, RegExp.prototype[Symbol.split].name, RegExp.prototype[Symbol.split].length,
                 Object.keys(RegExp), Object.getOwnPropertyNames(RegExp).sort()];
  const errors = [];
  for (const t of [() => new RegExp("("), () => new RegExp("a", "zz"), () => "x".matchAll(/a/), () => /x/.compile(/y/, "g"),
                   () => RegExp.prototype.compile.call({}, "a"), () => String.prototype.match.call(null, "a"),
                   () => RegExp.prototype[Symbol.split].call(1, "a"), () => new RegExp(Symbol()), () => RegExp("a", Symbol()),
                   () => "x".match(Symbol()), () => String.prototype.search.call(Symbol(), "a"), () => /x/.compile(Symbol()),
                   () => RegExp.prototype[Symbol.split].call({constructor: undefined, flags: Symbol()}, "x"),
                   () => String.prototype.matchAll.call(Symbol(), "a")])
    try { t(); errors.push(null); } catch (e) { errors.push(e.name); }
  return JSON.stringify([shape, errors, CASES.map(([p, f]) => row(p, f))]);
}
"""


def test_ordinary_patterns_give_the_same_results_through_every_route():
    results = []
    for policy in (SecurityPolicy.trusted(), SecurityPolicy.sandboxed(time_limit=5.0)):
        with ScriptManager(cache_dir=False, policy=policy) as mgr:
            mgr.load_script_from_source("g", JS, GRID)
            results.append(json.loads(mgr.call_function("g.grid")))
    trusted, guarded = results
    assert guarded[0] == trusted[0]
    assert guarded[1] == trusted[1]
    for case, (a, b) in enumerate(zip(trusted[2], guarded[2], strict=True)):
        assert b == a, f"case {case}"


@pytest.mark.parametrize("route", ["new RegExp", "String.prototype.match", "Symbol.split's default species"])
def test_the_guard_holds_without_a_source_size_bound(route):
    """max_source_size=None turns the eval guard off (eval and Function are not bounded),
    not the regex guard: patterns from strings and literals in loads are still measured."""
    with budget_manager(BUDGET, max_source_size=None) as mgr:
        _refused(mgr, SHAPES["many empty alternatives"], ROUTES[route])
        mgr.load_script_from_source("leak", JS, LEAK)
        assert mgr.call_function("leak.f") == [True, True]
        with pytest.raises(SizeLimitError):
            mgr.load_script_from_source("costly", JS, "const r = /" + "|" * 2 ** 19 + "/;\n")
