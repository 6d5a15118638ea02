"""The generated per-function callers (kryon_lua.calls): simple arguments take
the fast path (counted: the generic path, ``Runtime.call_host``, is not
reached), every other call takes the generic one, and both give the same
results, limits and errors. Limits are shown to fire through the fast path."""

import threading

import pytest

pytest.importorskip("kryon_lua")

from kryon_lua.runtime import FAST_MARGIN  # noqa: E402

from kryon_core import (  # noqa: E402
    ConversionError,
    MemoryLimitError,
    RecursionLimitError,
    ScriptManager,
    ScriptRuntimeError,
    ScriptTimeoutError,
    SecurityPolicy,
    threads,
)

SOURCE = """\
function add(a, b) return a + b end
function join(a, b) return a .. b end
function echo(x) return x end
function pair(a, b) return a, b end
function nothing() end
function listed(a, b) return {a, b} end
function mixed(a) return a, {a} end
function boom(x)
  error("bad " .. tostring(x))
end
function spin(n)
  while true do n = n + 1 end
end
function dive(n) return dive(n + 1) + 1 end
function grow(n)
  local t = {}
  for i = 1, n do t[i] = ("x"):rep(65536) .. i end
  return #t
end
function outer(n)
  local r = host(n)
  while true do r = r + 1 end
end
function entered() return record() end
function via(name, n)
  local r = host(name, n)
  return r
end
function peeks(name)
  local a = peek()
  local b = host(name, 0)
  local c = peek()
  return a, b, c
end
function peekone(n) return peek() end
"""


class Counted:
    """Counts the calls that reach a runtime's generic path."""

    def __init__(self, rt):
        self.calls = 0
        self.real = rt.call_host
        rt.call_host = self

    def __call__(self, *args):
        self.calls += 1
        return self.real(*args)


def _manager(policy):
    m = ScriptManager(policy=policy, cache=False, output=lambda lang, text: None)
    m.load_script_from_source("s", "lua", SOURCE)
    rt = m.engine("lua")._scripts["s"].runtime
    return m, Counted(rt)  # before any caller is made: they take the generic path from the runtime


SANDBOXED = SecurityPolicy.sandboxed(time_limit=0.3, memory_limit=16 * 1024 * 1024, max_recursion=100)


@pytest.fixture(params=["sandboxed", "trusted"])
def setup(request):
    m, counted = _manager(SANDBOXED if request.param == "sandboxed" else SecurityPolicy.trusted())
    yield m, counted, request.param
    m.close()


def test_results_on_the_fast_path(setup):
    m, counted, kind = setup
    call = m.call_function
    assert call("s.add", [2, 3]) == 5
    assert call("s.add", [2.5, 0.5]) == 3.0
    assert call("s.join", ["ab", "c"]) == "abc"
    assert call("s.echo", [None]) is None
    assert call("s.echo", [True]) is True
    assert call("s.pair", [1, "x"]) == [1, "x"]
    assert call("s.nothing", []) is None
    assert call("s.listed", [1, 2]) == [1, 2]
    assert call("s.mixed", [7]) == [7, [7]]
    bound = m.function("s.add")
    assert bound(40, 2) == 42
    if kind == "sandboxed":
        assert counted.calls == 0


def test_other_arguments_take_the_generic_path_with_the_same_results(setup):
    m, counted, kind = setup
    call = m.call_function
    assert call("s.echo", [[1, 2]]) == [1, 2]  # a table argument
    assert call("s.echo", ["é" * 3]) == "é" * 3  # not ASCII
    long = "x" * 10_000
    assert call("s.join", [long, "y"]) == long + "y"  # longer than the fast path takes
    assert call("s.pair", [1]) == [1, None]  # fewer arguments than parameters: b is nil
    assert call("s.add", [1, 2, 3]) == 3  # more: the extra one is dropped
    if kind == "sandboxed":
        assert counted.calls == 5


