"""Source compiled at run time under a time limit: QuickJS's parser never looks
at the interrupt handler, so eval (direct and every indirect route) and the
four Function constructors take at most the policy's max_source_size. Each
route with a 16 Mi-character source stops within 1.5x of the time limit in
CPU time (the script catches the RangeError and tries again until the
deadline fires); uncaught, it is a SizeLimitError naming script and line.
Direct eval keeps its semantics (it sees the caller's locals), the
constructors keep their identities, trusted scripts keep the native paths."""

from __future__ import annotations

import time

import pytest
from js_budget import assert_stops, budget_manager

from kryon_core import (
    CompileError,
    MemoryLimitError,
    ScriptManager,
    ScriptRuntimeError,
    ScriptTimeoutError,
    SecurityPolicy,
    SizeLimitError,
)

pytest.importorskip("kryon_js")

JS = "javascript"
BUDGET = 0.5
#: 16 Mi characters of "1+1+...": about a second of parsing, natively
HUGE = "const s = '1+'.repeat(2 ** 23) + '1';"
ROPE = "let s = '1+'; while (s.length < 2 ** 24) s = s + s; s = s + '1';"
GEN = "Object.getPrototypeOf(function* () {}).constructor"
ASYNC = "Object.getPrototypeOf(async function () {}).constructor"
ASYNC_GEN = "Object.getPrototypeOf(async function* () {}).constructor"
#: one compile of the source `s` each (the name says which route)
ROUTES = {
    "direct eval": "eval(s)",
    "direct eval, strict": "(function () { 'use strict'; return eval(s); })()",
    "direct eval with spread arguments": "eval(...[s])",
    "parenthesized direct eval": "(eval)(s)",
    "indirect eval (0, eval)": "(0, eval)(s)",
    "globalThis.eval": "globalThis.eval(s)",
    "window.eval": "window.eval(s)",
    "Reflect.apply(eval)": "Reflect.apply(eval, null, [s])",
    "eval.call": "eval.call(null, s)",
    "eval through a variable": "{ const e = eval; e(s); }",
    "optional-call eval": "eval?.(s)",
    "eval from an object shorthand": "({eval}).eval(s)",
    "eval inside with": "with ({}) eval(s)",
    "Function": "Function(s)",
    "new Function": "new Function(s)",
    "Function with long parameters": "Function(s, 'return 1')",
    "Function through a function's constructor": "(function () {}).constructor(s)",
    "Reflect.construct(Function)": "Reflect.construct(Function, [s])",
    "a subclass of Function": "new (class extends Function {})(s)",
    "GeneratorFunction": f"{GEN}(s)",
    "AsyncFunction": f"new ({ASYNC})(s)",
    "AsyncGeneratorFunction": f"{ASYNC_GEN}(s)",
    "nested eval in evaluated code": "eval('eval(s)')",
    "nested indirect eval in evaluated code": "(0, eval)('eval(globalThis.big)')",
    "eval inside a new Function body": "new Function('s', 'return eval(s)')(s)",
    "Function inside evaluated code": "eval('Function(s)')",
}
#: the String-object listings (a string's own indices, listed natively until guarded)
LISTINGS = {
    "Object.keys(new String(s))": "Object.keys(new String(s))",
    "Object.values(new String(s))": "Object.values(new String(s))",
    "Object.entries(Object(s))": "Object.entries(Object(s))",
    "Object.getOwnPropertyNames(new String(s))": "Object.getOwnPropertyNames(new String(s))",
    "Reflect.ownKeys(new String(s))": "Reflect.ownKeys(new String(s))",
}


