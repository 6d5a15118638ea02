"""The compiled caller (kryon_js/_ccall.c, set up by kryon_js/ccall.py): built
and taken for top-level calls of 0-4 int32/float/bool/None arguments under
every policy while kryon-core's compiled core is on (it takes the gate through
the core's capsule, on a lock kryon_core.threads.direct_lock accepted); every
fact it relies on (the binding's layouts, the JSValue tags, the gate's lock)
is checked, and a failed check or the core off means the Python caller, never
a crash. Results and errors are the Python caller's, the
limits still fire inside compiled calls, the GIL is released while
JavaScript runs, and a contended gate, a debugger tracking entries and a
nested entry take the Python caller."""

import threading
import time
import types

import pytest
from kryon_js import calls, capi, ccall

from kryon_core import (
    MemoryLimitError,
    ScriptManager,
    ScriptRuntimeError,
    ScriptTimeoutError,
    SecurityPolicy,
    speedups,
    threads,
)

SOURCE = """\
function add(a, b) { return a + b; }
function half(x) { return x / 2; }
function kinds(k) {
  if (k === 0) return undefined; if (k === 1) return null; if (k === 2) return true; if (k === 3) return -0;
  if (k === 4) return 2 ** 60; if (k === 5) return NaN; if (k === 6) return "text \\u00e9";
  if (k === 7) return [1, {a: 2}]; if (k === 8) return "a\\0b"; if (k === 9) return 10n;
  if (k === 10) return "x".repeat(2000); if (k === 11) return Promise.resolve(1);
  if (k === 12) return "\\ud800 lone"; if (k === 13) return Symbol("s"); if (k === 14) return function () {};
  if (k === 15) return (function* () { yield 1; yield 2; })(); if (k === 16) return new Date(0);
  if (k === 17) return Promise.reject(new Error("no")); if (k === 18) return 2147483648;
  return 1.5;
}
function same(a, b, c, d) { return [a, b, c, d]; }
function boom(x) {
  throw new RangeError("bad " + x);
}
function throws_value(x) { throw x; }
function spin() { for (;;) {} }
function deep(n) { return n === 0 ? 0 : 1 + deep(n - 1); }
function fill(n) { const a = []; for (let i = 0; i < n; i++) a.push("y".repeat(1000) + i); return a.length; }
function busy(n) { let x = 0; for (let i = 0; i < n; i++) x += i; return x; }
function none() { return 7; }
function viaHost(x) { return kryon.call("t.add", x, 1); }
function toHost(x) { return kryon.call("py.twice", x); }
function hostFails(x) { return kryon.call("py.fails", x); }
function catchesHost(x) { try { return kryon.call("py.fails", x); } catch (e) { return "caught " + e.message; } }
function ownStack() { return new Error("here").stack; }
"""

POLICIES = {
    "trusted": SecurityPolicy.trusted(),
    "sandboxed": SecurityPolicy.sandboxed(max_value_size=1000),
    "limited": SecurityPolicy.sandboxed(time_limit=0.5, memory_limit=8 * 1024 * 1024, max_recursion=200),
}


PY = "def twice(v):\n    return v * 2\n\ndef fails(v):\n    raise ValueError('no ' + str(v))\n"


def _manager(policy):
    m = ScriptManager(cache_dir=False, policy=policy, output=lambda lang, text: None)
    m.load_script_from_source("t", "javascript", SOURCE)
    m.load_script_from_source("py", "python", PY)
    return m


def _state(m):
    return m.engine("javascript").states["t"]


def _caller(m, name, n):
    engine = m.engine("javascript")
    return engine._caller(_state(m), name, n)


#: the compiled caller needs kryon-core's compiled core (off with KRYON_CORE_NO_CEXT=1: Python callers only)
_ON = speedups.enabled()
compiled_only = pytest.mark.skipif(not _ON, reason="kryon-core's compiled core is off: no compiled caller")


def _compiled(caller):
    return type(caller).__name__ == "Caller"


@pytest.fixture(autouse=True)
def fresh_checks(monkeypatch):
    monkeypatch.setattr(ccall, "_checked", None)
    monkeypatch.delenv(ccall.ENV_OFF, raising=False)


@pytest.fixture(params=sorted(POLICIES))
def policy(request):
    return POLICIES[request.param]


def test_the_extension_is_built_and_its_checks_hold():
    assert ccall._ccall is not None, "kryon_js._ccall was not built (a C compiler is needed)"
    assert ccall._ccall.has_gate_api()  # kryon-core's capsule was found when the module loaded
    assert ccall.enabled() is _ON


