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
from functools import partial
from typing import Any

import pytest

from kryon_core import (
    AccessDeniedError,
    CompileError,
    ConversionError,
    Document,
    FunctionRef,
    MemoryLimitError,
    RecursionLimitError,
    ScriptManager,
    ScriptRuntimeError,
    ScriptTimeoutError,
    SecurityPolicy,
    SizeLimitError,
    UnsupportedPolicyError,
    UserData,
)
from kryon_core.testing.concurrency import run_threads

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
"s", "python",
        "import kryon\nfrom kryon import set_variable\ndef go():\n    set_variable('x', 1)\n    return kryon.get_variable('x')\n"
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

    run_threads([partial(worker, k * 1000) for k in range(4)])
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


def test_an_interrupt_landing_as_a_call_ends_never_leaves_the_deadline_armed(monkeypatch) -> None:
    """The watchdog's interrupt can land on any line after the script returns: simulate it in
    the tracer's leave(), the first step after the call. The deadline must still be disarmed,
    or the watchdog would fire into this thread (the host's) every 50 ms from then on."""
    from kryon_core.errors import ScriptError
    from kryon_core.watchdog import TimeLimitExceeded

    m = ScriptManager(policy=SecurityPolicy.trusted(time_limit=0.2, max_recursion=50), cache=False)
    m.load_script_from_source("quick", "python", "def f(x):\n    return x * 2\n")
    tracer = m.engine("python").local.entry.tracer
    real_leave = tracer.leave
    landed = []

    def leave_interrupted(token):
        real_leave(token)
        if not landed:  # the interrupt lands as leave() returns
            landed.append(True)
            raise TimeLimitExceeded()

    monkeypatch.setattr(tracer, "leave", leave_interrupted)
    with pytest.raises(ScriptError):
        m.call_function("f", [1])
    monkeypatch.setattr(tracer, "leave", real_leave)
    assert landed and not m.engine("python").watchdog._arms, "the deadline was disarmed first"
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:  # host code: no interrupt may land here
        pass
    assert m.call_function("f", [21]) == 42
    m.close()


def test_no_time_limit_means_no_watchdog(m: ScriptManager) -> None:
    m.load_script_from_source("w", "python", "def f(): return 1\n")
    assert m.call_function("f") == 1
    assert m.engine("python").watchdog is None


# -- evaluate -------------------------------------------------------------------------------
def test_evaluate_in_a_script_and_in_the_console(m: ScriptManager) -> None:
    m.load_script_from_source("calc", "python", "base = 40\ndef add(a, b):\n    return a + b\n")
    assert m.evaluate("python", "base + 2", script="calc") == 42
    assert m.evaluate("python", "base = 1\ndef twice(x):\n    return 2 * x", script="calc") is None
    assert m.call_function("calc.twice", [21]) == 42  # a definition became a function
    assert m.evaluate("python", "add(base, 1)", script="calc") == 2
    assert m.evaluate("python", "[1, (2, 3)]") == [1, [2, 3]]  # the console script, results as host values
    m.evaluate("python", "seen = 'kept'")
    assert m.evaluate("python", "seen") == "kept"
    m.evaluate("python", "print('from the console')")
    assert "from the console" in m.printed  # type: ignore[attr-defined]


def test_evaluate_errors_name_the_script_and_the_line_within_the_code(m: ScriptManager) -> None:
    m.load_script_from_source("calc", "python", "value = 1\n")
    with pytest.raises(ScriptRuntimeError) as info:
        m.evaluate("python", "x = 1\nraise KeyError('no')", script="calc")
    assert (info.value.script, info.value.line, info.value.language) == ("calc", 2, "python")
    with pytest.raises(CompileError) as compile_info:
        m.evaluate("python", "value = (", script="calc")
    assert compile_info.value.script == "calc" and compile_info.value.line == 1
    assert m.evaluate("python", "value", script="calc") == 1, "a failed evaluation changes nothing"
    assert m.evaluate("python", "x", script="calc") == 1  # statements before the failure ran, as in a REPL


def test_evaluate_keeps_the_scripts_limits() -> None:
    with ScriptManager(policy=SecurityPolicy.trusted(time_limit=0.2), cache=False) as m:
        m.load_script_from_source("s", "python", "n = 0\n")
        with pytest.raises(ScriptTimeoutError):
            m.evaluate("python", "while True:\n    n += 1", script="s")
        assert m.evaluate("python", "n > 0", script="s") is True


