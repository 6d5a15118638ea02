"""Document, the reference DOM bridge: elements, events, variables, timers, animations."""

import asyncio

import pytest

from kryon_core import Document, DOMError, ElementHandle
from kryon_core.dom import DOMBridge


@pytest.fixture
def doc():
    d = Document(seed=7)
    panel = d.create_element("panel", {"id": "panel", "class": "box main"})
    d.append_child(d.root, panel)
    d.append_child(panel, d.create_element("button", {"id": "ok", "text": "OK", "class": ["btn"]}))
    d.append_child(panel, d.create_element("button", {"id": "cancel", "class": "btn"}))
    return d


def test_queries(doc):
    assert doc.get_element_by_id("ok") == ElementHandle(doc.element("ok").number)
    assert doc.get_element_by_id("missing") is None
    assert [doc.get_property(h, "id") for h in doc.get_elements_by_class("btn")] == ["ok", "cancel"]
    assert len(doc.get_elements_by_tag("button")) == 2


def test_properties_styles_classes(doc):
    doc.set_property("ok", "text", "Sure")
    assert doc.get_property("ok", "text") == "Sure"
    assert doc.get_property("ok", "type") == "button"
    doc.set_style("ok", "primary")
    doc.set_style("ok", "color", "red")
    assert doc.get_style("ok") == "primary" and doc.get_style("ok", "color") == "red"
    doc.add_class("ok", "active")
    assert doc.has_class("ok", "active")
    assert doc.toggle_class("ok", "active") is False
    doc.remove_class("panel", "box")
    assert doc.element("panel").classes == ["main"]
    with pytest.raises(DOMError):
        doc.set_property("ok", "id", "other")
    with pytest.raises(DOMError):
        doc.set_property("nope", "text", "x")


class _BridgeWithoutClassTests(Document):
    """A bridge that implements only the abstract methods, as one written before has_class existed."""

    has_class = DOMBridge.has_class
    toggle_class = DOMBridge.toggle_class


def test_class_tests_have_defaults_built_on_the_abstract_lookups():
    d = _BridgeWithoutClassTests()
    d.append_child(d.root, d.create_element("button", {"id": "ok", "class": "btn"}))
    assert d.has_class("ok", "btn") and d.has_class(d.get_element_by_id("ok"), "btn")
    assert not d.has_class("ok", "active") and not d.has_class("missing", "btn")
    assert d.toggle_class("ok", "active") is True and d.has_class("ok", "active")
    assert d.toggle_class("ok", "active") is False and not d.has_class("ok", "active")


def test_create_append_remove(doc):
    item = doc.create_element("label", {"id": "note", "text": "hi"})
    doc.append_child("panel", item)
    assert doc.to_dict("panel")["children"][-1] == {"type": "label", "id": "note", "properties": {"text": "hi"}}
    with pytest.raises(DOMError):
        doc.append_child("ok", "panel")  # into its own descendant
    with pytest.raises(DOMError):
        doc.create_element("x", {"id": "ok"})  # duplicate id
    doc.add_event_listener("ok", "click", lambda e: None)
    doc.remove_element("panel")
    assert doc.get_element_by_id("ok") is None
    assert doc.callback_counts()["listeners"] == 0
    with pytest.raises(DOMError):
        doc.remove_element(doc.root)


def test_events_bubble_and_errors_are_contained(doc):
    seen = []
    doc.add_event_listener("ok", "click", lambda e: seen.append(("ok", e["targetId"])))
    doc.add_event_listener("panel", "click", lambda e: seen.append(("panel", e["targetId"])))
    lid = doc.add_event_listener("ok", "click", lambda e: 1 / 0)
    assert doc.click("ok") == 3
    assert seen == [("ok", "ok"), ("panel", "ok")]
    assert len(doc.errors) == 1 and isinstance(doc.errors[0], ZeroDivisionError)
    doc.remove_event_listener(lid)
    with pytest.raises(DOMError):
        doc.remove_event_listener(lid)
    doc.emit_custom_event("cancel", "chosen", {"value": 3})


def test_custom_event_data(doc):
    got = []
    doc.add_event_listener("cancel", "chosen", lambda e: got.append(e["data"]))
    doc.emit_custom_event("cancel", "chosen", {"value": 3})
    assert got == [{"value": 3}]


def test_variables_and_watchers(doc):
    changes = []
    wid = doc.watch_variable("count", lambda new, old, name: changes.append((name, old, new)))
    doc.set_variable("count", 1)
    doc.set_variable("count", 2)
    doc.unwatch_variable(wid)
    doc.set_variable("count", 3)
    assert changes == [("count", None, 1), ("count", 1, 2)]
    assert doc.get_variable("count") == 3 and doc.variables == {"count": 3}


