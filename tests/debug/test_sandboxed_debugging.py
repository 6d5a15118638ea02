"""Debugging sandboxed Python and Kryon Lisp scripts inside their worker
processes: what the sandbox keeps and what happens to a worker that goes
away while its thread is stopped. (The debugger's features on sandboxed
scripts are the trusted ones' tests, run sandboxed: test_pyhost_targets.py
and test_dap_languages.py.)

- evaluation in a stopped frame is refused what the script itself is refused
  (imports, files, the interpreter's internals), with the same errors;
- the time limit keeps firing while a debugger is attached, an evaluation has
  it too, and time spent stopped is not counted;
- a worker killed or closed while stopped leaves the debugger answering and
  the host working (the next call restarts it); closing the manager lets a
  stopped thread go on first;
- a sandboxed Lisp file's macros never run in the host when its breakpoints
  are resolved;
- detaching tells every worker to stop tracing, and the hook comes off;
- stepping from Lua into a sandboxed Python function and out again;
- breakpoints in async functions and generators, which the worker drives;
- a hostile worker (arbitrary Python inside it) sending malformed debugger
  events is ignored, with or without a debugger attached.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from kryon_core import AccessDeniedError, ScriptError, ScriptManager, ScriptTimeoutError, SecurityPolicy
from kryon_core.debug import BreakpointSpec
from kryon_core.testing.debugging import DebugSession

PY = """\
def main(n):
    total = n + 1
    return total

def spin():
    i = 0
    while True:
        i = i + 1
"""

ASYNC_PY = """\
import asyncio
async def f(x):
    y = x + 1
    await asyncio.sleep(0)
    return y

def g(n):
    for i in range(n):
        yield i * 2
"""

MODEL_LUA = 'function run(x)\n  local y = kryon.call("view.render", x)\n  return y + 1\nend\n'

LISP = """\
(defn main [n]
  (setv total (+ n 1))
  total)