# -- reload that keeps state ------------------------------------------------------------
COUNTER_V1 = """
import kryon
count = None
names = ["a"]
def bump():
    global count
    count = (count or 0) + 1
    return count
"""


def test_reload_carries_data_the_new_version_leaves_undefined(m: ScriptManager) -> None:
    m.load_script_from_source("c", "python", COUNTER_V1)
    m.call_function("c.bump")
    m.call_function("c.bump")
    m.hot_reload_script("c", COUNTER_V1.replace("+ 1", "+ 10") + "names = ['fresh']\nhelper = lambda: 1\n")
    assert m.call_function("c.bump") == 12, "count (None in the new version) carried over"
    assert m.evaluate("python", "names", script="c") == ["fresh"], "data the new version defines is its own"


def test_reload_hook_gets_the_old_state_and_returns_the_new(m: ScriptManager) -> None:
    m.load_script_from_source("c", "python", COUNTER_V1 + "table = {'k': (1, 2)}\nclass Thing: pass\nobj = Thing()\n")
    m.call_function("c.bump")
    m.hot_reload_script(
        "c",
        COUNTER_V1
        + "received = None\n"
        + "def on_reload(old):\n"
        + "    global received\n"
        + "    received = sorted(old)\n"
        + "    old['names'].append('mutated')\n"
        + "    return {'count': old['count'] * 100, 'table': old['table']}\n",
    )
    received = m.evaluate("python", "received", script="c")
    assert received == ["count", "names", "table"], "plain data only: no functions, classes, objects or modules"
    assert m.call_function("c.bump") == 101
    assert m.evaluate("python", "table", script="c") == {"k": [1, 2]}


def test_reload_hook_may_set_the_state_itself(m: ScriptManager) -> None:
    m.load_script_from_source("c", "python", COUNTER_V1)
    m.call_function("c.bump")
    m.hot_reload_script("c", COUNTER_V1 + "def on_reload(old):\n    global count\n    count = old['count'] + 41\n")
    assert m.call_function("c.bump") == 43


@pytest.mark.parametrize(
    "hook",
    ["def on_reload(old):\n    raise ValueError('hook broke')\n", "def on_reload(old):\n    return [1, 2]\n"],
    ids=["raises", "returns a list"],
)
def test_a_failing_reload_hook_leaves_the_old_version_running(m: ScriptManager, hook: str) -> None:
    doc = m.setup_dom_bridge(Document())
    doc.append_child(doc.root, doc.create_element("button", {"id": "b"}))
    listening = COUNTER_V1 + "kryon.add_event_listener(kryon.get_element_by_id('b'), 'click', lambda e: bump())\n"
    m.load_script_from_source("c", "python", listening)
    doc.click("b")
    with pytest.raises(ScriptRuntimeError) as info:
        m.hot_reload_script("c", listening.replace("+ 1", "+ 1000") + hook)
    assert info.value.script == "c"
    assert doc.callback_counts()["listeners"] == 1, "the new version's listener was taken back"
    doc.click("b")
    assert m.call_function("c.bump") == 3, "the old version kept its state and its listener"


def test_sandboxed_reload_starts_over() -> None:
    with ScriptManager(cache=False, output=lambda lang, text: None) as m:
        m.load_script_from_source("c", "python", COUNTER_V1)
        m.call_function("c.bump")
        m.hot_reload_script("c", COUNTER_V1 + "def on_reload(old):\n    raise ValueError('never called')\n")
        assert m.call_function("c.bump") == 1  # documented: the worker protocol cannot hand state over yet


# -- policies in-process code cannot keep -------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "limit"),
    [
        ({"memory_limit": 50 * 1024 * 1024}, "memory_limit"),
        ({"allow_file_system": False}, "allow_file_system"),
        ({"allow_network": False}, "allow_network"),
        ({"allow_processes": False}, "allow_processes"),
    ],
)
def test_trusted_policy_with_a_limit_in_process_code_cannot_keep_is_refused(overrides: dict, limit: str) -> None:
    policy = SecurityPolicy.trusted(**overrides)
    with ScriptManager(policy=SecurityPolicy.trusted(), cache=False) as m:
        m.load_script_from_source("bystander", "python", "def f(): return 1\n")
        with pytest.raises(UnsupportedPolicyError) as info:
            m.load_script_from_source("hog", "python", "data = 'x' * (200 * 1024 * 1024)\n", policy=policy)
        err = info.value
        assert err.limit == limit and err.language == "python"
        assert limit in err.message and "python" in err.message and "sandboxed" in err.message
        assert "hog" not in m.scripts and m.call_function("bystander.f") == 1
    with pytest.raises(UnsupportedPolicyError):  # as the manager's default, when the engine starts
        ScriptManager(policy=policy, cache=False).engine("python")


