"""The compiled caller (kryon_wren/_ccall.c, set up by kryon_wren/ccall.py):
built and taken for calls with number arguments; every fact it relies on
(the wasmtime function ctypes calls, the raw value size, the clock, plain
attributes of the instance and the script state, the RLock's fields, a probe
call) is checked, and a failed check means the Python caller, never a crash;
results, errors and limits are the Python caller's (``KRYON_WREN_NO_CEXT=1``)."""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("kryon_wren")

from kryon_wren import ccall  # noqa: E402

from kryon_core import ScriptError, ScriptManager, ScriptTimeoutError, SecurityPolicy, speedups, threads  # noqa: E402

SOURCE = """\
import "kryon" for Kryon
class T {
  static add(a, b) { a + b }
  static three(a, b, c) { a * 100 + b * 10 + c }
  static none() { 42 }
  static half(x) { x / 2 }
  static neg(x) { -x }
  static id(x) { x }
  static text(x) { "n=%(x)" }
  static list(x) { [x, x] }
  static nothing(x) { null }
  static yes(x) { x > 0 }
  static fail(x) {
    Fiber.abort("failed with %(x)")
  }
  static spin(n) {
    while (n >= 0) { n = n + 1 }
  }
  static grow(n) {
    var all = []
    for (i in 0...n) all.add("x" * 4096 + i.toString)
    return all.count
  }
  static deep(n) { n <= 0 ? 0 : 1 + deep(n - 1) }
  static say(x) {
    System.write("part %(x)")
    return x
  }
  static swallow(x) {
    __caught = Fiber.new { Kryon.call("s.T.missing%(x)", [x]) }.try()
    return __caught == null ? false : null
  }
  static again(x) {
    Fiber.abort(__caught)
  }
  static count(x) {
    __n = (__n == null ? 0 : __n) + x
    return __n
  }
}
"""

SANDBOXED = SecurityPolicy.sandboxed(time_limit=1.0, memory_limit=8 * 1024 * 1024, max_recursion=200)
POLICIES = {"trusted": SecurityPolicy.trusted(), "sandboxed": SANDBOXED}


@pytest.fixture(autouse=True)
def fresh_checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # the checks run once per process (per instance for the probe): each test sees its own run
    monkeypatch.setattr(ccall, "_api", [])
    monkeypatch.setattr(ccall, "_probed", weakref.WeakKeyDictionary())
    monkeypatch.setattr(threads, "_fresh_ok", [])
    monkeypatch.delenv(ccall.ENV_OFF, raising=False)
    yield


def _manager(policy: SecurityPolicy, source: str = SOURCE) -> ScriptManager:
    m = ScriptManager(cache=False, policy=policy, output=lambda lang, text: None)
    m.load_script_from_source("s", "wren", source)
    return m


def _caller(m: ScriptManager, name: str) -> Any:
    engine = m.engine("wren")
    return engine.cached_caller(engine._scripts["s"], name)


def _compiled(caller: Any) -> bool:
    return type(caller).__name__ == "Caller"


def _outcome(fn: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    try:
        value = fn(*args)
    except ScriptError as exc:
        return type(exc).__name__, (str(exc), exc.line)
    return "ok", (type(value).__name__, repr(value))


def test_the_extension_is_built_and_taken() -> None:
    assert ccall.enabled(), "kryon_wren._ccall did not build (a C compiler is expected where the tests run)"
    for policy in POLICIES.values():
        m = _manager(policy)
        try:
            caller = _caller(m, "T.add")
            assert _compiled(caller)
            assert caller(2, 3) == 5  # the first call of an arity makes its block (the Python caller)
            before = caller.calls
            assert [caller(i, 1) for i in range(5)] == [1, 2, 3, 4, 5]
            assert m.function("s.T.add")(40, 2.5) == 42.5
            assert m.call_function("T.add", [1, 2]) == 3
            assert caller.calls == before + 7
            assert caller("a", "b") == "ab"  # strings: the Python caller
            assert caller.calls == before + 7
            nothing, yes = _caller(m, "T.nothing"), _caller(m, "T.yes")
            assert [nothing(1), nothing(2), yes(1), yes(1), yes(-1)] == [None, None, True, True, False]
            assert nothing.calls == 1 and yes.calls == 2  # null and bool results come back from C too
            three, none = _caller(m, "T.three"), _caller(m, "T.none")
            assert three(1, 2, 3) == three(1, 2, 3) == 123 and none() == none() == 42
            assert three.calls == 1 and none.calls == 1
        finally:
            m.close()


def test_the_environment_variable_keeps_the_python_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ccall.ENV_OFF, "1")
    m = _manager(SANDBOXED)
    try:
        caller = _caller(m, "T.add")
        assert not _compiled(caller)
        assert caller(2, 3) == caller(2, 3) == 5
    finally:
        m.close()