@compiled_only
def test_scalar_calls_take_the_compiled_caller(policy):
    m = _manager(policy)
    caller = _caller(m, "add", 2)
    assert _compiled(caller)
    before = caller.calls
    assert m.call_function("add", [2, 3]) == 5
    assert m.function("t.add")(2.5, 1) == 3.5
    assert m.call_function("add", [True, None]) == 1
    assert caller.calls == before + 3
    # anything else goes to the Python caller, untouched: strings, big ints, another arity
    assert m.call_function("add", ["a", 1]) == "a1"
    assert m.call_function("add", [2**40, 1]) == 2**40 + 1
    assert m.call_function("add", [1]) != m.call_function("add", [1])  # undefined + 1: NaN, by the general path
    assert caller.calls == before + 3


def test_more_than_four_parameters_keep_the_python_caller():
    m = ScriptManager(cache_dir=False, policy=SecurityPolicy.trusted(), output=lambda lang, text: None)
    m.load_script_from_source("t", "javascript", "function five(a, b, c, d, e) { return a + b + c + d + e; }")
    assert not _compiled(_caller(m, "five", 5))
    assert m.call_function("five", [1, 2, 3, 4, 5]) == 15


CASES = [
    ("add", [2, 3]), ("add", [2.5, 0.25]), ("add", [True, None]), ("add", [None, None]), ("add", [-2147483648, -1]),
    ("add", [2147483647, 1]), ("half", [3]), ("half", [float("inf")]), ("half", [-0.0]),
    *[("kinds", [k]) for k in range(20)],
    ("same", [1, 2.5, False, None]), ("none", []), ("boom", [4]), ("throws_value", [None]), ("throws_value", [3]),
    ("deep", [10]), ("deep", [100000]), ("busy", [1000]), ("viaHost", [4]),
    ("toHost", [21]), ("hostFails", [3]), ("catchesHost", [5]), ("spin", []),
]


def _outcome(m, name, args):
    try:
        r = m.call_function(name, args)
        return ("ok", type(r).__name__, repr(r))
    except Exception as e:  # noqa: BLE001 - the outcome compared
        return ("error", type(e).__name__, str(e), getattr(e, "line", None), getattr(e, "script", None))


@compiled_only
def test_results_and_errors_are_the_python_callers(policy, monkeypatch):
    compiled = _manager(policy)
    assert _compiled(_caller(compiled, "add", 2))
    cases = [c for c in CASES if c[0] != "spin" or policy.time_limit is not None]
    got = [_outcome(compiled, name, args) for name, args in cases]
    monkeypatch.setenv(ccall.ENV_OFF, "1")
    plain = _manager(policy)
    assert not _compiled(_caller(plain, "add", 2))
    want = [_outcome(plain, name, args) for name, args in cases]
    for case, a, b in zip(cases, got, want, strict=True):
        assert a == b, case
    # and the compiled side really took its path for them
    assert _caller(compiled, "kinds", 1).calls >= 19  # (one may find a release pending: the FunctionRef of k=14)
    assert _caller(compiled, "toHost", 1).calls == 1 and _caller(compiled, "hostFails", 1).calls == 1


@compiled_only
def test_what_differs_the_prelude_wrapper_frame(monkeypatch):
    """The compiled caller calls the function itself, not the prelude's wrapper around it: the
    script's own Error.stack has no line for that internal frame (the host drops it from error
    stacks anyway), and the function gets that frame's native stack too (documented)."""
    compiled = _manager(SecurityPolicy.trusted())
    own = compiled.call_function("ownStack", [])
    assert _compiled(_caller(compiled, "ownStack", 0))
    monkeypatch.setenv(ccall.ENV_OFF, "1")
    plain = _manager(SecurityPolicy.trusted())
    python = plain.call_function("ownStack", [])
    assert own == "    at ownStack (t:27:34)\n"
    assert python.startswith(own) and python[len(own):].startswith("    at <anonymous> (<input>")


def test_turned_off_by_the_environment(monkeypatch):
    monkeypatch.setenv(ccall.ENV_OFF, "1")
    assert not ccall.enabled()
    m = _manager(SecurityPolicy.trusted())
    assert not _compiled(_caller(m, "add", 2)) and m.call_function("add", [1, 2]) == 3


