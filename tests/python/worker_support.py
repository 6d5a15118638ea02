"""What the tests of sandboxed workers share (tests/python, and tests/lisp,
whose scripts run in the same workers): a manager with a document, a record
of what the host ran and received, a worker that forges frames, and the
scalar values a frame carries."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import strategies as st

from kryon_core import Document, ScriptManager, SecurityPolicy
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
