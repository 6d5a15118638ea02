"""A call into JavaScript nested inside a host callback (every ``kryon.call``
into a JavaScript function, out of any script) enters in the generated
caller's own frame (``kryon_js.calls.caller_source``, the ``nested`` branch)
instead of going through ``ScriptState.run``. What it writes out must keep
what ``run`` gives: the stack share of a nested entry and its return, the
callee's own deadline inside the chain's, the debugger's record of entries,
the nesting limit, and the checked path when the gate is taken by another
thread or the script is gone."""

from __future__ import annotations

import math
import threading
import time
from functools import partial

import pytest

from kryon_core import (
    RecursionLimitError,
    ScriptManager,
    ScriptRuntimeError,
    ScriptTimeoutError,
    SecurityPolicy,
    threads,
)
from kryon_core.testing.concurrency import run_threads

pytest.importorskip("kryon_js")

import kryon_js.state  # noqa: E402
from kryon_js.sandbox import MAX_NESTING, MIN_NESTED_STACK  # noqa: E402

JS = "javascript"

CALLER = """
function relay(name, v) { return kryon.call(name, v); }
function loop(name, n) { let s = 0; for (let i = 0; i < n; i++) s += kryon.call(name, i); return s; }
"""
CALLEE = """
function inc(x) { return x + 1; }
function probe(x) { return record(x); }
function spin(x) { for (;;) {} }
function fails(x) { throw new RangeError("no " + x); }
function deep(n) { return n <= 0 ? 0 : 1 + deep(n - 1); }
function down(n) { return n <= 0 ? 0 : 1 + kryon.call("b.down", n - 1); }
"""


def manager(policy: SecurityPolicy) -> ScriptManager:
    return ScriptManager(cache_dir=False, policy=policy, output=lambda lang, text: None)


@pytest.fixture(params=["trusted", "sandboxed"])
def m(request):
    policy = SecurityPolicy.trusted() if request.param == "trusted" else SecurityPolicy.sandboxed(time_limit=30)
    mgr = manager(policy)
    mgr.load_script_from_source("a", JS, CALLER)
    mgr.load_script_from_source("b", JS, CALLEE)
    yield mgr
    mgr.close()


def state_of(mgr: ScriptManager, script: str) -> kryon_js.state.ScriptState:
    return mgr.engine(JS).states[script]  # type: ignore[attr-defined,no-any-return]


def counting_runs(monkeypatch) -> list[str]:
    """The scripts entered through ``ScriptState.run``."""
    seen: list[str] = []
    real = kryon_js.state.ScriptState.run

    def run(self, fn, *args):
        seen.append(self.script)
        return real(self, fn, *args)

    monkeypatch.setattr(kryon_js.state.ScriptState, "run", run)
    return seen


