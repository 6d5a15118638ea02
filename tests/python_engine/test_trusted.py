"""Trusted Python scripts: in-process, through ScriptManager like a user."""

from __future__ import annotations

import asyncio
import importlib.util
import marshal
import platform
import sys
import threading
import time
import types

import pytest

from kryon_core import (
    AccessDeniedError,
    CompileError,
    ConversionError,
    Document,
    FunctionRef,
    RecursionLimitError,
    ScriptManager,
    ScriptRuntimeError,
    ScriptTimeoutError,
    SecurityPolicy,
    UserData,
)

pytest.importorskip("kryon_python")


@pytest.fixture
def m():
    out: list[str] = []
    manager = ScriptManager(policy=SecurityPolicy.trusted(), cache=False, output=lambda lang, text: out.append(text))
    manager.printed = out  # type: ignore[attr-defined]
    yield manager
    manager.close()


def test_import_kryon_only_in_scripts(m: ScriptManager) -> None:
    doc = m.setup_dom_bridge(Document())
    m.load_script_from_source(
        "s", "python", "import kryon\nfrom kryon import set_variable\ndef go():\n    set_variable('x', 1)\n    return kryon.get_variable('x')\n"
    )
    assert m.call_function("s.go") == 1 and doc.get_variable("x") == 1
    assert "kryon" not in sys.modules
    with pytest.raises(ImportError):
        import kryon  # noqa: F401


def test_scripts_have_their_own_namespaces(m: ScriptManager) -> None:
    m.load_script_from_source("a", "python", "x = 1\ndef get(): return x\n")
    m.load_script_from_source("b", "python", "x = 2\ndef get(): return x\n")
    assert (m.call_function("a.get"), m.call_function("b.get")) == (1, 2)


def test_compile_gives_marshalled_code_and_versioned_engine(m: ScriptManager) -> None:
    engine = m.engine("python")
    compiled = engine.compile("def f(a, *rest):\n    yield a\nasync def g(): pass\nX = 1\n", "mod")
    code = marshal.loads(compiled.bytecode)
    assert isinstance(code, types.CodeType) and code.co_filename == "mod"
    assert platform.python_version() in engine.version
    assert importlib.util.MAGIC_NUMBER.hex() in engine.version
    f, g = compiled.functions["f"], compiled.functions["g"]
    assert f.is_generator and f.is_variadic and f.parameter_names == ("a",)
    assert g.is_async and not g.is_generator
    assert compiled.globals == ["X"]


def test_compiled_code_comes_from_the_cache(tmp_path) -> None:
    source = "def f(): return 42\n"
    for expected_from_cache in (False, True):
        manager = ScriptManager(policy=SecurityPolicy.trusted(), cache_dir=tmp_path)
        manager.load_script_from_source("cached", "python", source)
        assert manager.scripts["cached"].compiled.from_cache is expected_from_cache
        assert manager.call_function("f") == 42
        manager.close()


def test_syntax_error(m: ScriptManager) -> None:
    with pytest.raises(CompileError) as info:
        m.load_script_from_source("bad", "python", "x = 1\ndef f(:\n")
    assert info.value.line == 2 and info.value.script == "bad" and info.value.column


def test_stack_trace_in_script_file_and_lines(m: ScriptManager) -> None:
    m.load_script_from_source("deep", "python", "def inner():\n    raise KeyError('k')\n\ndef outer():\n    return inner()\n")
    with pytest.raises(ScriptRuntimeError) as info:
        m.call_function("outer")
    err = info.value
    assert [(f.function, f.script, f.line) for f in err.stack] == [("inner", "deep", 2), ("outer", "deep", 5)]
    assert err.line == 2 and "KeyError" in err.message


def test_error_across_scripts_carries_both_stacks(m: ScriptManager) -> None:
    m.load_script_from_source("callee", "python", "def fail():\n    raise ValueError('deep down')\n")
    m.load_script_from_source("caller", "python", "import kryon\ndef go():\n    return kryon.call('callee.fail')\n")
    with pytest.raises(ScriptRuntimeError) as info:
        m.call_function("caller.go")
    scripts = [(f.script, f.line) for f in info.value.stack]
    assert ("caller", 3) in scripts and ("callee", 2) in scripts
    assert "deep down" in str(info.value)


