"""Lua-specific behaviour beyond the contract: value rules, sandbox details,
async, LuaJIT, per-script policies, threads."""

import asyncio
import textwrap

import pytest

pytest.importorskip("kryon_lua")

from kryon_core import (  # noqa: E402
    AccessDeniedError,
    ConversionError,
    Document,
    FunctionRef,
    RecursionLimitError,
    ScriptManager,
    ScriptRuntimeError,
    ScriptTimeoutError,
    SecurityPolicy,
    SizeLimitError,
    UserData,
)
from kryon_core.testing.concurrency import run_threads  # noqa: E402
from kryon_core.testing.near_cap import run_sweep  # noqa: E402


@pytest.fixture
def trusted():
    m = ScriptManager(policy=SecurityPolicy.trusted(), cache=False, output=lambda lang, text: None)
    yield m
    m.close()


@pytest.fixture
def sandboxed():
    m = ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=2), cache=False, output=lambda lang, text: None)
    yield m
    m.close()


def test_table_rules(trusted):
    trusted.load_script_from_source("t", "lua", """
function mixed() return {10, 20, name = "x"} end
function holes() local t = {} t[1] = "a" t[3] = "c" return t end
function empty() return {} end
function float_key() return {[1.5] = true} end
function table_key() return {[{}] = true} end
function two() return 1, "two" end
function echo(x) return x end
function binary() return "\\255\\254" end
""")
    assert trusted.call_function("mixed") == {"1": 10, "2": 20, "name": "x"}
    assert trusted.call_function("holes") == {"1": "a", "3": "c"}
    assert trusted.call_function("empty") == []
    assert trusted.call_function("echo", [{}]) == {}, "an empty host dict keeps its kind"
    assert trusted.call_function("echo", [{1: "a", 2: "b"}]) == {"1": "a", "2": "b"}
    assert trusted.call_function("two") == [1, "two"]
    with pytest.raises(ConversionError):
        trusted.call_function("float_key")
    with pytest.raises(ConversionError):
        trusted.call_function("table_key")
    with pytest.raises(ConversionError, match="UTF-8"):
        trusted.call_function("binary")
    with pytest.raises(ConversionError):
        trusted.call_function("echo", [2**64])
    with pytest.raises(ConversionError):
        trusted.call_function("echo", [[1, 2**70]])
    assert trusted.call_function("echo", [2**63 - 1]) == 2**63 - 1
    assert type(trusted.call_function("echo", [3.0])) is float


def test_cycles_become_conversion_errors(trusted):
    trusted.load_script_from_source("c", "lua", "function cyc() local t = {} t.self = t return t end")
    with pytest.raises(ConversionError, match="cyclic"):
        trusted.call_function("cyc")


def test_module_style_returned_table(trusted):
    trusted.load_script_from_source("mod", "lua", "local M = {}\nfunction M.area(w, h) return w * h end\nreturn M\n")
    assert trusted.call_function("mod.area", [3, 4]) == 12
    assert trusted.functions()["mod.area"].parameter_names == ("w", "h")


def test_host_objects_are_opaque(sandboxed):
    sandboxed.load_script_from_source("o", "lua", """
function peek(x) return x.__class__ end
function keep(x) held = x return x end
""")
    token = UserData({"secret": 1})
    with pytest.raises(ScriptRuntimeError, match="cannot access attributes"):
        sandboxed.call_function("peek", [token])
    with pytest.raises(ScriptRuntimeError):
        sandboxed.call_function("peek", [lambda: None])
    assert sandboxed.call_function("keep", [token]) is token


def test_sandbox_details(sandboxed):
    sandboxed.load_script_from_source("s", "lua", """
function patch_strings() getmetatable("").__index = {upper = function() return "pwned" end} end
function patch_own() string.upper = function() return "mine" end return ("a"):upper(), string.upper("a") end
function binary_chunk() return load(string.dump(function() return 1 end)) end
function swallow() local ok = pcall(function() while true do end end) while true do end end
function env_escape() return getmetatable(_ENV) end
function gc() collectgarbage("collect") end
function safe_os() return type(os.time()), type(os.clock()) end
function getenv() return os.getenv("HOME") end
function req() return require("os") end
""")
    with pytest.raises(ScriptRuntimeError):
        sandboxed.call_function("patch_strings")
    assert sandboxed.call_function("patch_own") == ["A", "mine"], "a script may patch its own copy only"
    sandboxed.load_script_from_source("other", "lua", 'function up() return ("a"):upper(), string.upper("b") end')
    assert sandboxed.call_function("up") == ["A", "B"]
    with pytest.raises(AccessDeniedError, match="binary"):
        sandboxed.call_function("binary_chunk")
    with pytest.raises(ScriptTimeoutError):
        sandboxed.call_function("swallow")
    assert sandboxed.call_function("env_escape") is False
    with pytest.raises(AccessDeniedError):
        sandboxed.call_function("gc")
    assert sandboxed.call_function("safe_os") == ["number", "number"]
    with pytest.raises(AccessDeniedError):
        sandboxed.call_function("getenv")
    with pytest.raises(AccessDeniedError):
        sandboxed.call_function("req")


