"""The Wren engine beyond the contract: class methods, Fn variables,
imports, values, errors, fibers, limits and restarts."""

from __future__ import annotations

import asyncio
import sys

import pytest

from kryon_core import (
    BreakpointHit,
    CompileError,
    ConversionError,
    Document,
    FunctionRef,
    MemoryLimitError,
    RecursionLimitError,
    ScriptError,
    ScriptManager,
    ScriptRuntimeError,
    ScriptTimeoutError,
    SecurityPolicy,
    SizeLimitError,
    UserData,
)

pytest.importorskip("kryon_wren")

LIB = """\
import "kryon" for Kryon
class Counter {
  static increment(n) { n + 1 }
  static add(a, b) { a + b }
  static name { "counter" }
  static half(x) { x / 2 }
}
var greet = Fn.new { |name| "hello, %(name)" }
var same = Fn.new { |x| x }
var kinds = Fn.new { |x| x.type.name }
"""


@pytest.fixture
def out():
    return []


@pytest.fixture
def m(out):
    manager = ScriptManager(policy=SecurityPolicy.trusted(), cache=False,
                            output=lambda lang, text: out.append((lang, text)))
    manager.load_script_from_source("lib", "wren", LIB)
    yield manager
    manager.close()


def test_class_methods_and_fn_variables(m):
    assert m.call_function("Counter.increment", [41]) == 42
    assert m.call_function("lib.Counter.add", [2, 3]) == 5
    assert m.call_function("greet", ["ana"]) == "hello, ana"
    assert m.call_function("Counter.name") == "counter"
    functions = m.functions()
    assert functions["lib.Counter.add"].parameter_names == ("a", "b")
    assert functions["lib.greet"].parameter_count == 1
    assert functions["lib.greet"].parameter_names == ("name",)


def test_numbers(m):
    assert type(m.call_function("Counter.increment", [1])) is int
    assert m.call_function("Counter.half", [3]) == 1.5
    assert type(m.call_function("same", [2.0])) is int  # Wren cannot tell 2 from 2.0
    with pytest.raises(ConversionError):
        m.call_function("same", [2**53 + 1])
    with pytest.raises(ConversionError):
        m.call_function("same", [[2**60]])
    big = m.call_function("same", [1e300])
    assert type(big) is float and big == 1e300


def test_bound_handle_and_string_args(m):
    inc = m.function("Counter.increment")
    assert inc(1) == 2
    assert m.function("greet")("bo") == "hello, bo"
    assert m.call_function("kinds", [[1]]) == "List"


def test_user_data_and_host_objects_keep_identity(m):
    token = UserData({"x": 1})
    assert m.call_function("same", [token]) is token
    assert m.call_function("same", [{"k": [token]}])["k"][0] is token
    with pytest.raises(ConversionError):
        m.call_function("same", [object()])  # unknown host objects need a kryon_convert_value hook


def test_wren_objects_come_back_as_themselves(m):
    m.load_script_from_source("obj", "wren", "class P {\n  construct new() {}\n}\nvar make = Fn.new { P.new() }\n"
                              "var isP = Fn.new { |x| x is P }\n")
    p = m.call_function("make")
    assert isinstance(p, UserData)
    assert m.call_function("isP", [p]) is True


def test_output_lines(m, out):
    m.load_script_from_source("talk", "wren", 'System.print("one")\nSystem.write("two")\nSystem.print(3)\n')
    assert ("wren", "one") in out and ("wren", "two3") in out


def test_imports_between_scripts(m):
    m.load_script_from_source("util", "wren", "class Util {\n  static twice(x) { x * 2 }\n}\n")
    m.load_script_from_source("user", "wren", 'import "util" for Util\nvar run = Fn.new { |x| Util.twice(x) + 1 }\n')
    assert m.call_function("user.run", [4]) == 9
    with pytest.raises(ScriptRuntimeError):
        m.load_script_from_source("broken_import", "wren", 'import "nope" for Nope\n')


def test_fn_crosses_to_host_and_back(m):
    m.load_script_from_source("fns", "wren", "var make = Fn.new { |n| Fn.new { |x| x * n } }\n"
                              "var run = Fn.new { |f, x| f.call(x) }\n")
    triple = m.call_function("make", [3])
    assert isinstance(triple, FunctionRef) and triple.language == "wren" and triple.script == "fns"
    assert triple(5) == 15
    assert m.call_function("run", [triple, 2]) == 6
    assert m.call_function("run", [lambda x: [x, x], "a"]) == ["a", "a"]


