"""Untrusted Python scripts in worker processes, through ScriptManager."""

from __future__ import annotations

import asyncio
import math
import os
import sys
from functools import partial

import pytest
from worker_support import Evaluations, evaluate_in_the_worker

from kryon_core import (
    AccessDeniedError,
    CompileError,
    ConversionError,
    Document,
    FunctionRef,
    ScriptError,
    ScriptManager,
    ScriptRuntimeError,
    ScriptTimeoutError,
    SecurityPolicy,
    SizeLimitError,
    UserData,
)
from kryon_core.testing.concurrency import run_threads

pytest.importorskip("kryon_python")
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the worker sandbox uses Linux limits")


@pytest.fixture
def m():
    out: list[str] = []
    manager = ScriptManager(cache=False, output=lambda lang, text: out.append(text))  # bare: sandboxed
    assert manager.policy.sandboxed
    manager.printed = out  # type: ignore[attr-defined]
    yield manager
    manager.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/status") as f:
            return "zombie" not in f.read()
    except OSError:
        return False


def test_dom_driven_by_a_sandboxed_script(m: ScriptManager) -> None:
    doc = m.setup_dom_bridge(Document())
    box = doc.create_element("div", {"id": "box", "width": 0})
    doc.append_child(doc.root, box)
    doc.append_child(doc.root, doc.create_element("button", {"id": "go"}))
    m.load_script_from_source(
        "ui",
        "python",
        """\
import kryon
clicks = []
def on_click(event):
    clicks.append(event["type"])
    box = kryon.get_element_by_id("box")
    kryon.add_class(box, "busy")
    kryon.animate(box, {"property": "width", "to": 100, "duration": 200, "on_complete": done})
def done(element):
    kryon.remove_class(element, "busy")
    kryon.set_variable("done", len(clicks))
def on_change(new, old, name):
    kryon.set_property("box", "label", "%s: %s -> %s" % (name, old, new))
kryon.add_event_listener(kryon.get_element_by_id("go"), "click", on_click)
kryon.watch_variable("mode", on_change)
ticks = kryon.set_interval(lambda: kryon.set_variable("ticks", (kryon.get_variable("ticks") or 0) + 1), 50)
""",
    )
    doc.click("go")
    assert doc.has_class("box", "busy")
    doc.advance(100)
    assert 0 < doc.get_property("box", "width") < 100
    doc.advance(150)
    assert doc.get_property("box", "width") == 100 and not doc.has_class("box", "busy")
    assert doc.get_variable("done") == 1 and doc.get_variable("ticks") == 5
    doc.set_variable("mode", "dark")
    assert doc.get_property("box", "label") == "mode: None -> dark"
    assert not doc.errors, doc.errors
    m.unload_script("ui")
    assert doc.callback_counts() == {"listeners": 0, "watchers": 0, "timers": 0, "animations": 0}


def test_reentrant_calls_between_workers_and_host(m: ScriptManager) -> None:
    m.load_script_from_source(
        "a",
        "python",
        "import kryon\ndepth = 0\ndef ping(n):\n    if n == 0:\n        return 'a'\n    return 'a' + kryon.call('b.pong', n - 1)\n"
        "def inner(x): return x + 1\ndef outer(x): return kryon.call('a.inner', x) * 10\n",
    )
    m.load_script_from_source(
        "b", "python", "import kryon\ndef pong(n):\n    if n == 0:\n        return 'b'\n    return 'b' + kryon.call('a.ping', n - 1)\n"
    )
    assert m.call_function("a.ping", [5]) == "ababab"
    assert m.call_function("a.outer", [1]) == 20  # the worker is called again while it waits on the host


def test_host_callbacks_and_function_handles(m: ScriptManager) -> None:
    m.load_script_from_source(
        "f",
        "python",
        "def apply(f, *args): return f(*args)\ndef adder(n): return lambda x: x + n\ndef keep(f):\n    global kept\n    kept = f\n"
        "def use(x): return kept(x)\n",
    )
    seen = []
    assert m.call_function("apply", [lambda *a: seen.append(a) or sum(a), 1, 2, 3]) == 6
    assert seen == [(1, 2, 3)]
    add5 = m.call_function("adder", [5])
    assert isinstance(add5, FunctionRef) and add5.script == "f" and add5(1) == 6
    assert m.call_function("apply", [add5, 10]) == 15  # its own function comes back as itself
    m.call_function("keep", [add5])
    assert m.call_function("use", [1]) == 6
    add5.release()
    with pytest.raises(ScriptError):
        add5(1)


