"""Memory a sandboxed Lua script can make the host hold: host values entering
the state are charged to its cap before they are converted, values it hands
the host are charged to it (its cap, its shared-data quota), and the host's
RSS stays within the cap plus a bounded overhead."""

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("kryon_lua")

from kryon_core import MemoryLimitError, ScriptManager, SecurityPolicy  # noqa: E402
from kryon_core.testing.near_cap import run_sweep  # noqa: E402

MiB = 1024 * 1024
CAP = 16 * MiB


def _limit_error_of(call):
    """The script a MemoryLimitError names (the error itself is not kept: its
    traceback would pin the script's state)."""
    try:
        call()
    except MemoryLimitError as exc:
        return exc.script
    raise AssertionError("no MemoryLimitError")


@pytest.fixture
def manager():
    m = ScriptManager(policy=SecurityPolicy.sandboxed(memory_limit=CAP, time_limit=10), cache=False,
                      output=lambda lang, text: None)
    m.load_script_from_source("host", "lua", "function ok() return 1 end")
    yield m
    m.close()


def test_get_shared_references_stay_under_the_cap(manager):
    manager.shared.create("big", "x" * (6 * MiB))
    manager.load_script_from_source("hog", "lua", """
held = {}
function grab(n) for i = 1, n do held[i] = kryon.getShared("big") end return #held end
""")
    assert _limit_error_of(lambda: manager.call_function("hog.grab", [100])) == "hog"
    assert manager.engine("lua").get_memory_usage().used_bytes < CAP
    assert manager.call_function("host.ok") == 1
    manager.unload_script("hog")
    manager.load_script_from_source("again", "lua", "function f() return #kryon.getShared('big') end")
    assert manager.call_function("again.f") == 6 * MiB, "a later script still fits"


def test_nested_host_values_are_charged(manager):
    manager.shared.create("many", ["y" * MiB] * 40)  # 40 references: 40 MiB once converted
    manager.load_script_from_source("hog", "lua", "function f() return #kryon.getShared('many') end")
    with pytest.raises(MemoryLimitError):
        manager.call_function("hog.f")
    with pytest.raises(MemoryLimitError):  # arguments from the host too
        manager.call_function("hog.f", [["z" * MiB] * 40])
    assert manager.call_function("host.ok") == 1


def test_tables_of_references_cannot_multiply_in_the_host(manager):
    manager.load_script_from_source("hog", "lua", """
local s = ("x"):rep(4 * 1024 * 1024)
function result() local t = {} for i = 1, 100 do t[i] = s end return t end
function nested() local t = {} for i = 1, 100 do t[i] = {s} end return t end
function event() local t = {} for i = 1, 100 do t[i] = s end kryon.log(t) end
""")
    for function in ("result", "nested", "event"):
        with pytest.raises(MemoryLimitError):
            manager.call_function(f"hog.{function}")
    assert manager.call_function("host.ok") == 1


def test_shared_data_is_charged_to_the_script():
    policy = SecurityPolicy.sandboxed(memory_limit=CAP, time_limit=10, max_shared_bytes=8 * MiB, max_shared_entries=5)
    m = ScriptManager(policy=policy, cache=False)
    try:
        m.load_script_from_source("hog", "lua", """
function bytes() local s = ("x"):rep(3 * 1024 * 1024) for i = 1, 100 do kryon.createShared("b" .. i, s) end end
function entries() for i = 1, 100 do kryon.createShared("e" .. i, i) end end
""")
        with pytest.raises(MemoryLimitError, match="max_shared_bytes"):
            m.call_function("hog.bytes")
        m.unload_script("hog")
        m.load_script_from_source("hog", "lua", "function entries() for i = 1, 100 do kryon.createShared('e' .. i, i) end end")
        with pytest.raises(MemoryLimitError, match="max_shared_entries"):
            m.call_function("hog.entries")
    finally:
        m.close()


