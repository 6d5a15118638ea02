"""``kryon.call`` made from a sandboxed Python script's worker to other scripts
(Lisp's worker takes the same path: tests/lisp/test_worker_calls.py).

The worker's request carries no stack: the host asks the worker for it only
when something reads it (``stk``), and a call back into the worker while the
host serves one of its requests gets that request's stack sent ahead (``sk``).
Values, errors, limits, access checks and nested calls are what they were."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from worker_support import LIAR, SCALARS, python_calls, received

from kryon_core import (
    AccessDeniedError,
    ConversionError,
    FunctionNotFoundError,
    RecursionLimitError,
    ScriptError,
    ScriptManager,
    ScriptRuntimeError,
    ScriptTimeoutError,
    SecurityPolicy,
    SizeLimitError,
)
from kryon_core.isolation import protocol

pytest.importorskip("kryon_python")
pytest.importorskip("kryon_lua")
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the worker sandbox uses Linux limits")

WORKER = """\
import kryon
def call(name, *args):
    return kryon.call(name, *args)
def loop(name, n):
    for i in range(n):
        kryon.call(name, i)
    return n
def outer(x):
    return kryon.call("l.back", x) * 10
def inner(x):
    print("inner", x)
    return probe(x) + 1
def deep(x):
    return outer(x)
def spin(name):
    while True:
        kryon.call(name, 1)
def hand_over():
    return kryon.call("l.echo", object())
def big(n):
    return kryon.call("l.echo", "x" * n)
def use_adder(n, x):
    return kryon.call("l.adder", n)(x)
"""

LUA = """\
function echo(x) return x end
function fail(x) error("lua failed on " .. tostring(x)) end
function back(x) return kryon.call("w.inner", x) + 1 end
function record(x) return probe(x) end
function adder(n) return function(x) return x + n end end
function again(n) return kryon.call("r.recurse", n) end
"""

RECURSE = """\
import kryon
def recurse(n):
    return kryon.call("l.again", n + 1)
"""


def _manager(time_limit: float | None = 30.0, **policy: Any) -> tuple[ScriptManager, list[str]]:
    printed: list[str] = []
    m = ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=time_limit, **policy), cache=False,
                      output=lambda lang, text: printed.append(text))
    m.load_script_from_source("w", "python", WORKER)
    m.load_script_from_source("l", "lua", LUA)
    return m, printed


@pytest.fixture
def mp() -> Iterator[tuple[ScriptManager, list[str]]]:
    m, printed = _manager()
    yield m, printed
    m.close()


VALUES: list[Any] = [
    None, True, False, 0, -7, 2**53 + 1, 1.5, -0.25, math.inf, -math.inf, "", "plain", "ünïcødé \u2028 \x00 end",
    [], [1, "a", None, 2.5], {"a": 1, "b": [1, 2, {"c": None}]}, {"\x00": "the tag key"}, b"\x00\xffbytes",
    [[[[["deep"]]]]], {"1": "int-like key"},
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_values_come_back_as_a_call_from_the_host_gives_them(mp: tuple[ScriptManager, list[str]], value: Any) -> None:
    m, _ = mp
    assert _outcome(lambda: m.call_function("w.call", ["l.echo", value])) == _outcome(
        lambda: m.call_function("l.echo", [value]))


def _outcome(fn: Callable[[], Any]) -> tuple[Any, ...]:
    """``fn()``'s value, or its error's class and message without the language's name."""
    try:
        return ("value", fn())
    except ScriptError as exc:  # e.g. bytes Lua cannot hand to the host
        return ("error", type(exc), exc.message)


def test_nan_and_functions_cross_both_ways(mp: tuple[ScriptManager, list[str]]) -> None:
    m, _ = mp
    assert math.isnan(m.call_function("w.call", ["l.echo", math.nan]))
    assert m.call_function("w.use_adder", [5, 2]) == 7  # a Lua function handed to the worker, called there
    add = m.call_function("w.call", ["l.adder", 3])  # and handed on to the host
    assert add(4) == 7