@pytest.mark.parametrize("broken", ["tags", "capi", "symbols", "object_size", "python", "slots", "slot_read"])
def test_a_failed_setup_check_keeps_the_python_caller(broken, monkeypatch):
    monkeypatch.setattr(ccall, "_slots", {})
    if broken == "slots":  # a class without the member (another kryon-core): no offset
        monkeypatch.setattr(ccall, "_slot", lambda cls, name: None)
    elif broken == "slot_read":  # the offset does not hold what Python wrote
        monkeypatch.setattr(ccall._ccall, "slot_read", lambda obj, offset: None)
    elif broken == "tags":
        monkeypatch.setattr(ccall, "_TAGS", {**ccall._TAGS, "float": 7})
    elif broken == "capi":
        # (as ccall sees it: the engine itself keeps its C API)
        monkeypatch.setattr(ccall, "capi", types.SimpleNamespace(available=lambda: False, _OFF_OBJ_VALUE=24))
    elif broken == "symbols":
        def missing(path):
            raise OSError("no symbol JS_Call")
        monkeypatch.setattr(ccall._ccall, "load_api", missing)
    elif broken == "object_size":
        monkeypatch.setattr(capi, "_OFF_OBJ_VALUE", 32)
    else:
        monkeypatch.setattr(ccall.sys, "version_info", (3, 12, 0))
    assert ccall.enabled() is (_ON and broken.startswith("slot"))  # (the slots are checked per caller)
    for policy in POLICIES.values():
        m = _manager(policy)
        assert not _compiled(_caller(m, "add", 2))
        assert m.call_function("add", [2, 3]) == 5
        with pytest.raises(ScriptRuntimeError, match="bad 1"):
            m.call_function("boom", [1])


def _break_gate(monkeypatch, how):
    monkeypatch.setattr(threads, "_fresh_ok", [])
    if how == "layout":  # the core's check of the gate's own lock fails (each fact: tests/core/test_speedups_gate.py)
        monkeypatch.setattr(threads, "_live_lock_holds", lambda ext, lock: False)
    elif how == "fresh_layout":  # its check on a fresh lock fails
        monkeypatch.setattr(threads, "_fresh_lock_holds", lambda ext, kind: False)
    elif how == "core_off":  # kryon-core's compiled core turned off
        monkeypatch.setenv(speedups.ENV_OFF, "1")
    elif how == "no_capsule":  # a kryon-core without the capsule (built without a compiler, or older)
        monkeypatch.setattr(ccall._ccall, "has_gate_api", lambda: False)
    elif how == "python_rlock":  # the gate's lock is the pure-Python RLock: nothing to take from C
        monkeypatch.setattr(threads.threading, "RLock", threading._PyRLock)
    else:
        raise AssertionError(how)


@pytest.mark.parametrize("how", ["layout", "fresh_layout", "core_off", "no_capsule", "python_rlock"])
def test_without_the_gate_capsule_the_python_callers_do_every_call(monkeypatch, how):
    """No fallback to the lock's methods: the gate taken from C only through the core's capsule,
    on a lock it checked; else no compiled caller at all, and calls, errors and the gate as ever."""
    _break_gate(monkeypatch, how)
    assert ccall.enabled() is (_ON and how in ("layout", "fresh_layout", "python_rlock"))  # (the lock: per caller)
    for policy in POLICIES.values():
        m = _manager(policy)
        assert not _compiled(_caller(m, "add", 2)) and not _compiled(_caller(m, "boom", 1))
        assert m.call_function("add", [2, 3]) == 5 and m.function("t.add")(2.5, 1) == 3.5
        with pytest.raises(ScriptRuntimeError, match="bad 1"):
            m.call_function("boom", [1])
        gate = _state(m).gate
        assert not gate.held() and not gate._lock._is_owned()
        m.close()


@compiled_only
def test_the_gil_is_released_while_javascript_runs():
    m = _manager(SecurityPolicy.trusted())
    busy = m.function("t.busy")
    assert _compiled(_caller(m, "busy", 1))
    ticks = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks[0] += 1

    t = threading.Thread(target=count)
    t.start()
    try:
        time.sleep(0.05)
        start = ticks[0]
        busy(30_000_000)  # one call of some hundred milliseconds: the other thread must run meanwhile
        during = ticks[0] - start
    finally:
        stop.set()
        t.join()
    assert during > 10_000


@compiled_only
def test_a_contended_gate_takes_the_python_caller_which_waits():
    m = _manager(SecurityPolicy.trusted())
    state = _state(m)
    caller = _caller(m, "add", 2)
    assert _compiled(caller)
    held, go = threading.Event(), threading.Event()

    def hold():
        state.gate.run(lambda: (held.set(), go.wait(10)))

    t = threading.Thread(target=hold)
    t.start()
    assert held.wait(10)
    before = caller.calls
    result = []
    caller_thread = threading.Thread(target=lambda: result.append(caller(20, 22)))
    caller_thread.start()
    time.sleep(0.1)
    assert result == []  # waiting for the gate
    go.set()
    caller_thread.join(10)
    t.join(10)
    assert result == [42] and caller.calls == before
    assert caller(1, 1) == 2 and caller.calls == before + 1


def test_threads_calling_one_script_get_right_sums():
    m = _manager(SecurityPolicy.sandboxed())
    add = m.function("t.add")
    errors, sums = [], []

    def work(k):
        try:
            sums.append(sum(add(k, i) for i in range(2000)))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors and sorted(sums) == sorted(2000 * k + 1999 * 1000 for k in range(4))
    assert not _state(m).gate.held()