def test_string_object_listings_give_the_native_results():
    source = ("function lists() { const o = new String('ab\\ud83d\\ude00'.repeat(2 ** 16 + 1)), out = [];\n"
              "  for (const f of [Object.keys, Object.values, Object.entries, Object.getOwnPropertyNames, Reflect.ownKeys]) {\n"
              "    const r = f(o); out.push(r.length, r.slice(0, 3), r.slice(-3)); }\n"
              "  return out; }")
    results = []
    for policy in (SecurityPolicy.trusted(), SecurityPolicy.sandboxed(time_limit=30)):
        with ScriptManager(cache_dir=False, policy=policy) as mgr:
            mgr.load_script_from_source("s", JS, source)
            results.append(mgr.call_function("s.lists"))
    assert results[0] == results[1]
    assert results[0][0] == 4 * (2 ** 16 + 1)


@pytest.fixture(scope="module")
def m():
    with budget_manager(BUDGET) as mgr:
        yield mgr


def _stops(m, body: str, setup: str = HUGE) -> None:
    loop = f"  for (;;) {{ try {{ {body}; }} catch (e) {{ if (!(e instanceof RangeError)) throw e; }} }}\n"
    assert_stops(m, f"function attack() {{ {setup} globalThis.big = s;\n{loop}}}\nfunction ok() {{ return eval('1 + 1'); }}",
                 (ScriptTimeoutError, MemoryLimitError), ok=2, within=1.5 * BUDGET, what=body)


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_every_compile_route_stops_within_the_budget(m, name):
    _stops(m, ROUTES[name])


@pytest.mark.parametrize("name", ["direct eval", "indirect eval (0, eval)", "new Function", "AsyncGeneratorFunction"])
def test_a_rope_is_measured_too(m, name):
    _stops(m, ROUTES[name], ROPE)


@pytest.mark.parametrize("name", sorted(LISTINGS))
def test_listing_a_long_string_object_stops_within_the_budget(m, name):
    m.load_script_from_source("attacker", JS, f"function attack() {{ const s = 'x'.repeat(2 ** 24); for (;;) {LISTINGS[name]}.length; }}")
    try:
        start = time.thread_time()
        with pytest.raises((ScriptTimeoutError, MemoryLimitError)):
            m.call_function("attacker.attack")
        spent = time.thread_time() - start
        assert spent < 1.5 * BUDGET, f"{name} ran {spent:.2f} s of CPU time under a {BUDGET} s limit"
    finally:
        m.unload_script("attacker")


def test_the_script_can_catch_the_error_and_its_message_names_the_limit(m):
    m.load_script_from_source("catcher", JS, HUGE.replace("const s", "const big") + """
function tryAll() {
  const out = [];
  for (const f of [() => eval(big), () => (0, eval)(big), () => Function(big), () => new Function('a', big)]) {
    try { f(); out.push('compiled'); } catch (e) { out.push(e instanceof RangeError, e.message); }
  }
  return out;
}""")
    out = m.call_function("catcher.tryAll")
    assert out[0::2] == [True] * 4
    assert out[1] == "eval: the source is larger than the policy's max_source_size (4194304 bytes)"
    assert out[5] == "Function: the source is larger than the policy's max_source_size (4194304 bytes)"
    m.unload_script("catcher")


def test_uncaught_it_is_a_size_limit_error_with_script_and_line(m):
    m.load_script_from_source("thrower", JS, "function f() {\n  const s = 'x'.repeat(2 ** 23);\n  return eval(s);\n}\n"
                                             "function g() {\n  return new Function('y'.repeat(2 ** 23));\n}")
    with pytest.raises(SizeLimitError) as info:
        m.call_function("thrower.f")
    assert (info.value.script, info.value.line, info.value.language) == ("thrower", 3, JS)
    assert "max_source_size" in str(info.value)
    with pytest.raises(SizeLimitError) as info:
        m.call_function("thrower.g")
    assert (info.value.script, info.value.line) == ("thrower", 6)
    m.unload_script("thrower")