def test_errors_are_the_errors_of_a_call_from_the_host(mp: tuple[ScriptManager, list[str]]) -> None:
    m, _ = mp
    for target, args, cls, text in [
        ("l.fail", [3], ScriptRuntimeError, "lua failed on 3"),
        ("l.nope", [], FunctionNotFoundError, "nope"),
    ]:
        with pytest.raises(cls) as direct:
            m.call_function(target, args)
        with pytest.raises(cls) as through:
            m.call_function("w.call", [target, *args])
        assert text in direct.value.message and text in through.value.message
        assert type(through.value) is type(direct.value)
        # the worker's frame is on the error's stack, at the kryon.call's line
        assert ("call", "w", 3) in [(f.function, f.script, f.line) for f in through.value.stack]


def test_values_the_worker_cannot_send_are_refused_there() -> None:
    m, _ = _manager(max_value_size=100)
    try:
        with pytest.raises(ConversionError):
            m.call_function("w.hand_over")
        with pytest.raises(SizeLimitError):
            m.call_function("w.big", [1000])
        assert m.call_function("w.big", [10]) == "x" * 10
    finally:
        m.close()


def test_an_unexported_function_of_a_trusted_script_stays_denied(mp: tuple[ScriptManager, list[str]]) -> None:
    m, _ = mp
    m.load_script_from_source("t", "lua", "function secret() return 's3cret' end\nfunction open() return 1 end",
                              policy=SecurityPolicy.trusted())
    with pytest.raises(AccessDeniedError, match="must expose it"):
        m.call_function("w.call", ["t.secret"])
    m.expose("t.open")
    assert m.call_function("w.call", ["t.open"]) == 1
    with pytest.raises(AccessDeniedError):  # the route cached for t.open does not open t.secret
        m.call_function("w.call", ["t.secret"])
    assert m.call_function("w.loop", ["t.open", 50]) == 50


def test_the_time_limit_fires_while_the_worker_loops_on_kryon_calls() -> None:
    m, _ = _manager(time_limit=0.5)
    try:
        with pytest.raises(ScriptTimeoutError):
            m.call_function("w.spin", ["l.echo"])
        assert m.call_function("w.call", ["l.echo", 4]) == 4  # the worker goes on
    finally:
        m.close()


def test_the_callees_own_time_limit_holds() -> None:
    m, _ = _manager(time_limit=30.0)
    try:
        m.load_script_from_source("slow", "lua", "function forever() while true do end end",
                                  policy=SecurityPolicy.sandboxed(time_limit=0.3))
        with pytest.raises(ScriptTimeoutError):
            m.call_function("w.call", ["slow.forever"])
        assert m.call_function("w.call", ["l.echo", "after"]) == "after"
    finally:
        m.close()