def test_host_rss_stays_within_cap_plus_overhead():
    """Every attack above, one after another, in a fresh process: the peak RSS
    grows by less than the cap plus 64 MiB (a 6 MiB string referenced 100
    times was 600 MiB before)."""
    code = textwrap.dedent("""
        import resource
        from kryon_core import ScriptManager, SecurityPolicy, ScriptError
        MiB = 1024 * 1024
        m = ScriptManager(policy=SecurityPolicy.sandboxed(memory_limit=16 * MiB, time_limit=10), cache=False)
        m.load_script_from_source("warm", "lua", "function f() return 1 end")
        m.call_function("warm.f")
        m.shared.create("big", "x" * (6 * MiB))
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        m.load_script_from_source("hog", "lua", '''
        local s = ("x"):rep(6 * 1024 * 1024)
        held = {}
        function grab() for i = 1, 100 do held[i] = kryon.getShared("big") end end
        function refs() local t = {} for i = 1, 100 do t[i] = s end return t end
        function shared() for i = 1, 100 do kryon.createShared("s" .. i, s) end end
        ''')
        for fn in ("grab", "refs", "shared"):
            try:
                m.call_function("hog." + fn)
            except ScriptError:
                pass
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024
        print(grown // MiB)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) < 16 + 64, f"host grew {out.stdout.strip()} MiB"


@pytest.mark.parametrize("result", [5, 1.5, True, None, "text"], ids=["int", "float", "bool", "nil", "str"])
def test_a_host_result_is_refused_once_the_host_filled_the_state(manager, result):
    """The cap is lifted while a host function runs: one that grows the
    calling script's state past the cap has its result refused before lupa
    pushes it, a scalar (which pushes without allocating) as any other."""
    manager.load_script_from_source("hog", "lua", "function f() local r = grow() return r end")
    rt = manager.engine("lua")._scripts["hog"].runtime
    held = []

    def grow():
        held.append(rt.lua.table_from([f"{i:08d}" * 128 for i in range(CAP // 1024 + 1)]))
        return result

    manager.set_global("lua", "grow", grow)
    with pytest.raises(MemoryLimitError, match="memory limit exceeded") as info:
        manager.call_function("hog.f")
    assert info.value.script == "hog"
    held.clear()
    del info
    manager.collect_garbage()
    assert manager.call_function("host.ok") == 1
    held_count = []
    manager.set_global("lua", "grow", lambda: held_count.append(1) or result)  # no growth: the result passes
    assert manager.call_function("hog.f") == result


JUST_UNDER_THE_CAP = textwrap.dedent('''
    import sys
    from kryon_core import ScriptManager, SecurityPolicy
    from kryon_core.testing.near_cap import report, sweep
    CAP = 2 * 1024 * 1024
    policy = SecurityPolicy.sandboxed(memory_limit=CAP, time_limit=20, use_jit=sys.argv[2] == "luajit")
    m = ScriptManager(policy=policy, cache=False, output=lambda lang, text: None)
    m.load_script_from_source("other", "lua", "function one() return 1 end")
    m.load_script_from_source("evil", "lua", """
    function one() return 1 end
    function attack(target, how)
      local node = nil
      while collectgarbage("count") * 1024 < target do node = {node} end
      if how == "log" then return kryon.log("x") end
      if how == "self" then return kryon.call("evil.one") end
      if how == "other" then return kryon.call("other.one") end
      if how == "coroutine" then return coroutine.wrap(function() return text() end)() end
      if how == "resume" then  -- the error caught by resume, then room asked for
        local ok = coroutine.resume(coroutine.create(function() return text() end))
        local t = {}
        for i = 1, 1e7 do t[i] = i end
        return ok
      end
      if how == "caught" then
        local ok = pcall(text)
        local t = {}
        for i = 1, 1e7 do t[i] = i end  -- what a script would do with the room it was not given
        return ok
      end
      return text()
    end
    """)
    rt = m.engine("lua")._scripts["evil"].runtime
    m.set_global("lua", "text", (lambda: "z" * 200) if sys.argv[1] not in ("raise", "caught", "resume")
                 else (lambda: 1 / 0))
    how = "text" if sys.argv[1] == "raise" else sys.argv[1]
    # where the script's count stands against the cap's own count of the memory in use
    offset = m.evaluate("lua", "collectgarbage('count') * 1024", script="evil") - rt.lua.get_memory_used()
    # the script stops this many bytes short of the cap (less than none: it cannot), then calls the host;
    # "refused": the host's value found no room, "full": the script's own allocation did not
    outcomes = sweep(range(400, -6000, -12), lambda room: m.call_function("evil.attack", [CAP - room + offset, how]),
                     "evil", refused_when="host",
                     # (a caught error leaves the script to fill its cap: that sweep goes on to the end)
                     stop=lambda outcomes: outcomes[-3:] == ["full"] * 3 and how not in ("caught", "resume"))
    assert m.call_function("other.one") == 1 and m.call_function("evil.one") == 1
    assert rt.lua.get_memory_used() < CAP + 2 * 64 * 1024
    report(outcomes)
''')


@pytest.mark.parametrize("how, runtime", [
    ("log", "lua54"), ("self", "lua54"), ("other", "lua54"), ("text", "lua54"), ("raise", "lua54"), ("caught", "lua54"),
    ("coroutine", "lua54"), ("resume", "lua54"),
    ("log", "luajit"), ("raise", "luajit"), ("caught", "luajit"), ("coroutine", "luajit"), ("resume", "luajit"),
])
def test_host_calls_from_just_under_the_cap_never_hang(how, runtime):
    """A script that stops just short of its cap and then calls the host: the
    host function's result, or its error, must not be pushed where there is
    no room (lupa's push would unwind through the host call's C frames and
    hang the process); the call fails with a MemoryLimitError instead, and a
    script that catches the error gets no room out of it."""
    outcomes = run_sweep(JUST_UNDER_THE_CAP, how, runtime, timeout=180)
    if how not in ("caught", "resume"):  # the sweep went on until the script could not come any closer
        assert outcomes[-3:] == ["full"] * 3, outcomes
    if how not in ("self", "other") and runtime == "lua54":  # (kryon.call's own steps, and LuaJIT's wrapper
        assert "refused" in outcomes, outcomes  # of host functions, stop the script further out)


TRUSTED_OVERDRAFT = textwrap.dedent('''
    import sys
    from kryon_core import ScriptManager, SecurityPolicy
    from kryon_core.testing.near_cap import report, sweep
    CAP = 2 * 1024 * 1024
    policy = SecurityPolicy.trusted(memory_limit=CAP, use_jit=sys.argv[2] == "luajit")
    m = ScriptManager(policy=policy, cache=False, output=lambda lang, text: None)
    m.load_script_from_source("other", "lua", "function one() return 1 end")
    m.load_script_from_source("greedy", "lua", """
    held = {}
    peak = 0
    local function grab()  -- what a script would do with the room it was given for an error
      local t = {}
      for i = 1, 2000 do t[i] = i end
      held[#held + 1] = t
      peak = math.max(peak, collectgarbage("count") * 1024)
    end
    function attack(how, rounds)
      for round = 1, rounds do
        if how == "pcall" then pcall(boom); grab()
        elseif how == "xpcall" then xpcall(boom, function(e) grab() return e end); grab()
        elseif how == "resume" then coroutine.resume(coroutine.create(function() boom() end)); grab()
        elseif how == "inside" then coroutine.resume(coroutine.create(function() pcall(boom); grab() end))
        else pcall(text); grab() end
      end
    end
    function stats() return peak end
    """)
    m.set_global("lua", "boom", lambda: 1 / 0)
    m.set_global("lua", "text", lambda: "z" * 200)
    rt = m.engine("lua")._scripts["greedy"].runtime
    # the pattern again and again, each call 400 times over
    outcomes = sweep(range(5), lambda call: m.call_function("greedy.attack", [sys.argv[1], 400]), "greedy")
    peak = max(m.call_function("greedy.stats"), rt.lua.get_memory_used())
    assert m.call_function("other.one") == 1
    assert peak < CAP + 2 * 64 * 1024, (outcomes, peak - CAP)
    assert set(outcomes) <= {"returned", "full"}, outcomes
    report(outcomes)
''')


@pytest.mark.parametrize("runtime", ["lua54", "luajit"])
@pytest.mark.parametrize("how", ["pcall", "xpcall", "resume", "inside", "text"])
def test_a_trusted_capped_state_gets_no_room_from_a_caught_host_error(how, runtime):
    """In a trusted state with a cap, a host function's error that found no
    room under the cap is pushed with the cap raised for it; the script must
    not catch it (pcall, xpcall and its handler, coroutine.resume) and use the
    extra room, or catching and filling again would grow the state past its
    cap without bound. The call fails with a MemoryLimitError instead."""
    assert "full" in run_sweep(TRUSTED_OVERDRAFT, how, runtime, timeout=180)
