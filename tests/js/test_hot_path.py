"""The hot path of a JavaScript call (kryon_js.calls.make_caller): what it
skips must not change what a call does. Scalars nested inside a host
callback (``kryon.call`` between scripts) go in without JSON; a limited
chain still bounds an unlimited callee it reaches that way; the per-thread
bookkeeping the caller reads instead of the thread-local chain
(``Host.nested``, ``Host.graced``) follows every callback and timeout; an
unloaded script's handle refuses the call."""

from __future__ import annotations

import math
import threading
import time

import pytest

from kryon_core import ScriptError, ScriptManager, ScriptRuntimeError, ScriptTimeoutError, SecurityPolicy

pytest.importorskip("kryon_js")

import kryon_js.state  # noqa: E402

JS = "javascript"
VALUES = [0, -1, 2**31 - 1, -(2**31), 1.5, -0.0, math.inf, True, False, None, "", "a\x00b", "\U0001f600 ok"]


def manager(policy: SecurityPolicy) -> ScriptManager:
    return ScriptManager(cache_dir=False, policy=policy, output=lambda lang, text: None)


@pytest.fixture(params=["trusted", "sandboxed"])
def m(request):
    mgr = manager(SecurityPolicy.trusted() if request.param == "trusted" else SecurityPolicy.sandboxed())
    mgr.load_script_from_source("a", JS, """
        function relay(v) { return kryon.call("b.echo", v); }
        function sum(n) { let s = 0; for (let i = 0; i < n; i++) s += kryon.call("b.inc", i); return s; }
        function fromPython(f, v) { return f(v); }
    """)
    mgr.load_script_from_source("b", JS, """
        function echo(x) { return x; }
        function inc(x) { return x + 1; }
        function fails(x) { if (x > 1) throw new RangeError("too big: " + x); return x; }
    """)
    yield mgr
    mgr.close()


