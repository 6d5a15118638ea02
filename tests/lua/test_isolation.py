"""Each sandboxed Lua script runs in a Lua state of its own (issue 10): its
own memory cap, its own libraries and metatables, its own faults. One script
filling its cap or hitting a limit leaves every other script of the same
policy able to allocate and with its globals intact; nothing one script does
to its globals or libraries is visible to another; calls, FunctionRefs and
shared data still cross between the states; unload and reload release them."""

import gc
import weakref

import pytest

pytest.importorskip("kryon_lua")

from kryon_core import MemoryLimitError, ScriptManager, ScriptRuntimeError, ScriptTimeoutError, SecurityPolicy  # noqa: E402

MiB = 1024 * 1024
CAP = 16 * MiB

HOG = """
hoard = {}
function fill()  -- allocate until the cap refuses, keeping everything
  local i = 0
  while true do
    i = i + 1
    hoard[i] = ("x"):rep(MiB_) .. i
  end
end
function spin() while true do end end
function kept() return #hoard end
""".replace("MiB_", str(MiB))

KEEPER = """
counter = 41
data = { 1, 2, 3 }
function get() return counter + #data end
function alloc(mib)  -- mib MiB held at once, then dropped
  local t = {}
  for i = 1, mib do t[i] = ("y"):rep(MiB_) .. i end
  return #t
end
function used() return collectgarbage("count") * 1024 end
""".replace("MiB_", str(MiB))

#: a script holding `mib` distinct MiB strings from its top level
FILLED = "held = {{}}\nfor i = 1, {mib} do held[i] = ('z'):rep(MiB_) .. i end\nfunction n() return #held end".replace(
    "MiB_", str(MiB))


@pytest.fixture
def manager():
    m = ScriptManager(policy=SecurityPolicy.sandboxed(memory_limit=CAP, time_limit=10), cache=False,
                      output=lambda lang, text: None)
    yield m
    m.close()


def _states(manager):
    return manager.engine("lua")._live


def test_sandboxed_scripts_get_a_state_each_and_trusted_ones_share(manager):
    manager.load_script_from_source("a", "lua", "function f() return 1 end")
    manager.load_script_from_source("b", "lua", "function f() return 2 end")
    trusted = SecurityPolicy.trusted()
    manager.load_script_from_source("t1", "lua", "function f() return 3 end", policy=trusted)
    manager.load_script_from_source("t2", "lua", "function f() return 4 end", policy=trusted)
    scripts = manager.engine("lua")._scripts
    assert scripts["a"].runtime is not scripts["b"].runtime
    assert scripts["a"].runtime.key == scripts["b"].runtime.key, "same policy, still two states"
    assert scripts["t1"].runtime is scripts["t2"].runtime
    assert len(_states(manager)) == 3
    assert [manager.call_function(f"{s}.f") for s in ("a", "b", "t1", "t2")] == [1, 2, 3, 4]


def test_a_script_filling_its_cap_leaves_others_room(manager):
    manager.load_script_from_source("keeper", "lua", KEEPER)
    manager.load_script_from_source("hog", "lua", HOG)
    with pytest.raises(MemoryLimitError) as caught:
        manager.call_function("hog.fill")
    assert caught.value.script == "hog" and caught.value.language == "lua"
    del caught
    assert manager.call_function("hog.kept") >= 10, "the hog still holds most of its cap"
    # with one cap for both, 12 MiB more could not fit next to the hog's
    assert manager.call_function("keeper.alloc", [12]) == 12
    assert manager.call_function("keeper.get") == 44
    # and the per-script cap holds for the keeper too
    with pytest.raises(MemoryLimitError) as caught:
        manager.call_function("keeper.alloc", [20])
    assert caught.value.script == "keeper"


def test_every_script_may_use_the_whole_cap(manager):
    for name in ("s1", "s2", "s3"):
        manager.load_script_from_source(name, "lua", FILLED.format(mib=12))
    assert [manager.call_function(f"{n}.n") for n in ("s1", "s2", "s3")] == [12] * 3
    usage = manager.engine("lua").get_memory_usage()
    assert usage.used_bytes >= 36 * MiB, "the report sums every state"
    assert usage.limit == CAP * len(_states(manager)), "one cap per state"


def test_a_memory_fault_leaves_other_globals_intact(manager):
    manager.load_script_from_source("keeper", "lua", KEEPER)
    manager.load_script_from_source("hog", "lua", HOG)
    for _ in range(3):
        with pytest.raises(MemoryLimitError):
            manager.call_function("hog.fill")
    assert manager.call_function("keeper.get") == 44
    assert manager.evaluate("lua", "data[3] + counter", script="keeper") == 44