def test_a_kryon_call_request_carries_no_stack(mp: tuple[ScriptManager, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path itself: the worker sends no stack with a kryon call and
    the host makes none; asking for the stack is what fetches it."""
    m, _ = mp
    seen = received(monkeypatch)
    result, names = python_calls(lambda: m.call_function("w.loop", ["l.echo", 20]))
    assert result == 20
    api = [msg for msg in seen if msg.get("t") == "api"]
    assert len(api) == 20 and not any("st" in msg for msg in api), api[:1]
    assert "frames" not in names and "fetch" not in names, "no stack was made on the host"


def test_the_host_answers_a_kryon_call_in_one_frame(mp: tuple[ScriptManager, list[str]]) -> None:
    """The host's side of the fast path: a kryon call is served by
    ``_serve_api`` and a scalar result's reply is made by ``reply_frame``;
    anything else is encoded as before."""
    m, _ = mp
    assert m.call_function("w.loop", ["l.echo", 1]) == 1  # the handle and the route are made
    result, names = python_calls(lambda: m.call_function("w.loop", ["l.echo", 5]))
    assert result == 5
    assert names.count("_serve_api") == 5 and names.count("reply_frame") == 5, names
    assert not {"_serve", "_serve_one", "_send", "encode", "dumps"} & set(names), names
    result, names = python_calls(lambda: m.call_function("w.call", ["l.echo", [1, {"a": 2}]]))
    assert result == [1, {"a": 2}] and "_serve_api" in names and "encode" in names and "reply_frame" not in names
    assert m.call_function("w.call", ["l.echo", "x" * 1000]) == "x" * 1000


@given(value=SCALARS, rid=st.integers(min_value=0, max_value=2**53))
def test_a_reply_frame_is_the_frame_dumps_makes(value: Any, rid: int) -> None:
    assert protocol.reply_frame(rid, value) == protocol.dumps({"t": "r", "i": rid, "v": value})


def test_the_stack_is_fetched_when_the_host_asks(mp: tuple[ScriptManager, list[str]]) -> None:
    m, _ = mp
    engine = m.engine("python")
    stacks: list[list[tuple[str, str | None, int | None]]] = []
    m.set_global("lua", "probe", lambda x: stacks.append([(f.function, f.script, f.line)
                                                          for f in engine.get_stack_trace()]) or x)
    assert m.call_function("w.call", ["l.record", 5]) == 5
    assert stacks == [[("call", "w", 3)]]
    assert engine.get_stack_trace() == []


def test_nested_calls_keep_every_stack() -> None:
    """worker (deep, outer) -> Lua (back) -> the worker again (inner) -> a
    host function (probe): each sees the worker's stack as it is. What the
    nested call prints sees the outer request's stack, which the worker sent
    ahead of the call back in (the worker is busy then: it cannot be asked)."""
    seen: list[tuple[str, list[tuple[str, int | None]]]] = []

    def stack() -> list[tuple[str, int | None]]:
        return [(f.function, f.line) for f in m.engine("python").get_stack_trace()]

    m = ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=30.0), cache=False,
                      output=lambda lang, text: seen.append((text, stack())))
    try:
        m.set_global("python", "probe", lambda x: seen.append(("probe", stack())) or x)
        m.load_script_from_source("w", "python", WORKER)
        m.load_script_from_source("l", "lua", LUA)
        assert m.call_function("w.deep", [2]) == (2 + 1 + 1) * 10
        assert seen == [
            ("inner 2", [("outer", 9), ("deep", 14)]),
            ("probe", [("inner", 12), ("outer", 9), ("deep", 14)]),
        ]
        assert stack() == []
        seen.clear()
        assert m.call_function("w.outer", [1]) == 30  # again: the stacks are made anew
        assert seen == [("inner 1", [("outer", 9)]), ("probe", [("inner", 12), ("outer", 9)])]
    finally:
        m.close()


def test_nested_calls_fail_as_before() -> None:
    m, _ = _manager(max_recursion=20)
    try:
        m.load_script_from_source("r", "python", RECURSE)
        with pytest.raises(RecursionLimitError):
            m.call_function("r.recurse", [0])
        assert m.call_function("w.call", ["l.echo", "fine"]) == "fine"
    finally:
        m.close()


@pytest.mark.parametrize("target", ["l.echo", "w.call"])
def test_many_calls_in_one_loop(mp: tuple[ScriptManager, list[str]], target: str) -> None:
    m, _ = mp
    if target == "w.call":  # a call into the same worker from its own kryon.call: a call back in, each time
        m.load_script_from_source("w2", "python", "import kryon\ndef noop(x): return x\n")
        target = "w2.noop"
    assert m.call_function("w.loop", [target, 300]) == 300


def test_a_stack_nobody_asked_for_ends_the_worker() -> None:
    """The host takes a stack on a message only after it asked for one (``sk``)."""
    m = ScriptManager(policy=SecurityPolicy.sandboxed(allow_imports=True), cache=False, output=lambda lang, text: None)
    try:
        m.load_script_from_source("liar", "python", LIAR)
        with pytest.raises(ScriptError, match="protocol"):
            m.call_function("liar.lie", ['{"t":"out","x":"hi","stk":[["forged","elsewhere",1]]}'])
        assert m.call_function("liar.ok") == "fine", "the worker was restarted with its script"
    finally:
        m.close()