@compiled_only
def test_the_time_limit_stops_a_compiled_call_and_the_deadline_comes_back():
    m = _manager(POLICIES["limited"])
    caller = _caller(m, "spin", 0)
    assert _compiled(caller)
    before = caller.calls
    start = time.thread_time()
    with pytest.raises(ScriptTimeoutError):
        caller()
    assert time.thread_time() - start < 30  # generous: the limit is 0.5 s
    assert caller.calls == before + 1
    chain = m.engine("javascript").host.chain
    assert chain.deadline == float("inf")
    assert m.call_function("add", [1, 2]) == 3
    with pytest.raises(ScriptTimeoutError):  # and again: the chain got its GRACE back
        caller()


@compiled_only
def test_the_memory_cap_holds_in_a_compiled_call():
    m = _manager(POLICIES["limited"])
    caller = _caller(m, "fill", 1)
    assert _compiled(caller)
    before = caller.calls
    with pytest.raises(MemoryLimitError):
        caller(100_000)
    assert caller.calls == before + 1
    assert caller(10) == 10 and m.call_function("add", [1, 2]) == 3


@compiled_only
def test_deep_recursion_fails_alike_in_a_compiled_call(monkeypatch):
    m = _manager(POLICIES["limited"])
    caller = _caller(m, "deep", 1)
    before = caller.calls
    with pytest.raises(Exception) as compiled:
        caller(100000)
    assert caller.calls == before + 1
    assert caller(50) == 50
    monkeypatch.setenv(ccall.ENV_OFF, "1")
    plain = _manager(POLICIES["limited"])
    with pytest.raises(Exception) as python:
        _caller(plain, "deep", 1)(100000)
    assert type(compiled.value) is type(python.value) and str(compiled.value) == str(python.value)


@compiled_only
def test_a_debugger_tracking_entries_takes_the_python_caller():
    m = _manager(SecurityPolicy.trusted())
    caller = _caller(m, "add", 2)
    before = caller.calls
    threads.track_entries(True)
    try:
        assert caller(1, 2) == 3
        assert caller.calls == before
    finally:
        threads.track_entries(False)
    assert caller(1, 2) == 3 and caller.calls == before + 1


def test_a_debugger_attached_stops_in_a_compiled_callers_function():
    from kryon_core.debug import BreakpointSpec  # noqa: PLC0415 - only this test needs them
    from kryon_core.testing.debugging import DebugSession  # noqa: PLC0415

    pytest.importorskip("tree_sitter_javascript")
    m = ScriptManager(cache=False, policy=SecurityPolicy.trusted())
    session = DebugSession(m)
    try:
        m.load_script_from_source("t", "javascript", SOURCE)
        session.dbg.set_breakpoints("t", [BreakpointSpec(2)])
        caller = _caller(m, "half", 1)
        before = caller.calls if _compiled(caller) else 0
        session.run("half", 8)
        stop = session.stop()
        assert session.top(stop).line == 2
        session.dbg.resume(stop.thread)
        assert session.result() == 4
        assert not _compiled(caller) or caller.calls == before  # the debugger tracks entries: Python caller
    finally:
        session.close()


@compiled_only
def test_a_nested_entry_takes_the_compiled_caller_with_its_stack_share(monkeypatch):
    """kryon.call from JavaScript into JavaScript: the callee's entry is nested (tests/js/test_nested_entry.py
    checks the share itself, the limits and the debugger's record through whichever caller is built)."""
    m = _manager(SecurityPolicy.sandboxed())
    state = _state(m)
    caller = _caller(m, "add", 2)
    before = caller.calls
    assert m.call_function("viaHost", [4]) == 5
    assert caller.calls == before + 1
    assert state.current_stack == state.stack_size
    # from another script too, and the stack comes back
    m.load_script_from_source("w", "javascript", "function outer(x) { return kryon.call('t.ownStack'); }")
    assert m.call_function("outer", [1]).startswith("    at ownStack (t:")
    assert _caller(m, "ownStack", 0).calls == 1
    assert state.current_stack == state.stack_size


@compiled_only
def test_a_pending_release_or_an_unloaded_script_takes_the_python_caller():
    m = _manager(SecurityPolicy.trusted())
    caller = _caller(m, "add", 2)
    before = caller.calls
    _state(m).pending_release.append(10**9)  # an id that is not live: flushed on the checked path
    assert caller(1, 2) == 3 and caller.calls == before and not _state(m).pending_release
    m.unload_script("t")
    with pytest.raises(ScriptRuntimeError, match="unloaded"):
        caller(1, 2)
    assert caller.calls == before


@compiled_only
def test_the_generated_caller_is_the_fallback():
    m = _manager(SecurityPolicy.trusted())
    caller = _caller(m, "add", 2)
    assert calls.make_caller.__module__ == "kryon_js.calls"
    assert _compiled(caller) and caller(1, 2) == 3