def test_errors_name_script_and_line_on_the_fast_path(setup):
    m, counted, kind = setup
    with pytest.raises(ScriptRuntimeError) as info:
        m.call_function("s.boom", [1])
    assert (info.value.script, info.value.line, info.value.language) == ("s", 9, "lua")
    assert "bad 1" in str(info.value)
    with pytest.raises(ConversionError):
        m.call_function("s.add", [2**70, 1])  # no Lua integer holds it: generic path, clear error
    assert m.call_function("s.add", [1, 1]) == 2


def test_time_limit_fires_on_the_fast_path():
    m, counted = _manager(SANDBOXED)
    with pytest.raises(ScriptTimeoutError) as info:
        m.call_function("s.spin", [0])
    assert (info.value.script, info.value.line) == ("s", 12)
    assert counted.calls == 0
    assert m.call_function("s.add", [1, 2]) == 3
    m.close()


def test_recursion_limit_fires_on_the_fast_path():
    m, counted = _manager(SANDBOXED)
    with pytest.raises(RecursionLimitError):
        m.call_function("s.dive", [0])
    assert counted.calls == 0
    assert m.call_function("s.add", [1, 2]) == 3
    m.close()


def test_memory_cap_fires_on_the_fast_path_and_the_state_recovers():
    m, counted = _manager(SANDBOXED)
    with pytest.raises(MemoryLimitError):
        m.call_function("s.grow", [100_000])
    assert counted.calls == 0
    assert m.call_function("s.grow", [10]) == 10  # the failed call's garbage was collected
    m.close()


def test_low_headroom_under_the_cap_takes_the_generic_path():
    m, counted = _manager(SecurityPolicy.sandboxed(memory_limit=4 * 1024 * 1024, time_limit=5))
    rt = m.engine("lua")._scripts["s"].runtime
    m.evaluate("lua", "keep = {}", script="s")
    while rt.key.memory_limit - rt.lua.get_memory_used() >= FAST_MARGIN:
        m.evaluate("lua", "keep[#keep + 1] = ('z'):rep(16384) .. #keep", script="s")
    counted.calls = 0
    assert m.call_function("s.add", [2, 3]) == 5
    assert counted.calls == 1  # too close to the cap for lupa's pushes outside a protected call
    m.close()


@pytest.mark.timeout(60)  # a lost deadline would loop for ever
def test_a_call_from_inside_a_call_keeps_the_outer_deadline():
    """A host function called by the script calls into the same state: that
    inner call must not end the outer call's deadline (the outer loop would
    then never stop)."""
    m, counted = _manager(SANDBOXED)
    inner = []

    def host(n):
        inner.append(m.call_function("s.add", [n, 1]))
        return inner[-1]

    m.set_global("lua", "host", host)
    with pytest.raises(ScriptTimeoutError):
        m.call_function("s.outer", [1])
    assert inner == [2]
    assert counted.calls == 0  # the inner call took the fast path too: the cap is lifted in host functions
    m.close()


def test_a_call_from_inside_a_call_keeps_the_earlier_deadline_and_gives_it_back():
    """The inner call's own deadline would be later than the outer one's: the
    outer one stays in force during the inner call and after it."""
    m, counted = _manager(SANDBOXED)
    rt = m.engine("lua")._scripts["s"].runtime
    m.set_global("lua", "peek", lambda: rt.deadline)
    m.set_global("lua", "host", lambda name, n: m.call_function(name, [n]))
    before, inside, after = m.call_function("s.peeks", ["s.peekone"])
    assert before > 0 and inside == before and after == before
    assert counted.calls == 0
    assert rt.deadline == 0.0  # no deadline left behind once the outer call is over
    m.close()


