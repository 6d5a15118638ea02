"""The compiled trusted caller (kryon_core/_speedups.c, made by pyhost/fastcall.compiled_caller):
bound handles of trusted in-process Python and Lisp scripts call it, it takes the common case
itself and hands every other one to the Python caller it was made with. These tests check that
it is the one taking calls, that it agrees with the Python caller on results and errors (a table
of cases), and that the cases it hands over (breakpoints, entry tracking, another thread in the
gate, other argument counts, keywords) behave as without it. With KRYON_CORE_NO_CEXT=1 or no
extension they are skipped: the rest of the suite then covers the Python path alone."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from kryon_core import FunctionRef, ScriptError, ScriptManager, SecurityPolicy, speedups, threads
from kryon_core.pyhost import fastcall

pytestmark = pytest.mark.skipif(not speedups.enabled(), reason="the compiled core is not built or is turned off")

SOURCE = """\
class Odd:
    @property
    def __class__(self):
        return int

def add(a, b):
    return a + b

def none():
    return None

def flag(x):
    return not x

def half(x):
    return x / 2

def raw(b):
    return b + b"!"

def items(n):
    return list(range(n))

def mixed():
    return [1, "a", [2]]

def table(k):
    return {k: [1, 2]}

def gen(n):
    yield from range(n)

def boom(x):
    raise ValueError(f"bad {x}")

def interrupt():
    raise KeyboardInterrupt("stop")

def exit_():
    raise SystemExit(3)

def odd():
    return Odd()

def deflt(a, b=10):
    return a * b

def star(*args):
    return len(args)

def deep(n):
    return deep(n + 1)