def test_a_nested_call_enters_in_the_callers_frame(m, monkeypatch):
    b = state_of(m, "b")
    seen: list[int] = []
    m.engine(JS).set_global("record", lambda v: seen.append(b.current_stack) or v)
    loop = m.function("a.loop")
    assert loop("b.inc", 3) == 6 and m.call_function("a.relay", ["b.probe", 4]) == 4  # routes and callers made
    seen.clear()
    runs = counting_runs(monkeypatch)
    assert loop("b.inc", 200) == sum(range(1, 201))
    assert m.call_function("a.relay", ["b.probe", 5]) == 5
    assert runs == [], "a nested call with scalar arguments must not go through ScriptState.run"
    # its share of the stack while it runs (nested once: half), all of it back afterwards
    assert seen == [max(MIN_NESTED_STACK, b.stack_size // 2)]
    assert b.current_stack == b.stack_size and not b.stack_sizes


def test_the_stack_share_follows_the_depth_and_comes_back(m):
    b = state_of(m, "b")
    seen: list[int] = []
    m.engine(JS).set_global("record", lambda v: seen.append(b.current_stack) or v)
    m.evaluate(JS, script="b", code='function chain(n) { return n <= 0 ? record(0) : kryon.call("b.chain", n - 1); }')
    assert m.call_function("a.relay", ["b.chain", 4]) == 0
    # relay -> chain(4) nested once, ... chain(0) nested five deep
    assert seen == [max(MIN_NESTED_STACK, b.stack_size // 6)]
    assert b.current_stack == b.stack_size and not b.stack_sizes
    assert m.call_function("b.deep", [100]) == 100  # the whole stack again at the top


def deepest(call) -> int:
    """The deepest ``deep(n)`` that ``call`` runs without a RecursionLimitError (bisection)."""
    lo, hi = 1, 1
    while True:
        try:
            call(hi)
        except RecursionLimitError:
            break
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            call(mid)
            lo = mid
        except RecursionLimitError:
            hi = mid
    return lo


def test_the_runtime_gets_its_whole_stack_back_after_a_nested_call(m):
    """What QuickJS itself allows, not only what the state records: a nested entry recurses about half
    as deep as the top level, and the top level as deep as before once nested calls returned."""
    deep = m.function("b.deep")
    top = deepest(deep)
    nested = deepest(lambda n: m.call_function("a.relay", ["b.deep", n]))
    assert nested < 0.75 * top
    assert m.call_function("a.loop", ["b.inc", 50]) == sum(range(1, 51))
    deep(top)  # no RecursionLimitError: the whole stack is back
    assert deepest(deep) == top


def test_deep_recursion_inside_a_nested_call_is_a_clear_error(m):
    with pytest.raises(RecursionLimitError) as info:
        m.call_function("a.relay", ["b.deep", 1_000_000])
    assert info.value.script == "a" and info.value.language == JS  # surfaces in the caller, as every callee error
    assert m.call_function("a.relay", ["b.deep", 50]) == 50
    assert state_of(m, "b").current_stack == state_of(m, "b").stack_size


def test_the_nesting_limit_holds_on_the_nested_entry(m):
    with pytest.raises(RecursionLimitError):
        m.call_function("a.relay", ["b.down", 10 * MAX_NESTING])
    assert m.call_function("a.relay", ["b.down", 10]) == 10
    b = state_of(m, "b")
    assert b.current_stack == b.stack_size and not b.stack_sizes


def test_errors_of_the_nested_callee_name_it(m):
    with pytest.raises(ScriptRuntimeError, match="no 3") as info:
        m.call_function("a.relay", ["b.fails", 3])
    assert info.value.language == JS and info.value.script == "a" and info.value.line == 2
    assert any(frame.script == "b" and frame.line == 5 for frame in info.value.stack)
    assert m.call_function("a.relay", ["b.inc", 1]) == 2


@pytest.mark.timeout(120)  # without its deadline the callee would spin for ever
def test_a_limited_callee_keeps_its_own_deadline_inside_an_unlimited_chain():
    """The caller is trusted (no deadline): the nested entry arms the callee's own."""
    mgr = manager(SecurityPolicy.trusted())
    mgr.load_script_from_source("a", JS, CALLER)
    mgr.load_script_from_source("b", JS, CALLEE, policy=SecurityPolicy.sandboxed(time_limit=0.3))
    mgr.expose("b.spin")
    mgr.expose("b.inc")
    host = mgr.engine(JS).host
    try:
        assert mgr.call_function("a.relay", ["b.inc", 1]) == 2
        cpu = time.thread_time()
        with pytest.raises(ScriptTimeoutError) as info:
            mgr.call_function("a.relay", ["b.spin", 1])
        assert time.thread_time() - cpu < 30, "the callee's own time limit must stop it"
        assert info.value.script in ("a", "b")
        assert host.chain.deadline == math.inf and host.chain.nesting == 0
        assert mgr.call_function("a.loop", ["b.inc", 10]) == 55  # both work afterwards
    finally:
        mgr.close()


def test_the_chains_deadline_comes_back_after_each_nested_call():
    mgr = manager(SecurityPolicy.sandboxed(time_limit=30))
    mgr.load_script_from_source("b", JS, CALLEE)
    deadlines: list[float] = []
    host = mgr.engine(JS).host
    mgr.engine(JS).set_global("record", lambda v: deadlines.append(host.chain.deadline) or v)
    mgr.load_script_from_source("a", JS, CALLER + 'function two() { kryon.call("b.probe", 1); return record(2); }')
    try:
        assert mgr.call_function("a.two") == 2
        inner, outer = deadlines
        assert inner <= outer < math.inf  # the callee's deadline inside, the caller's again afterwards
        assert host.chain.deadline == math.inf
    finally:
        mgr.close()


def test_entries_are_recorded_for_nested_calls_while_a_debugger_tracks_them(m):
    seen: list[list[str]] = []
    m.engine(JS).set_global("record", lambda v: seen.append(threads.entries()) or v)
    relay = m.function("a.relay")
    assert relay("b.probe", 0) == 0  # callers made outside tracking
    seen.clear()
    threads.track_entries(True)
    try:
        assert relay("b.probe", 1) == 1
    finally:
        threads.track_entries(False)
    assert seen == [["javascript", "javascript"]], "both runtimes, outer first"


def test_a_nested_call_waits_for_a_gate_another_thread_holds(m):
    """Thread 1 is inside b (its host callback waits); thread 2's script calls
    into b nested: the nested entry cannot take the gate and takes the checked
    path, which waits, and every call gets its own result."""
    entered, leave = threading.Event(), threading.Event()

    def hold(v):
        entered.set()
        assert leave.wait(20)
        return v

    m.engine(JS).set_global("record", hold)
    results: list[object] = []
    holder = threading.Thread(target=lambda: results.append(m.call_function("b.probe", [7])))
    holder.start()
    assert entered.wait(20)
    caller = threading.Thread(target=lambda: results.append(m.call_function("a.loop", ["b.inc", 20])))
    caller.start()
    time.sleep(0.1)
    assert results == [], "the nested call must wait for the gate"
    leave.set()
    for t in (holder, caller):
        t.join(30)
    assert sorted(results, key=str) == [210, 7]


def test_a_nested_call_into_an_unloaded_script_is_refused(m):
    """The engine's handle to a function, kept by the host and called from inside a script's host
    callback after the script went."""
    inc = m.engine(JS).get_function("inc", script="b")
    m.engine(JS).set_global("viaHandle", lambda v: inc(v))
    m.load_script_from_source("c", JS, "function go(x) { return viaHandle(x); }")
    assert m.call_function("c.go", [2]) == 3
    m.unload_script("b")
    with pytest.raises(ScriptRuntimeError, match="'b' was unloaded"):
        m.call_function("c.go", [2])


def test_threads_calling_into_one_script_nested_all_get_their_results(m):
    """Four threads, each in its own caller script, loop ``kryon.call`` into the same script: the
    nested entries meet a gate another thread holds over and over (the checked path, which waits)
    and otherwise take it themselves; every sum is right and every stack comes back."""
    for i in range(4):
        m.load_script_from_source(f"c{i}", JS, CALLER)
    results: dict[int, object] = {}

    def run(i: int) -> None:
        results[i] = sum(m.call_function(f"c{i}.loop", ["b.inc", 300]) for _ in range(3))

    run_threads([partial(run, i) for i in range(4)])
    assert results == {i: 3 * sum(range(1, 301)) for i in range(4)}
    b = state_of(m, "b")
    assert b.current_stack == b.stack_size and not b.stack_sizes
    assert not m.engine(JS).host.nested


def test_two_scripts_calling_each_other_from_two_threads_never_deadlock(m):
    """Thread 1 runs x and calls into y while thread 2 runs y and calls into x: each nested entry may find
    the other's gate taken, and the checked path (EngineGate's helping waiters) finishes both."""
    m.load_script_from_source("x", JS, CALLER + "function inc(v) { return v + 1; }")
    m.load_script_from_source("y", JS, CALLER + "function inc(v) { return v + 1; }")
    results: dict[str, object] = {}

    def run(me: str, other: str) -> None:
        results[me] = sum(m.call_function(f"{me}.loop", [f"{other}.inc", 200]) for _ in range(5))

    run_threads([partial(run, *pair) for pair in (("x", "y"), ("y", "x"))])  # fails if they deadlock
    assert results == {"x": 5 * sum(range(1, 201)), "y": 5 * sum(range(1, 201))}
    for script in ("x", "y"):
        state = state_of(m, script)
        assert state.current_stack == state.stack_size and not state.stack_sizes