def test_async_runs_on_the_callers_loop(m: ScriptManager) -> None:
    m.load_script_from_source(
        "aio",
        "python",
        "import asyncio\nasync def work(x):\n    await asyncio.sleep(0)\n    return [x * 2, id(asyncio.get_running_loop())]\n"
        "async def stream(n):\n    for i in range(n):\n        yield i\n",
    )
    assert m.functions()["aio.work"].is_async

    async def main():
        value, loop_id = await m.call_function_async("work", [21])
        return value, loop_id == id(asyncio.get_running_loop()), await m.call_function_async("stream", [3])

    assert asyncio.run(main()) == (42, True, [0, 1, 2])
    assert m.call_function("work", [1])[0] == 2  # no loop running: run to completion


def test_generators_are_flagged_and_collected(m: ScriptManager) -> None:
    m.load_script_from_source("gen", "python", "def count(n):\n    for i in range(n):\n        yield i\n")
    assert m.functions()["gen.count"].is_generator
    assert m.call_function("count", [3]) == [0, 1, 2]


def test_breakpoint_in_a_dom_callback(m: ScriptManager) -> None:
    doc = m.setup_dom_bridge(Document())
    doc.append_child(doc.root, doc.create_element("button", {"id": "b"}))
    m.load_script_from_source(
        "ui",
        "python",
        "import kryon\nclicks = 0\ndef on_click(event):\n    global clicks\n    clicks += 1\n"
        "kryon.add_event_listener(kryon.get_element_by_id('b'), 'click', on_click)\n",
    )
    engine = m.engine("python")
    hits = []
    engine.set_breakpoint_handler(hits.append)
    bid = engine.set_breakpoint("ui", 5)
    doc.click("b")
    assert len(hits) == 1 and hits[0].line == 5 and hits[0].script == "ui"
    assert hits[0].stack[0].function == "on_click" and hits[0].locals["event"]["type"] == "click"
    assert sys.gettrace() is None, "the trace hook is scoped to script calls"
    engine.remove_breakpoint(bid)
    doc.click("b")
    assert len(hits) == 1


def test_values_out_of_scripts(m: ScriptManager) -> None:
    m.load_script_from_source(
        "v",
        "python",
        "class Thing: pass\n"
        "def tup(): return (1, (2, 3))\ndef keys(): return {1: 'a', 'b': 2}\ndef aset(): return {1}\n"
        "def cyc():\n    x = []\n    x.append(x)\n    return x\ndef obj(): return Thing()\n"
        "def fn(): return lambda y: y + 1\ndef big(): return 2**100\ndef raw(): return b'\\x00\\xff'\n",
    )
    assert m.call_function("tup") == [1, [2, 3]]
    assert m.call_function("keys") == {"1": "a", "b": 2}
    assert m.call_function("big") == 2**100
    assert m.call_function("raw") == b"\x00\xff"
    for bad in ("aset", "cyc", "obj"):
        with pytest.raises(ConversionError):
            m.call_function(bad)
    ref = m.call_function("fn")
    assert isinstance(ref, FunctionRef) and ref.script == "v" and ref(1) == 2


def test_host_values_go_in_unchanged(m: ScriptManager) -> None:
    m.load_script_from_source("same", "python", "def ident(x): return x\ndef same(a, b): return a is b\n")
    payload = {"k": [1, 2]}
    token = UserData(object())
    assert m.call_function("same", [token, token]) is True
    assert m.call_function("ident", [token]) is token
    assert m.call_function("ident", [payload]) == payload


def test_globals_and_shadowing(m: ScriptManager) -> None:
    m.load_script_from_source("g1", "python", "def read(): return setting\n")
    m.load_script_from_source("g2", "python", "setting = 'mine'\ndef read(): return setting\n")
    m.set_global("python", "setting", "shared")
    assert m.call_function("g1.read") == "shared" and m.call_function("g2.read") == "mine"
    assert m.get_global("python", "setting") == "shared"


def test_failed_reload_keeps_the_old_state(m: ScriptManager) -> None:
    m.load_script_from_source("c", "python", "n = 0\ndef inc():\n    global n\n    n += 1\n    return n\n")
    m.call_function("inc")
    with pytest.raises(ScriptRuntimeError):
        m.hot_reload_script("c", "raise RuntimeError('top level fails')\n")
    assert m.call_function("inc") == 2, "the old version kept its state"


def test_output_goes_to_the_host(m: ScriptManager) -> None:
    m.load_script_from_source("p", "python", "print('loaded', 1)\ndef say(x):\n    print(x, end='')\n    print('!')\n")
    m.call_function("say", ["hi"])
    assert m.printed == ["loaded 1", "hi!"]  # type: ignore[attr-defined]


