"""``kryon-call`` made from a sandboxed Kryon Lisp script's worker: the same
path as Python's (tests/python/test_worker_calls.py): the request carries no
stack, the host fetches it when something reads it, and values, errors,
limits, access checks and nested calls are what they were."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from worker_support import received

from kryon_core import AccessDeniedError, ScriptManager, ScriptRuntimeError, ScriptTimeoutError, SecurityPolicy

pytest.importorskip("kryon_lua")
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the worker sandbox uses Linux limits")

WORKER = """\
(defn call [name x]
  (kryon-call name x))
(defn loop [name n]
  (for [i (range n)] (kryon-call name i))
  n)
(defn outer [x]
  (* 10 (kryon-call "l.back" x)))
(defn inner [x]
  (+ 1 (probe x)))
(defn spin [name]
  (while True (kryon-call name 1)))
"""

LUA = """\
function echo(x) return x end
function fail(x) error("lua failed on " .. tostring(x)) end
function back(x) return kryon.call("w.inner", x) + 1 end
"""


def _manager(time_limit: float = 30.0) -> ScriptManager:
    m = ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=time_limit), cache=False,
                      output=lambda lang, text: None)
    m.load_script_from_source("w", "lisp", WORKER)
    m.load_script_from_source("l", "lua", LUA)
    return m


@pytest.fixture
def m() -> Iterator[ScriptManager]:
    manager = _manager()
    yield manager
    manager.close()


@pytest.mark.parametrize("value", [None, True, -3, 2.5, "ünï", [1, "a", None], {"k": [1, {"n": None}]}], ids=repr)
def test_values_come_back_as_a_call_from_the_host_gives_them(m: ScriptManager, value: Any) -> None:
    assert m.call_function("w.call", ["l.echo", value]) == m.call_function("l.echo", [value])


def test_errors_and_access(m: ScriptManager) -> None:
    with pytest.raises(ScriptRuntimeError, match="lua failed on 3") as info:
        m.call_function("w.call", ["l.fail", 3])
    assert ("call", "w", 2) in [(f.function, f.script, f.line) for f in info.value.stack]
    m.load_script_from_source("t", "lua", "function secret() return 1 end", policy=SecurityPolicy.trusted())
    with pytest.raises(AccessDeniedError, match="must expose it"):
        m.call_function("w.call", ["t.secret", 0])


def test_the_time_limit_fires_during_a_loop_of_calls() -> None:
    m = _manager(time_limit=0.5)
    try:
        with pytest.raises(ScriptTimeoutError):
            m.call_function("w.spin", ["l.echo"])
        assert m.call_function("w.call", ["l.echo", 4]) == 4
    finally:
        m.close()


def test_no_stack_travels_until_asked_and_nested_calls_see_theirs(m: ScriptManager,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    seen = received(monkeypatch)
    assert m.call_function("w.loop", ["l.echo", 10]) == 10
    api = [msg for msg in seen if msg.get("t") == "api"]
    assert len(api) == 10 and not any("st" in msg for msg in api)
    stacks: list[list[tuple[str, int | None]]] = []
    engine = m.engine("lisp")
    m.set_global("lisp", "probe", lambda x: stacks.append([(f.function, f.line) for f in engine.get_stack_trace()]) or x)
    assert m.call_function("w.outer", [1]) == 30
    assert stacks == [[("inner", 9), ("outer", 7)]]
    assert engine.get_stack_trace() == []