CASES: list[tuple[str, tuple[Any, ...]]] = [
    ("T.add", (2, 3)), ("T.add", (2**52, 2**52)), ("T.add", (2**53, 0)), ("T.add", (-(2**53), -1)),
    ("T.add", (0.1, 0.2)), ("T.add", (2**53 + 1, 0)), ("T.add", (True, 1)), ("T.add", (None, 1)),
    ("T.add", (1e308, 1e308)), ("T.add", (1,)), ("T.add", (1, 2, 3)),
    ("T.half", (1,)), ("T.half", (3,)), ("T.neg", (0,)), ("T.neg", (0.0,)), ("T.neg", (-0.0,)),
    ("T.id", (math.nan,)), ("T.id", (math.inf,)), ("T.id", (-math.inf,)), ("T.id", (5e-324,)),
    ("T.id", (2.0**-1021,)), ("T.id", (2**53,)), ("T.id", (9007199254740994.0,)), ("T.id", (10**400,)),
    ("T.text", (7,)), ("T.list", (1.5,)), ("T.nothing", (1,)), ("T.yes", (1,)), ("T.yes", (-1,)),
    ("T.fail", (3,)), ("T.swallow", (1,)), ("T.fail", (4,)), ("T.swallow", (2,)), ("T.again", (1,)), ("T.add", (None, 2)),
    ("T.say", (1,)), ("T.say", (2,)), ("T.count", (1,)), ("T.count", (2,)), ("T.none", ()),
]


@pytest.mark.parametrize("policy", list(POLICIES), ids=list(POLICIES))
def test_outcomes_are_the_python_callers(monkeypatch: pytest.MonkeyPatch, policy: str) -> None:
    def run() -> list[tuple[str, Any]]:
        seen: list[tuple[str, str]] = []
        m = ScriptManager(cache=False, policy=POLICIES[policy], output=lambda lang, text: seen.append((lang, text)))
        m.load_script_from_source("s", "wren", SOURCE)
        try:
            got = [_outcome(_caller(m, name), *args) for name, args in CASES for _ in range(2)]
            return got + [("output", "".join(text for _, text in seen))]
        finally:
            m.close()

    compiled = run()
    monkeypatch.setenv(ccall.ENV_OFF, "1")
    assert compiled == run()


@pytest.mark.parametrize("broken", ["api", "address", "value_size", "clock", "probe", "probe_trap", "instance",
                                    "state"])