def test_grants_open_what_they_name(tmp_path):
    target = tmp_path / "note.txt"
    target.write_text("granted")
    m = ScriptManager(policy=SecurityPolicy.sandboxed(allow_file_system=True), cache=False)
    m.load_script_from_source("f", "lua", "function read(p) local f = io.open(p) local s = f:read('a') f:close() return s end")
    assert m.call_function("read", [str(target)]) == "granted"


def test_per_script_policy_in_one_manager(trusted):
    trusted.load_script_from_source("free", "lua", "function run() return type(io) end")
    trusted.load_script_from_source(
        "jail", "lua", "function run() return type(io) end", policy=SecurityPolicy.sandboxed()
    )
    assert trusted.call_function("free.run") == "table"
    with pytest.raises(AccessDeniedError):
        trusted.call_function("jail.run")


def test_recursion_limit_and_plain_stack_overflow(trusted):
    trusted.load_script_from_source("r", "lua", "function dive(n) return dive(n + 1) + 1 end\nfunction ok() return 1 end")
    with pytest.raises(RecursionLimitError):
        trusted.call_function("dive", [0])  # Lua's own stack overflow, reported as a recursion error
    assert trusted.call_function("ok") == 1


def test_async_sleep_and_call_async(trusted):
    trusted.load_script_from_source("a", "lua", """
function slow_double(x)
  kryon.sleep(5)
  local y = kryon.callAsync("a.plain", x)
  coroutine.yield()
  return y * 2
end
function plain(x) return x + 1 end
function fails() kryon.sleep(1) error("late failure") end
function not_async() kryon.sleep(1) end
""")

    async def main():
        return await asyncio.gather(*(trusted.call_function_async("slow_double", [i]) for i in range(3)))

    assert asyncio.run(main()) == [2, 4, 6]
    with pytest.raises(ScriptRuntimeError, match="late failure") as info:
        asyncio.run(trusted.call_function_async("fails"))
    assert info.value.line == 9
    with pytest.raises(ScriptRuntimeError, match="call_function_async"):
        trusted.call_function("not_async")


def test_luajit_when_the_policy_asks():
    m = ScriptManager(policy=SecurityPolicy.trusted(use_jit=True), cache=False)
    m.load_script_from_source("j", "lua", "function v() return jit and jit.version or _VERSION end\nfunction id(x) return x end")
    assert "LuaJIT" in m.call_function("v")
    assert m.call_function("id", [2**53]) == 2**53
    with pytest.raises(ConversionError, match="2\\*\\*53"):
        m.call_function("id", [2**53 + 1])


def test_cached_bytecode_is_reused(tmp_path):
    src = "function f() return 7 end"
    ScriptManager(policy=SecurityPolicy.trusted(), cache_dir=tmp_path).load_script_from_source("c", "lua", src)
    m = ScriptManager(policy=SecurityPolicy.trusted(), cache_dir=tmp_path)
    m.load_script_from_source("c", "lua", src)
    assert m.cache.stats.disk_hits == 1 and m.call_function("f") == 7
    jit = ScriptManager(policy=SecurityPolicy.trusted(use_jit=True), cache_dir=tmp_path)
    jit.load_script_from_source("c", "lua", src)  # Lua 5.4 bytecode is not LuaJIT's: runs from source
    assert jit.call_function("f") == 7


def test_error_from_dom_carries_lua_position(trusted):
    doc = trusted.setup_dom_bridge(Document())
    trusted.load_script_from_source("ui", "lua", "function poke()\n  kryon.setProperty('ghost', 'x', 1)\nend")
    with pytest.raises(Exception) as info:
        trusted.call_function("poke")
    assert info.value.language == "lua" and info.value.script == "ui" and info.value.line == 2
    assert doc.errors == []


def test_callbacks_and_function_refs_release(trusted):
    trusted.load_script_from_source("f", "lua", "function make() local n = 0 return function() n = n + 1 return n end end")
    counter = trusted.call_function("make")
    assert isinstance(counter, FunctionRef) and counter.script == "f"
    assert [counter(), counter()] == [1, 2]
    before = trusted.engine("lua").get_memory_usage().used_bytes
    refs = [trusted.call_function("make") for _ in range(2000)]
    del refs
    trusted.engine("lua").collect_garbage()
    after = trusted.engine("lua").get_memory_usage().used_bytes
    assert after < before + 64 * 1024, "dropped FunctionRefs must free their Lua closures"