def test_the_bound_counts_utf8_bytes_like_a_load():
    policy = SecurityPolicy.sandboxed(time_limit=BUDGET, max_source_size=1000)
    with ScriptManager(cache_dir=False, policy=policy) as mgr:
        mgr.load_script_from_source("s", JS, "function n(k) { return eval(\"'\" + '\\u00e9'.repeat(k) + \"'\").length; }\n"
                                             "function f(k) { return Function('return ' + 'x'.repeat(k)).length; }")
        assert mgr.call_function("s.n", [400]) == 400   # 402 characters, 802 bytes
        with pytest.raises(SizeLimitError):
            mgr.call_function("s.n", [600])             # 602 characters, 1202 bytes
        assert mgr.call_function("s.f", [990]) == 0
        with pytest.raises(SizeLimitError):
            mgr.call_function("s.f", [1000])


def test_trusted_scripts_and_unbounded_policies_keep_the_native_paths():
    big = "function f() { return eval('1+'.repeat(700) + '1') + Function('return ' + '2+'.repeat(700) + '2')(); }\n" \
          "function native() { return [eval, Function].map((g) => String(g).includes('[native code]')); }"
    with ScriptManager(cache_dir=False, policy=SecurityPolicy.trusted()) as mgr:
        mgr.load_script_from_source("s", JS, big)
        assert mgr.call_function("s.f") == 701 + 1402
        assert mgr.call_function("s.native") == [True, True]
    policy = SecurityPolicy.sandboxed(time_limit=BUDGET, max_source_size=None, memory_limit=None)
    with ScriptManager(cache_dir=False, policy=policy) as mgr:
        mgr.load_script_from_source("s", JS, big)
        assert mgr.call_function("s.native") == [True, True]
    # a memory limit alone puts the guards on (their room check, test_compile_near_cap.py), without a bound
    for policy in (SecurityPolicy.sandboxed(time_limit=BUDGET, max_source_size=None),
                   SecurityPolicy.sandboxed(time_limit=None, max_source_size=1000),
                   SecurityPolicy.trusted(memory_limit=64 << 20)):
        with ScriptManager(cache_dir=False, policy=policy) as mgr:
            mgr.load_script_from_source("s", JS, big)
            assert mgr.call_function("s.f") == 701 + 1402
            assert mgr.call_function("s.native") == [False, False]
    policy = SecurityPolicy.sandboxed(time_limit=BUDGET, max_source_size=1000)
    with ScriptManager(cache_dir=False, policy=policy) as mgr:
        mgr.load_script_from_source("s", JS, big)
        with pytest.raises(SizeLimitError):
            mgr.call_function("s.f")
        assert mgr.call_function("s.native") == [False, False]


SEMANTICS = r"""
function locals() { let x = 1; const y = 2; return eval("x + y") + eval(...["x"]) + (eval)("y"); }
function assigns() { let x = 1; eval("x = 5"); return x; }
function strict() { "use strict"; let y = 2; const r = eval("var z = 5; y + z"); return [r, typeof z]; }
function sloppyVar() { eval("var w = 7"); return w; }
function nested() { let w = 4; return eval("eval('w * 2')"); }
function inFunctionBody() { return new Function("a", "let v = 7; return eval('v + a')")(1); }
function indirect() { let x = 1; return [(0, eval)("typeof x"), eval?.("typeof x"), globalThis.eval("typeof x")]; }
function about() { return [typeof eval, eval.name, eval.length, eval === globalThis.eval, ({eval}).eval === eval,
                           eval(42), eval("this") === globalThis]; }
function identities() {
  const G = Object.getPrototypeOf(function* () {}).constructor, A = Object.getPrototypeOf(async function () {}).constructor,
        AG = Object.getPrototypeOf(async function* () {}).constructor;
  class Sub extends Function {}
  const sub = new Sub("return 3");
  return [(function () {}).constructor === Function, Function.prototype.constructor === Function,
          (() => 1).constructor === Function, (class {}).constructor === Function,
          Function("return 1") instanceof Function, new Function("return 1") instanceof Function,
          Function.name, Function.length, Function.prototype === Object.getPrototypeOf(function () {}),
          G.name, G.length, Object.getPrototypeOf(G) === Function, G.prototype.constructor === G, G("yield 1")().next().value,
          A.name, Object.getPrototypeOf(A("return 1")) === A.prototype, AG.name, AG("yield 1") instanceof AG,
          sub instanceof Sub, sub instanceof Function, sub(), Function("a", "b", "return a + b")(1, 2),
          Function("a", "b", "return a + b").toString(), typeof globalThis.__kryon_evals];
}
function iteratorHijack() {
  const big = "1+".repeat(2 ** 23) + "1";
  Array.prototype[Symbol.iterator] = function* () { yield big; };
  try { return eval("40 + 2"); } finally { delete Array.prototype[Symbol.iterator]; }
}
function inWith() { const o = { eval: (x) => "own " + x }; with (o) { return eval("arg"); } }
function evalLine() { try { eval("\n\n  null.x"); } catch (e) { return e.stack.split("\n")[0]; } }
function fnLine() { try { Function("a", "\n  null.x")(); } catch (e) { return e.stack.split("\n")[0]; } }
"""