def test_a_failed_check_means_the_python_caller_not_a_crash(monkeypatch: pytest.MonkeyPatch, broken: str) -> None:
    from kryon_wren import _ccall

    real_resolve, real_probe = _ccall.resolve, _ccall.probe
    if broken == "api":  # the function cannot be resolved in the loaded library
        def no_api(path: str) -> int:
            raise OSError("no symbol wasmtime_func_call_unchecked")

        monkeypatch.setattr(_ccall, "resolve", no_api)
    elif broken == "address":  # the symbol found is not the function ctypes calls
        monkeypatch.setattr(_ccall, "resolve", lambda path: real_resolve(path) + 16)
    elif broken == "value_size":  # a wasmtime whose raw values have another size
        monkeypatch.setattr(ccall, "VALUE_SIZE", 8)
    elif broken == "clock":  # the C clock is not time.perf_counter's
        monkeypatch.setattr(_ccall, "now", lambda: time.perf_counter() + 3600.0)
    elif broken == "probe":  # a probe call through C does not give what ctypes gives
        monkeypatch.setattr(_ccall, "probe", lambda *a: real_probe(*a)[:2] + (real_probe(*a)[2] + 1,))
    elif broken == "probe_trap":  # or it trapped
        monkeypatch.setattr(_ccall, "probe", lambda *a: (0, 1, real_probe(*a)[2]))
    m = _manager(SANDBOXED)
    try:
        state = m.engine("wren")._scripts["s"]
        if broken == "instance":  # the class names an attribute the caller reads (a property could be there)
            monkeypatch.setattr(type(state.vm.instance), "_armed_at", -1e18, raising=False)
        elif broken == "state":  # an attribute it reads is not a plain list
            state.release_queue = ()
        caller = _caller(m, "T.add")
        assert not _compiled(caller)
        assert caller(2, 3) == caller(2, 3) == 5
        with pytest.raises(ScriptError, match="failed with 1"):
            _caller(m, "T.fail")(1)
        with pytest.raises(ScriptTimeoutError):
            _caller(m, "T.spin")(0)
        assert _caller(m, "T.add")(1, 1) == 2
    finally:
        m.close()


def test_only_the_checked_function_is_ever_called() -> None:
    from kryon_wren import _ccall
    from wasmtime import _ffi as ffi

    assert ccall._api_ready()
    address = _ccall.resolve(str(ffi.dll._name))
    for wrong in (address + 16, 0, 1):
        with pytest.raises(ValueError):
            _ccall.use_api(wrong)
    with pytest.raises(OSError):
        _ccall.resolve("/nonexistent/libwasmtime.so")


def test_the_rlock_is_taken_directly_only_once_the_core_checked_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through kryon-core's gate capsule when threads.direct_lock accepts the gate's lock (each of
    its checks is broken in tests/core/test_speedups_gate.py); else the lock's methods."""
    from kryon_wren import _ccall

    gate = threads.EngineGate("probe")
    assert ccall._direct_lock(gate) is (gate._lock if speedups.enabled() else None)
    assert _ccall.has_gate_api()  # the capsule is imported even when the core is switched off
    for broken in ("layout", "no_capsule"):
        with monkeypatch.context() as mp:
            if broken == "layout":
                mp.setattr(threads, "_live_lock_holds", lambda ext, lock: False)
            else:
                mp.setattr(_ccall, "has_gate_api", lambda: False)
            assert ccall._direct_lock(gate) is None
            m = _manager(SANDBOXED)
            try:  # still compiled: the lock's methods are called instead
                caller = _caller(m, "T.add")
                assert _compiled(caller)
                assert caller(2, 3) == caller(2, 3) == 5 and caller.calls == 1
            finally:
                m.close()


@pytest.mark.parametrize("direct", [True, False], ids=["rlock-fields", "rlock-methods"])
def test_a_contended_gate_waits_in_the_python_caller(monkeypatch: pytest.MonkeyPatch, direct: bool) -> None:
    if not direct:
        monkeypatch.setattr(ccall, "_direct_lock", lambda gate: None)
    m = _manager(SANDBOXED)
    try:
        caller = _caller(m, "T.add")
        assert _compiled(caller) and caller(1, 1) == 2
        gate = m.engine("wren")._scripts["s"].pool.gate
        entered, leave = threading.Event(), threading.Event()

        def hold() -> None:
            gate.run(lambda: (entered.set(), leave.wait(20)))

        holder = threading.Thread(target=hold, daemon=True)
        holder.start()
        assert entered.wait(20)
        before = caller.calls
        threading.Timer(0.2, leave.set).start()
        assert caller(2, 3) == 5  # waited for the holder, through the Python caller
        holder.join(20)
        assert caller.calls == before and not gate.held()
        # this thread's own hold is re-entered: the compiled path
        assert gate.run(lambda: caller(4, 5)) == 9 and caller.calls == before + 1 and not gate.held()
        other: list[Any] = []
        t = threading.Thread(target=lambda: other.append(caller(3, 3)))  # the gate is free again for others
        t.start()
        t.join(20)
        assert other == [6] and caller.calls == before + 2
    finally:
        m.close()