def test_values_cross_by_serialization(m: ScriptManager) -> None:
    m.load_script_from_source(
        "v",
        "python",
        "def echo(x): return x\ndef kinds(x): return type(x).__name__\ndef aset(): return {1, 2}\n"
        "def tup(): return (1, (2,))\ndef keys(): return {1: 'one'}\ndef obj():\n    class T: pass\n    return T()\n",
    )
    token = UserData(object())
    for value in (None, True, 0, -1, 2**80, 1.5, -0.0, "ü𝄞", b"\x00\xff", [1, [2, {"a": None}]],
                  {"\x00": "tag key", "x": b"y"}, {"n": math.inf}):
        assert m.call_function("echo", [value]) == value
    assert math.isnan(m.call_function("echo", [math.nan]))
    assert math.copysign(1, m.call_function("echo", [-0.0])) == -1
    assert m.call_function("echo", [token]) is token
    assert m.call_function("echo", [[token, {"t": token}]])[1]["t"] is token
    assert m.call_function("kinds", [1]) == "int" and m.call_function("kinds", [1.0]) == "float"
    assert m.call_function("tup") == [1, [2]]
    assert m.call_function("keys") == {"1": "one"}
    for bad in ("aset", "obj"):
        with pytest.raises(ConversionError):
            m.call_function(bad)
    cyclic: list = []
    cyclic.append(cyclic)
    with pytest.raises(ConversionError):
        m.call_function("echo", [cyclic])
    with pytest.raises(ConversionError):
        m.call_function("echo", [{(1, 2): "tuple key"}])


def test_value_size_limit() -> None:
    m = ScriptManager(policy=SecurityPolicy.sandboxed(max_value_size=1000), cache=False)
    m.load_script_from_source("v", "python", "def make(n): return 'x' * n\ndef echo(x): return x\n")
    assert len(m.call_function("make", [1000])) == 1000
    with pytest.raises(SizeLimitError):
        m.call_function("make", [1001])
    with pytest.raises(SizeLimitError):
        m.call_function("echo", ["y" * 1001])
    m.close()


def test_soft_timeout_keeps_the_worker_and_its_state() -> None:
    m = ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=0.6), cache=False)
    m.load_script_from_source("s", "python",
                              "n = 0\ndef inc():\n    global n\n    n += 1\n    return n\ndef spin():\n    while True:\n        pass\n")
    assert m.call_function("inc") == 1
    with pytest.raises(ScriptTimeoutError) as info:
        m.call_function("spin")
    assert info.value.line in (7, 8) and info.value.script == "s"
    assert m.call_function("inc") == 2, "an interrupted call leaves the worker and its state alive"
    assert m.engine("python").runtime.worker_info("s")["restarts"] == 0
    m.close()


def test_time_limit_does_not_count_between_calls() -> None:
    m = ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=0.5), cache=False)
    m.load_script_from_source("s", "python", "import time\ndef nap(): time.sleep(0.2)\n")
    for _ in range(4):  # 0.8 s in all, each call well within its limit
        m.call_function("nap")
    m.close()


def test_async_in_the_sandbox(m: ScriptManager) -> None:
    m.load_script_from_source(
        "aio", "python", "import kryon\nasync def twice(x):\n    return x * 2\ndef plain(x): return x + 1\n"
    )

    async def main():
        return await asyncio.gather(m.call_function_async("twice", [21]), m.call_function_async("plain", [1]))

    assert asyncio.run(main()) == [42, 2]
    assert m.functions()["aio.twice"].is_async


def test_generators_in_the_sandbox(m: ScriptManager) -> None:
    m.load_script_from_source("gen", "python", "def count(n):\n    for i in range(n):\n        yield i\n")
    assert m.functions()["gen.count"].is_generator
    assert m.call_function("count", [3]) == [0, 1, 2]


