"""The compiled caller enters the engine gate without calling the lock's
methods: it takes CPython's C RLock through kryon-core's gate capsule
(kryon_core/_speedups_api.h), once kryon_core.threads.direct_lock has checked
the layout on the gate's live lock. The
gate keeps its semantics: held by the caller for the call, re-entrant, given
back in full; contended means the Python path, which waits (and helps); a
release wakes the threads polling the gate. A failed check means the lock's
own methods, never a crash."""

import sys
import threading
import time

import pytest

pytest.importorskip("kryon_lua")

from ccall_support import cached_caller as _caller  # noqa: E402
from ccall_support import lua_manager  # noqa: E402
from kryon_lua import ccall  # noqa: E402

from kryon_core import ScriptRuntimeError, SecurityPolicy, speedups, threads  # noqa: E402

SOURCE = """\
function add(a, b) return a + b end
function held(x) return probe(x) end
function boom(x) error("bad " .. tostring(x)) end
"""

#: the direct gate needs kryon-core's compiled core (off with KRYON_CORE_NO_CEXT=1: the lock's methods then)
_DIRECT = speedups.enabled()
SANDBOXED = SecurityPolicy.sandboxed(time_limit=2, memory_limit=16 * 1024 * 1024, max_recursion=100)
POLICIES = pytest.mark.parametrize("policy", [SANDBOXED, SecurityPolicy.trusted()], ids=["sandboxed", "trusted"])


@pytest.fixture(autouse=True)
def fresh_facts(monkeypatch):
    monkeypatch.setattr(ccall, "_facts", type(ccall._facts)())
    monkeypatch.delenv(ccall.ENV_OFF, raising=False)


def _manager(policy, **globals_):
    return lua_manager(policy, SOURCE, **globals_)


def _gate(m):
    return m.engine("lua")._scripts["s"].runtime.gate


def _free_for_another_thread(gate):
    """Whether another thread can take the gate now (its plain lock was really given back)."""
    got = []

    def take():
        if gate._lock.acquire(False):
            got.append(True)
            gate._lock.release()

    t = threading.Thread(target=take)
    t.start()
    t.join(10)
    return got == [True]


@POLICIES
def test_the_gate_is_held_for_the_call_re_entered_and_given_back(policy):
    assert sys.version_info[:2] in ((3, 11), (3, 12)), "the direct gate is checked for these versions only"
    seen = []

    def probe(x):
        seen.append((gate.held(), gate._lock._is_owned()))
        if x:  # back into the same state from a host function: the gate is entered again
            return add(x, 1)
        return 0

    m = _manager(policy, probe=probe)
    try:
        gate = _gate(m)
        held, add = _caller(m, "held"), _caller(m, "add")
        assert held.direct_gate == add.direct_gate == _DIRECT
        before = (held.calls, add.calls)
        assert held(41) == 42 and held(0) == 0
        assert seen == [(True, True), (True, True)]
        assert (held.calls, add.calls) == (before[0] + 2, before[1] + 1)  # both through the compiled path
        assert not gate.held() and _free_for_another_thread(gate)
        with pytest.raises(ScriptRuntimeError):  # an error gives the gate back too
            _caller(m, "boom")(1)
        assert not gate.held() and _free_for_another_thread(gate)
    finally:
        m.close()


@POLICIES
def test_a_gate_held_by_another_thread_sends_the_call_to_the_path_that_waits(policy):
    m = _manager(policy)
    try:
        gate, add = _gate(m), _caller(m, "add")
        assert add.direct_gate == _DIRECT
        taken, go = threading.Event(), threading.Event()

        def hold():
            def inside():
                taken.set()
                go.wait(10)

            gate.run(inside)

        t = threading.Thread(target=hold)
        t.start()
        assert taken.wait(10)
        before = add.calls
        threading.Timer(0.2, go.set).start()
        assert add(2, 3) == 5  # waited for the other thread: not entered beside it
        assert go.is_set()
        t.join(10)
        assert add.calls == before  # the Python path took it
        assert add(2, 3) == 5 and add.calls == before + 1
        assert not gate.held() and _free_for_another_thread(gate)
    finally:
        m.close()