def test_a_timeout_leaves_other_globals_intact():
    m = ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=0.3), cache=False, output=lambda lang, text: None)
    try:
        m.load_script_from_source("keeper", "lua", KEEPER)
        m.load_script_from_source("hog", "lua", HOG)
        with pytest.raises(ScriptTimeoutError) as caught:
            m.call_function("hog.spin")
        assert caught.value.script == "hog"
        assert m.call_function("keeper.get") == 44
        assert m.call_function("hog.kept") == 0, "the timed-out script still answers"
    finally:
        m.close()


def test_a_script_sees_nothing_of_another(manager):
    manager.load_script_from_source("b", "lua", """
secret = "b-secret"
_G.also = "b-also"
rawset(_G, "raw", "b-raw")
string.secret = function() return "b" end
table.secret, math.secret, os.secret, utf8.secret, coroutine.secret = 1, 2, 3, 4, 5
function held() return secret .. string.secret() end
""")
    manager.load_script_from_source("a", "lua", """
function look()
  local seen = {}
  local function note(what, v) if v ~= nil then seen[#seen + 1] = what end end
  note("secret", secret)
  note("_G.secret", _G.secret)
  note("_G.also", _G.also)
  note("raw", rawget(_G, "raw"))
  for k in pairs(_G) do if k == "secret" or k == "also" or k == "raw" then note("pairs " .. k, k) end end
  note("string.secret", string.secret)
  note("method secret", ("x").secret)
  note("table", table.secret) note("math", math.secret) note("os", os.secret)
  note("utf8", utf8.secret) note("coroutine", coroutine.secret)
  note("string metatable", getmetatable("") or nil)
  return seen
end
""")
    assert manager.call_function("b.held") == "b-secretb"
    assert manager.call_function("a.look") == []


def test_memory_accounting_is_per_state(manager):
    """collectgarbage("count") is the script's own state: another script's
    allocations no longer show there (they did in a shared state)."""
    manager.load_script_from_source("big", "lua", FILLED.format(mib=8))
    manager.load_script_from_source("keeper", "lua", KEEPER)
    assert manager.call_function("keeper.used") < 2 * MiB


def test_calls_functions_and_shared_data_cross_between_states(manager):
    manager.load_script_from_source("b", "lua", """
function sum(t) local s = 0 for _, v in ipairs(t.values) do s = s + v end return { total = s, tag = t.tag } end
function apply(f, x) return f(x) + 1 end
function publish() kryon.createShared("answer", { n = 42 }) end
""")
    manager.load_script_from_source("a", "lua", """
local function double(x) return x * 2 end
function viaCall() local r = kryon.call("b.sum", { values = { 1, 2, 3 }, tag = "t" }) return r.total, r.tag end
function viaRef() return kryon.call("b.apply", double, 20) end
function read() return kryon.getShared("answer").n end
""")
    assert manager.call_function("a.viaCall") == [6, "t"]
    assert manager.call_function("a.viaRef") == 41
    manager.call_function("b.publish")
    assert manager.call_function("a.read") == 42


def test_unload_releases_the_state(manager):
    engine = manager.engine("lua")
    manager.load_script_from_source("keeper", "lua", KEEPER)
    before = len(engine._live)
    manager.load_script_from_source("gone", "lua", FILLED.format(mib=4))
    assert len(engine._live) == before + 1
    gone = weakref.ref(engine._scripts["gone"].runtime)
    manager.unload_script("gone")
    assert len(engine._live) == before
    gc.collect()
    assert gone() is None, "nothing keeps the unloaded script's state"
    assert engine.get_memory_usage().used_bytes < 2 * MiB


def test_a_failing_load_releases_its_state(manager):
    engine = manager.engine("lua")
    before = len(engine._live)
    with pytest.raises(ScriptRuntimeError):
        manager.load_script_from_source("broken", "lua", "error('no')")
    with pytest.raises(MemoryLimitError):
        manager.load_script_from_source("huge", "lua", f"local t = {{}} for i = 1, 64 do t[i] = ('v'):rep({MiB}) .. i end")
    assert len(engine._live) == before


def test_reload_moves_to_a_new_state_keeping_data(manager):
    engine = manager.engine("lua")
    manager.load_script_from_source("r", "lua", "count = 0\nfunction bump() count = count + 1 return count end")
    manager.call_function("r.bump")
    manager.call_function("r.bump")
    first = engine._scripts["r"].runtime
    states = len(engine._live)
    manager.hot_reload_script("r", "function bump() count = count + 10 return count end")
    assert engine._scripts["r"].runtime is not first
    assert len(engine._live) == states, "the old state is released"
    assert manager.call_function("r.bump") == 12


def test_set_global_reaches_every_state(manager):
    manager.load_script_from_source("a", "lua", "function theme() return THEME end")
    manager.set_global("lua", "THEME", {"dark": True})
    manager.load_script_from_source("b", "lua", "function theme() return THEME end")
    assert manager.call_function("a.theme") == manager.call_function("b.theme") == {"dark": True}
    manager.set_global("lua", "THEME", "light")
    assert manager.call_function("a.theme") == manager.call_function("b.theme") == "light"
    assert manager.get_global("lua", "THEME") == "light"