@pytest.mark.parametrize("name, error", [
    ("s.spin", ScriptTimeoutError), ("s.dive", RecursionLimitError), ("s.grow", MemoryLimitError),
])
def test_limits_fire_in_a_call_from_inside_a_call(name, error):
    """Every limit fires in a call a host function makes into the state it was
    called from (the nested fast path), and the state goes on working."""
    m, counted = _manager(SANDBOXED)
    raised = []

    def host(target, n):
        try:
            return m.call_function(target, [n])
        except Exception as exc:
            raised.append(type(exc))
            raise

    m.set_global("lua", "host", host)
    with pytest.raises(error):
        m.call_function("s.via", [name, 100_000 if name == "s.grow" else 0])
    assert raised == [error] and counted.calls == 0
    assert m.call_function("s.via", ["s.grow", 10]) == 10
    assert m.call_function("s.add", [1, 2]) == 3
    m.close()


def test_a_debugger_tracking_gate_entries_sees_fast_calls(setup):
    m, counted, kind = setup
    seen = []
    recorder = lambda: seen.append(threads.entries()) or 1  # noqa: E731
    m.set_global("lua", "record", recorder)
    threads.track_entries(True)
    try:
        assert m.call_function("s.entered", []) == 1
    finally:
        threads.track_entries(False)
    assert seen and "lua" in seen[0]


def test_a_held_gate_makes_the_call_wait(setup):
    m, counted, kind = setup
    gate = m.engine("lua")._scripts["s"].runtime.gate
    inside, leave, results = threading.Event(), threading.Event(), []

    def hold():
        gate.run(lambda: (inside.set(), leave.wait(10)))

    holder = threading.Thread(target=hold)
    holder.start()
    inside.wait(10)
    caller = threading.Thread(target=lambda: results.append(m.call_function("s.add", [2, 2])))
    caller.start()
    caller.join(0.2)
    assert results == []  # waiting on the gate, not running beside the holder
    leave.set()
    holder.join(10)
    caller.join(10)
    assert results == [4]



def test_a_fast_call_wakes_a_thread_waiting_for_the_gate(setup, monkeypatch):
    """The fast paths release the gate themselves (no call to the gate's own
    release): a thread that began waiting for the gate during the call is
    woken by the thread that made it, when it leaves the gate."""
    m, counted, kind = setup
    gate = m.engine("lua")._scripts["s"].runtime.gate
    notified = []

    class Counting(threading.Condition):
        def notify_all(self):
            notified.append(threading.get_ident())
            super().notify_all()

    monkeypatch.setattr(threads, "_cond", Counting(threading.Lock()))
    results = []
    waiter = threading.Thread(target=lambda: results.append(m.call_function("s.add", [2, 2])))

    def record():
        waiter.start()
        for _ in range(1000):
            if gate._waiting:
                break
            threading.Event().wait(0.01)
        assert gate._waiting == 1
        return 1

    m.set_global("lua", "record", record)
    me = threading.get_ident()
    assert m.call_function("s.entered", []) == 1
    assert me in notified  # woken on the way out of the gate
    waiter.join(10)
    assert results == [4]


@pytest.mark.parametrize("kind", ["sandboxed", "trusted"])
def test_luajit_ints_within_2_to_the_53_take_the_fast_path(kind):
    """LuaJIT numbers are doubles: an int argument within +-2**53 crosses
    exactly, so it takes the fast path; one beyond is the generic path's
    ConversionError, as before."""
    policy = (SecurityPolicy.sandboxed(time_limit=5, memory_limit=16 * 1024 * 1024, use_jit=True)
              if kind == "sandboxed" else SecurityPolicy.trusted(use_jit=True))
    m, counted = _manager(policy)
    edge = 2**53
    assert m.call_function("s.add", [2, 3]) == 5
    assert m.call_function("s.pair", [edge, -edge]) == [edge, -edge]
    assert m.function("s.echo")(7) == 7
    if kind == "sandboxed":
        assert counted.calls == 0
    with pytest.raises(ConversionError):
        m.call_function("s.echo", [edge + 1])
    with pytest.raises(ConversionError):
        m.call_function("s.pair", [1, -edge - 1])
    if kind == "sandboxed":
        assert counted.calls == 2
    assert m.call_function("s.add", [1, 1]) == 2
    m.close()
