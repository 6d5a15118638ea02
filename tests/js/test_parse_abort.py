"""Parses QuickJS never interrupts: its parser and regex compiler do not poll
the interrupt handler, and some small inputs take them seconds (arrays or
objects nested hundreds deep, ``[\\p{L}\\p{N}]`` classes under ``iu``).
The watchdog lowers the malloc limit of a runtime whose thread runs a tick past
its deadline (cutoff.py): each such input, through every route that compiles
it, stops within 1.5x of the time limit in CPU time, as a ScriptTimeoutError,
the script usable afterwards and a bystander intact. Scripts that allocate
normally near their memory limit are not touched by it."""

from __future__ import annotations

import threading
import time

import pytest
from js_budget import assert_stops, attacker_source, budget_manager

from kryon_core import MemoryLimitError, ScriptManager, ScriptTimeoutError, SecurityPolicy

pytest.importorskip("kryon_js")

JS = "javascript"
BUDGET = 0.5
#: sources that take QuickJS's parser seconds (measured natively: several seconds each)
#: (400 deep: the parser recurses, and a sandboxed script's stack holds about 500 levels)
NESTED_ARRAYS = "const u = '['.repeat(400) + ']'.repeat(400) + ','; const s = '[' + u.repeat(2600) + ']';"
NESTED_OBJECTS = "const u = '{a:'.repeat(400) + '1' + '}'.repeat(400) + ','; const s = '[' + u.repeat(650) + ']';"
#: a pattern that takes the regex compiler seconds under the flags iu
CLASSES = "const p = '[\\\\p{L}\\\\p{N}]'.repeat(2 ** 15);"
#: (patterns of many alternatives, which the compiler works on long without allocating, are refused before
#: they compile: test_regex_compile_limit.py)
#: (setup, one compile): the name says which input and route
ROUTES = {
    "nested arrays through eval": (NESTED_ARRAYS, "eval(s)"),
    "nested arrays through indirect eval": (NESTED_ARRAYS, "(0, eval)(s)"),
    "nested arrays through Function": (NESTED_ARRAYS, "Function('return ' + s)"),
    "nested objects through eval": (NESTED_OBJECTS, "eval(s)"),
    "nested objects through new Function": (NESTED_OBJECTS, "new Function('return ' + s)"),
    "regex classes through new RegExp": (CLASSES, "new RegExp(p, 'iu')"),
    "regex classes through RegExp()": (CLASSES, "RegExp(p, 'iu')"),
    "regex classes through RegExp.prototype.compile": (CLASSES, "/x/.compile(p, 'iu')"),
    "regex literal through eval": (CLASSES, "eval('/' + p + '/iu')"),
    "regex literal through Function": (CLASSES, "Function('return /' + p + '/iu')"),
    "regex through a RegExp subclass": (CLASSES, "new (class extends RegExp {})(p, 'iu')"),
}


@pytest.fixture(scope="module")
def m():
    with budget_manager(BUDGET) as mgr:
        yield mgr


def _attacker(setup: str, body: str, catching: bool) -> str:
    return attacker_source(setup, body, catching=catching,
                           ok="eval('1 + 1') + new RegExp('[a-z]+', 'iu').exec('Ab')[0].length + a.length")


def _stops(m, setup: str, body: str, *, catching: bool) -> None:
    # ok: memory back as the policy says
    assert_stops(m, _attacker(setup, body, catching), ScriptTimeoutError, ok=2 + 2 + 1000, within=1.5 * BUDGET,
                 what=body)


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_a_slow_parse_stops_within_the_budget(m, name):
    setup, body = ROUTES[name]
    _stops(m, setup, body, catching=False)


@pytest.mark.parametrize("name", ["nested arrays through eval", "regex classes through new RegExp",
                                  "regex literal through Function"])
def test_a_script_catching_the_failure_still_stops(m, name):
    setup, body = ROUTES[name]
    _stops(m, setup, body, catching=True)


def test_the_inputs_are_slow_without_the_cutoff():
    """Sanity check of the inputs: a trusted script (no time limit) compiling them
    takes more than the 0.75 s the tests allow."""
    with ScriptManager(cache_dir=False, policy=SecurityPolicy.trusted()) as mgr:
        mgr.load_script_from_source("s", JS, f"function f() {{ {CLASSES} return new RegExp(p, 'iu').source.length; }}")
        start = time.thread_time()
        assert mgr.call_function("s.f") == 12 * 2 ** 15
        assert time.thread_time() - start > 1.5 * BUDGET


def test_a_load_whose_regex_literal_compiles_too_long_is_a_timeout_naming_the_script(m):
    before = m.call_function("bystander.bump")
    source = "let kept = 1;\nconst r = /" + "[\\p{L}\\p{N}]" * 2 ** 15 + "/iu;\nfunction f() { return 1; }\n"
    start = time.thread_time()
    with pytest.raises(ScriptTimeoutError) as info:
        m.load_script_from_source("slowload", JS, source)
    spent = time.thread_time() - start
    assert info.value.script == "slowload"
    assert info.value.language == JS
    assert spent < 1.5 * BUDGET, f"the load ran {spent:.2f} s of CPU time under a {BUDGET} s limit"
    assert m.call_function("bystander.bump") == before + 1
    m.load_script_from_source("after", JS, "function g() { return /[\\p{L}]+/iu.exec('Ab1')[0]; }")
    assert m.call_function("after.g") == "Ab"
    m.unload_script("after")