def test_breakpoints_and_stacks_in_the_sandbox(m: ScriptManager) -> None:
    m.load_script_from_source("bp", "python", "def add(a, b):\n    total = a + b\n    return total\ndef via(f): return f(1)\n")
    engine = m.engine("python")
    hits = []
    engine.set_breakpoint_handler(hits.append)
    bid = engine.set_breakpoint("bp", 3)
    assert m.call_function("add", [2, 3]) == 5
    assert hits and hits[0].line == 3 and hits[0].locals == {"a": 2, "b": 3, "total": 5}
    engine.remove_breakpoint(bid)
    stacks = []
    m.call_function("via", [lambda x: stacks.append(engine.get_stack_trace())])
    assert [(f.function, f.script, f.line) for f in stacks[0]] == [("via", "bp", 4)]


def test_runtime_error_stack(m: ScriptManager) -> None:
    m.load_script_from_source("e", "python", "def inner():\n    raise KeyError('k')\ndef outer():\n    return inner()\n")
    with pytest.raises(ScriptRuntimeError) as info:
        m.call_function("outer")
    assert [(f.function, f.line) for f in info.value.stack] == [("inner", 2), ("outer", 4)]
    assert info.value.line == 2 and "KeyError" in str(info.value)


def test_top_level_errors_carry_the_line_and_stack(m: ScriptManager) -> None:
    with pytest.raises(ScriptRuntimeError) as info:
        m.load_script_from_source("top", "python", "x = 1\ny = 2\nraise ValueError('top')\n")
    err = info.value
    assert (err.script, err.line) == ("top", 3) and "ValueError: top" in err.message
    assert [(f.function, f.script, f.line) for f in err.stack] == [("<module>", "top", 3)]
    with pytest.raises(ScriptRuntimeError) as info:
        m.load_script_from_source("inner", "python", "def f():\n    return 1/0\nf()\n")
    assert info.value.line == 2
    assert [(f.function, f.line) for f in info.value.stack] == [("f", 2), ("<module>", 3)]
    with pytest.raises(AccessDeniedError) as info:
        m.load_script_from_source("imp", "python", "x = 1\nimport os\n")
    assert (info.value.script, info.value.line) == ("imp", 2)
    with pytest.raises(CompileError) as info:
        m.load_script_from_source("syn", "python", "x = 1\ny = (\n")
    assert (info.value.line, info.value.column) == (2, 5)
    assert not m.scripts


def test_top_level_time_limit_names_the_line() -> None:
    with ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=0.3), cache=False) as m:
        with pytest.raises(ScriptTimeoutError) as info:
            m.load_script_from_source("spin", "python", "x = 1\nwhile True:\n    x += 1\n")
        assert info.value.script == "spin" and info.value.line in (2, 3)
        assert info.value.stack and info.value.stack[0].function == "<module>"


def test_failed_reload_keeps_the_old_worker(m: ScriptManager) -> None:
    m.load_script_from_source("c", "python", "n = 0\ndef inc():\n    global n\n    n += 1\n    return n\n")
    m.call_function("inc")
    pid = m.engine("python").runtime.worker_info("c")["pid"]
    with pytest.raises(ScriptRuntimeError) as info:
        m.hot_reload_script("c", "n = 10\nraise RuntimeError('no')\n")
    assert (info.value.script, info.value.line) == ("c", 2)
    assert m.call_function("inc") == 2
    assert m.engine("python").runtime.worker_info("c")["pid"] == pid
    m.hot_reload_script("c", "def inc(): return 'v2'\n")
    assert m.call_function("inc") == "v2"
    assert not _pid_alive(pid), "the old worker ended"


def test_unload_and_close_end_the_workers(m: ScriptManager) -> None:
    m.load_script_from_source("one", "python", "def f(): return 1\n")
    m.load_script_from_source("two", "python", "def f(): return 2\n")
    rt = m.engine("python").runtime
    pid1, pid2 = rt.worker_info("one")["pid"], rt.worker_info("two")["pid"]
    assert pid1 != pid2, "one worker per script"
    m.unload_script("one")
    assert not _pid_alive(pid1) and _pid_alive(pid2)
    m.close()
    assert not _pid_alive(pid2)


def test_memory_figures_are_worker_rss(m: ScriptManager) -> None:
    m.load_script_from_source("mem", "python", "data = []\ndef grow(n):\n    data.append('x' * n)\n")
    engine = m.engine("python")
    before = engine.get_memory_usage()
    assert before.used_bytes > 1_000_000 and before.limit == m.policy.memory_limit and before.scripts == 1
    m.call_function("grow", [20_000_000])
    assert engine.get_memory_usage().used_bytes - before.used_bytes > 15_000_000
    stats = engine.collect_garbage()
    assert stats.bytes_before > 0 and stats.objects_freed is not None