def test_memory_figures_are_real(m: ScriptManager) -> None:
    engine = m.engine("python")
    m.load_script_from_source("mem", "python", "data = []\ndef grow(n):\n    data.extend(str(i) * 10 for i in range(n))\n")
    before = engine.get_memory_usage().used_bytes
    m.call_function("grow", [50_000])
    after = engine.get_memory_usage().used_bytes
    assert after - before > 50_000 * 50
    m.load_script_from_source(
        "cycles", "python", "def make():\n    for i in range(1000):\n        a = {}\n        b = {'a': a}\n        a['b'] = b\n"
    )
    import gc

    gc.disable()  # so that the cycles are still there for collect_garbage to find
    try:
        m.call_function("make")
        stats = engine.collect_garbage()
    finally:
        gc.enable()
    assert stats.objects_freed >= 2000 and stats.bytes_before > 0


def test_policy_limits_imports_even_when_trusted() -> None:
    m = ScriptManager(policy=SecurityPolicy.trusted(allow_imports=False, allowed_modules={"math"}), cache=False)
    m.load_script_from_source("ok", "python", "import math\ndef f(): return math.floor(2.5)\n")
    assert m.call_function("f") == 2
    with pytest.raises(AccessDeniedError):
        m.load_script_from_source("no", "python", "import os\n")
    m.close()


def test_recursion_error_is_a_limit_error(m: ScriptManager) -> None:
    m.load_script_from_source("r", "python", "def dive(n): return dive(n + 1)\n")
    with pytest.raises(RecursionLimitError):
        m.call_function("dive", [0])


def test_calls_from_several_threads(m: ScriptManager) -> None:
    m.load_script_from_source("t", "python", "def sq(x): return x * x\n")
    results: list[int] = []
    lock = threading.Lock()

    def worker(base: int) -> None:
        for i in range(200):
            value = m.call_function("t.sq", [base + i])
            with lock:
                results.append(value)

    threads = [threading.Thread(target=worker, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == sorted((k * 1000 + i) ** 2 for k in range(4) for i in range(200))


def test_bound_function_is_a_direct_handle(m: ScriptManager) -> None:
    m.load_script_from_source("h", "python", "def add(a, b): return a + b\n")
    add = m.function("h.add")
    assert add(2, 3) == 5
    assert add.script == "h" and add.language == "python"


LOOPS = """
count = 0
def bump():
    global count
    count += 1
    return count
def spin():
    while True:
        pass
def stubborn():
    while True:
        try:
            while True:
                pass
        except Exception:
            pass
def endless():
    n = 0
    while True:
        n += 1
        yield n
"""


def test_trusted_time_limit_stops_loops_and_keeps_the_state() -> None:
    m = ScriptManager(policy=SecurityPolicy.trusted(time_limit=0.2), cache=False)
    m.load_script_from_source("loops", "python", LOOPS)
    assert m.call_function("bump") == 1
    for name in ("spin", "stubborn", "endless"):  # endless: a generator drained by the host
        with pytest.raises(ScriptTimeoutError) as info:
            m.call_function(name)
        err = info.value
        assert (err.language, err.script) == ("python", "loops") and err.line is not None
        assert "time limit of 0.2 s" in err.message
    bound = m.function("loops.spin")
    with pytest.raises(ScriptTimeoutError):
        bound()
    assert m.call_function("bump") == 2, "the script and its state survive the interrupts"
    assert not m.engine("python").watchdog._arms, "every call disarmed its deadline"
    deadline = time.monotonic() + 0.4
    while time.monotonic() < deadline:  # host code: no interrupt may land here
        pass
    m.close()


def test_trusted_time_limit_at_load_and_none_leaks_afterwards() -> None:
    m = ScriptManager(policy=SecurityPolicy.trusted(time_limit=0.2), cache=False)
    with pytest.raises(ScriptTimeoutError):
        m.load_script_from_source("top", "python", "while True:\n    pass\n")
    assert "top" not in m.scripts
    m.load_script_from_source("quick", "python", "def f(x): return x * 2\n")
    assert m.call_function("f", [21]) == 42
    total = sum(range(2_000_000))  # host code after limited calls: no interrupt lands here
    assert total == 1999999000000
    m.close()


def test_no_time_limit_means_no_watchdog(m: ScriptManager) -> None:
    m.load_script_from_source("w", "python", "def f(): return 1\n")
    assert m.call_function("f") == 1
    assert m.engine("python").watchdog is None
