"""Fixtures for the Kryon Lisp tests: managers the way a user makes them."""

from __future__ import annotations

import pytest

from kryon_core import Document, ScriptManager, SecurityPolicy


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