def test_withheld_grants_are_kept_while_imports_are_withheld() -> None:
    policy = SecurityPolicy.trusted(allow_imports=False, allow_file_system=False, allow_network=False,
                                    allow_processes=False, allowed_modules={"math"})
    with ScriptManager(policy=policy, cache=False) as m:
        m.load_script_from_source("s", "python", "import math\ndef read():\n    return open('/etc/hostname').read()\n")
        with pytest.raises(AccessDeniedError):
            m.call_function("s.read")
        for module in ("socket", "subprocess", "os"):
            with pytest.raises(AccessDeniedError):
                m.evaluate("python", f"import {module}", script="s")


def test_a_sandboxed_memory_limit_is_kept_by_the_worker() -> None:
    policy = SecurityPolicy.sandboxed(memory_limit=64 * 1024 * 1024, time_limit=20)
    with ScriptManager(policy=policy, cache=False, output=lambda lang, text: None) as m:
        m.load_script_from_source("hog", "python", "def grow():\n    return len('x' * (200 * 1024 * 1024))\n")
        with pytest.raises(MemoryLimitError):
            m.call_function("hog.grow")


# -- max_recursion and max_value_size, kept in-process ---------------------------------------------
DEEP = """
def dive(n):
    return dive(n + 1) + 1
def depth(n):
    return 0 if n == 0 else depth(n - 1) + 1
def stubborn(n):
    try:
        return stubborn(n + 1)
    except Exception:
        return "swallowed"
"""


def test_trusted_max_recursion_is_kept_per_script() -> None:
    with ScriptManager(policy=SecurityPolicy.trusted(), cache=False) as m:
        m.load_script_from_source("deep", "python", DEEP, policy=SecurityPolicy.trusted(max_recursion=50))
        m.load_script_from_source("free", "python", DEEP)
        for name in ("dive", "stubborn"):
            with pytest.raises(RecursionLimitError) as info:
                m.call_function(f"deep.{name}", [0])
            assert "max_recursion (50)" in info.value.message and info.value.script == "deep"
        assert m.call_function("deep.depth", [45]) == 45, "calls within the limit run"
        assert m.call_function("free.depth", [300]) == 300, "another script keeps its own (no) limit"
        with pytest.raises(RecursionLimitError):  # Python's own limit still stops the unlimited one
            m.call_function("free.dive", [0])
        assert m.call_function("deep.depth", [10]) == 10, "the engine works after the limit was hit"
        assert sys.gettrace() is None


def test_trusted_max_value_size_is_kept_both_ways() -> None:
    policy = SecurityPolicy.trusted(max_value_size=1000)
    with ScriptManager(policy=policy, cache=False) as m:
        doc = m.setup_dom_bridge(Document())
        m.load_script_from_source(
            "v", "python",
            "import kryon\ndef echo(x): return x\ndef big(): return 'y' * 2000\n"
            "def store(x): kryon.set_variable('k', x)\ndef load(): return len(kryon.get_variable('k'))\n",
        )
        for call, args in (("v.echo", ["y" * 2000]), ("v.echo", [list(range(2000))]), ("v.big", []),
                           ("v.store", ["z" * 1001])):
            with pytest.raises(SizeLimitError) as info:
                m.call_function(call, args)
            assert info.value.language == "python"
        doc.set_variable("k", "w" * 5000)
        with pytest.raises(SizeLimitError):  # a host result crossing into the script
            m.call_function("v.load")
        assert m.call_function("v.echo", ["y" * 900]) == "y" * 900


