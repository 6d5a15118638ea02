"""Wren's host side under attack: time limits that host calls cannot re-arm,
and faults that restart only the script that caused them (issue 10 items
2 and 6)."""

from __future__ import annotations

import time

import pytest

from kryon_core import (
    Document,
    MemoryLimitError,
    RecursionLimitError,
    ScriptError,
    ScriptManager,
    ScriptTimeoutError,
    SecurityPolicy,
)

BUDGET = 0.5
#: the loops' budget: the bound asserted is 1.5x of it, and the machine is shared
LOOP_BUDGET = 1.0

#: bystander scripts, one per engine, each counting its calls
COUNTERS = {
    "wren": ("count_w", "var n = 0\nvar bump = Fn.new {\n  n = n + 1\n  return n\n}\n"),
    "lua": ("count_l", "local n = 0\nfunction bump() n = n + 1 return n end\n"),
    "javascript": ("count_j", "let n = 0;\nfunction bump() { n += 1; return n; }\n"),
}

#: loops of host calls that never leave the script for long
HOST_LOOPS = {
    "call_other_wren": 'while (true) { Kryon.call("count_w.bump") }',
    "call_own_function": 'while (true) { Kryon.call("looper.one") }',
    "call_lua": 'while (true) { Kryon.call("count_l.bump") }',
    "get_shared": 'while (true) { Kryon.getShared("big") }',
    "dom_calls": 'while (true) {\n    var b = Kryon.getElementById("btn")\n    Kryon.setProperty(b, "text", "x")\n  }',
    "host_callback": "while (true) { cb.call(1) }",
    "catching_the_error": 'while (true) {\n    Fiber.new { Kryon.call("count_w.bump") }.try()\n  }',
}


def _manager() -> ScriptManager:
    m = ScriptManager(policy=SecurityPolicy.trusted(), cache=False, output=lambda lang, text: None)
    doc = m.setup_dom_bridge(Document())
    doc.append_child(doc.root, doc.create_element("button", {"id": "btn", "text": "idle"}))
    for lang, (name, source) in COUNTERS.items():
        m.load_script_from_source(name, lang, source)
    m.shared.create("big", {"list": list(range(200))})  # made by the host: open to every script
    for name in ("count_w.bump", "count_l.bump"):
        m.expose(name)
    return m


@pytest.mark.parametrize("loop", sorted(HOST_LOOPS))
def test_a_loop_of_host_calls_cannot_outrun_the_deadline(loop: str) -> None:
    sandboxed = SecurityPolicy.sandboxed(time_limit=LOOP_BUDGET)
    m = _manager()
    try:
        source = (
            'import "kryon" for Kryon\nvar one = Fn.new { 1 }\n'
            f"var run = Fn.new {{ |cb|\n  {HOST_LOOPS[loop]}\n}}\nvar ok = Fn.new {{ 7 }}\n"
        )
        m.load_script_from_source("looper", "wren", source, policy=sandboxed)
        m.expose("looper.one")
        assert m.call_function("count_w.bump") == 1
        # the loop's own CPU time: a loaded machine may leave the thread unscheduled past
        # the deadline, but a loop the limit never stopped would run on
        start = time.thread_time()
        with pytest.raises(ScriptTimeoutError):
            m.call_function("looper.run", [lambda x: x])
        elapsed = time.thread_time() - start
        assert elapsed < 1.5 * LOOP_BUDGET, f"the limit fired after {elapsed:.2f} s of CPU (budget {LOOP_BUDGET} s)"
        assert m.call_function("looper.ok") == 7, "the engine is usable afterwards"
        before = m.call_function("count_w.bump")
        assert before >= 2
        assert m.call_function("count_w.bump") == before + 1, "the callee keeps its state"
    finally:
        m.close()


def test_host_calls_inside_a_call_do_not_re_arm_its_deadline() -> None:
    """A CPU-independent check: count how many host calls a script makes
    before its limit fires, with calls that each take a known time."""
    sandboxed = SecurityPolicy.sandboxed(time_limit=BUDGET)
    m = _manager()
    try:
        slow_calls = []

        def slow(_: object) -> int:
            slow_calls.append(1)
            time.sleep(0.05)
            return 1

        m.load_script_from_source("looper", "wren", "var run = Fn.new { |cb|\n  while (true) { cb.call(1) }\n}\n",
                                  policy=sandboxed)
        with pytest.raises(ScriptTimeoutError):
            m.call_function("looper.run", [slow])
        # each call sleeps 50 ms: a budget of 500 ms allows about 10 of them,
        # a deadline re-armed by every host call would allow them forever
        assert len(slow_calls) <= 2 * BUDGET / 0.05
    finally:
        m.close()


#: one fault of each kind, from a script's function (the number is the wanted error)
FAULTS = {
    "trap": ("var f = Fn.new { List.filled(2147483648, 0) }\n", ScriptError),
    "out_of_memory": ('var f = Fn.new {\n  var t = []\n  while (true) t.add("x" * 1048576 + t.count.toString)\n}\n',
                      MemoryLimitError),
    "stack_overflow": ("var f\nf = Fn.new { |n| f.call(n + 1) + 1 }\n", RecursionLimitError),
    "stack_overflow_unbounded": ("var f\nf = Fn.new { |n| f.call(n + 1) + 1 }\n", ScriptError),
    "timeout": ("var f = Fn.new { while (true) {} }\n", ScriptTimeoutError),
}