def test_a_debugger_means_the_python_caller() -> None:
    m = _manager(SecurityPolicy.trusted())
    try:
        assert _compiled(_caller(m, "T.add"))
        d = m.debugger()
        try:
            caller = _caller(m, "T.add")
            assert not _compiled(caller) and caller(2, 3) == 5
        finally:
            d.detach()
    finally:
        m.close()


def test_gate_entries_tracked_take_the_python_caller() -> None:
    m = _manager(SecurityPolicy.trusted())
    try:
        caller = _caller(m, "T.add")
        assert caller(1, 2) == 3
        before = caller.calls
        threads.tracking.append(object())
        try:
            assert caller(2, 3) == 5 and caller.calls == before
        finally:
            threads.tracking.pop()
        assert caller(2, 3) == 5 and caller.calls == before + 1
    finally:
        m.close()


def test_the_time_limit_fires_in_a_compiled_call_and_the_gil_is_free_meanwhile() -> None:
    m = _manager(SANDBOXED)
    m.load_script_from_source("other", "wren", "class O {\n  static one(x) { x + 1 }\n}\n")
    try:
        spin, add = _caller(m, "T.spin"), _caller(m, "T.add")
        count = _caller(m, "T.count")
        assert _compiled(spin) and add(1, 1) == 2 and count(5) == 5 and count(5) == 10
        assert spin(-1) is None  # no loop; its first call: the Python caller makes the block
        ticks = [0]
        stop = threading.Event()

        def tick() -> None:
            while not stop.is_set():
                ticks[0] += 1
                time.sleep(0.001)

        ticker = threading.Thread(target=tick, daemon=True)
        started = time.thread_time()
        ticker.start()
        try:
            before = spin.calls
            with pytest.raises(ScriptTimeoutError, match="time_limit|time limit"):
                spin(0)
        finally:
            stop.set()
            ticker.join(20)
        assert spin.calls == before + 1  # the compiled path made that call
        assert ticks[0] > 50, "another thread ran while the script looped (the GIL was released)"
        assert time.thread_time() - started < 30  # generous: the loop ran in wasm, not here
        # the instance restarted (its state is new), the script and the other script work
        assert _caller(m, "T.count")(1) == 1 and _caller(m, "T.add")(2, 2) == 4
        assert m.call_function("other.O.one", [1]) == 2
    finally:
        m.close()


@pytest.mark.parametrize("what", ["memory", "recursion"])
def test_memory_and_recursion_limits_fire_in_a_compiled_call(monkeypatch: pytest.MonkeyPatch, what: str) -> None:
    name, arg = ("T.grow", 100_000) if what == "memory" else ("T.deep", 100_000)

    def run() -> tuple[Any, ...]:
        m = _manager(SANDBOXED)
        try:
            fn = _caller(m, name)
            small = fn(3), fn(3)  # the block is made, then the compiled path
            failed = _outcome(fn, arg)
            took = getattr(fn, "calls", None)  # compiled: the second small call and the failed one
            after = _caller(m, name)(2), _caller(m, "T.add")(2, 2)
            return small, failed, after, took
        finally:
            m.close()

    compiled = run()
    assert compiled[-1] == 2 and compiled[1][0] != "ok"
    monkeypatch.setenv(ccall.ENV_OFF, "1")
    python = run()
    assert python[-1] is None and compiled[:-1] == python[:-1]