def test_trusted_and_sandboxed_side_by_side(m: ScriptManager) -> None:
    m.load_script_from_source("app", "python", "import os\ndef cwd(): return os.getcwd()\n", policy=SecurityPolicy.trusted())
    m.load_script_from_source("plugin", "python", "import kryon\ndef ask(): return kryon.call('app.cwd')\n")
    with pytest.raises(AccessDeniedError, match="must expose it"):
        m.call_function("plugin.ask")  # a sandboxed script never borrows a trusted one's grants
    m.expose("app.cwd", to=["plugin"])
    assert m.call_function("plugin.ask") == os.getcwd()
    engine = m.engine("python")
    assert not engine.is_sandboxed("app") and engine.is_sandboxed("plugin")


def test_output_and_globals(m: ScriptManager) -> None:
    m.load_script_from_source(
        "o", "python", "print('hello', 'sandbox')\ndef cfg():\n    print('no newline', end='')\n    return config['theme']\n"
    )
    m.set_global("python", "config", {"theme": "dark"})
    assert m.call_function("cfg") == "dark"
    assert m.printed == ["hello sandbox", "no newline"]  # type: ignore[attr-defined]


def test_plugin_functions_reach_the_sandbox() -> None:
    from kryon_core import hookimpl

    class Plugin:
        @hookimpl
        def kryon_setup_bridge(self, bridge, language):
            bridge.add_function("double", lambda x: x * 2)

    m = ScriptManager(cache=False, plugins=[Plugin()])
    m.load_script_from_source("p", "python", "import kryon\ndef go(): return kryon.double(21)\n")
    assert m.call_function("go") == 42
    m.close()


@pytest.fixture
def shared_dir():
    """A directory any user may read: a granted file system is reached with
    the worker's own (never root) permissions, and pytest's tmp_path lies
    under a directory only its owner may enter."""
    import shutil
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp(prefix="kryon-test-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_grants_open_what_they_name(shared_dir) -> None:
    data = shared_dir / "data.txt"
    data.write_text("granted")
    listener = __import__("socket").socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(5)
    port = listener.getsockname()[1]
    policy = SecurityPolicy.sandboxed(allow_file_system=True, allow_network=True, allowed_modules={"socket"})
    m = ScriptManager(policy=policy, cache=False)
    m.load_script_from_source(
        "g",
        "python",
        f"import socket\ndef read():\n    with open({str(data)!r}) as f:\n        return f.read()\n"
        f"def connect():\n    s = socket.create_connection(('127.0.0.1', {port}), timeout=5)\n"
        "    s.sendall(b'hi')\n    s.close()\n    return True\n",
    )
    try:
        assert m.call_function("read") == "granted"
        assert m.call_function("connect") is True
        conn, _ = listener.accept()
        assert conn.recv(2) == b"hi"
        conn.close()
        with pytest.raises(ScriptError):  # processes stay forbidden: os is not granted
            m.load_script_from_source("p", "python", "import os\n")
    finally:
        listener.close()
        m.close()


def test_source_size_limit() -> None:
    m = ScriptManager(policy=SecurityPolicy.sandboxed(max_source_size=100), cache=False)
    with pytest.raises(SizeLimitError):
        m.load_script_from_source("big", "python", "x = 1\n" * 50)
    m.close()


def test_calls_from_several_threads(m: ScriptManager) -> None:
    import threading

    m.load_script_from_source("t", "python", "import kryon\ndef sq(x): return x * x\ndef via(x): return kryon.call('t.sq', x)\n")
    results: list[int] = []
    lock = threading.Lock()

    def worker(base: int) -> None:
        for i in range(30):
            value = m.call_function("t.via" if i % 2 else "t.sq", [base + i])
            with lock:
                results.append(value)

    run_threads([partial(worker, k * 100) for k in range(4)])
    assert sorted(results) == sorted((k * 100 + i) ** 2 for k in range(4) for i in range(30))


def test_callbacks_fired_during_the_top_level(m: ScriptManager) -> None:
    """A listener, watcher or host callback registered by a script's top level
    and fired before that top level ends reaches the worker being loaded."""
    doc = m.setup_dom_bridge(Document())
    doc.append_child(doc.root, doc.create_element("div", {"id": "box"}))
    m.load_script_from_source("early_helper", "python", "def apply(f, x):\n    return f(x)\n")
    m.load_script_from_source(
        "early",
        "python",
        """\
import kryon
seen = []
def on_ping(event):
    seen.append(event["type"])
box = kryon.get_element_by_id("box")
kryon.add_event_listener(box, "ping", on_ping)
kryon.watch_variable("mode", lambda new, old, name: seen.append(new))
kryon.emit_custom_event(box, "ping", {"n": 1})
kryon.set_variable("mode", "early")
seen.append(kryon.call("early_helper.apply", lambda x: x + 1, 41))
def events():
    return seen
""",
    )
    assert m.call_function("early.events") == ["ping", "early", 42]
    assert not doc.errors, doc.errors
    doc.emit_custom_event("box", "ping")  # and the listener keeps working afterwards
    assert m.call_function("early.events") == ["ping", "early", 42, "ping"]


def test_a_replacement_worker_outlives_the_thread_that_started_it() -> None:
    """PR_SET_PDEATHSIG follows the thread that forked a worker: workers are
    started from one long-lived thread, so a worker restarted during a call
    made on a short-lived thread keeps running after that thread ends."""
    import threading

    m = ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=0.5), cache=False)
    m.load_script_from_source(
        "s", "python", "n = 0\ndef inc():\n    global n\n    n += 1\n    return n\ndef hang():\n    return sum(range(10**12))\n"
    )
    assert m.call_function("s.inc") == 1
    errors: list[BaseException] = []

    def short_lived() -> None:
        try:
            m.call_function("s.hang")  # killed past its deadline; the replacement is started here
        except BaseException as exc:
            errors.append(exc)

    for _ in range(2):
        t = threading.Thread(target=short_lived)
        t.start()
        t.join()
        assert errors and isinstance(errors[-1], ScriptTimeoutError)
        pid = m.engine("python").runtime.worker_info("s")["pid"]
        assert _pid_alive(pid), "the replacement died with the thread that started it"
        assert m.call_function("s.inc") == 1, "the replacement serves calls (its script reloaded)"
    assert m.engine("python").runtime.worker_info("s")["restarts"] == 2
    m.close()