def test_a_trusted_load_is_not_limited():
    source = "const r = /" + "[\\p{L}\\p{N}]" * 2 ** 14 + "/iu;\nfunction f() { return r.source.length; }\n"
    with ScriptManager(cache_dir=False, policy=SecurityPolicy.trusted()) as mgr:
        mgr.load_script_from_source("s", JS, source)
        assert mgr.call_function("s.f") == 12 * 2 ** 14


MEMORY = 8 * 1024 * 1024
NEAR = """
function churn(ms) {  // allocates and drops about 6 MiB again and again, close to an 8 MiB limit
  const end = Date.now() + ms; let rounds = 0;
  while (Date.now() < end) { const a = []; for (let i = 0; i < 600; i++) a.push('y'.repeat(10000) + i); rounds++; }
  return rounds > 0;
}
function parseNear() { const a = []; for (let i = 0; i < 500; i++) a.push('z'.repeat(10000) + i);
  return eval('[' + '1,'.repeat(10000) + '1]').length + new RegExp('[\\\\p{L}]+', 'iu').exec('ab')[0].length; }
function over() { const a = []; for (;;) a.push(new ArrayBuffer(1 << 22)); }
"""


def test_normal_allocation_near_the_memory_limit_is_not_cut():
    policy = SecurityPolicy.sandboxed(time_limit=BUDGET, memory_limit=MEMORY)
    with ScriptManager(cache_dir=False, policy=policy) as mgr:
        mgr.load_script_from_source("near", JS, NEAR)
        for _ in range(3):
            assert mgr.call_function("near.churn", [300]) is True
            assert mgr.call_function("near.parseNear") == 10001 + 2
        with pytest.raises(MemoryLimitError):
            mgr.call_function("near.over")
        assert mgr.call_function("near.parseNear") == 10001 + 2


def test_the_memory_limit_holds_after_a_cut():
    """The limit put back is the policy's, not none. (The cap is far above what the
    regex compiler reaches by the deadline: at 48 MiB it reached the cap first in
    about 0.4 s of CPU on some runs, a MemoryLimitError that is no cut.)"""
    policy = SecurityPolicy.sandboxed(time_limit=BUDGET, memory_limit=16 * MEMORY)
    with ScriptManager(cache_dir=False, policy=policy) as mgr:
        mgr.load_script_from_source("s", JS, f"function attack() {{ {CLASSES} new RegExp(p, 'iu'); }}\n" + NEAR)
        with pytest.raises(ScriptTimeoutError):
            mgr.call_function("s.attack")
        with pytest.raises(MemoryLimitError):
            mgr.call_function("s.over")
        assert mgr.call_function("s.parseNear") == 10001 + 2


def test_a_script_running_on_another_thread_meanwhile_is_not_cut():
    """Only the runtimes the late thread is inside are cut: a script allocating on
    another thread while an attack is cut keeps running and keeps its memory.
    The allocating script has a memory limit and a deadline too (the watchdog
    watches its thread), but a generous one: its own 0.5 s, wall-clock, was seen
    to pass under load (a 50 ms churn took 0.52 s of wall time for 17 ms of CPU:
    the attacker's thread competes for the two cores and for the GIL, which the
    churn's interrupt handler needs and the attacker's host work, measuring each
    2 MB source it compiles, holds for tens of ms at a time), failing the test
    with a ScriptTimeoutError that was no cut."""
    policy = SecurityPolicy.sandboxed(time_limit=BUDGET, memory_limit=MEMORY)
    with ScriptManager(cache_dir=False, policy=policy, output=lambda lang, text: None) as mgr:
        mgr.load_script_from_source("near", JS, NEAR,
                                    policy=SecurityPolicy.sandboxed(time_limit=60, memory_limit=MEMORY))
        mgr.load_script_from_source("attacker", JS, _attacker(NESTED_ARRAYS, "eval(s)", True))
        # (a regular expression's compile outlasts the deadline every time: a cut each attack, where the
        # deadline of the loop of evals may fall between two parses, which the interrupt stops uncut)
        mgr.load_script_from_source("regexer", JS, _attacker(CLASSES, "new RegExp(p, 'iu')", True))
        results: list[object] = []
        stop = threading.Event()

        def churn() -> None:
            while not stop.is_set():
                try:
                    results.append(mgr.call_function("near.churn", [50]))
                except Exception as exc:  # noqa: BLE001 - recorded for the assertion
                    results.append(exc)

        worker = threading.Thread(target=churn)
        worker.start()
        try:
            for attacker in ("attacker", "regexer") * 2:
                with pytest.raises(ScriptTimeoutError):
                    mgr.call_function(f"{attacker}.attack")
        finally:
            stop.set()
            worker.join(30)
        assert results and all(r is True for r in results), results