@pytest.mark.parametrize("kind", sorted(FAULTS))
@pytest.mark.parametrize("bystander_policy", ["sandboxed", "trusted"])
def test_one_scripts_fault_never_resets_another_s_state(kind: str, bystander_policy: str) -> None:
    source, error = FAULTS[kind]
    # only the timeout fault runs into the time limit (a loaded machine must not turn the others into timeouts)
    limits = {"time_limit": BUDGET if kind == "timeout" else 30.0, "memory_limit": 32 << 20}
    if kind == "stack_overflow_unbounded":
        limits["max_recursion"] = 0
    faulty = SecurityPolicy.sandboxed(**limits)
    # the bystander's own limit only has to exist (its deadline is armed); a loaded machine must not make its load time out
    bystander = SecurityPolicy.sandboxed(time_limit=10 * BUDGET) if bystander_policy == "sandboxed" else SecurityPolicy.trusted()
    with ScriptManager(policy=SecurityPolicy.trusted(), cache=False, output=lambda lang, text: None) as m:
        m.load_script_from_source("counter", "wren", COUNTERS["wren"][1], policy=bystander)
        m.load_script_from_source("faulty", "wren", source + "var k = 0\nvar inc = Fn.new {\n  k = k + 1\n  return k\n}\n",
                                  policy=faulty)
        assert m.call_function("counter.bump") == 1
        assert m.call_function("counter.bump") == 2
        assert m.call_function("faulty.inc") == 1
        with pytest.raises(error) as info:
            m.call_function("faulty.f", [0] if "|n|" in source else [])
        assert info.value.language == "wren" and info.value.script == "faulty" and info.value.line is not None, \
            f"a {kind} names language, script and line: {info.value!r}"
        assert m.call_function("counter.bump") == 3, f"a {kind} in another script reset this one"
        assert m.call_function("faulty.inc") in (1, 2), "the faulty script works again"
        with pytest.raises(error):  # and faults again the same way
            m.call_function("faulty.f", [0] if "|n|" in source else [])
        assert m.call_function("counter.bump") == 4


def test_a_fault_at_load_leaves_loaded_scripts_alone() -> None:
    with ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=BUDGET, memory_limit=32 << 20), cache=False) as m:
        m.load_script_from_source("counter", "wren", COUNTERS["wren"][1])
        assert m.call_function("counter.bump") == 1
        for kind in ("trap", "timeout", "out_of_memory"):
            source, error = FAULTS[kind]
            with pytest.raises(error if kind == "timeout" else ScriptError):
                m.load_script_from_source("bad", "wren", source + "f.call()\n")
        assert m.call_function("counter.bump") == 2


def test_a_trap_inside_a_nested_call_restarts_the_script_once() -> None:
    """The script times out inside a call it made into itself (through
    Kryon.call): the instance is replaced once, and freed only when the
    outermost call has left it."""
    with ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=BUDGET), cache=False) as m:
        m.load_script_from_source("s", "wren", 'import "kryon" for Kryon\nvar n = 0\n'
                                  "var spin = Fn.new { while (true) {} }\n"
                                  'var outer = Fn.new { Kryon.call("s.spin") }\n'
                                  "var bump = Fn.new {\n  n = n + 1\n  return n\n}\n")
        assert m.call_function("s.bump") == 1
        with pytest.raises(ScriptTimeoutError):
            m.call_function("s.outer")
        engine = m.engine("wren")
        assert engine._scripts["s"].pool.restarts == 1
        assert m.call_function("s.bump") == 1


def test_callbacks_belong_to_the_script_that_registered_them() -> None:
    """Two scripts register listeners, timers and watchers; each one's are
    released with it (unload, failed reload) and the other's keep firing."""
    source = ('import "kryon" for Kryon\nvar hits = 0\n'
              'Kryon.addEventListener(Kryon.getElementById("btn"), "click", Fn.new { |e| hits = hits + 1 })\n'
              'Kryon.watchVariable("v", Fn.new { |value| hits = hits + 10 })\n'
              "var count = Fn.new { hits }\n")
    with ScriptManager(policy=SecurityPolicy.sandboxed(), cache=False) as m:
        doc = m.setup_dom_bridge(Document())
        doc.append_child(doc.root, doc.create_element("button", {"id": "btn"}))
        m.load_script_from_source("a", "wren", source)
        m.load_script_from_source("b", "wren", source)
        assert doc.callback_counts()["listeners"] == 2 and doc.callback_counts()["watchers"] == 2
        with pytest.raises(ScriptError):
            m.hot_reload_script("b", source + 'Fiber.abort("broken")\n')
        assert doc.callback_counts()["listeners"] == 2, "the failed version's listener was not taken back"
        m.unload_script("a")
        assert doc.callback_counts()["listeners"] == 1 and doc.callback_counts()["watchers"] == 1
        assert doc.click("btn") == 1
        doc.set_variable("v", 1)
        assert m.call_function("b.count") == 11


def test_a_trusted_policy_keeps_its_time_and_memory_limits():
    """Trusted limits are conveniences, not a boundary, but an accepted limit is kept, never ignored."""
    source = ("class W {\n  static spin() { while (true) {} }\n  static one() { 1 }\n"
              "  static grow() {\n    var l = []\n    while (true) l.add(\"x\" * 1000)\n  }\n}")
    with ScriptManager(policy=SecurityPolicy.trusted(time_limit=0.5, memory_limit=8 << 20), cache=False) as m:
        m.load_script_from_source("w", "wren", source)
        with pytest.raises(ScriptTimeoutError) as timed_out:
            m.call_function("w.W.spin")
        assert timed_out.value.script == "w" and timed_out.value.line == 2
        with pytest.raises(MemoryLimitError):
            m.call_function("w.W.grow")
        assert m.call_function("w.W.one") == 1
    with ScriptManager(policy=SecurityPolicy.trusted(), cache=False) as m:  # no limits given: none kept
        m.load_script_from_source("w", "wren", source)
        assert m.call_function("w.W.one") == 1
