"""Hot reload keeps a Wren script's state: module variables (static fields too) the new
version leaves null carry over from the old one; an ``onReload(old)`` hook decides instead
when the new version defines one; a failing hook rolls the whole reload back and the old
version keeps running with its state and listeners."""

from __future__ import annotations

import pytest

from kryon_core import Document, ScriptError, ScriptManager, SecurityPolicy, UserData
from kryon_core.testing.watch import WatchedApp, write_app

POLICIES = [SecurityPolicy.trusted(), SecurityPolicy.sandboxed(time_limit=5)]
V1 = """var Count = 0
var Items = []
var Label = "v1"
class C {
  static bump() {
    Count = Count + 1
    Items.add(Count)
    __calls = (__calls == null ? 0 : __calls) + 1
    return Count
  }
}
"""


@pytest.fixture(params=POLICIES, ids=["trusted", "sandboxed"])
def m(request):
    with ScriptManager(policy=request.param, cache=False) as manager:
        manager.load_script_from_source("c", "wren", V1)
        manager.call_function("c.C.bump")
        manager.call_function("c.C.bump")
        yield manager


def test_data_the_new_version_leaves_null_carries_over(m):
    m.hot_reload_script("c", 'var Count\nvar Items\nvar Label = "v2"\nclass C {\n'
                             "  static bump() {\n    Count = Count + 10\n    __calls = __calls + 1\n    return Count\n  }\n"
                             "  static info() { [Items, Label, __calls] }\n}\n")
    assert m.call_function("c.C.bump") == 12, "Count carried over"
    assert m.call_function("c.C.info") == [[1, 2], "v2", 3], "Items and the static field carried; Label is v2's own"


def test_a_static_field_carries_only_into_a_class_of_the_same_name(m):
    m.hot_reload_script("c", "var Count\nclass D {\n  static calls { __calls }\n}\n")
    assert m.call_function("c.D.calls") is None


def test_on_reload_decides_what_the_new_version_keeps(m):
    m.hot_reload_script("c", "var Count = 0\nvar Seen\nvar Items\n"
                             'var onReload = Fn.new { |old| {"Count": old["Count"] * 100, "Seen": old["Items"].count,'
                             ' "C.__calls": old["C.__calls"] + 40} }\n'
                             "class C {\n  static get() { [Count, Seen, Items == null, __calls] }\n}\n")
    assert m.call_function("c.C.get") == [200, 2, True, 42], "the hook's Map is set; nothing else is carried"


def test_on_reload_may_set_the_state_itself_and_return_null(m):
    m.hot_reload_script("c", "var Count = 7\nvar Items\n"
                             'var onReload = Fn.new { |old|\n  Items = old["Items"] + ["x"]\n}\n'
                             "class C {\n  static get() { [Count, Items] }\n}\n")
    assert m.call_function("c.C.get") == [7, [1, 2, "x"]]


def test_the_hook_sees_only_what_can_cross(m):
    m.hot_reload_script("c", "var Keys\n"
                             "var onReload = Fn.new { |old|\n  Keys = old.keys.toList\n  return null\n}\n"
                             "class C {\n  static keys { Keys }\n}\n")
    assert sorted(m.call_function("c.C.keys")) == ["C.__calls", "Count", "Items", "Label"]


def test_a_failing_hook_rolls_the_reload_back(m):
    doc = m.setup_dom_bridge(Document())
    button = doc.create_element("button", {"id": "b"})
    doc.append_child(doc.root, button)
    with pytest.raises(ScriptError) as info:
        m.hot_reload_script("c", 'import "kryon" for Kryon\n'
                                 'Kryon.addEventListener(Kryon.getElementById("b"), "click") { |e| Count = -1 }\n'
                                 'var Count\nvar onReload = Fn.new { |old| Fiber.abort("cannot migrate") }\n'
                                 "class C {\n  static bump() { -1 }\n}\n")
    assert "cannot migrate" in info.value.message and info.value.language == "wren"
    assert info.value.script == "c"
    assert doc.callback_counts()["listeners"] == 0, "the new version's listener is gone"
    doc.dispatch_event("b", "click")
    assert m.call_function("c.C.bump") == 3, "the old version runs on with its state"


