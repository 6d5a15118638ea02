"""What the tests of sandboxed workers share (tests/python, and tests/lisp,
whose scripts run in the same workers): a manager with a document, a record
of what the host ran and received, a worker that forges frames, and the
scalar values a frame carries, and the check that ``evaluate`` on a
sandboxed script runs in its worker (:func:`evaluate_in_the_worker`)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import strategies as st

from kryon_core import (
    AccessDeniedError,
    CompileError,
    Document,
    ScriptManager,
    ScriptRuntimeError,
    ScriptTimeoutError,
    SecurityPolicy,
)
from kryon_core.isolation import protocol

#: the scalars a frame made without the generic encoder may carry, the awkward strings included
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(), st.just("\ud800 lone surrogate"), st.just('"quoted" \\ \x00 \u2028'))

#: a Python script that writes ``text`` as a frame to every descriptor it can (the worker's channel among
#: them): a worker that lies to the host (its imports allowed)
LIAR = """\
import os, struct
def lie(text):
    data = text.encode()
    for fd in range(3, 8):
        try:
            os.write(fd, struct.pack(">I", len(data)) + data)
        except OSError:
            pass
    return 1
def ok():
    return "fine"
"""


def box_manager(**policy: Any) -> tuple[ScriptManager, Document]:
    """A manager with a sandboxed policy (``policy`` its keyword arguments),
    output dropped, and a document holding one element, ``div#box``."""
    m = ScriptManager(policy=SecurityPolicy.sandboxed(**policy), cache=False, output=lambda lang, text: None)
    doc = m.setup_dom_bridge(Document())
    doc.append_child(doc.root, doc.create_element("div", {"id": "box"}))
    return m, doc


def python_calls(fn: Callable[[], Any]) -> tuple[Any, list[str]]:
    """``fn()``'s result and the names of the Python functions it ran, in order
    (the host's side of a call: which path it took)."""
    names: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            names.append(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        result = fn()
    finally:
        sys.setprofile(None)
    return result, names


def received(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every message the host parses from now on (``protocol.loads``)."""
    seen: list[dict[str, Any]] = []
    real = protocol.loads

    def loads(data: bytes, decoder: Any = None) -> dict[str, Any]:
        msg = real(data, decoder)
        seen.append(msg)
        return msg

    monkeypatch.setattr(protocol, "loads", loads)
    return seen


@dataclass(frozen=True)
class Evaluations:
    """What :func:`evaluate_in_the_worker` evaluates, in one language."""

    language: str
    #: a script that sets ``n`` to 40 and defines ``get()`` returning it
    script: str
    #: the expression ``n + 2``
    plus_two: str
    #: code that sets ``n`` to 1 and defines ``twice(x)``
    redefine: str
    #: code the script's guard refuses (an AccessDeniedError)
    denied: str
    #: code that raises on its second line
    raises: str
    #: code that does not compile
    broken: str
    #: code that never ends
    endless: str
    #: the expression ``n``
    n: str


def evaluate_in_the_worker(m: ScriptManager, code: Evaluations) -> None:
    """``evaluate`` on a sandboxed script (loaded here as ``ev``) runs in its
    worker: the script's names and namespace, its guard and time limit; an
    error names its line, and the worker keeps its state after a timeout."""
    lang = code.language
    m.load_script_from_source("ev", lang, code.script)
    assert m.evaluate(lang, code.plus_two, script="ev") == 42
    m.evaluate(lang, code.redefine, script="ev")
    assert m.call_function("ev.get") == 1, "the evaluation changed the script's own namespace"
    assert m.call_function("ev.twice", [21]) == 42, "a function the evaluation defined is callable"
    with pytest.raises(AccessDeniedError):
        m.evaluate(lang, code.denied, script="ev")
    with pytest.raises(ScriptRuntimeError) as failed:
        m.evaluate(lang, code.raises, script="ev")
    assert (failed.value.script, failed.value.line, failed.value.language) == ("ev", 2, lang)
    with pytest.raises(CompileError):
        m.evaluate(lang, code.broken, script="ev")
    with pytest.raises(ScriptTimeoutError):
        m.evaluate(lang, code.endless, script="ev")
    assert m.evaluate(lang, code.n, script="ev") == 1, "the worker kept its state after the timeout"