def test_timers_run_in_order_on_the_manual_clock(doc):
    fired = []
    doc.set_timeout(lambda: fired.append(("late", doc.get_current_time())), 50)
    doc.set_timeout(lambda: fired.append(("early", doc.get_current_time())), 10)
    iid = doc.set_interval(lambda: fired.append(("tick", doc.get_current_time())), 20)
    doc.advance(45)
    assert fired == [("early", 10), ("tick", 20), ("tick", 40)]
    doc.clear_timer(iid)
    doc.advance(100)
    assert fired[-1] == ("late", 50) and doc.get_current_time() == 145
    with pytest.raises(DOMError):
        doc.set_interval(lambda: None, 0)
    with pytest.raises(DOMError):
        doc.advance(-1)


def test_animation_with_easing(doc):
    done = []
    doc.set_property("ok", "x", 0)
    doc.animate("ok", {"property": "x", "to": 100, "duration": 100, "easing": "ease-in", "onComplete": done.append})
    doc.advance(50)
    assert doc.get_property("ok", "x") == pytest.approx(25.0)
    doc.advance(60)
    assert doc.get_property("ok", "x") == 100 and done == [doc.get_element_by_id("ok")]
    with pytest.raises(DOMError):
        doc.animate("ok", {"property": "x", "to": 1, "duration": 10, "easing": "wobble"})


def test_owned_callbacks_are_dropped(doc):
    mine = lambda *a: None  # noqa: E731
    doc.add_event_listener("ok", "click", mine)
    doc.set_timeout(mine, 10)
    doc.watch_variable("v", mine)
    doc.add_event_listener("ok", "click", lambda e: None)
    keys = doc.owned_callbacks(lambda cb: cb is mine)
    assert len(keys) == 3
    doc.drop_callbacks(keys)
    assert doc.callback_counts() == {"listeners": 1, "watchers": 0, "timers": 0, "animations": 0}


def test_random_is_seeded():
    assert Document(seed=1).get_random() == Document(seed=1).get_random()


def test_build_from_data_and_unknown_types():
    d = Document()
    d.build({"type": "panel", "id": "p", "children": [{"type": "button", "id": "b", "properties": {"text": "go"}}]})
    assert d.get_property("b", "text") == "go"
    with pytest.raises(DOMError, match="unknown element type"):
        d.build({"type": "blink"}, element_types={"panel", "button"})


def test_run_clock_drives_timers_from_asyncio(doc):
    fired = []
    doc.set_timeout(lambda: fired.append(True), 20)
    asyncio.run(asyncio.wait_for(doc.run_clock(tick_ms=5, until_idle=True), 5))
    assert fired == [True]


def test_observers_see_changes(doc):
    seen = []
    stop = doc.observe(lambda kind, details: seen.append(kind))
    doc.set_property("ok", "text", "x")
    doc.add_class("ok", "y")
    stop()
    doc.set_property("ok", "text", "z")
    assert seen == ["property", "class"]


def test_animation_config_defaults():
    from kryon_core import AnimationConfig

    config = AnimationConfig("x", 1, 10)
    assert config.from_value is None and config.easing == "linear" and config.on_complete is None
    assert AnimationConfig.coerce({"prop": "x", "to-value": 5, "duration-ms": 20}).to_value == 5


def test_the_bridge_views_set_property_checks_and_names_the_language():
    """ScriptBridge.set_property (written out without the API wrapper): a document is needed, the
    property name must be a string (a str subclass is one), errors carry the view's language."""
    from kryon_core import ScriptBridge, SecurityPolicy

    class Name(str):
        pass

    view = ScriptBridge("lua").for_script("ui", SecurityPolicy.sandboxed())
    with pytest.raises(DOMError, match="no document is attached") as info:
        view.set_property("box", "x", 1)
    assert info.value.language == "lua"
    doc = Document()
    doc.append_child(doc.root, doc.create_element("div", {"id": "box"}))
    view.dom = doc
    with pytest.raises(DOMError, match="property must be a string, not int") as info:
        view.set_property("box", 3, 1)
    assert info.value.language == "lua"
    with pytest.raises(DOMError, match="an element's id cannot be changed") as info:
        view.set_property("box", "id", "other")
    assert info.value.language == "lua"
    view.set_property("box", Name("x"), 1)
    view.set_property(doc.get_element_by_id("box"), "y", None)
    assert doc.element("box").properties == {"x": 1, "y": None}