"""


def session(**limits: object) -> DebugSession:
    m = ScriptManager(cache=False, policy=SecurityPolicy.sandboxed(**limits))
    m.load_script_from_source("prog", "python", PY)
    m.load_script_from_source("lib", "lisp", LISP)
    return DebugSession(m)


@pytest.fixture
def s():
    session_ = session()
    yield session_
    session_.close()


def stopped_in(s: DebugSession, script: str, line: int, *args: object):
    stop = s.stop_at(script, line, f"{script}.main", *args)
    return stop, s.top(stop)


def worker_pid(s: DebugSession, language: str, script: str) -> int:
    return int(s.m.engine(language).sandboxed.runtime.worker_info(script)["pid"])


PY_ESCAPES = [
    "__import__('os')",
    "open('/etc/hostname').read()",
    "().__class__.__bases__[0].__subclasses__()",
    "import os\nos.getcwd()",
    "import sys\nsys._getframe()",
    "main.__globals__",
    "n.__class__",
    "getattr(main, '__code__')",
]


def refused_as_in_the_script(s: DebugSession, script: str, language: str, expression: str, n_plus_one: str,
                             error: type[ScriptError]) -> None:
    """Stopped on line 2 of ``script``'s ``main(1)``, the debugger's evaluation
    of ``expression`` is refused (``error``) as the script's own evaluation of
    it is, with the same class; the stop goes on answering (``n_plus_one``)."""
    stop, frame = stopped_in(s, script, 2, 1)
    try:
        with pytest.raises(error) as in_debugger:
            s.dbg.evaluate(expression, frame.id)
        assert in_debugger.value.language == language
        assert s.dbg.evaluate(n_plus_one, frame.id).value == "2"
    finally:
        s.dbg.resume(stop.thread)
    assert s.result() == 2
    with pytest.raises(error) as in_script:  # the same code in the script's own namespace
        s.m.engine(language).sandboxed.evaluate(script, expression)
    assert type(in_debugger.value) is type(in_script.value), (in_debugger.value, in_script.value)


@pytest.mark.parametrize("expression", PY_ESCAPES)
def test_python_evaluation_is_refused_what_the_script_is_refused(s, expression):
    refused_as_in_the_script(s, "prog", "python", expression, "n + 1", AccessDeniedError)


LISP_ESCAPES = [
    '(import os) (os.getcwd)',
    '(open "/etc/hostname")',
    '(. (type 1) __subclasses__)',  # refused when read, so on a name both namespaces have
    '(hy.eval (quote (do (import os) (os.getcwd))))',  # hy.eval itself is granted: what it runs is guarded
    '(__import__ "os")',
]


@pytest.mark.parametrize("expression", LISP_ESCAPES)
def test_lisp_evaluation_is_refused_what_the_script_is_refused(s, expression):
    refused_as_in_the_script(s, "lib", "lisp", expression, "(+ n 1)", ScriptError)


def test_time_spent_stopped_is_not_counted():
    s = session(time_limit=1.0)
    try:
        stop, frame = stopped_in(s, "prog", 2, 1)
        time.sleep(2.0)  # past the worker's timer and the host's deadline (1.4 s), had they run on
        assert s.dbg.evaluate("n", frame.id).value == "1"
        stop = s.step(stop, "next")
        time.sleep(1.2)
        s.dbg.resume(stop.thread)
        assert s.result() == 2
    finally:
        s.close()


def test_the_time_limit_fires_while_debugging_and_in_an_evaluation():
    s = session(time_limit=1.0)
    try:
        s.dbg.set_breakpoints("prog", [BreakpointSpec(2)])  # the worker traces: spin's frame has no breakpoint
        with pytest.raises(ScriptTimeoutError):
            s.m.call_function("prog.spin", [])
        stop, frame = stopped_in(s, "prog", 2, 5)
        cpu = time.process_time()
        with pytest.raises(ScriptTimeoutError):
            # endless, in the worker, in constant memory (a growing list meets the memory limit first on a fast machine)
            s.dbg.evaluate("sum(x for x in iter(int, 1))", frame.id)
        assert time.process_time() - cpu < 5  # the host waited without spinning
        assert s.dbg.evaluate("n * 2", frame.id).value == "10"  # still stopped, still answering
        s.dbg.resume(stop.thread)
        assert s.result() == 6
    finally:
        s.close()


def test_a_worker_killed_while_stopped_leaves_the_debugger_and_host_working(s):
    stop, frame = stopped_in(s, "prog", 2, 1)
    os.kill(worker_pid(s, "python", "prog"), signal.SIGKILL)
    time.sleep(0.2)
    with pytest.raises(ScriptError, match="worker"):
        s.dbg.evaluate("n", frame.id)
    s.stack(stop)  # answers (the dead worker's frames are gone)
    s.dbg.resume(stop.thread)
    assert isinstance(s.result(), ScriptError)
    s.run("prog.main", 3)  # the restarted worker is debugged like the first
    stop = s.stop()
    assert s.scope(s.top(stop).id)["n"].value == "3"
    s.dbg.resume(stop.thread)
    assert s.result() == 4


def test_the_runtime_closed_while_stopped(s):
    stop, frame = stopped_in(s, "lib", 2, 1)
    pid = worker_pid(s, "lisp", "lib")
    s.m.engine("lisp").sandboxed.runtime.close()  # from another thread, as the engine's close does
    with pytest.raises(ScriptError):
        s.dbg.evaluate("n", frame.id)
    s.dbg.resume(stop.thread)
    assert isinstance(s.result(), ScriptError)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert s.m.call_function("prog.main", [1]) == 2  # the other engine's worker is untouched


def test_closing_the_manager_while_stopped_lets_the_thread_go_on(s):
    stop, frame = stopped_in(s, "prog", 2, 1)
    pid = worker_pid(s, "python", "prog")
    s.m.close()  # detaches first: the stopped call finishes, then its worker closes
    assert s.result() == 2
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_sandboxed_lisp_files_macros_do_not_run_in_the_host(tmp_path: Path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.kl"
    path.write_text(
        f'(defmacro evil [] (with [f (open "{marker}" "w")] (.write f "host")) 1)\n'
        "(defn f [x]\n  (+ x (evil)))\n"
    )
    m = ScriptManager(cache=False, policy=SecurityPolicy.sandboxed())
    try:
        dbg = m.debugger()
        [bp] = dbg.set_breakpoints(str(path), [BreakpointSpec(3)])
        assert bp.verified and bp.line == 3  # found from the text, compiled nowhere
        with pytest.raises(AccessDeniedError):  # the macro runs in the worker, which refuses it
            m.load_script_file(path)
        assert not marker.exists()
    finally:
        m.close()


def test_detaching_takes_the_workers_hook_off(s):
    stop, _ = stopped_in(s, "prog", 2, 1)
    s.dbg.resume(stop.thread)
    assert s.result() == 2
    runtime = s.m.engine("python").sandboxed.runtime
    assert runtime.debug is not None
    s.dbg.detach()
    assert s.m.call_function("prog.main", [1]) == 2  # this call tells the worker: it traces no more
    assert runtime.debug is None
    assert s.stops.empty()


def test_step_from_lua_into_a_sandboxed_python_function_and_out():
    m = ScriptManager(cache=False, policy=SecurityPolicy.sandboxed())
    m.load_script_from_source("view", "python", "def render(x):\n    shown = x * 10\n    return shown\n")
    m.load_script_from_source("model", "lua", MODEL_LUA)
    s = DebugSession(m)
    try:
        stop = s.stop_at("model", 2, "model.run", 4)
        assert (s.top(stop).language, s.top(stop).line) == ("lua", 2)
        stop = s.step(stop, "stepIn")
        frames = s.stack(stop)
        assert [(f.language, f.name, f.line) for f in frames[:2]] == [("python", "render", 2), ("lua", "run", 2)]
        assert s.scope(frames[0].id)["x"].value == "4"
        assert s.scope(frames[1].id)["x"].value == "4"  # the Lua frame below answers too
        stop = s.step(stop, "stepOut")
        top = s.top(stop)
        assert (top.language, top.line) == ("lua", 3)
        assert s.scope(top.id)["y"].value == "40"
        s.dbg.resume(stop.thread)
        assert s.result() == 41
    finally:
        s.close()


def test_breakpoints_in_sandboxed_async_functions_and_generators():
    m = ScriptManager(cache=False, policy=SecurityPolicy.sandboxed())
    m.load_script_from_source("a", "python", ASYNC_PY)
    s = DebugSession(m)
    try:
        s.dbg.set_breakpoints("a", [BreakpointSpec(3), BreakpointSpec(9)])
        s.run("a.f", 1)  # the worker drives the coroutine on its own loop, traced
        stop = s.stop()
        assert (s.top(stop).name, s.top(stop).line) == ("f", 3)
        s.dbg.resume(stop.thread)
        assert s.result() == 2
        s.run("a.g", 2)  # a generator is listed in the worker, traced
        for i in range(2):
            stop = s.stop()
            assert s.scope(s.top(stop).id)["i"].value == str(i)
            s.dbg.resume(stop.thread)
        assert s.result() == [0, 2]
    finally:
        s.close()


HOSTILE_PY = """\
import sys
# arbitrary Python: the worker's own channel functions (its main module, or the fork server's copy of it)
worker = sys.modules.get("kryon_isolation_worker") or sys.modules["__main__"]

