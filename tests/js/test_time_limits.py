"""Time limits that fire on every path: builtins that loop natively on a
length the script chooses (a generic array-like's length costs no memory),
typed arrays, regular expressions, host scans of a script's globals and
finalizers run by garbage collection. Each attack must end in a
ScriptTimeoutError (never caught by the script), and the script and a
bystander keep working."""

from __future__ import annotations

import pytest
from js_budget import assert_stops, budget_manager

from kryon_core import ScriptManager, ScriptTimeoutError, SecurityPolicy

pytest.importorskip("kryon_js")

JS = "javascript"
HUGE = "{length: 2 ** 32 - 1}"
ATTACKS = {
    "join": f"Array.prototype.join.call({HUGE})",
    "join of a sparse array": "new Array(2 ** 32 - 1).join('')",
    "toString": "Array.prototype.toString.call({length: 2 ** 32 - 1, join: Array.prototype.join})",
    "toLocaleString": f"Array.prototype.toLocaleString.call({HUGE})",
    "copyWithin": f"Array.prototype.copyWithin.call({HUGE}, 0, 1)",
    "copyWithin backwards": f"Array.prototype.copyWithin.call({HUGE}, 1, 0)",
    "reverse": f"Array.prototype.reverse.call({HUGE})",
    "fill": f"Array.prototype.fill.call({HUGE}, 0)",
    "sort": f"Array.prototype.sort.call({HUGE})",
    "sort with a comparator": f"Array.prototype.sort.call({HUGE}, (a, b) => 0)",
    "splice": f"Array.prototype.splice.call({HUGE}, 0, 1)",
    "shift": f"Array.prototype.shift.call({HUGE})",
    "unshift": "Array.prototype.unshift.call({length: 2 ** 53 - 2}, 1)",
    "slice": f"Array.prototype.slice.call({HUGE}).length",
    "concat": "[].concat({length: 2 ** 32 - 1, [Symbol.isConcatSpreadable]: true}).length",
    "flat": "[new Array(2 ** 32 - 1)].flat().length",
    "indexOf": f"Array.prototype.indexOf.call({HUGE}, 1)",
    "includes": f"Array.prototype.includes.call({HUGE}, 1)",
    "lastIndexOf": f"Array.prototype.lastIndexOf.call({HUGE}, 1)",
    "Array.from": f"Array.from({HUGE}).length",
    "typed fill in a row": "(() => { const a = new Uint8Array(2 ** 26); for (let k = 0; k < 1e9; k++) a.fill(k); })()",
    "typed sort": "(() => { const a = new Float64Array(2 ** 22); for (;;) a.sort(); })()",
    "typed sort once": "new Float64Array(2 ** 22).map((_, i) => -i).sort()[0]",
    "typed reverse": "(() => { const a = new Uint8Array(2 ** 27); for (;;) a.reverse(); })()",
    "typed copyWithin": "(() => { const a = new Uint8Array(2 ** 27); for (;;) a.copyWithin(1, 0); })()",
    "typed indexOf": "(() => { const a = new Uint8Array(2 ** 27); for (;;) a.indexOf(1); })()",
    "typed join": "new Uint8Array(2 ** 26).join('').length",
    "typed set": "(() => { const a = new Uint8Array(2 ** 26), b = new Array(2 ** 20).fill(1); for (;;) a.set(b); })()",
    "regex backtracking": "/(a+)+b/.test('a'.repeat(40))",
    "regex on a long subject": "/(x+x+)+y/.test('x'.repeat(5000))",
    # strings: naive searches with a long needle, copies built one at a time, many replacements
    "indexOf with a long needle": "'a'.repeat(2 ** 27).indexOf('a'.repeat(5000) + 'b')",
    "includes with a long needle": "'a'.repeat(2 ** 27).includes('a'.repeat(5000) + 'b')",
    "lastIndexOf with a long needle": "'a'.repeat(2 ** 27).lastIndexOf('b' + 'a'.repeat(5000))",
    "split on a long separator": "'a'.repeat(2 ** 27).split('a'.repeat(5000) + 'b').length",
    "replace of a long pattern": "'a'.repeat(2 ** 27).replace('a'.repeat(5000) + 'b', 'x').length",
    "replaceAll of many matches": "'a'.repeat(2 ** 26).replaceAll('a', 'b').length",
    "repeat": "(() => { for (;;) 'ab'.repeat(2 ** 26).length; })()",
    "padStart": "(() => { for (;;) ''.padStart(2 ** 25, 'xy').length; })()",
    # a loop whose every pass is one slow native call: QuickJS asks its interrupt handler once per
    # 10,000 polls, so only the watchdog's poke makes it ask in time
    "loop of slow string searches": "(() => { const s = 'x'.repeat(2 ** 20); for (;;) s.indexOf('x'.repeat(3) + 'y'); })()",
    "loop of typed-array scans": "(() => { const a = new Uint8Array(2 ** 24); let n = 0; for (;;) n += a.indexOf(7); })()",
    # typed arrays and objects filled element by element from a generic source
    "typed array from an array-like": "new Uint8Array({length: 2 ** 27}).length",
    "TypedArray.from an array-like": "Uint8Array.from({length: 2 ** 27}).length",
    "Object.assign of a long string": "Object.keys(Object.assign({}, 'a'.repeat(2 ** 23))).length",
    # String.raw reads raw[0 .. length) natively: an array-like's length costs nothing
    "String.raw": "String.raw({raw: {length: 2 ** 32 - 1}}).length",
    "String.raw with substitutions": "String.raw({raw: {length: 2 ** 32 - 1, 0: 'a'}}, 1, 2).length",
    "caught interrupt": "(() => { for (;;) { try { Array.prototype.fill.call({length: 2 ** 32 - 1}, 0); } catch (e) {} } })()",
}
LIMIT = 0.3