def test_direct_eval_and_the_constructors_keep_their_semantics(m):
    _semantics(m)


@pytest.mark.parametrize("policy", ["trusted with a memory limit", "sandboxed without a time limit"])
def test_the_semantics_hold_under_the_guards_of_a_memory_limit_alone(policy):
    """A memory limit alone puts the guards on (their room check): the same semantics."""
    p = (SecurityPolicy.trusted(memory_limit=64 << 20) if policy.startswith("trusted")
         else SecurityPolicy.sandboxed(time_limit=None))
    with ScriptManager(cache_dir=False, policy=p, output=lambda lang, text: None) as mgr:
        _semantics(mgr)


def _semantics(m: ScriptManager) -> None:
    m.load_script_from_source("sem", JS, SEMANTICS)
    try:
        call = m.call_function
        assert call("sem.locals") == 3 + 1 + 2
        assert call("sem.assigns") == 5
        assert call("sem.strict") == [7, "undefined"]
        assert call("sem.sloppyVar") == 7
        assert call("sem.nested") == 8
        assert call("sem.inFunctionBody") == 8
        assert call("sem.indirect") == ["undefined"] * 3
        assert call("sem.about") == ["function", "eval", 1, True, True, 42, True]
        assert call("sem.identities") == [True, True, True, True, True, True, "Function", 1, True,
                                          "GeneratorFunction", 1, True, True, 1, "AsyncFunction", True,
                                          "AsyncGeneratorFunction", True, True, True, 3, 3,
                                          "function anonymous(a,b\n) {\nreturn a + b\n}", "undefined"]
        assert call("sem.iteratorHijack") == 42
        assert call("sem.inWith") == "own arg"
        assert call("sem.evalLine").strip().endswith(":3:3)")     # the third line of the evaluated code
        assert call("sem.fnLine").strip().endswith(":4:3)")       # QuickJS's two header lines, then the body's second
    finally:
        m.unload_script("sem")


POSITIONS = {
    "f": "function f() {\n  let x = eval('1');\n  null.boom;\n}",
    "g": "function g() { const \u00e9 = 1; return eval('2') + eval('3') + (0, eval)('4') + null.boom; }",
    "h": "function h() { const e = eval, o = {eval}; return eval('1') + eval(1 + null.boom); }",
    "k": "function k() {\n  const v = eval('1');\n  return eval('throw new Error(\"inner\")');\n}",
}


@pytest.mark.parametrize("name", sorted(POSITIONS))
def test_error_lines_and_columns_stay_true_after_the_rewrite(m, name):
    """Where the error is, as the host sees it: the same as in a trusted
    (unrewritten) run, on the line of a direct eval too."""
    m.load_script_from_source("pos", JS, POSITIONS[name])
    try:
        with pytest.raises(ScriptRuntimeError) as info:
            m.call_function(f"pos.{name}")
    finally:
        m.unload_script("pos")
    with ScriptManager(cache_dir=False, policy=SecurityPolicy.trusted()) as native:
        native.load_script_from_source("pos", JS, POSITIONS[name])
        with pytest.raises(ScriptRuntimeError) as expected:
            native.call_function(f"pos.{name}")
    assert (info.value.line, info.value.column) == (expected.value.line, expected.value.column)
    assert [(f.line, f.column) for f in info.value.stack] == [(f.line, f.column) for f in expected.value.stack]