@pytest.mark.parametrize("hook, words", [
    ("Fn.new { |old| 42 }", "must return a Map"),
    ("Fn.new { |old| Count = 1 }", "one-line Fn"),
    ('Fn.new { |old| {"Nope": 1} }', "'Nope'"),
    ("Fn.new { |old| {1: 1} }", "not a String"),
    ('Fn.new { |old| {"List": 1} }', "'List'"),
    ("42", "must be a Fn"),
    ("Fn.new { 1 }", "Fn"),
])
def test_a_hook_that_returns_what_cannot_be_set_rolls_back(m, hook, words):
    with pytest.raises(ScriptError) as info:
        m.hot_reload_script("c", f"var Count\nvar onReload = {hook}\nclass C {{\n  static bump() {{ -1 }}\n}}\n")
    assert words in info.value.message
    assert m.call_function("c.C.bump") == 3


def test_an_endless_hook_hits_the_time_limit_and_rolls_back():
    with ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=0.3), cache=False) as m:
        m.load_script_from_source("c", "wren", V1)
        m.call_function("c.C.bump")
        with pytest.raises(ScriptError) as info:
            m.hot_reload_script("c", "var onReload = Fn.new { |old|\n  while (true) {}\n}\n"
                                     "class C {\n  static bump() { -1 }\n}\n")
        assert type(info.value).__name__ == "ScriptTimeoutError"
        assert m.call_function("c.C.bump") == 2


SHAPES = """var Shared
var Both
var Cycle
var Origin
var Host
var Gone
var Fun
class Point {
  construct new(x, y) {
    _x = x
    _y = y
  }
  sum { _x + _y }
}
class C {
  static check() {
    return [Both[0] == Both[1], Cycle[1] == Cycle, Origin.sum, Origin is Point, Host, Gone, Fun, Shared]
  }
}
"""


@pytest.mark.parametrize("policy", POLICIES, ids=["trusted", "sandboxed"])
def test_shapes_identity_instances_and_host_objects_cross(policy):
    marker = UserData(object())
    with ScriptManager(policy=policy, cache=False) as m:
        m.engine("wren").set_global("marker", marker)
        m.load_script_from_source("c", "wren", """import "kryon" for Kryon
var Shared = {"a": [1, 2.5, null, true], 3: "three"}
var Both = [Shared, Shared]
var Cycle = [1]
Cycle.add(Cycle)
class Point {
  construct new(x, y) {
    _x = x
    _y = y
  }
}
class Old {
  construct new() {}
}
var Origin = Point.new(3, 4)
var Host = Kryon.global("marker")
var Gone = Old.new()
var Fun = Fn.new { 1 }
""")
        m.hot_reload_script("c", SHAPES)
        both, cycle, total, is_point, host, gone, fun, shared = m.call_function("c.C.check")
        assert (both, cycle, total, is_point) == (True, True, 7, True)
        assert host is marker, "a host object crosses as itself"
        assert gone is None and fun is None, "an instance of a removed class and a Fn stay behind"
        assert shared == {"a": [1, 2.5, None, True], "3": "three"}


def test_an_instance_whose_class_changed_its_fields_stays_behind():
    with ScriptManager(cache=False) as m:
        m.load_script_from_source("c", "wren", "class P {\n  construct new() { _a = 1 }\n}\nvar It = P.new()\nvar N = 5\n")
        m.hot_reload_script("c", "class P {\n  construct new() {\n    _a = 1\n    _b = 2\n  }\n}\nvar It\nvar N\n"
                                 "class C {\n  static get() { [It, N] }\n}\n")
        assert m.call_function("c.C.get") == [None, 5]