@pytest.fixture(scope="module")
def m():
    with budget_manager(LIMIT) as mgr:
        yield mgr


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_native_loops_stop_at_the_deadline(m, name):
    assert_stops(m, f"function attack() {{ return {ATTACKS[name]}; }}\nfunction ok() {{ return 1; }}", ScriptTimeoutError, ok=1)


GUARDED_RESULTS = """
function results() {
  const big = {length: 2 ** 18 + 3 + 3, 0: "a", 5: "b", [2 ** 18 + 3 + 2]: "z"};
  const joined = Array.prototype.join.call(big, "");
  const filled = Array.prototype.fill.call({length: 2 ** 18 + 3}, 7, 2 ** 18 + 3 - 2);
  const copied = Array.prototype.copyWithin.call({length: 2 ** 18 + 3, 0: 1, 1: 2, 2: 3}, 1, 0, 3);
  const rev = Array.prototype.reverse.call({length: 2 ** 18 + 3, 0: "first"});
  const arr = []; for (let i = 0; i < 2 ** 18 + 3; i++) arr.push((i * 7919) % 1000);
  const sorted = arr.slice().sort((a, b) => a - b);
  let ordered = true; for (let i = 1; i < sorted.length; i++) if (sorted[i - 1] > sorted[i]) ordered = false;
  const spliced = arr.slice(); const removed = spliced.splice(1, 2, "x");
  const shifted = arr.slice(); const first = shifted.shift(); shifted.unshift("u", "v");
  const typed = new Float64Array(2 ** 18 + 3).map((_, i) => (i * 31) % 977); typed.sort();
  let typedOrdered = true; for (let i = 1; i < typed.length; i++) if (typed[i - 1] > typed[i]) typedOrdered = false;
  const u8 = new Uint8Array(2 ** 18 + 3); u8[2 ** 18 + 3 - 1] = 9;
  return [joined, filled[2 ** 18 + 3 - 1], filled[0], copied[1], copied[3], rev[2 ** 18 + 3 - 1], ordered, sorted.length,
          removed, spliced[1], spliced.length, first, shifted[0], shifted[2], shifted.length, typedOrdered,
          u8.indexOf(9), u8.lastIndexOf(9), u8.includes(9), Array.from({length: 2 ** 18 + 3})[5], [[1, [2]], 3].flat(2),
          JSON.stringify([1, {a: [2]}]), [1].concat([2], 3)];
}
"""


def test_guarded_builtins_give_the_native_results():
    results = []
    for policy in (SecurityPolicy.trusted(), SecurityPolicy.sandboxed(time_limit=120)):  # native, then guarded
        mgr = ScriptManager(cache_dir=False, policy=policy, output=lambda lang, text: None)
        mgr.load_script_from_source("r", JS, GUARDED_RESULTS)
        results.append(mgr.call_function("r.results"))
        mgr.close()
    assert results[0] == results[1]
    assert results[1][:8] == ["abz", 7, None, 1, 3, "first", True, 2 ** 18 + 3]


HOSTILE_GLOBALS = """
var spin = 0;
Object.defineProperty(globalThis, "trap", { get() { for (;;) {} }, enumerable: true, configurable: true });
Object.getOwnPropertyNames = () => { for (;;) {} };
RegExp.prototype.test = RegExp.prototype.exec = () => { for (;;) {} };
Array.prototype.push = () => { for (;;) {} };
JSON.stringify = () => { for (;;) {} };
function ok() { return 1; }
"""