"""

CASES: list[tuple[str, tuple[Any, ...]]] = [
    ("add", (2, 3)), ("add", ("a", "b")), ("add", (1.5, 2)), ("add", ([1], [2])), ("add", (1, "x")),
    ("none", ()), ("flag", (0,)), ("half", (3,)), ("raw", (b"x",)), ("items", (3,)), ("mixed", ()),
    ("table", ("k",)), ("gen", (3,)), ("boom", (7,)), ("exit_", ()), ("odd", ()), ("deflt", (2,)),
    ("deflt", (2, 3)), ("star", ()), ("star", (1, 2, 3)), ("deep", (0,)),
    ("add", (1,)), ("add", (1, 2, 3)), ("none", (1,)),  # another argument count: the general path
]


def _manager(language: str = "python", source: str = SOURCE) -> ScriptManager:
    m = ScriptManager(policy=SecurityPolicy.trusted(), cache=False)
    m.load_script_from_source("s", language, source)
    return m


@pytest.fixture
def m() -> Any:
    manager = _manager()
    yield manager
    manager.close()


def _outcome(call: Any, args: tuple[Any, ...]) -> tuple[str, Any]:
    try:
        result = call(*args)
        # an object claiming another class is returned as it is by both: compared by its real type
        return "ok", (type(result) if type(result).__name__ == "Odd" else result)
    except BaseException as exc:
        return "error", (type(exc), str(exc), getattr(exc, "line", None), exc.__cause__, exc.__suppress_context__,
                         type(exc.__context__))


def test_bound_handles_call_the_compiled_caller(m: ScriptManager) -> None:
    add = m.function("s.add")
    caller = add._call
    assert type(caller).__name__ == "Caller" and type(caller).__module__ == "kryon_core._speedups"
    assert type(add) is caller.handle_type and issubclass(type(add), FunctionRef)
    before = caller.calls
    assert add(2, 3) == 5 and m.call_function("add", [4, 5]) == 9
    assert caller.calls == before + 2


@pytest.mark.parametrize("name,args", CASES, ids=[f"{n}{len(a)}-{i}" for i, (n, a) in enumerate(CASES)])
def test_the_compiled_and_the_python_caller_agree(m: ScriptManager, name: str, args: tuple[Any, ...]) -> None:
    caller = m.function(f"s.{name}")._call
    compiled, python = _outcome(caller, args), _outcome(caller.python, args)
    assert compiled == python
    if compiled[0] == "ok":
        assert type(compiled[1]) is type(python[1])


def test_errors_name_the_line_and_hide_the_translated_exception(m: ScriptManager) -> None:
    boom = m.function("s.boom")
    with pytest.raises(ScriptError) as info:
        boom(1)
    err = info.value
    line = SOURCE.splitlines().index('    raise ValueError(f"bad {x}")') + 1
    assert err.line == line and "bad 1" in str(err) and err.language == "python"
    assert err.__suppress_context__ and err.__cause__ is None and type(err.__context__) is ValueError
    assert not _gate(m).held() and m.function("s.add")(1, 1) == 2 and boom._call.calls == 1


def test_passthrough_exceptions_are_raised_as_they_are(m: ScriptManager) -> None:
    interrupt = m.function("s.interrupt")
    calls = interrupt._call.calls
    with pytest.raises(KeyboardInterrupt, match="stop"):
        interrupt()
    assert interrupt._call.calls == calls + 1
    assert not _gate(m).held() and m.function("s.add")(1, 2) == 3


def _gate(m: ScriptManager) -> threads.EngineGate:
    gate = m.engine("python").gate
    assert isinstance(gate, threads.EngineGate)
    return gate


def test_the_gate_is_held_during_the_call_and_given_back() -> None:
    seen: list[tuple[bool, bool]] = []
    m = _manager(source="def probe():\n    return check()\n")
    try:
        gate = _gate(m)
        m.engine("python").local.script("s").ns["check"] = lambda: seen.append((gate.held(), gate._lock._is_owned())) or 1
        probe = m.function("s.probe")
        assert probe() == 1 and probe._call.calls == 1
        assert seen == [(True, True)] and not gate.held()
        got = []
        t = threading.Thread(target=lambda: got.append(gate._lock.acquire(False) and (gate._lock.release() or True)))
        t.start()
        t.join(10)
        assert got == [True]  # the plain lock under the RLock was really given back
    finally:
        m.close()


def test_cases_handed_to_the_python_caller(m: ScriptManager) -> None:
    add = m.function("s.add")
    caller = add._call
    calls = caller.calls
    assert add(1, 2) == 3 and caller.calls == calls + 1
    with pytest.raises(TypeError):  # keywords: the Python caller's own error, as without the extension
        add(a=1, b=2)
    for args in ((fastcall._MISSING, 2), (1, fastcall._MISSING)):  # the template's "not passed" marker
        assert _outcome(add, args) == _outcome(add._call.python, args)
    assert caller.calls == calls + 1
    # a debugger recording entries: the Python path
    threads.track_entries(True)
    try:
        assert add(2, 2) == 4
    finally:
        threads.track_entries(False)
    assert caller.calls == calls + 1
    # a breakpoint anywhere: the general path
    engine = m.engine("python")
    bid = engine.set_breakpoint("s", 99)
    try:
        assert add(3, 3) == 6
    finally:
        engine.remove_breakpoint(bid)
    assert caller.calls == calls + 1
    assert add(4, 4) == 8 and caller.calls == calls + 2


def test_another_thread_in_the_gate_means_the_waiting_path() -> None:
    m = _manager(source="def add(a, b):\n    return a + b\n")
    try:
        gate, add = _gate(m), m.function("s.add")
        calls = add._call.calls
        inside, leave, result = threading.Event(), threading.Event(), []

        def hold() -> None:
            def body() -> None:
                inside.set()
                leave.wait(10)
            gate.run(body)

        holder = threading.Thread(target=hold)
        holder.start()
        assert inside.wait(10)
        caller = threading.Thread(target=lambda: result.append(add(20, 22)))
        caller.start()
        caller.join(0.2)
        assert result == []  # it waits for the gate (polling it, in EngineGate.run)
        leave.set()
        holder.join(10)
        caller.join(10)
        assert result == [42] and add._call.calls == calls  # taken by the Python caller
        assert add(1, 1) == 2 and add._call.calls == calls + 1
    finally:
        m.close()


def test_bound_handles_follow_reloads_and_fail_after_unload(m: ScriptManager) -> None:
    add = m.function("s.add")
    assert add(2, 3) == 5
    m.hot_reload_script("s", SOURCE.replace("return a + b", "return a - b"))
    assert add(2, 3) == -1 and type(add._call).__name__ == "Caller" and add._call.calls == 1
    m.unload_script("s")
    with pytest.raises(ScriptError):
        add(2, 3)


def test_lisp_shares_the_compiled_caller() -> None:
    pytest.importorskip("kryon_lisp")
    m = _manager("lisp", "(defn add [a b] (+ a b))\n(defn boom [x] (raise (ValueError x)))\n")
    try:
        add, boom = m.function("s.add"), m.function("s.boom")
        assert type(add._call).__name__ == "Caller"
        assert add(2, 3) == 5 and add._call.calls == 1
        assert _outcome(boom, ("x",)) == _outcome(boom._call.python, ("x",))
        assert _outcome(boom, ("x",))[1][0] is not ValueError
    finally:
        m.close()


def test_the_switch_keeps_the_python_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(speedups.ENV_OFF, "1")
    m = _manager()
    try:
        add = m.function("s.add")
        assert type(add._call).__name__ != "Caller" and add(2, 3) == 5
    finally:
        m.close()
