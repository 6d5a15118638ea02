"""Hot reload keeps a Lua script's state: module-level data the new version leaves nil
carries over; an ``on_reload(old)`` hook decides instead when the new version has one; a
failing hook rolls the whole reload back and the old version keeps running with its state."""

from __future__ import annotations

import pytest

from kryon_core import Document, ScriptError, ScriptManager, SecurityPolicy

POLICIES = [SecurityPolicy.trusted(), SecurityPolicy.sandboxed()]
V1 = "count = 0\nitems = {}\nlabel = 'v1'\nfunction bump() count = count + 1; items[#items + 1] = count; return count end"


@pytest.fixture(params=POLICIES, ids=["trusted", "sandboxed"])
def m(request):
    with ScriptManager(policy=request.param, cache=False) as manager:
        manager.load_script_from_source("c", "lua", V1)
        manager.call_function("c.bump")
        manager.call_function("c.bump")
        yield manager


def test_data_the_new_version_leaves_nil_carries_over(m):
    m.hot_reload_script("c", "label = 'v2'\nfunction bump() count = count + 10; return count end\n"
                             "function info() return {#items, label} end")
    assert m.call_function("c.bump") == 12, "count carried over"
    assert m.call_function("c.info") == [2, "v2"], "items carried, label is the new version's own"


def test_on_reload_decides_what_the_new_version_keeps(m):
    m.hot_reload_script("c", "count = 0\nfunction on_reload(old)\n  return {count = old.count * 100, seen = #old.items}\nend\n"
                             "function get() return {count, seen, items == nil} end")
    assert m.call_function("c.get") == [200, 2, True], "the hook's table is set; nothing else is carried"


def test_on_reload_returning_nothing_keeps_the_new_top_level(m):
    m.hot_reload_script("c", "count = 7\nfunction on_reload(old) end\nfunction get() return count end")
    assert m.call_function("c.get") == 7


def test_a_failing_hook_rolls_the_reload_back(m):
    doc = m.setup_dom_bridge(Document())
    button = doc.create_element("button", {"id": "b"})
    doc.append_child(doc.root, button)
    with pytest.raises(ScriptError) as info:
        m.hot_reload_script("c", "kryon.addEventListener('b', 'click', function() count = -1 end)\n"
                                 "function on_reload(old) error('cannot migrate') end\nfunction bump() return -1 end")
    assert "cannot migrate" in info.value.message and info.value.language == "lua"
    doc.dispatch_event("b", "click")
    assert m.call_function("c.bump") == 3, "the old version runs on with its state, and the new listener is gone"
    with pytest.raises(ScriptError):
        m.hot_reload_script("c", "function on_reload(old) return 42 end")
    assert m.call_function("c.bump") == 4