def counting_args_obj(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = kryon_js.state.args_obj

    def count(state, args):
        calls.append(len(args))
        return real(state, args)

    monkeypatch.setattr(kryon_js.state, "args_obj", count)
    return calls


def test_scalars_nested_in_a_callback_go_in_exactly_and_without_json(m, monkeypatch):
    calls = counting_args_obj(monkeypatch)
    assert m.call_function("a.sum", [50]) == sum(range(1, 51))
    for v in VALUES:
        got = m.call_function("a.relay", [v])
        assert got == v and type(got) is type(v), v
        if type(v) is float:
            assert math.copysign(1, got) == math.copysign(1, v), v
    assert calls == [], "scalar arguments must not be converted through JSON"
    assert m.call_function("a.relay", [[1, 2]]) == [1, 2]  # a list takes the converting path
    assert calls, "the converting path must still be taken for a list"


def test_errors_of_a_nested_call_name_the_callee(m):
    m.load_script_from_source("c", JS, 'function go(x) { return kryon.call("b.fails", x); }')
    assert m.call_function("c.go", [1]) == 1
    with pytest.raises(ScriptRuntimeError) as info:
        m.call_function("c.go", [5])
    assert "too big: 5" in str(info.value) and info.value.language == JS


def test_host_nested_counts_the_thread_inside_a_callback(m):
    host = m.engine(JS).host
    seen = []

    def inside(v):
        seen.append((host.nested, host.chain.nesting))
        if v == "boom":
            raise ValueError("boom")
        return v

    assert m.call_function("a.fromPython", [inside, 3]) == 3
    with pytest.raises(ScriptError, match="boom"):
        m.call_function("a.fromPython", [inside, "boom"])
    assert seen == [(1, 1), (1, 1)]
    assert host.nested == 0, "a thread is counted out when its callback returns or raises"
    assert host.chain.nesting == 0


def test_host_nested_counts_every_thread_inside_a_callback_and_each_one_out(m):
    """Threads inside host callbacks at the same time (each through its own
    script: a script's gate lets one in at a time) are each counted, and
    counted out again, also when the callback raises after calling into
    JavaScript again (nested) itself."""
    host = m.engine(JS).host
    n = 4
    for i in range(n):
        m.load_script_from_source(f"t{i}", JS, """
            function viaCallable(f, v) { return f(v); }
        """)
    all_inside = threading.Barrier(n + 1)
    go_on = threading.Event()

    def probe(v):
        all_inside.wait(60)
        go_on.wait(60)
        assert m.call_function("b.inc", [v]) == v + 1  # into JavaScript again, nested
        if v % 2:
            raise ValueError("odd")
        return v

    results: dict[int, object] = {}

    def work(i: int) -> None:
        try:
            results[i] = m.call_function(f"t{i}.viaCallable", [probe, i])
        except ScriptError as exc:
            results[i] = type(exc).__name__

    for _round in range(2):
        workers = [threading.Thread(target=work, args=(i,)) for i in range(n)]
        for t in workers:
            t.start()
        all_inside.wait(60)
        assert host.nested == n
        go_on.set()
        for t in workers:
            t.join(60)
        assert host.nested == 0
        assert results == {i: (i if i % 2 == 0 else "ScriptRuntimeError") for i in range(n)}
        go_on.clear()
        all_inside.reset()


def test_a_limited_chain_bounds_an_unlimited_callee_reached_through_kryon_call():
    m = manager(SecurityPolicy.sandboxed(time_limit=0.3))
    m.load_script_from_source("free", JS, "function spin(x) { for (;;) {} }", policy=SecurityPolicy.trusted())
    m.expose("free.spin", to="lim")
    m.load_script_from_source("lim", JS, 'function go() { return kryon.call("free.spin", 1); }\n'
                                         "function ok(x) { return x * 2; }")
    cpu = time.process_time()
    with pytest.raises(ScriptTimeoutError):
        m.call_function("lim.go")
    assert time.process_time() - cpu < 30, "the chain's deadline must stop the unlimited callee"
    assert m.call_function("lim.ok", [21]) == 42
    m.close()


def test_every_outermost_call_gets_its_grace_again():
    """A deadline that fired is pushed back by GRACE once per outermost call
    (so the host can unwind); the hot path resets that only for threads in
    ``Host.graced``, and must reset it every time."""
    m = manager(SecurityPolicy.sandboxed(time_limit=0.2))
    m.load_script_from_source("t", JS, "function spin() { for (;;) {} }\nfunction ok(x) { return x + 1; }")
    host = m.engine(JS).host
    spin, ok = m.function("t.spin"), m.function("t.ok")
    for _ in range(3):
        with pytest.raises(ScriptTimeoutError) as info:
            spin()
        assert info.value.script == "t" and info.value.line == 1
        assert threading.get_ident() in host.graced and host.chain.extended
        assert ok(1) == 2
        assert threading.get_ident() not in host.graced and host.chain.extended == 0.0
        assert host.chain.deadline == math.inf
    m.close()


def test_an_unloaded_scripts_handle_refuses_the_call():
    m = manager(SecurityPolicy.sandboxed())
    m.load_script_from_source("s", JS, "function f(x) { return x; }")
    engine = m.engine(JS)
    handle = engine.get_function("f", script="s")
    assert handle(1) == 1
    m.unload_script("s")
    with pytest.raises(ScriptRuntimeError, match="unloaded"):
        handle(1)
    m.close()


def test_a_contended_gate_sends_callers_through_the_checked_path():
    """While one thread is inside the script (its host callback waits), calls
    from other threads cannot take the inlined gate; they wait their turn and
    get their own results."""
    m = manager(SecurityPolicy.sandboxed(time_limit=20))
    m.load_script_from_source("s", JS, "function hold(f) { return f(); }\nfunction twice(x) { return 2 * x; }")
    twice = m.function("s.twice")
    entered, leave = threading.Event(), threading.Event()

    def wait() -> int:
        entered.set()
        assert leave.wait(10)
        return 7

    holder = threading.Thread(target=lambda: results.append(m.call_function("s.hold", [wait])))
    results: list[int] = []
    holder.start()
    assert entered.wait(10)
    others = [threading.Thread(target=lambda i=i: results.append(twice(i))) for i in range(4)]
    for t in others:
        t.start()
    time.sleep(0.05)
    leave.set()
    for t in [holder, *others]:
        t.join(20)
    assert sorted(results) == [0, 2, 4, 6, 7]
    m.close()


def test_entries_are_recorded_while_a_debugger_tracks_them(m):
    """The hot path inlines the gate, which would skip ``EngineGate.run``'s
    record of entered runtimes; while a debugger tracks entries it must not."""
    from kryon_core import threads

    seen = []
    m.engine(JS).set_global("record", lambda v: seen.append(threads.entries()) or v)
    m.load_script_from_source("r", JS, "function viaGlobal(x) { return record(x); }")
    handle = m.function("r.viaGlobal")  # scalar arguments: the inlined gate
    threads.track_entries(True)
    try:
        assert handle(1) == 1 and m.call_function("r.viaGlobal", [2]) == 2
    finally:
        threads.track_entries(False)
    assert seen == [["javascript"], ["javascript"]]


def test_host_calls_check_every_string_even_after_a_safe_one():
    """The prelude remembers the last string it found safe to pass as it is; a
    string with NUL or a lone surrogate after it still goes as tagged JSON and
    arrives exactly, and a long string under max_value_size is still refused."""
    mgr = manager(SecurityPolicy.sandboxed(max_value_size=64))
    mgr.load_script_from_source("lib", JS, "function echo(x) { return x; }\nfunction count(...xs) { return xs.length; }")
    mgr.load_script_from_source("a", JS, """
        function run() {
          const out = [];
          for (const s of ["ab", "ab", "a\\u0000b", "ab", "x\\ud800y", "x\\ud800y", "ab"]) out.push(kryon.call("lib.echo", s));
          out.push(kryon.call("lib.count"), kryon.call("lib.count", 1, 2, 3, 4, 5), kryon.call("lib.echo", 2.5));
          return out;
        }
        function long() { return kryon.call("lib.echo", "z".repeat(100)); }
    """)
    assert mgr.call_function("a.run") == ["ab", "ab", "a\x00b", "ab", "x\ud800y", "x\ud800y", "ab", 0, 5, 2.5]
    with pytest.raises(ScriptError, match="max_value_size"):
        mgr.call_function("a.long")
    mgr.close()