def test_deep_nesting_stays_behind_and_the_rest_carries():
    with ScriptManager(cache=False) as m:
        m.load_script_from_source("c", "wren", "var Deep = []\nvar L = Deep\nfor (i in 1..500) {\n"
                                               "  var n = []\n  L.add(n)\n  L = n\n}\nvar N = 5\n")
        m.hot_reload_script("c", "var Deep\nvar N\nclass C {\n  static get() { [Deep, N] }\n}\n")
        assert m.call_function("c.C.get") == [None, 5]


def test_reloads_in_a_row_keep_counting():
    with ScriptManager(cache=False) as m:
        m.load_script_from_source("c", "wren", V1)
        for n in range(1, 6):
            assert m.call_function("c.C.bump") == n
            m.hot_reload_script("c", V1.replace("var Count = 0", "var Count").replace("var Items = []", "var Items"))
        assert m.call_function("c.C.bump") == 6


APP_V1 = """import "kryon" for Kryon
var Clicks = 0
Kryon.addEventListener(Kryon.getElementById("b"), "click") { |e|
  Clicks = Clicks + 1
  Kryon.setProperty(Kryon.getElementById("l"), "text", "v1 %(Clicks)")
}
"""
APP_V2 = APP_V1.replace("var Clicks = 0", "var Clicks").replace('"v1 ', '"v2 ')


def _app(tmp_path):
    return write_app(tmp_path, {"ui.wren": APP_V1})


def test_app_reload_moves_callbacks_and_keeps_the_count(tmp_path):
    from kryon_core.app import App

    app = App.load(_app(tmp_path))
    doc = app.document
    try:
        doc.click("b")
        doc.click("b")
        assert doc.get_property("l", "text") == "v1 2"
        (tmp_path / "ui.wren").write_text(APP_V2)
        assert app.reload(tmp_path / "ui.wren")
        assert doc.callback_counts()["listeners"] == 1
        doc.click("b")
        assert doc.get_property("l", "text") == "v2 3", "the new listener, the old count"
        (tmp_path / "ui.wren").write_text(APP_V2 + 'var onReload = Fn.new { |old| Fiber.abort("no") }\n')
        assert not app.reload(tmp_path / "ui.wren")
        assert app.errors and "old version kept" in app.errors[-1]
        doc.click("b")
        assert doc.get_property("l", "text") == "v2 4"
        assert doc.callback_counts()["listeners"] == 1
    finally:
        app.manager.close()


def test_watch_reloads_a_wren_script_and_keeps_its_state(tmp_path):
    pytest.importorskip("watchfiles")
    _app(tmp_path)
    with WatchedApp(tmp_path, timeout=60) as app:
        app.watching()
        app.edit(tmp_path / "ui.wren", APP_V2, "reloaded ui.wren")
        broken = APP_V2 + 'var onReload = Fn.new { |old| Fiber.abort("no migration") }\n'
        assert "no migration" in app.edit(tmp_path / "ui.wren", broken, "old version kept", "stderr")


def test_copying_a_big_state_is_not_cut_short_by_the_time_limit():
    """Copying runs no script code: neither version's deadline applies to it
    (the old one's would kill the old version), only to the hook."""
    with ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=0.25), cache=False) as m:
        m.load_script_from_source("c", "wren", "var Big = List.filled(100000, 1)\nBig[-1] = 2\n"
                                               "class C {\n  static size { Big.count + Big[-1] }\n}\n")
        m.hot_reload_script("c", "var Big\nclass C {\n  static size { Big.count + Big[-1] }\n}\n")
        assert m.call_function("c.C.size") == 100002
        m.hot_reload_script("c", "var Big\nvar onReload = Fn.new { |old|\n  Big = old[\"Big\"]\n  return null\n}\n"
                                 "class C {\n  static size { Big.count }\n}\n")
        assert m.call_function("c.C.size") == 100000
