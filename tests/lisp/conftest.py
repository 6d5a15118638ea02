"""Fixtures for the Kryon Lisp tests: managers the way a user makes them."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kryon_core import Document, ScriptManager, SecurityPolicy

# Lisp's sandboxed scripts run in the Python workers: their tests share tests/python/worker_support.py
sys.path.insert(0, str(Path(__file__).parent.parent / "python"))
from worker_support import box_manager  # noqa: E402


@pytest.fixture
def manager():
    m = ScriptManager(cache_dir=False, policy=SecurityPolicy.trusted())
    yield m
    m.close()


@pytest.fixture
def dom(manager):
    """(manager, document) with a document attached and a button #btn."""
    doc = manager.setup_dom_bridge(Document(seed=7))
    button = doc.create_element("button", {"id": "btn", "text": "0"})
    doc.append_child(doc.root, button)
    return manager, doc


@pytest.fixture
def sandboxed_ui() -> Iterator[tuple[ScriptManager, Document]]:
    """(manager, document): a sandboxed manager (a worker per script) and a div #box."""
    m, doc = box_manager(time_limit=30)
    yield m, doc
    m.close()