def test_compile_error_line():
    with ScriptManager(policy=SecurityPolicy.trusted(), cache=False) as m:
        with pytest.raises(CompileError) as info:
            m.load_script_from_source("bad", "wren", "var a = 1\nvar b = (\nvar c = 3\n")
        assert info.value.line == 3 and info.value.script == "bad" and info.value.language == "wren"


def test_runtime_error_wording_line_and_stack(m):
    m.load_script_from_source("err", "wren", "class A {\n  static f() { g() }\n  static g() { 1.x }\n}\n"
                              "var run = Fn.new {\n  A.f()\n}\n")
    with pytest.raises(ScriptRuntimeError) as info:
        m.call_function("err.run")
    err = info.value
    assert err.message == "Num does not implement 'x'."
    assert err.script == "err" and err.line == 3
    assert [f.line for f in err.stack][:3] == [3, 2, 6]


def test_host_error_type_survives_wren():
    from kryon_core import AccessDeniedError

    with ScriptManager(cache=False) as m:
        m.load_script_from_source("f", "wren", 'import "io" for File\nvar read = Fn.new {\n  File.read("x")\n}\n')
        with pytest.raises(AccessDeniedError) as info:
            m.call_function("read")
        assert info.value.script == "f" and info.value.line == 3


def test_async_fiber_yields_to_the_loop(m):
    m.load_script_from_source("slow", "wren", """\
class Job {
  static run(n) {
    var total = 0
    for (i in 1..n) {
      total = total + i
      Fiber.yield()
    }
    return total
  }
}
var wait = Fn.new { |ms|
  Fiber.yield(ms)
  return "waited"
}
""")
    ticks = []

    async def main():
        async def ticker():
            for _ in range(3):
                ticks.append(1)
                await asyncio.sleep(0)

        result, _ = await asyncio.gather(m.call_function_async("Job.run", [4]), ticker())
        waited = await m.call_function_async("slow.wait", [5])
        return result, waited

    assert asyncio.run(main()) == (10, "waited")
    assert len(ticks) == 3


def test_trap_restarts_only_the_faulted_script():
    policy = SecurityPolicy.sandboxed(time_limit=3, memory_limit=32 << 20)
    with ScriptManager(policy=policy, cache=False) as m:
        m.load_script_from_source("state", "wren", "var n = 0\nvar bump = Fn.new { n = n + 1 }\n")
        m.load_script_from_source("spin", "wren", "var k = 0\nvar spin = Fn.new { while (true) {} }\nvar inc = Fn.new { k = k + 1 }\n")
        assert m.call_function("bump") == 1
        assert m.call_function("bump") == 2
        assert m.call_function("inc") == 1
        with pytest.raises(ScriptTimeoutError):
            m.call_function("spin")
        assert m.call_function("bump") == 3, "a bystander keeps its state"
        assert m.call_function("inc") == 1, "the faulted script restarts"
        with pytest.raises(MemoryLimitError):
            m.load_script_from_source("hog", "wren", 'var t = []\nwhile (true) t.add("x" * 4096)\n')
        assert m.call_function("bump") == 4


def test_dom_handles_and_events():
    with ScriptManager(policy=SecurityPolicy.trusted(), cache=False) as m:
        doc = m.setup_dom_bridge(Document())
        doc.append_child(doc.root, doc.create_element("div", {"id": "box"}))
        m.load_script_from_source("ui", "wren", """\
import "kryon" for Kryon
var box = Kryon.getElementById("box")
Kryon.setStyle(box, "color", "red")
Kryon.addClass(box, "on")
var same = Fn.new { |el| el == box }
var box2 = Fn.new { Kryon.getElementById("box") }
""")
        box = doc.get_element_by_id("box")
        assert doc.has_class(box, "on")
        assert m.call_function("ui.same", [box]) is True
        assert m.call_function("ui.box2") == box


@pytest.mark.skipif("kryon_lua" not in sys.modules and __import__("importlib").util.find_spec("kryon_lua") is None,
                    reason="kryon-lua is not installed")
def test_lua_calls_wren_class_method():
    with ScriptManager(policy=SecurityPolicy.trusted(), cache=False) as m:
        m.load_script_from_source("format", "wren", """\
class Format {
  static summary(done, total) { "%(done) of %(total) done" }
}
""")
        m.load_script_from_source("app", "lua", 'function run() return kryon.call("Format.summary", 2, 5) end')
        assert m.call_function("app.run") == "2 of 5 done"
        wren_fn = m.function("format.Format.summary")
        assert wren_fn(1, 3) == "1 of 3 done"