# -- imports of files beside the script -----------------------------------------------------------
def test_relative_imports_resolve_beside_the_script_inside_its_root(tmp_path) -> None:
    app = tmp_path / "app"
    (app / "sub").mkdir(parents=True)
    (app / "helpers.py").write_text("import kryon\nSCALE = 3\ndef scale(x):\n    return x * SCALE\n")
    (app / "sub" / "__init__.py").write_text("")
    (app / "sub" / "deep.py").write_text("from ..helpers import scale\ndef nine():\n    return scale(3)\n")
    (app / "main.py").write_text(
        "from . import helpers\nfrom .helpers import scale\nfrom .sub.deep import nine\n"
        "def run(x):\n    return helpers.scale(x) + scale(1) + nine()\n"
    )
    (tmp_path / "secret.py").write_text("SECRET = 'outside the root'\n")
    (app / "leak.py").symlink_to(tmp_path / "secret.py")
    with ScriptManager(policy=SecurityPolicy.trusted(), cache=False) as m:
        m.load_script_file(app / "main.py")
        assert m.call_function("main.run", [2]) == 6 + 3 + 9
        with pytest.raises(AccessDeniedError, match="outside"):
            m.evaluate("python", "from . import leak", script="main")
        with pytest.raises(ScriptRuntimeError, match="no module 'missing'"):
            m.evaluate("python", "from . import missing", script="main")
        m.load_script_from_source("nofile", "python", "def f():\n    from . import helpers\n")
        with pytest.raises(ScriptRuntimeError, match="nofile"):
            m.call_function("nofile.f")
        package = m.engine("python").local.script("main").package
        assert package in sys.modules
        m.unload_script("main")
        assert not [name for name in sys.modules if name.startswith(package)], "the script's modules go with it"


def test_imported_files_run_under_the_scripts_policy(tmp_path) -> None:
    (tmp_path / "sneaky.py").write_text("import os\n")
    (tmp_path / "main.py").write_text("def go():\n    from . import sneaky\n")
    policy = SecurityPolicy.trusted(allow_imports=False)
    with ScriptManager(policy=policy, cache=False) as m:
        m.load_script_file(tmp_path / "main.py")
        with pytest.raises(AccessDeniedError, match="os"):
            m.call_function("main.go")


# -- a script run as the program ------------------------------------------------------------------
def test_a_script_run_as_the_program_sees_main(m: ScriptManager) -> None:
    source = "ran = []\nif __name__ == '__main__':\n    ran.append('main')\ndef name():\n    return __name__\n"
    m.engine("python").config.options["main"] = "prog"
    m.load_script_from_source("prog", "python", source)
    m.load_script_from_source("lib", "python", source)
    assert m.call_function("prog.name") == "__main__" and m.evaluate("python", "ran", script="prog") == ["main"]
    assert m.call_function("lib.name") == "lib" and m.evaluate("python", "ran", script="lib") == []
    assert sys.modules["__main__"].__name__ == "__main__" and "ran" not in vars(sys.modules["__main__"])


# -- each script speaks for itself -------------------------------------------------------------------
def test_each_trusted_script_has_its_own_kryon(m: ScriptManager) -> None:
    m.load_script_from_source("a", "python", "import kryon\nkryon.expose('f')\ndef f(): return kryon\n")
    m.load_script_from_source("b", "python", "import kryon\ndef f(): return kryon\n")
    engine = m.engine("python")
    a, b = (engine.local.script(s).builtins["__import__"]("kryon") for s in ("a", "b"))
    assert a is not b
    assert "get_element_by_id" in dir(a) and "ScriptError" in dir(a)
    assert "get_element_by_id" not in vars(a) and "expose" in vars(a), "API functions are made on first use"
    with pytest.raises(ScriptRuntimeError, match=r"kryon.set_property\(\) takes 3 arguments, got 1"):
        m.evaluate("python", "kryon.set_property(1)", script="a")


SANDBOXED_PROBE = """
import kryon
def by_name(name):
    return kryon.call(name, 1)
def via_ref(name):
    return kryon.call(name)(1)
def shared():
    return kryon.get_shared("app-data")
def listen():
    kryon.add_event_listener(kryon.get_element_by_id("b"), "click", lambda event: kryon.set_variable("got", event["data"]))
"""