def attack():
    worker.send({"t": "dev", "d": "many"})
    worker.send({"t": "dev", "d": 10 ** 12})
    worker.host_request("dbg", {"e": "line", "s": None, "l": "x"})
    worker.host_request("dbg", {"e": "exc", "s": 5, "l": None, "m": [1]})
    worker.host_request("dbg", {"e": "nonsense", "s": "prog", "l": 1})
    return 1
"""


@pytest.mark.parametrize("attached", [False, True], ids=["no-debugger", "debugger"])
def test_a_hostile_worker_cannot_fake_debugger_traffic(attached):
    from kryon_core.isolation.testing import python_layers_off

    m = ScriptManager(cache=False, policy=SecurityPolicy.sandboxed())
    with python_layers_off():  # the script is arbitrary Python inside its worker
        m.load_script_from_source("evil", "python", HOSTILE_PY)
    s = DebugSession(m) if attached else None
    try:
        if s is not None:
            s.dbg.set_exception_breakpoints(raised=True)
        assert m.call_function("evil.attack", []) == 1  # malformed events are ignored, the worker lives on
        assert s is None or s.stops.empty()
        assert m.engine("python").sandboxed.runtime.worker_info("evil")["restarts"] == 0
    finally:
        if s is not None:
            s.close()
        else:
            m.close()