@pytest.mark.parametrize("layers", [True, False], ids=["python layers on", "python layers off"])
def test_the_process_grant_runs_programs_still_confined(layers: bool, shared_dir) -> None:
    """allow_processes: programs run (as nobody), and they inherit the
    confinement: no file outside the grants, no writes."""
    from kryon_core.isolation.testing import python_layers_off

    os.chmod(shared_dir, 0o777)
    policy = SecurityPolicy.sandboxed(allow_processes=True, allowed_modules={"subprocess"})
    m = ScriptManager(policy=policy, cache=False)
    source = (
        "import subprocess\ndef run(*argv):\n    r = subprocess.run(list(argv), capture_output=True)\n"
        "    return [r.returncode, r.stdout.decode(), r.stderr.decode()]\n"
    )
    if layers:
        m.load_script_from_source("p", "python", source)
    else:
        with python_layers_off():
            m.load_script_from_source("p", "python", source)
    assert m.call_function("p.run", ["/bin/echo", "hello"])[:2] == [0, "hello\n"]
    assert m.call_function("p.run", ["/bin/sh", "-c", "id -u"])[1].strip() != "0"
    code, out, _ = m.call_function("p.run", ["/bin/sh", "-c", "cat /etc/passwd"])
    assert code != 0 and "root:" not in out
    code, _, _ = m.call_function("p.run", ["/bin/sh", "-c", f"touch {shared_dir}/child-wrote"])
    assert code != 0 and not (shared_dir / "child-wrote").exists()
    m.close()