def test_a_sandboxed_script_reaches_trusted_functions_only_when_exposed() -> None:
    with ScriptManager(policy=SecurityPolicy.trusted(), cache=False, output=lambda lang, text: None) as m:
        doc = m.setup_dom_bridge(Document())
        doc.append_child(doc.root, doc.create_element("button", {"id": "b"}))
        m.load_script_from_source(
            "app", "python",
            "import kryon\ndef secret(x): return x + 100\ndef handout(): return secret\n"
            "kryon.create_shared('app-data', {'f': secret})\n"
            "def fire(): kryon.emit_custom_event(kryon.get_element_by_id('b'), 'click', secret)\n",
        )
        m.load_script_from_source("plug", "python", SANDBOXED_PROBE, policy=SecurityPolicy.sandboxed())
        m.call_function("plug.listen")
        for call, args in (("plug.by_name", ["app.secret"]), ("plug.by_name", ["secret"]),
                           ("plug.via_ref", ["app.handout"]), ("plug.shared", [])):
            with pytest.raises(AccessDeniedError):
                m.call_function(call, args)
        m.call_function("app.fire")
        assert doc.get_variable("got") is None, "a DOM event handed the sandboxed script a trusted function"
        m.expose("app.secret", to=["plug"])
        m.expose("app.handout", to=["plug"])
        assert m.call_function("plug.by_name", ["app.secret"]) == 101
        assert m.call_function("plug.via_ref", ["app.handout"]) == 101
        m.unexpose("app.secret")
        m.load_script_from_source("app2", "python", "import kryon\nkryon.expose('mine', ['plug'])\ndef mine(x): return -x\n")
        assert m.call_function("plug.by_name", ["app2.mine"]) == -1, "a script's own kryon.expose"


# -- two runtimes, two threads, calling into each other at once --------------------------------------
def test_threads_crossing_between_two_engines_do_not_deadlock(m: ScriptManager) -> None:
    m.load_script_from_source(
        "py", "python", "import kryon\ndef ping(n, wait):\n    wait()\n    return kryon.call('lsp.pong', n)\n"
        "def pong(n):\n    return n + 1\n",
    )
    m.load_script_from_source("lsp", "lisp", "(defn ping [n wait] (wait) (kryon-call \"py.pong\" n))\n(defn pong [n] (+ n 100))")
    for _ in range(5):
        both_inside = threading.Barrier(2)
        results: dict[str, Any] = {}

        def run(name: str, n: int, results: dict[str, Any] = results, both_inside: threading.Barrier = both_inside) -> None:
            results[name] = m.call_function(f"{name}.ping", [n, lambda: both_inside.wait(30)])

        run_threads([partial(run, name, n) for name, n in (("py", 1), ("lsp", 2))], timeout=60)  # fails if they deadlock
        assert results == {"py": 101, "lsp": 3}


# -- warm loads ----------------------------------------------------------------------------------------
def test_a_warm_load_never_runs_the_compiler(tmp_path, monkeypatch) -> None:
    import kryon_python.compiler

    source = "def f():\n    return 42\n"
    with ScriptManager(policy=SecurityPolicy.trusted(), cache_dir=tmp_path) as first:
        first.load_script_from_source("one", "python", source)
    compiled: list[str] = []
    real = compile

    def counting(*args: Any, **kwargs: Any) -> Any:
        compiled.append(str(args[1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(kryon_python.compiler, "compile", counting, raising=False)
    with ScriptManager(policy=SecurityPolicy.trusted(), cache_dir=tmp_path) as second:
        second.load_script_from_source("two", "python", source)  # same source, another name
        assert second.scripts["two"].compiled.from_cache and second.call_function("two.f") == 42
        assert compiled == [], "the cached bytecode was compiled again"
        with pytest.raises(ScriptRuntimeError) as info:
            second.evaluate("python", "1/0", script="two")
        assert info.value.script == "two"


def test_bound_handles_take_any_number_of_arguments(m: ScriptManager) -> None:
    m.load_script_from_source(
        "h", "python",
        "def add(a, b): return a + b\ndef none(): return 'none'\ndef opt(a, b=2): return a + b\n"
        "def many(*xs): return list(xs)\ndef pair(a, b): return (a, b)\n",
    )
    add, none, opt, many, pair = (m.function(f"h.{n}") for n in ("add", "none", "opt", "many", "pair"))
    assert add(1, 2) == 3 and none() == "none" and opt(1) == 3 and opt(1, 1) == 2 and many(1, 2, 3) == [1, 2, 3]
    assert pair(1, "x") == [1, "x"]  # a result that is not plain is converted
    for bad in ((1,), (1, 2, 3), ()):
        with pytest.raises(ScriptRuntimeError, match="TypeError"):
            add(*bad)
    with pytest.raises(ScriptRuntimeError, match="TypeError"):
        none(1)


def test_globals_come_back_as_the_host_set_them(m: ScriptManager) -> None:
    def host_function(x: int) -> int:
        return x + 1

    m.set_global("python", "callback", host_function)
    m.set_global("python", "table", {"k": [1, 2]})
    m.load_script_from_source("g", "python", "def use(x): return callback(x)\n")
    assert m.get_global("python", "callback") is host_function
    assert m.get_global("python", "table") == {"k": [1, 2]} and m.call_function("g.use", [1]) == 2