def test_kryon_run_imports_a_file_beside_the_script(tmp_path):
    import subprocess

    (tmp_path / "util.wren").write_text("class Util {\n  static twice(x) { x * 2 }\n}\n")
    (tmp_path / "main.wren").write_text('import "util" for Util\nSystem.print("twice: %(Util.twice(21))")\n')
    done = subprocess.run([sys.executable, "-m", "kryon_core.cli", "run", str(tmp_path / "main.wren")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "twice: 42" in done.stdout


INSTALL_CHECK = """
import asyncio
from kryon_core import ScriptManager, SecurityPolicy, Document
m = ScriptManager(cache_dir=False)
assert "wren" in m.languages and not m.is_loaded("wren"), m.languages
doc = m.setup_dom_bridge(Document())
doc.append_child(doc.root, doc.create_element("button", {"id": "go"}))
m.load_script_from_source("app", "wren", '''
import "kryon" for Kryon
Kryon.addEventListener(Kryon.getElementById("go"), "click", Fn.new { |e| Kryon.setVariable("clicked", true) })
class Counter {
  static increment(n) { n + 1 }
}
var greet = Fn.new { |name| "hi %(name)" }
''')
doc.click("go")
assert doc.get_variable("clicked") is True
assert m.call_function("Counter.increment", [41]) == 42
assert m.function("app.greet")("you") == "hi you"
assert asyncio.run(m.call_function_async("greet", ["async"])) == "hi async"
print("ok", m.engine("wren").version)
"""


@pytest.mark.slow
def test_fresh_venv_with_core_and_wren_alone(tmp_path):
    """pip install the repository root and plugins/kryon-wren into a new venv:
    the wasm is built during the install; Wren runs through the Python API
    and through ``kryon run``."""
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONPATH", "VIRTUAL_ENV"))}
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bindir = venv / ("Scripts" if sys.platform == "win32" else "bin")
    py = bindir / ("python.exe" if sys.platform == "win32" else "python")
    installed = subprocess.run([str(py), "-m", "pip", "install", "-q", str(root), str(root / "plugins" / "kryon-wren")],
                               capture_output=True, text=True, timeout=1800, env=env)
    if installed.returncode != 0 and "No matching distribution" in installed.stderr:
        pytest.skip("the package index is unreachable")
    assert installed.returncode == 0, installed.stderr
    listed = subprocess.run([str(py), "-m", "pip", "list"], capture_output=True, text=True, env=env).stdout
    assert "kryon-wren" in listed and "lupa" not in listed and "quickjs" not in listed
    done = subprocess.run([str(py), "-c", INSTALL_CHECK], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "ok Wren" in done.stdout
    (tmp_path / "hello.wren").write_text('System.print("hello from wren %(1 + 1)")\n')
    ran = subprocess.run([str(bindir / "kryon"), "run", str(tmp_path / "hello.wren")], capture_output=True,
                         text=True, timeout=300, cwd=tmp_path, env=env)
    assert ran.returncode == 0, ran.stderr
    assert "hello from wren 2" in ran.stdout


def test_async_getter_and_repeated_async_calls(m):
    async def main():
        return [await m.call_function_async("Counter.name", []) for _ in range(3)]

    assert asyncio.run(main()) == ["counter"] * 3


def test_calls_from_several_threads(m):
    from concurrent.futures import ThreadPoolExecutor

    add = m.function("lib.Counter.add")
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: (add(i, 1), m.call_function("greet", [str(i)])), range(400)))
    assert results == [(i + 1, f"hello, {i}") for i in range(400)]


@pytest.mark.skipif(__import__("importlib").util.find_spec("kryon_js") is None, reason="kryon-js is not installed")
def test_wren_fn_as_javascript_event_handler():
    with ScriptManager(policy=SecurityPolicy.trusted(), cache=False) as m:
        doc = m.setup_dom_bridge(Document())
        doc.append_child(doc.root, doc.create_element("button", {"id": "go"}))
        m.load_script_from_source("handlers", "wren", """\
import "kryon" for Kryon
class Handlers {
  static click() { Fn.new { |event| Kryon.setVariable("clicked_by", "wren:%(event["type"])") } }
}
""")
        m.load_script_from_source("page", "javascript", """\
const handler = kryon.call("Handlers.click");
kryon.addEventListener(kryon.getElementById("go"), "click", handler);
""")
        assert doc.click("go") == 1
        assert doc.get_variable("clicked_by") == "wren:click"
        assert not doc.errors, doc.errors


def test_kryon_call_back_into_the_same_script(m):
    m.load_script_from_source("loop", "wren", """\
import "kryon" for Kryon
class Loop {
  static down(n) { n <= 0 ? "done" : Kryon.call("loop.Loop.down", n - 1) }
  static sum(xs) { Kryon.call("loop.Loop.total", [xs]) }
  static total(xs) { xs.reduce(0) { |a, b| a + b } }
}
""")
    assert m.call_function("Loop.down", [20]) == "done"
    assert m.call_function("Loop.sum", [[1, 2, 3]]) == 6


def test_wren_objects_are_released_when_dropped(m):
    import gc

    m.load_script_from_source("objs", "wren", "class P {\n  construct new() {}\n}\nvar make = Fn.new { P.new() }\n")
    state = m.engine("wren")._scripts["objs"]
    for _ in range(50):
        m.call_function("make")
    gc.collect()
    m.call_function("make")
    assert len(state.release_queue) <= 1  # the last result, dropped after its call


def test_compile_lists_imports_as_dependencies(m):
    compiled = m.engine("wren").compile('import "kryon" for Kryon\nimport "util" for U\n', "deps")
    assert compiled.dependencies == ["util"]


def test_failed_reload_keeps_the_old_state(m):
    m.load_script_from_source("st", "wren", "var n = 0\nvar bump = Fn.new { n = n + 1 }\n")
    assert m.call_function("st.bump") == 1
    with pytest.raises(ScriptRuntimeError):
        m.hot_reload_script("st", 'var bump = Fn.new { 0 }\nFiber.abort("no")\n')
    assert m.call_function("st.bump") == 2, "the old version keeps its state"
    m.hot_reload_script("st", "var bump = Fn.new { 100 }\n")
    assert m.call_function("st.bump") == 100


def test_memory_stays_flat_over_1000_load_unload_cycles():
    from kryon_core import ScriptManager, SecurityPolicy

    m = ScriptManager(policy=SecurityPolicy.trusted(), cache=False, output=lambda lang, text: None)
    source = 'class Counter {\n  static bump(n) { n + 1 }\n}\nvar junk = (1..200).map { |i| "item %(i)" }.toList\n'
    engine = m.engine("wren")

    def cycle(count):
        for _ in range(count):
            m.load_script_from_source("cyc", "wren", source)
            assert m.call_function("cyc.Counter.bump", [1]) == 2
            m.unload_script("cyc")
        engine.collect_garbage()
        return engine.get_memory_usage().used_bytes

    warm = cycle(50)
    after = cycle(1000)
    assert after <= warm + 256 * 1024, (warm, after)
    m.close()


# -- recursion limit and debugging -------------------------------------------------------

DEEP = """\
class Deep {
  static down(n) {
    if (n == 0) return 0
    return down(n - 1) + 1
  }
  static inFiber(n) { Fiber.new { Deep.down(n) }.call() }
  static forever(n) { forever(n + 1) }
}
var down = Fn.new { |n| Deep.down(n) }
"""


def test_policy_max_recursion_bounds_wren_frames():
    policy = SecurityPolicy.sandboxed(max_recursion=50, time_limit=20)
    with ScriptManager(policy=policy, cache=False) as m:
        m.load_script_from_source("deep", "wren", DEEP)
        m.load_script_from_source("other", "wren", "var twice = Fn.new { |x| x * 2 }\n")
        assert m.call_function("Deep.down", [40]) == 40
        assert m.call_function("down", [40]) == 40
        for function in ("Deep.forever", "Deep.down", "down", "Deep.inFiber"):
            with pytest.raises(RecursionLimitError) as info:
                m.call_function(function, [0] if function == "Deep.forever" else [60])
            error = info.value
            assert error.language == "wren" and error.script == "deep"
            assert error.line == (7 if function == "Deep.forever" else 4)
            assert "50" in error.message and "max_recursion" in error.message
        # the script, the engine and other scripts keep working
        assert m.call_function("Deep.down", [45]) == 45
        assert m.call_function("Deep.inFiber", [40]) == 40
        assert m.call_function("twice", [21]) == 42


def test_trusted_policy_recurses_up_to_the_vm_limit():
    with ScriptManager(policy=SecurityPolicy.trusted(), cache=False) as m:
        m.load_script_from_source("deep", "wren", DEEP)
        assert m.call_function("Deep.down", [20000]) == 20000
        with pytest.raises(RecursionLimitError) as info:
            m.call_function("Deep.forever", [0])
        assert info.value.message == "Stack overflow." and info.value.line == 7
        assert m.call_function("Deep.down", [10]) == 10


DEBUGGEE = """\
class Shop {
  static total(items, rate, audit) {
    var sum = 0
    for (item in items) {
      sum = sum + item["price"]
    }
    var taxed = sum * rate
    return audit.call(taxed)
  }
}
var total = Fn.new { |items, audit| Shop.total(items, 2, audit) }
"""


def test_breakpoint_hit_has_stack_and_locals_and_can_be_removed(m):
    engine = m.engine("wren")
    assert engine.capabilities.supports_debugging
    hits: list[BreakpointHit] = []
    engine.set_breakpoint_handler(hits.append)
    bid = engine.set_breakpoint("shop", 8)  # before the script exists

    def audit(x):
        return x + 1

    m.load_script_from_source("shop", "wren", DEBUGGEE)
    items = [{"price": 3}, {"price": 4}]
    assert m.call_function("total", [items, audit]) == 15
    assert len(hits) == 1
    hit = hits[0]
    assert (hit.breakpoint_id, hit.language, hit.script, hit.line) == (bid, "wren", "shop", 8)
    assert [(f.script, f.line, f.function) for f in hit.stack] == [
        ("shop", 8, "total(_,_,_)"), ("shop", 11, "Fn (line 11)")]
    assert hit.locals == {"items": items, "rate": 2, "audit": audit, "sum": 7, "taxed": 14}
    # a breakpoint in a loop body stops on every pass; a file path names the script
    loop_bid = engine.set_breakpoint("scripts/shop.wren", 5)
    hits.clear()
    assert m.call_function("total", [items, audit]) == 15
    assert [(h.breakpoint_id, h.line) for h in hits] == [(loop_bid, 5), (loop_bid, 5), (bid, 8)]
    assert [h.locals["item"] for h in hits[:2]] == items
    engine.remove_breakpoint(bid)
    engine.remove_breakpoint(loop_bid)
    hits.clear()
    assert m.call_function("total", [items, audit]) == 15
    assert hits == []
    with pytest.raises(ScriptError):
        engine.remove_breakpoint(bid)
    with pytest.raises(ScriptError):
        engine.set_breakpoint("shop", 0)


def test_breakpoint_survives_reload_and_handler_errors_reach_the_caller(m):
    engine = m.engine("wren")
    m.load_script_from_source("shop", "wren", DEBUGGEE)
    engine.set_breakpoint("shop", 8)

    class Stop(ScriptError):
        pass

    def handler(hit):
        raise Stop("stopped by the debugger")

    engine.set_breakpoint_handler(handler)
    with pytest.raises(Stop):
        m.call_function("total", [[{"price": 1}], lambda x: x])
    m.hot_reload_script("shop", DEBUGGEE.replace("* rate\n", "* rate + 0\n"))
    hits = []
    engine.set_breakpoint_handler(hits.append)
    assert m.call_function("total", [[{"price": 1}], lambda x: x]) == 2
    assert [h.line for h in hits] == [8]


def test_stack_trace_inside_nested_callbacks_spans_scripts(m):
    engine = m.engine("wren")
    seen = []
    m.load_script_from_source("shop", "wren", DEBUGGEE)
    m.load_script_from_source(
        "front", "wren",
        'import "kryon" for Kryon\nvar buy = Fn.new { |audit|\n  return Kryon.call("shop.total", [[{"price": 5}], audit])\n}\n')
    assert m.call_function("buy", [lambda x: seen.append(engine.get_stack_trace()) or x]) == 10
    assert [(f.script, f.line) for f in seen[0]] == [("shop", 8), ("shop", 11), ("front", 3)]
    assert all(f.language == "wren" for f in seen[0])
    assert engine.get_stack_trace() == []


def test_value_size_limit_on_results_and_host_calls():
    m = ScriptManager(policy=SecurityPolicy.sandboxed(max_value_size=1000), cache=False)
    m.load_script_from_source("big", "wren", """
var text = Fn.new { "x" * 5000 }
var rows = Fn.new { (1..5000).toList }
var send = Fn.new {|f| f.call("y" * 5000) }
var fine = Fn.new { "z" * 900 }
""")
    for name, args in (("text", []), ("rows", []), ("send", [lambda s: len(s)])):
        with pytest.raises(SizeLimitError) as info:
            m.call_function(name, args)
        assert (info.value.language, info.value.script) == ("wren", "big")
    assert m.call_function("fine") == "z" * 900
    m.close()