def test_evaluate_is_checked_too(m):
    m.load_script_from_source("ev", JS, "let x = 1;")
    assert m.evaluate(JS, "eval('x + 1')", script="ev") == 2
    with pytest.raises(SizeLimitError):
        m.evaluate(JS, "eval('1+'.repeat(2 ** 23) + '1')", script="ev")
    m.unload_script("ev")


@pytest.mark.parametrize("source", [
    "var eval = 1;", "function f(eval) { return eval; }", "eval = function () {};", "let {eval} = {};",
    "eval ||= 0;", "function eval() {}", "try {} catch (eval) {}", "const __kryon_evalArgs = (a) => a;",
    "function f() { const __kryon_eval = 1; }",
])
def test_bindings_named_eval_and_reserved_names_are_refused(m, source):
    with pytest.raises(CompileError) as info:
        m.load_script_from_source("refused", JS, "\n" + source)
    assert info.value.script == "refused" and info.value.line == 2
    assert m.call_function("bystander.bump") > 0


def test_refused_names_in_code_compiled_at_run_time_are_a_syntax_error(m):
    m.load_script_from_source("rt", JS, "function f(src) { try { eval(src); return 'ran'; } catch (e) { return e.name; } }\n"
                                        "function g(src) { try { Function(src); return 'ran'; } catch (e) { return e.name; } }")
    for src in ["var eval = 1", "__kryon_evalArgs([1])", "ev\\u0061l = 2"]:
        assert m.call_function("rt.f", [src]) == "SyntaxError"
        assert m.call_function("rt.g", [src]) == "SyntaxError"
    assert m.call_function("rt.f", ["ev\\u0061l('1')"]) == "ran"
    # an escaped letter of eval is found even when RegExp.prototype.exec is replaced
    m.evaluate(JS, "RegExp.prototype.exec = () => null;", script="rt")
    for spelling in ["ev\\u0061l", "\\u{00065}val", "eva\\u006C", "eva\\u006c"]:
        assert m.call_function("rt.f", [f"const {spelling} = 1"]) == "SyntaxError"
    m.unload_script("rt")




def test_call_sites_do_not_hand_out_the_unchecked_natives(m):
    """Error.prepareStackTrace sees a frame for each native a wrapper calls:
    its getFunction() gives undefined for them (and for Kryon's own frames)."""
    m.load_script_from_source("sites", JS, """
function grab(run) {
  Error.prepareStackTrace = (e, sites) => sites.map((c) => c.getFunction());
  try { return run(); } finally { delete Error.prepareStackTrace; }
}
function fns() {
  const G = Object.getPrototypeOf(function* () {}).constructor, A = Object.getPrototypeOf(async function () {}).constructor;
  return [grab(() => (0, eval)("new Error().stack")), grab(() => Function("return new Error().stack")()),
          grab(() => new G("yield new Error().stack")().next().value), grab(() => eval("new Error().stack")),
          grab(() => globalThis.eval.call(null, "new Error().stack")), grab(() => new A("return 1") && new Error().stack)];
}
function natives() {
  const names = /^function (eval|Function|GeneratorFunction|AsyncFunction|AsyncGeneratorFunction)\\(\\)/;
  return fns().flat().filter((f) => typeof f === "function" && names.test(String(f))).length;
}
function ownFrames() { return fns().map((fs) => fs.includes(grab)); }""")
    try:
        assert m.call_function("sites.natives") == 0
        assert m.call_function("sites.ownFrames") == [True] * 6   # the script's own frames keep their functions
    finally:
        m.unload_script("sites")