def test_threads_share_one_manager(trusted):
    trusted.load_script_from_source("t", "lua",
                                    "total = 0\nfunction bump(n) total = total + n return total end\nfunction get() return total end")

    def worker():
        for _ in range(500):
            trusted.call_function("bump", [1])

    run_threads([worker] * 4)
    assert trusted.call_function("get") == 2000


def test_memory_is_flat_over_load_unload_cycles(trusted):
    src = "local big = {} for i = 1, 100 do big[i] = ('x'):rep(100) .. i end\nfunction f() return #big end"
    trusted.load_script_from_source("warm", "lua", src)
    trusted.unload_script("warm")
    trusted.engine("lua").collect_garbage()
    base = trusted.engine("lua").get_memory_usage().used_bytes
    for _ in range(300):
        trusted.load_script_from_source("cycle", "lua", src)
        trusted.unload_script("cycle")
    trusted.engine("lua").collect_garbage()
    assert trusted.engine("lua").get_memory_usage().used_bytes < base + 128 * 1024


def test_luajit_sandbox_keeps_every_limit():
    # LuaJIT skips hooks in compiled traces; the sandboxed runtime keeps the
    # JIT compiler off so the time limit still stops an endless loop.
    m = ScriptManager(
        policy=SecurityPolicy.sandboxed(use_jit=True, time_limit=1.0, memory_limit=16 * 1024 * 1024), cache=False
    )
    m.load_script_from_source(
        "k", "lua",
        "function spin() while true do end end\n"
        "function dive(n) return dive(n + 1) + 1 end\n"
        "function hog() local t = {} while true do t[#t + 1] = string.rep('x', 1000) .. #t end end\n"
        "function files() return io.open('/etc/hostname') end\n"
        "function ok() return 1 end\n",
    )
    with pytest.raises(ScriptTimeoutError):
        m.call_function("spin")
    with pytest.raises(RecursionLimitError):
        m.call_function("dive", [0])
    with pytest.raises(Exception) as info:
        m.call_function("hog")
    assert type(info.value).__name__ == "MemoryLimitError"
    with pytest.raises(AccessDeniedError):
        m.call_function("files")
    assert m.call_function("ok") == 1


AT_THE_CAP = textwrap.dedent('''
    import sys
    from kryon_core import MemoryLimitError, ScriptManager, SecurityPolicy
    from kryon_core.testing.near_cap import report, sweep
    policy = SecurityPolicy.sandboxed(use_jit=sys.argv[1] == "jit", time_limit=5, memory_limit=8 * 1024 * 1024)
    m = ScriptManager(policy=policy, cache=False)
    m.load_script_from_source("full", "lua", """
    keep = {}
    function add(n) for i = 1, n do keep[#keep + 1] = string.rep('x', 1000) .. #keep end return #keep end
    function echo(v) return v end
    function ask(f) return f() end
    function grow()
      local t = {}
      for i = 1, 1e6 do t[i] = tostring(i) .. 'y' end
      return #t
    end
    """)
    added = 0
    while True:
        try:
            added = m.call_function("add", [50])
        except MemoryLimitError:
            break
    assert added > 1000
    # The state is now right at its cap: host-side allocations around the calls
    # (arguments in, a host function's result, error positions) must not panic.
    # Whether the script itself still has room is Lua's business: either a
    # result or a MemoryLimitError naming the script, never a dead process.
    big = {"rows": [f"row {i}" * 20 for i in range(2000)], "n": 1}
    calls = [("echo", [big]), ("ask", [lambda: [f"fresh {i}" for i in range(500)]]), ("grow", [])]
    # (the error of echo's argument that found no room names no script: not checked there)
    outcomes = sweep(calls[:1], lambda call: m.call_function(*call), None)
    outcomes += sweep(calls[1:], lambda call: m.call_function(*call), "full")
    # Scripts of one policy share a Lua state and its cap: unloading the one
    # that holds the memory gives it back to the others.
    m.unload_script("full")
    m.load_script_from_source("next", "lua", "function hello(name) return 'hello ' .. name end")
    assert m.call_function("hello", ["again"]) == "hello again"
    report(outcomes)
''')


