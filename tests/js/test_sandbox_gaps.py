"""The sandbox's remaining limit gaps, each a class: builtins that do O(n) work
in one native call on a size the script picks (JSON.parse, hashing a rope as a
Map/Set key, normalize/localeCompare, spreading and listing a long string) stop
within 1.5x of the time limit in CPU time, and every way of building a big
string ends in a MemoryLimitError with the host's RSS kept small. Results of
the guarded builtins are the native ones (side by side with a trusted run)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest
from js_budget import assert_stops, budget_manager

from kryon_core import MemoryLimitError, ScriptManager, ScriptTimeoutError, SecurityPolicy

pytest.importorskip("kryon_js")

JS = "javascript"
BUDGET = 0.5
#: a rope of 2^29 characters made of one 1 MiB string: a few KiB of memory until it is flattened
ROPE = "(() => { let s = 'x'.repeat(2 ** 20); for (let i = 0; i < 9; i++) s = s + s; return s; })()"
SLOW = {
    "JSON.parse of a long array": "JSON.parse('[' + '1,'.repeat(2 ** 24) + '1]').length",
    "JSON.parse of many objects": "JSON.parse('[' + '{\"a\":[1,\"x,y]\"],\"b\":{}},'.repeat(2 ** 20) + '0]').length",
    "JSON.parse of a nested array": "JSON.parse('{\"a\":[[' + '\"s\",'.repeat(2 ** 22) + '\"t\"]]}').a.length",
    "JSON.parse of a long object": "Object.keys(JSON.parse('{' + '\"k\":1,'.repeat(2 ** 23) + '\"z\":2}')).length",
    "JSON.parse with a reviver": "JSON.parse('[' + '1,'.repeat(2 ** 24) + '1]', (k, v) => v).length",
    "normalize": "'\\u00e9'.repeat(2 ** 24).normalize('NFD').length",
    "localeCompare": "'\\u00e9'.repeat(2 ** 24).localeCompare('\\u00e9'.repeat(2 ** 24 - 1) + 'e\\u0301')",
    "escape": "escape('a'.repeat(2 ** 26)).length",
    "encodeURI": "encodeURI('\\u00e9'.repeat(2 ** 25)).length",
    "encodeURIComponent": "encodeURIComponent('\\u00e9'.repeat(2 ** 25)).length",
    "toUpperCase": "'a'.repeat(2 ** 26).toUpperCase().length",
    "toLowerCase": "'A'.repeat(2 ** 26).toLowerCase().length",
    "replaceAll with $& of many matches": "'a'.repeat(2 ** 26).replaceAll('a', '$&b').length",
    "replaceAll with a function of many matches": "'a'.repeat(2 ** 26).replaceAll('a', () => 'b').length",
    "JSON.stringify of a long string": "JSON.stringify('\\u0001'.repeat(2 ** 24)).length",
    "JSON.stringify of a long string, with a replacer": "JSON.stringify({a: ['\\u0001'.repeat(2 ** 24)]}, (k, v) => v).length",
    "spread of a long string": "[...'x'.repeat(2 ** 24)].length",
    "Array.from a string iterator": "Array.from('x'.repeat(2 ** 24)[Symbol.iterator]()).length",
    "Object.keys of a long string": "Object.keys('x'.repeat(2 ** 24)).length",
    "Map key of a rope": f"new Map([[{ROPE}, 1]]).size",
    "Set value of a rope": f"new Set([{ROPE}]).size",
    "Map.has of a rope": f"new Map().has({ROPE})",
    "Map.groupBy to a rope": f"Map.groupBy([1], () => {ROPE}).size",
    "Set union with a rope": f"new Set([1]).union({{size: 1, has: () => true, keys: () => [{ROPE}].values()}}).size",
    "Set isSupersetOf a rope": f"new Set([1]).isSupersetOf({{size: 1, has: () => true, keys: () => [{ROPE}].values()}})",
}


@pytest.fixture(scope="module")
def m():
    with budget_manager(BUDGET) as mgr:
        yield mgr


@pytest.mark.parametrize("name", sorted(SLOW))
def test_long_native_calls_stop_within_the_budget(m, name):
    """The call ends in a limit error (the memory limit when a rope must be made
    flat, else the time limit) after at most 1.5x the budget of this thread's CPU
    time; the script and a bystander keep working."""
    # in a loop: on a fast machine one call may finish inside the budget; many never do
    assert_stops(m, f"function attack() {{ for (;;) {SLOW[name]}; }}\nfunction ok() {{ return 1; }}",
                 (ScriptTimeoutError, MemoryLimitError), ok=1, within=1.5 * BUDGET, what=name)


#: one element per character: memory-bound, so they overrun only under a larger memory limit
SPREADS = {
    "spread of a long string": "[...'x'.repeat(2 ** 26)].length",
    "Array.from a string iterator": "Array.from('x'.repeat(2 ** 26)[Symbol.iterator]()).length",
    "Set of a long string's characters": "new Set('x'.repeat(2 ** 26)).size",
    "Object.keys of a long string": "Object.keys('x'.repeat(2 ** 26)).length",
    "Object.entries of a long string": "Object.entries('x'.repeat(2 ** 25)).length",
    "Object.getOwnPropertyNames of a long string": "Object.getOwnPropertyNames('x'.repeat(2 ** 26)).length",
}


@pytest.mark.parametrize("name", sorted(SPREADS))
def test_spreading_a_long_string_stops_within_the_budget_under_a_large_memory_limit(name):
    mgr = ScriptManager(cache_dir=False, policy=SecurityPolicy.sandboxed(time_limit=BUDGET, memory_limit=1 << 30),
                        output=lambda lang, text: None)
    try:
        mgr.load_script_from_source("attacker", JS, f"function attack() {{ for (;;) {SPREADS[name]}; }}\nfunction ok() {{ return 1; }}")
        start = time.thread_time()
        with pytest.raises((ScriptTimeoutError, MemoryLimitError)):
            mgr.call_function("attacker.attack")
        spent = time.thread_time() - start
        assert spent < 1.5 * BUDGET, f"{name} ran {spent:.2f} s of CPU time under a {BUDGET} s limit"
        assert mgr.call_function("attacker.ok") == 1
    finally:
        mgr.close()


GUARDED = r"""
function results() {
  const texts = [
    '[' + '1,'.repeat(2 ** 21 + 5) + '1.5e3]',
    ' [ ' + '{"a":[1,2,{"b":"x,y]}\\"\\\\"}],"__proto__":{"z":1},"c":"q"},\n '.repeat(2 ** 15) + '[[' + '7,'.repeat(2 ** 21) + '8]]] ',
    '{' + '"k":1,'.repeat(2 ** 19) + '"k":3,"big":[' + '"s",'.repeat(2 ** 20) + '"t"],"x":{"y":[' + '0.5e3, '.repeat(2 ** 19) + 'null]}}',
    '"' + 'ab\\n'.repeat(2 ** 21) + '"',
  ];
  const out = [], parsed = texts.map((t) => JSON.parse(t));
  for (const v of parsed) {
    const proto = Array.isArray(v) ? Array.prototype : typeof v === 'string' ? String.prototype : Object.prototype;
    out.push(JSON.stringify(v).length, Object.getPrototypeOf(v) === proto);
  }
  const [, second, third] = parsed;
  out.push(JSON.stringify(second[0]), Object.keys(second[0]), second[2 ** 15][0].length);
  out.push(Object.keys(third), third.k, third.big.length, third.x.y[7]);
  let n = 0;
  const revived = JSON.parse(texts[2], function (k, v) { n++; return k === 'k' ? undefined : typeof v === 'number' ? v + 1 : v; });
  out.push(n, Object.keys(revived), revived.x.y[3]);
  const ones = '1,'.repeat(2 ** 22), members = '"a":1,'.repeat(2 ** 20);
  const bad = ['[' + ones + ']', '[' + ones + '1', '[' + ones + '1]]', '{' + members + '"b"}', '[' + ones + '1][2]',
               '[,' + ones + '1]', '[' + '"a",'.repeat(2 ** 21) + '"b]', '{' + members + '}'];
  for (const t of bad) { try { JSON.parse(t); out.push('parsed'); } catch (e) { out.push(e.name); } }
  // 100 characters a unit: the guard's cuts (every 2^16 characters, then at the next safe character) land
  // at every offset of the unit, in front of and inside its combining sequences
  const mixed = ('Ame\u0301lie \u1100\u1161\u11a8 \uac00\u11a8 A\u030a\u0323 \u00a8\u00bd \ufb01 ' +
                 '\u212b\u0344e\u0301 \ud55c\uae00\u0301 ' + 'x'.repeat(60)).repeat(2 ** 16);
  out.push(mixed.length > 2 ** 22);
  for (const f of ['NFC', 'NFD', 'NFKC', 'NFKD']) out.push(mixed.normalize(f));
  try { mixed.normalize('NFX'); out.push('normalized'); } catch (e) { out.push(e.name); }
  const big = 'a\u0301'.repeat(2 ** 21);
  out.push(big.localeCompare('\u00e1'.repeat(2 ** 21)), big.localeCompare(big + 'b'), (big + 'b').localeCompare(big),
           big.localeCompare('b'));
  // surrogate pairs, a final sigma next to a cut point, a character whose upper case is two
  const cased = '\u00e9\ud83d\ude00 ,\u03a3a\u03a3 x\u00df\u03a3'.repeat(2 ** 19);
  out.push(cased.toUpperCase(), cased.toLowerCase());
  for (const f of [escape, encodeURI, encodeURIComponent]) {
    const r = f(cased), samples = [r.length];
    for (let k = 1; k * 2 ** 20 < r.length; k++) samples.push(r.slice(k * 2 ** 20 - 30, k * 2 ** 20 + 30));
    out.push(samples);
  }
  try { encodeURI(cased + '\ud800'); out.push('encoded'); } catch (e) { out.push(e.name); }
  // replaceAll window by window: periodic and overlapping patterns, matches across window ends, "$" patterns
  const unit = 'xy' + 'a'.repeat(1000), long = 'ab'.repeat(2500) + 'c';
  out.push('aaa'.repeat(2 ** 20).replaceAll('aa', 'b'), unit.repeat(2 ** 12).replaceAll('a'.repeat(7), '[$&|$$|$1]'),
           ('z'.repeat(2 ** 17 - 3) + long).repeat(40).replaceAll(long, '[$$&]'), 'a'.repeat(2 ** 22).replaceAll('a', 'bc').length,
           ('q' + 'z'.repeat(2 ** 22) + 'q').replaceAll('q', "<$'|$`>").length,
           'ab'.repeat(2 ** 20).replaceAll('b', (m, at) => at % 7).length);
  const astral = 'a\ud83d\ude00b\udc00'.repeat(2 ** 17), spread = [...astral];
  out.push(spread.length, spread.slice(0, 8), Object.prototype.toString.call(astral[Symbol.iterator]()),
           String.prototype[Symbol.iterator].name,
           Object.keys(astral).length, Object.keys(astral).slice(-2), Object.values(astral).slice(0, 5), Object.entries(astral).slice(3, 5),
           Object.getOwnPropertyNames(astral).slice(-2), new Set(astral).size, Array.from(astral[Symbol.iterator]()).length,
           [...astral[Symbol.iterator]()].length, Object.keys(new String('ab')), [...'ab\ud83d']);
  const quote = '\u0001a\ud83d\ude00\ud800"\\\u2028'.repeat(2 ** 20), pairs = 'a\ud83d\ude00'.repeat(2 ** 21);
  const qa = JSON.stringify({x: [quote, 1], y: quote}, null, 2), qb = JSON.stringify(quote, (k, v) => v), qc = JSON.stringify(pairs);
  out.push(qa.length, qb.length, qc.length, qa.slice(2 ** 22 - 20, 2 ** 22 + 20), qb.slice(-40), qc.slice(2 ** 20 - 5, 2 ** 20 + 5),
           JSON.parse(qb) === quote, JSON.parse(qc) === pairs, JSON.stringify([quote], ['x']).length);
  let rope = 'x'.repeat(2 ** 20); for (let i = 0; i < 3; i++) rope = rope + rope;
  const map = new Map([[rope, 1]]), set = new Set([rope]);
  map.set(rope.slice(0), 2);
  const setLike = {size: 1, has: (x) => x === rope, keys: () => [rope].values()};
  out.push(map.size, map.get(rope), map.has('x'.repeat(2 ** 23)), set.has(rope), set.size, map.delete(rope), set.delete(rope),
           set.size, [...new Set([1, 2]).union(new Set([rope]))].length, new Set([rope]).isSubsetOf(setLike),
           new Set([rope]).isSupersetOf(setLike), Map.groupBy(['a', 'bb'], (s) => s.length).get(2)[0]);
  return out;
}
"""


def test_guarded_builtins_give_the_native_results():
    results = []
    for policy in (SecurityPolicy.trusted(), SecurityPolicy.sandboxed(time_limit=300, memory_limit=1 << 30)):
        mgr = ScriptManager(cache_dir=False, policy=policy, output=lambda lang, text: None)
        mgr.load_script_from_source("r", JS, GUARDED)
        results.append(mgr.call_function("r.results"))
        mgr.close()
    assert results[0] == results[1]
    assert "parsed" not in results[1]


BUILDERS = {
    "+": "let s = 'x'.repeat(2 ** 20); for (let i = 0; i < 9; i++) s = s + s; return s.indexOf('y');",
    "+=": "let s = 'x'.repeat(2 ** 20); for (let i = 0; i < 9; i++) s += s; return s.at(-1);",
    "template literal": "let s = 'x'.repeat(2 ** 20); for (let i = 0; i < 9; i++) s = `${s}${s}`; return s.length;",
    "concat": "let s = 'x'.repeat(2 ** 20); for (let i = 0; i < 9; i++) s = s.concat(s); return s.length;",
    "padStart": "return ''.padStart(2 ** 29, 'ab').length;",
    "padEnd": "return 'a'.padEnd(2 ** 29).length;",
    "repeat": "return 'ab'.repeat(2 ** 28).length;",
    "join": "return new Array(2 ** 20).fill('x'.repeat(512)).join('').length;",
    "String.raw": "const s = 'x'.repeat(2 ** 20); return String.raw({raw: new Array(512).fill(s)}, ...new Array(511).fill(s)).length;",
    "JSON.stringify with an indent": "return JSON.stringify(new Array(2 ** 22).fill([[[[1]]]]), null, 100).length;",
    "a rope handed to the host": "let s = 'x'.repeat(2 ** 20); for (let i = 0; i < 9; i++) s = s + s; return s;",
    "a rope printed": "let s = 'x'.repeat(2 ** 20); for (let i = 0; i < 9; i++) s = s + s; print(s);",
    "a rope as a property name": "let s = 'x'.repeat(2 ** 20); for (let i = 0; i < 9; i++) s = s + s; return {[s]: 1};",
    "a rope as a Map key": "let s = 'x'.repeat(2 ** 20); for (let i = 0; i < 9; i++) s = s + s; return new Map([[s, 1]]).size;",
    "a rope normalized": "let s = 'x'.repeat(2 ** 20); for (let i = 0; i < 9; i++) s = s + s; return s.normalize().length;",
    "a rope parsed": "let s = '[' + '1,'.repeat(2 ** 20); for (let i = 0; i < 8; i++) s = s + s; return JSON.parse(s + '1]').length;",
}


def test_big_strings_end_in_a_memory_limit_error_and_the_host_stays_small():
    """Every way of building a 512 MiB string, one after another in a fresh
    process under a 16 MiB limit: each one that makes the string real ends in a
    MemoryLimitError, and the host's peak RSS grows by less than 64 MiB."""
    code = textwrap.dedent("""
        import json, resource, sys
        from kryon_core import ScriptManager, SecurityPolicy, ScriptError
        MiB = 1024 * 1024
        builders = json.loads(sys.argv[1])
        m = ScriptManager(cache_dir=False, policy=SecurityPolicy.sandboxed(memory_limit=16 * MiB, time_limit=30),
                          output=lambda lang, text: None)
        m.load_script_from_source("warm", "javascript", "function f() { return 'x'.repeat(1000).length; }")
        m.call_function("warm.f")
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        outcome = {}
        for name, body in builders.items():
            m.load_script_from_source("hog", "javascript", "function build() { " + body + " }\\nfunction ok() { return 1; }")
            try:
                outcome[name] = repr(m.call_function("hog.build"))[:40]
            except ScriptError as e:
                outcome[name] = type(e).__name__
            assert m.call_function("hog.ok") == 1
            m.unload_script("hog")
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024
        print(json.dumps([outcome, grown // MiB]))
    """)
    out = subprocess.run([sys.executable, "-c", code, json.dumps(BUILDERS)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    outcome, grown = json.loads(out.stdout.strip().splitlines()[-1])
    assert outcome == {name: "MemoryLimitError" for name in BUILDERS}
    assert grown < 64, f"host grew {grown} MiB"


def test_a_builtin_that_runs_out_of_memory_without_throwing_is_a_memory_limit_error():
    """QuickJS's normalize fails an allocation without throwing (no exception pending): without a time
    limit (no guards) the native normalize runs, and its failure is still a MemoryLimitError."""
    mgr = ScriptManager(cache_dir=False, policy=SecurityPolicy.sandboxed(time_limit=None, memory_limit=256 << 20),
                        output=lambda lang, text: None)
    try:
        mgr.load_script_from_source("s", JS, "function f() { return '\\u00e9'.repeat(2 ** 25).normalize('NFD').length; }\n"
                                    "function ok() { return 'e\\u0301'.normalize().length; }")
        with pytest.raises(MemoryLimitError):
            mgr.call_function("s.f")
        assert mgr.call_function("s.ok") == 1
    finally:
        mgr.close()