@pytest.mark.parametrize("layers", [True, False], ids=["python layers on", "python layers off"])
def test_a_granted_package_loads_its_submodules_later(layers: bool) -> None:
    """allowed_modules names a package: it is imported before sealing and its
    directory stays readable, so a submodule imported later loads."""
    from kryon_core.isolation.testing import python_layers_off

    m = ScriptManager(policy=SecurityPolicy.sandboxed(allowed_modules={"xml"}), cache=False)
    source = (
        "def build(tag):\n    import xml.etree.ElementTree as ET\n    return ET.tostring(ET.Element(tag)).decode()\n"
        "def outside():\n    return open('/etc/hostname').read()\n"
    )
    if layers:
        m.load_script_from_source("x", "python", source)
    else:
        with python_layers_off():
            m.load_script_from_source("x", "python", source)
    # the package's own optional C accelerator (_elementtree) is not granted: it falls back to Python
    assert m.call_function("x.build", ["root"]) == "<root />"
    with pytest.raises(ScriptError):
        m.call_function("x.outside")
    h = m.engine("python").runtime.worker_info("x")["hardening"]
    assert "1 read-only path" in h["landlock"] and h["nofile"] > 0
    m.close()


def test_evaluate_runs_in_the_worker_under_the_script_limits_and_guards() -> None:
    """``evaluate`` on a sandboxed script runs in its worker: its namespace,
    its time limit, the guard and the curated builtins, and the host's state
    is not reachable."""
    m = ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=0.5), cache=False)
    try:
        evaluate_in_the_worker(m, Evaluations(
            language="python",
            script="n = 40\ndef get():\n    return n\n",
            plus_two="n + 2",
            redefine="n = 1\ndef twice(x):\n    return 2 * x",
            denied="import os\nos.getpid()",
            raises="y = 2\nraise ValueError('no')",
            broken="def (:",
            endless="while True:\n    pass",
            n="n",
        ))
        assert m.evaluate("python", "n = 1", script="ev") is None, "a statement's value is None"
        with pytest.raises(AccessDeniedError) as denied:
            m.evaluate("python", "x = 1\n().__class__.__base__", script="ev")
        assert denied.value.line == 2 and denied.value.script == "ev"
        with pytest.raises(AccessDeniedError):
            m.evaluate("python", "open('/etc/hostname').read()", script="ev")
        with pytest.raises(ScriptRuntimeError, match="ValueError"):
            m.evaluate("python", "raise ValueError('no')", script="ev")
        assert m.evaluate("python", "[1, {'a': b'x'}]", script="ev") == [1, {"a": b"x"}]
    finally:
        m.close()