GUARDED_STRINGS = """
function results() {
  const big = 'ab'.repeat(2 ** 22) + 'needle$' + 'cd'.repeat(2 ** 21), n = 'ab'.repeat(40) + 'needle';
  const sub = new (class extends Uint8Array {})({length: 2 ** 18 + 5, 3: 9});
  return [big.indexOf(n), big.indexOf(n, 2 ** 23), big.lastIndexOf(n), big.lastIndexOf(n, 5), big.includes(n), big.includes(n, 2 ** 23 + 1),
          big.split(n).map((p) => p.length), big.split('needle$', 1).length, big.replace(n, '[$&|$$]').length,
          big.replace(n, (m, at) => String(at)).slice(2 ** 23 - 80, 2 ** 23 - 70),
          big.replaceAll('needle', '$`').length, big.slice(0, 2 ** 18).replaceAll('b', '').length, 'xy'.repeat(2 ** 21 + 3).length,
          'xy'.repeat(2 ** 21 + 3).slice(-3), 'z'.padStart(2 ** 22 + 2, 'ab').slice(0, 5), 'z'.padEnd(2 ** 22 + 2).length,
          Array.from(Uint8Array.from({length: 2 ** 18 + 3, 1: 7}).slice(0, 3)), new Float64Array(new Set([1, 2])).length,
          new Uint8Array([1, 2]) instanceof Uint8Array, new Uint8Array(2).constructor === Uint8Array, sub[3], sub.length,
          Object.getPrototypeOf(sub.constructor) === Uint8Array, Object.keys(Object.assign({}, 'q'.repeat(2 ** 18 + 1))).length,
          String.raw`a\n${1}b${[2]}`, String.raw({raw: 'abc'}, 1, 2, 3), String.raw({raw: {length: 3, 0: 'x', 2: 'z'}}, 'S'),
          String.raw({raw: {length: -1}}), String.raw({raw: ['only']}, 'unused'), String.raw.length, String.raw.name,
          [undefined, {}, {raw: null}].map((t) => { try { return String.raw(t); } catch (e) { return e.constructor.name; } })];
}
"""


def test_guarded_string_and_typed_array_builtins_give_the_native_results():
    results = []
    for policy in (SecurityPolicy.trusted(), SecurityPolicy.sandboxed(time_limit=120, memory_limit=1 << 30)):
        mgr = ScriptManager(cache_dir=False, policy=policy, output=lambda lang, text: None)
        mgr.load_script_from_source("r", JS, GUARDED_STRINGS)
        results.append(mgr.call_function("r.results"))
        mgr.close()
    assert results[0] == results[1]
    assert results[1][0] == 2 ** 23 - 80 and results[1][4] is True and results[1][18:20] == [True, True]


def test_host_scans_of_a_hostile_script_stay_under_its_deadline():
    mgr = ScriptManager(cache_dir=False, policy=SecurityPolicy.sandboxed(time_limit=LIMIT), output=lambda lang, text: None)
    mgr.load_script_from_source("bystander", JS, "function ok() { return 2; }")
    with pytest.raises(ScriptTimeoutError):  # listing its functions reads the trapped global, under the deadline
        mgr.load_script_from_source("hostile", JS, HOSTILE_GLOBALS)
    assert "hostile" not in mgr.scripts
    quiet = HOSTILE_GLOBALS.replace('Object.defineProperty(globalThis, "trap"', 'Object.defineProperty(globalThis, "later"')
    quiet = quiet.replace("get() { for (;;) {} }, enumerable: true", "get() { return 1; }, enumerable: true")
    mgr.load_script_from_source("hostile", JS, quiet + "\nfunction arm() { Object.defineProperty(globalThis, 'x', "
                                "{ get() { for (;;) {} }, configurable: true }); }")
    assert mgr.call_function("hostile.ok") == 1, "the host's own conversions use the builtins saved before the script ran"
    mgr.call_function("hostile.arm")
    with pytest.raises(ScriptTimeoutError):
        mgr.get_global(JS, "x")
    with pytest.raises(ScriptTimeoutError):
        mgr.evaluate(JS, "1", script="hostile")
    with pytest.raises(ScriptTimeoutError):
        mgr.hot_reload_script("hostile", "function ok() { return 3; }")  # the old state is read under its deadline
    assert mgr.call_function("hostile.ok") == 1 and mgr.call_function("bystander.ok") == 2
    mgr.close()


def test_finalizers_and_iterators_run_by_the_host_stay_under_the_deadline():
    mgr = ScriptManager(cache_dir=False, policy=SecurityPolicy.sandboxed(time_limit=LIMIT), output=lambda lang, text: None)
    mgr.load_script_from_source("fin", JS, """
        const registry = new FinalizationRegistry(() => { for (;;) {} });
        function arm() { registry.register({}, 1); return 1; }
        function gen() { return (function* () { for (;;) { for (let i = 0; i < 1e5; i++) {} yield 1; } })(); }
        function mapped() { const m = new Map([[1, 2]]); m[Symbol.iterator] = function* () { for (;;) yield [1, 2]; }; return m; }
        function ok() { return 1; }
    """)
    mgr.call_function("fin.arm")
    with pytest.raises(ScriptTimeoutError):
        mgr.engine(JS).collect_garbage()
    for fn in ("gen", "mapped"):
        with pytest.raises(ScriptTimeoutError):
            mgr.call_function(f"fin.{fn}")
    assert mgr.call_function("fin.ok") == 1
    mgr.close()
