"""The compiled caller (kryon_lua/_ccall.c, set up by kryon_lua/ccall.py):
built and taken for limited calls of simple arguments; every fact it relies
on (lupa's lua_State, lock, registry references, allocator counters) is
checked, and a failed check means the Python caller, never a crash; lupa's
own lock is held for the call and the GIL is released as lupa does."""

import threading
import time

import pytest

pytest.importorskip("kryon_lua")

from ccall_support import cached_caller as _caller  # noqa: E402
from ccall_support import lua_manager  # noqa: E402
from kryon_lua import ccall  # noqa: E402

from kryon_core import ConversionError, ScriptRuntimeError, ScriptTimeoutError, SecurityPolicy  # noqa: E402

SOURCE = """\
function add(a, b) return a + b end
function held() return probe() end
function boom(x)
  error("bad " .. tostring(x))
end
function spin(n)
  while true do n = n + 1 end
end
function fails_object(x) error({code = x}) end
function fails_bytes(x) error("\\255\\254 " .. x) end
function fails_host(x) return raiser(x) end
function fails_level(x) error("at level two", 2) end
function results(kind)
  if kind == 1 then return "text" elseif kind == 2 then return {1, {a = 2}} elseif kind == 3 then return 1, "two", nil
  elseif kind == 4 then return end
  return 2^53, -0.5, true
end
function churn(n)
  local s, t = ("y"):rep(1024), {}
  for i = 1, n do t[i] = s .. i end
  return "done " .. n
end
function busy(n)
  local x = 0
  for i = 1, n do x = x + i end
  return x
end
"""

SANDBOXED = SecurityPolicy.sandboxed(time_limit=2, memory_limit=16 * 1024 * 1024, max_recursion=100)
# a cap without the count hook: its state holds the collector outside script code (prelude.lua,
# held_call), which only the Python caller lets go around a call
CAPPED_TRUSTED = SecurityPolicy.trusted(memory_limit=16 * 1024 * 1024)


def _manager(policy, **globals_):
    return lua_manager(policy, SOURCE, **globals_)


def _compiled(caller):
    return type(caller).__name__ == "Caller"


def _runtime(m):
    return m.engine("lua")._scripts["s"].runtime


@pytest.fixture(autouse=True)
def fresh_facts(monkeypatch):
    # facts are checked once per state: each test sees its own checks run
    monkeypatch.setattr(ccall, "_facts", type(ccall._facts)())
    monkeypatch.delenv(ccall.ENV_OFF, raising=False)


@pytest.mark.parametrize("policy", [SANDBOXED, SecurityPolicy.trusted()], ids=["sandboxed", "trusted"])
def test_the_extension_is_built_and_taken(policy):
    assert ccall.enabled(), "kryon_lua._ccall did not build (a C compiler is expected where the tests run)"
    m = _manager(policy)
    try:
        caller = _caller(m, "add")
        assert _compiled(caller)
        before = caller.calls
        assert [caller(i, 1) for i in range(5)] == [1, 2, 3, 4, 5]
        assert m.function("s.add")(40, 2) == 42
        assert caller.calls == before + 6
        with pytest.raises(ConversionError):
            caller(2**70, 1)  # no Lua integer holds it: the Python path, with its clear error
        assert caller("3", 1.5) == 4.5  # a short ASCII str is simple too
        assert caller.calls == before + 7
    finally:
        m.close()


def test_the_environment_variable_keeps_the_python_caller(monkeypatch):
    monkeypatch.setenv(ccall.ENV_OFF, "1")
    m = _manager(SANDBOXED)
    try:
        caller = _caller(m, "add")
        assert not _compiled(caller)
        assert caller(2, 3) == 5
    finally:
        m.close()


@pytest.mark.parametrize("broken", ["state", "lock", "lock_fields", "memory", "object", "api"])
def test_a_failed_check_means_the_python_caller_not_a_crash(monkeypatch, broken):
    from kryon_lua import _ccall

    real = {name: getattr(_ccall, name) for name in ("runtime_words", "lock_fields", "memory_status", "object_words")}
    if broken == "state":  # the lua_State word is not the main thread's address
        monkeypatch.setattr(_ccall, "runtime_words", lambda lua: (real["runtime_words"](lua)[0] + 8, 0))
    elif broken == "lock":  # the word after it is not lupa's lock object
        monkeypatch.setattr(_ccall, "runtime_words", lambda lua: (real["runtime_words"](lua)[0], 1234))
    elif broken == "lock_fields":  # the lock's fields do not follow its acquire and release
        monkeypatch.setattr(_ccall, "lock_fields", lambda lock: (0, 0, 0, 0))
    elif broken == "memory":  # the allocator counters do not follow set_max_memory
        monkeypatch.setattr(_ccall, "memory_status", lambda state: real["memory_status"](state)[:3] + (99,))
    elif broken == "object":  # a registry reference that does not hold the function
        monkeypatch.setattr(_ccall, "object_words", lambda obj: real["object_words"](obj)[:2] + (1,))
    else:  # the Lua API cannot be resolved in lupa's module
        monkeypatch.setattr(ccall, "_loaded", {})

        def no_api(path):
            raise OSError("no symbol lua_pcallk")

        monkeypatch.setattr(_ccall, "load_api", no_api)
    m = _manager(SANDBOXED)
    try:
        caller = _caller(m, "add")
        assert not _compiled(caller)
        assert caller(2, 3) == 5
        with pytest.raises(ScriptRuntimeError):
            _caller(m, "boom")(1)
        assert caller(1, 1) == 2
    finally:
        m.close()