@pytest.mark.parametrize("kind", ["list", "dict"])
def test_deep_values_cross_or_are_refused_in_both_directions(kind: str) -> None:
    """Values nested up to the protocol's depth cross both ways (the worker's
    parser gets room past the script's recursion limit); deeper ones are a
    ConversionError on whichever side made them; the worker keeps its state."""
    from kryon_core.isolation.protocol import MAX_DEPTH

    m = ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=5), cache=False)
    try:
        m.load_script_from_source(
            "d",
            "python",
            f"""\
import kryon
n = 0
def echo(x):
    global n
    n += 1
    return x
def make(depth):
    v = "bottom"
    for _ in range(depth):
        v = [v] if {kind!r} == "list" else {{"k": v}}
    return v
def relay(depth):
    return kryon.call("host_echo.echo", make(depth))
def count():
    return n
""",
        )
        m.load_script_from_source("host_echo", "python", "def echo(x): return x", policy=SecurityPolicy.trusted())
        m.expose("host_echo.echo")

        def nest(depth: int) -> object:
            v: object = "bottom"
            for _ in range(depth):
                v = [v] if kind == "list" else {"k": v}
            return v

        assert m.call_function("d.make", [MAX_DEPTH - 1]) == nest(MAX_DEPTH - 1)
        assert m.call_function("d.relay", [MAX_DEPTH - 1]) == nest(MAX_DEPTH - 1)
        for depth in (MAX_DEPTH + 1, 5000):
            with pytest.raises(ConversionError):
                m.call_function("d.echo", [nest(depth)])
            with pytest.raises(ConversionError):
                m.call_function("d.make", [depth])
            with pytest.raises(ConversionError):
                m.call_function("d.relay", [depth])
        assert m.call_function("d.count") == 0, "refused values never reached the script; the worker kept its state"
        # inside the script's own recursion the parser still has room: 150 deep calls receive a 200-deep value
        m.load_script_from_source(
            "r", "python", "import kryon\ndef down(k, v):\n    return down(k - 1, v) if k else kryon.call('host_echo.echo', v)\n"
        )
        assert m.call_function("r.down", [150, nest(MAX_DEPTH // 2)]) == nest(MAX_DEPTH // 2)
    finally:
        m.close()


def test_a_warm_load_runs_the_cached_code_in_the_worker(tmp_path) -> None:
    """A warm load hands the worker the cached code object: it checks it and
    runs it instead of compiling; a restarted worker reuses it too."""
    source = "import kryon\nn = 0\ndef bump():\n    global n\n    n += 1\n    return n\ndef fail():\n    raise ValueError('x')\n"
    with ScriptManager(cache_dir=tmp_path, policy=SecurityPolicy.sandboxed(time_limit=5)) as m:
        m.load_script_from_source("cold", "python", source)
    with ScriptManager(cache_dir=tmp_path, policy=SecurityPolicy.sandboxed(time_limit=5)) as m:  # a fresh host
        m.load_script_from_source("warm", "python", source)
        runtime = m.engine("python").runtime
        assert m.scripts["warm"].compiled.from_cache
        assert runtime.worker_info("warm")["compiled_from"] == "bytecode"
        assert m.call_function("warm.bump") == 1
        with pytest.raises(ScriptRuntimeError) as info:
            m.call_function("warm.fail")
        assert info.value.script == "warm" and info.value.line == 8, "frames name the script, not the cached name"
        os.kill(runtime.worker_info("warm")["pid"], 9)
        with pytest.raises(ScriptError):
            m.call_function("warm.bump")
        assert m.call_function("warm.bump") == 1 and runtime.worker_info("warm")["compiled_from"] == "bytecode"


def test_cached_code_the_guard_refuses_is_compiled_from_source_instead() -> None:
    """The worker checks cached code with the guard's rules: code a trusted
    compile cached for the same source is refused and the source compiled
    (and refused by the AST guard); forged or corrupt code for a source is
    never run."""
    import marshal

    from kryon_core.isolation import IsolatedRuntime

    escape = "x = ().__class__.__base__\ndef get():\n    return x\n"
    with ScriptManager(cache_dir=False) as m:  # one in-memory cache for both loads
        m.load_script_from_source("t", "python", escape, policy=SecurityPolicy.trusted())
        with pytest.raises(AccessDeniedError) as info:
            m.load_script_from_source("s", "python", escape, policy=SecurityPolicy.sandboxed(time_limit=5))
        assert info.value.line == 1 and "__base__" in info.value.message
    runtime = IsolatedRuntime("python")
    policy = SecurityPolicy.sandboxed(time_limit=5)
    try:
        forged = marshal.dumps(compile("x = ().__class__.__base__.__subclasses__()", "s", "exec"))
        for name, bytecode in (("forged", forged), ("corrupt", b"\xe3not marshal"), ("not-code", marshal.dumps([1, 2]))):
            runtime.load(name, "x = 41\ndef get():\n    return x + 1\n", policy=policy, bytecode=bytecode)
            assert runtime.worker_info(name)["compiled_from"] == "source", name
            assert runtime.call(name, "get", []) == 42, name
        honest = marshal.dumps(compile("x = 1\ndef get():\n    return x\n", "elsewhere", "exec"))
        runtime.load("honest", "x = 1\ndef get():\n    return x\n", policy=policy, bytecode=honest)
        assert runtime.worker_info("honest")["compiled_from"] == "bytecode"
    finally:
        runtime.close()


def test_the_bytecode_check_follows_the_guard() -> None:
    """guard.check_code accepts ordinary code and refuses what the AST
    guard refuses, in nested code objects too."""
    from kryon_core.isolation import guard

    accepted = [
        "x = 1\ndef f(a):\n    return a.b + len([1])",
        "class A:\n    def __init__(self):\n        self._x = 1\n    def __repr__(self):\n        return 'a'",
        "import math\nfrom math import floor",
        "def g():\n    return __name__\nassert __debug__",
    ]
    refused = [
        "().__class__", "x.__globals__", "__builtins__", "from random import _os", "def f(o):\n    return o._x",
        "def f(g):\n    return g.gi_frame", "__x__ = 1", "def outer():\n    def inner(t):\n        return t.f_back\n    return inner",
        "class A:\n    def f(self):\n        return super().f()",  # refused here, accepted from source: compiled instead
    ]
    for source in accepted:
        guard.check_code(compile(source, "s", "exec"))
    for source in refused:
        with pytest.raises(guard.GuardViolation):
            guard.check_code(compile(source, "s", "exec"))