def test_a_release_wakes_the_threads_polling_the_gate(monkeypatch):
    woken = []
    real = threads.wake_waiters
    monkeypatch.setattr(threads, "wake_waiters", lambda: (woken.append(1), real())[1])  # before the caller is made
    done = []

    def probe(x):
        # another thread waits for the gate this call holds; the call returns once it polls
        t = threading.Thread(target=lambda: done.append(gate.run(lambda: "in")))
        t.start()
        deadline = time.monotonic() + 10
        while not gate._waiting and time.monotonic() < deadline:
            time.sleep(0.001)
        waiters.append((gate._waiting, t))
        return x

    waiters = []
    m = _manager(SecurityPolicy.trusted(), probe=probe)
    try:
        gate, held = _gate(m), _caller(m, "held")
        assert held.direct_gate == _DIRECT
        assert held(7) == 7
        (count, t), = waiters
        assert count == 1 and woken  # the compiled release saw the waiter and woke it
        t.join(10)
        assert done == ["in"]
        woken.clear()
        assert _caller(m, "add")(1, 1) == 2
        assert not woken  # nobody polls: no wake-up
    finally:
        m.close()


def _broken(monkeypatch, how):
    from kryon_lua import _ccall

    monkeypatch.setattr(threads, "_fresh_ok", [])
    if how == "layout":  # the core's check of the gate's own lock fails (each fact: tests/core/test_speedups_gate.py)
        monkeypatch.setattr(threads, "_live_lock_holds", lambda ext, lock: False)
    elif how == "fresh_layout":  # its check on a fresh lock fails
        monkeypatch.setattr(threads, "_fresh_lock_holds", lambda ext, kind: False)
    elif how == "core_off":  # kryon-core's compiled core turned off
        monkeypatch.setenv(speedups.ENV_OFF, "1")
    elif how == "no_capsule":  # a kryon-core without the capsule (built without a compiler, or older)
        monkeypatch.setattr(_ccall, "has_gate_api", lambda: False)
    elif how == "python_rlock":  # the gate's lock is the pure-Python RLock: nothing to read
        monkeypatch.setattr(threads.threading, "RLock", threading._PyRLock)
    else:
        raise AssertionError(how)


@pytest.mark.parametrize("how", ["layout", "fresh_layout", "core_off", "no_capsule", "python_rlock"])
def test_a_failed_gate_check_means_the_locks_methods_not_a_crash(monkeypatch, how):
    _broken(monkeypatch, how)
    m = _manager(SANDBOXED)
    try:
        gate, add = _gate(m), _caller(m, "add")
        assert not add.direct_gate
        assert add.calls == 0 and add(2, 3) == 5 and add.calls == 1  # still the compiled caller
        with pytest.raises(ScriptRuntimeError):
            _caller(m, "boom")(1)
        assert not gate.held() and _free_for_another_thread(gate)
    finally:
        m.close()


def test_a_slot_offset_outside_the_gate_is_refused():
    from kryon_lua import _ccall

    gate = threads.EngineGate("probe")
    offset = _ccall.slot_offset(vars(threads.EngineGate)["_waiting"])
    assert _ccall.read_slot(gate, offset) == 0
    with pytest.raises(ValueError):
        _ccall.read_slot(gate, type(gate).__basicsize__)
    with pytest.raises(TypeError):
        _ccall.slot_offset(vars(threads.EngineGate)["held"])
    assert ccall._gate_lock(gate) is (gate._lock if _DIRECT else None)  # a free gate checks too (count 0, owner none)


def test_the_capsule_is_found_whatever_is_imported_first():
    """The extension imports kryon-core's compiled core itself (PyCapsule_Import only reads
    package attributes): imported before anything of kryon_core, it still finds the capsule."""
    import subprocess

    code = "from kryon_lua import _ccall; print(_ccall.has_gate_api())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["True"], out.stderr