def test_lupas_lock_is_held_during_the_call_and_given_back():
    owned = []
    m = _manager(SANDBOXED, probe=lambda: owned.append(lock._is_owned()) or 1)
    try:
        caller = _caller(m, "held")
        assert _compiled(caller)
        lock = ccall.facts(_runtime(m)).lock
        assert caller() == 1
        assert owned == [True]
        assert not lock._is_owned()
    finally:
        m.close()


def test_lupas_lock_held_by_another_thread_sends_the_call_to_the_python_path():
    m = _manager(SANDBOXED)
    try:
        caller = _caller(m, "add")
        assert _compiled(caller)
        lock = ccall.facts(_runtime(m)).lock
        taken, go = threading.Event(), threading.Event()

        def hold():
            lock.acquire()
            taken.set()
            go.wait(10)
            lock.release()

        t = threading.Thread(target=hold)
        t.start()
        taken.wait(10)
        before = caller.calls
        threading.Timer(0.2, go.set).start()  # the Python path (lupa) waits for the lock
        assert caller(2, 3) == 5
        t.join(10)
        assert caller.calls == before  # not taken by the compiled path
        assert caller(2, 3) == 5 and caller.calls == before + 1
    finally:
        m.close()


def test_the_gil_is_released_while_lua_runs():
    """As lupa does: another Python thread runs during a pure Lua loop (a
    trusted state has no count hook calling into Python). The other
    thread notes the time every 100 rounds; notes from the middle half of the
    call can only exist when the GIL was free then (a host function's frames
    at either end are where the interpreter may switch threads otherwise)."""
    done = threading.Event()
    stamps = []

    def spinner():
        i = 0
        while not done.is_set():
            i += 1
            if i % 100 == 0:
                stamps.append(time.perf_counter())

    m = _manager(SecurityPolicy.trusted())
    t = threading.Thread(target=spinner)
    t.start()
    try:
        caller = _caller(m, "busy")
        assert _compiled(caller)
        before = caller.calls
        start = time.perf_counter()
        assert caller(30_000_000) == 30_000_000 * 30_000_001 // 2
        end = time.perf_counter()
        assert caller.calls == before + 1
        quarter = (end - start) / 4
        assert [x for x in stamps if start + quarter < x < end - quarter]
    finally:
        done.set()
        t.join(10)
        m.close()


def test_errors_and_limits_through_the_compiled_path():
    m = _manager(SANDBOXED)
    try:
        boom, spin = _caller(m, "boom"), _caller(m, "spin")
        assert _compiled(boom) and _compiled(spin)
        with pytest.raises(ScriptRuntimeError) as info:
            boom(7)
        assert (info.value.script, info.value.line, info.value.language) == ("s", 4, "lua")
        assert "bad 7" in str(info.value)
        with pytest.raises(ScriptTimeoutError):
            spin(0)
        assert boom.calls == 1 and spin.calls == 1
        assert _caller(m, "add")(1, 2) == 3
    finally:
        m.close()


def _raiser(x):
    raise ValueError(f"host says {x}")


def _outcomes(policy):
    """What each function gives (results, or the error's type, text and place),
    through whichever caller the environment selects."""
    m = _manager(policy, raiser=_raiser)
    try:
        got = []
        for name, args in [("fails_object", (1,)), ("fails_bytes", ("x",)), ("fails_host", (2,)),
                           ("fails_level", (3,)), ("boom", (4,))] + [("results", (k,)) for k in range(1, 6)]:
            caller = _caller(m, name)
            try:
                got.append(("ok", caller(*args)))
            except Exception as exc:
                got.append((type(exc).__name__, str(exc), getattr(exc, "script", None), getattr(exc, "line", None)))
        return got, _compiled(_caller(m, "add"))
    finally:
        m.close()


def test_a_trusted_state_with_a_cap_keeps_the_python_caller():
    m = _manager(CAPPED_TRUSTED)
    try:
        caller = _caller(m, "busy")
        assert not _compiled(caller)
        assert caller(10) == 55
    finally:
        m.close()


@pytest.mark.parametrize("policy", [SANDBOXED, SecurityPolicy.trusted()], ids=["sandboxed", "trusted"])
def test_the_compiled_and_the_python_caller_give_the_same_results_and_errors(monkeypatch, policy):
    compiled, was_compiled = _outcomes(policy)
    monkeypatch.setenv(ccall.ENV_OFF, "1")
    python, was_python = _outcomes(policy)
    assert was_compiled and not was_python
    assert compiled == python
    assert ("ok", [1, "two", None]) in compiled and compiled[-1] == ("ok", [2.0**53, -0.5, True])


def test_a_call_that_ends_past_90_percent_of_the_cap_collects_once_its_outcome_is_read():
    limit = 4 * 1024 * 1024
    m = _manager(SecurityPolicy.sandboxed(time_limit=5, memory_limit=limit))
    try:
        rt = _runtime(m)
        collected = []
        real = rt._collect
        rt._collect = lambda: (collected.append(1), real())[1]  # before the caller is made: it keeps this one
        caller = _caller(m, "churn")
        assert _compiled(caller)
        n = int((0.95 * limit - rt.lua.get_memory_used()) / 1080)  # about 1070 bytes an entry
        assert caller(n) == f"done {n}"  # a str: packed, read by finish, then the collection
        assert caller.calls == 1 and collected == [1]
        assert rt.lua.get_memory_used() < 0.9 * limit
        assert caller(1) == "done 1" and collected == [1]
    finally:
        m.close()