@pytest.mark.parametrize("runtime", ["lua54", "jit"])
def test_host_side_allocations_at_the_memory_cap_never_panic(runtime):
    # Lua and LuaJIT end the whole process on an allocation refused outside a
    # protected call (a "PANIC"); the cap must apply to script code only.
    outcomes = run_sweep(AT_THE_CAP, runtime, timeout=120)
    assert set(outcomes[:2]) <= {"returned", "full"} and outcomes[2] == "full", outcomes  # grow: the cap held


def test_specialised_callers_run_the_function_once(trusted):
    trusted.load_script_from_source("once", "lua", """
calls = 0
function bump(a, b) calls = calls + 1 if a == "fail" then error("asked to fail") end return {a, b} end
function count() return calls end
""")
    bound = trusted.function("once.bump")
    assert bound(1, 2) == [1, 2]                       # table result: converted, not re-run
    with pytest.raises(ScriptRuntimeError, match="asked to fail"):
        bound("fail", 2)                               # error: translated, not re-run
    assert bound(1) == [1]                             # fewer arguments: nil for the rest
    assert bound(1, 2, 3) == [1, 2]                    # more: Lua drops them
    assert bound([1], {"k": 2}) == [[1], {"k": 2}]     # non-scalars: converted
    assert trusted.call_function("once.count") == 5


@pytest.mark.parametrize("policy", [SecurityPolicy.trusted(use_jit=True), SecurityPolicy.sandboxed(use_jit=True)],
                         ids=["trusted", "sandboxed"])
def test_luajit_async(policy):
    # LuaJIT is Lua 5.1 underneath (no table.pack): async calls must work there too.
    m = ScriptManager(policy=policy, cache=False)
    m.load_script_from_source("a", "lua", """
function slow(n) kryon.sleep(1) return n * 2 end
function viacall(x) return kryon.callAsync("a.slow", x) end
""")
    assert asyncio.run(m.call_function_async("slow", [21])) == 42
    assert asyncio.run(m.call_function_async("viacall", [5])) == 10
    m.close()


@pytest.mark.parametrize("jit", [False, True], ids=["lua54", "luajit"])
def test_host_function_errors_carry_the_script_position(jit):
    # LuaJIT cannot see past lupa's C boundary; host functions are wrapped to
    # record their caller (not after a tail call, where LuaJIT drops the frame).
    m = ScriptManager(policy=SecurityPolicy.trusted(use_jit=jit), cache=False)
    m.load_script_from_source("lib", "lua", "function bad(f)\n  local r = f()\n  return r\nend\n")

    def boom():
        raise ValueError("host says no")

    with pytest.raises(ScriptRuntimeError, match="host says no") as info:
        m.call_function("bad", [boom])
    assert (info.value.script, info.value.line) == ("lib", 2)
    m.close()


def test_value_size_limit_on_results_and_host_calls():
    m = ScriptManager(policy=SecurityPolicy.sandboxed(max_value_size=1000), cache=False)
    m.load_script_from_source("big", "lua", """
function text() return string.rep("x", 5000) end
function rows() local t = {} for i = 1, 5000 do t[i] = i end return t end
function send(f) return f(string.rep("y", 5000)) end
function fine() return string.rep("z", 900) end
""")
    for name, args in (("text", []), ("rows", []), ("send", [lambda s: len(s)])):
        with pytest.raises(SizeLimitError) as info:
            m.call_function(name, args)
        assert (info.value.language, info.value.script) == ("lua", "big")
    assert m.call_function("fine") == "z" * 900
    m.close()


@pytest.mark.parametrize("policy", [SecurityPolicy.trusted(), SecurityPolicy.sandboxed()], ids=["trusted", "sandboxed"])
def test_text_without_a_utf8_form_is_a_conversion_error_on_every_route(policy):
    """Lua strings are UTF-8 bytes: a str holding a lone surrogate cannot become one, and a Lua
    string that is not UTF-8 cannot become a str; both are ConversionError, and nothing breaks."""
    from kryon_core import ConversionError

    with ScriptManager(policy=policy, cache=False) as m:
        m.load_script_from_source("e", "lua", "function echo(x) return x end\nfunction bad() return {s = '\\255'} end")
        bound = m.function("e.echo")
        for value in ("\ud800", "a\udfffb", ["ok", "\udc00"], {"k": "\ud800"}, {"k\ud800": 1}):
            with pytest.raises(ConversionError):
                m.call_function("e.echo", [value])
        with pytest.raises(ConversionError):
            bound("\ud800")
        with pytest.raises(ConversionError):
            m.set_global("lua", "g", ["\ud800"])
        with pytest.raises(ConversionError):
            m.call_function("e.bad")
        assert m.call_function("e.echo", [["é", {"ü": "日本"}]]) == ["é", {"ü": "日本"}]
