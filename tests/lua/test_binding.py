"""Each Lua script's ``kryon`` table is its own, bound to its view of the
bridge: calls carry the script's identity and policy, and what a script
registers is owned by it."""

import pytest

pytest.importorskip("kryon_lua")

from kryon_core import Document, DOMError, ScriptError, ScriptManager, SecurityPolicy  # noqa: E402

EMPTY = {"listeners": 0, "watchers": 0, "timers": 0, "animations": 0}

UI = """
kryon.addEventListener(kryon.getElementById("btn"), "click", function() clicks = (clicks or 0) + 1 end)
kryon.watchVariable("v", function() end)
kryon.setTimeout(function() end, 100000)
function get() return clicks end
"""


@pytest.fixture(params=["trusted", "sandboxed"])
def manager(request):
    policy = SecurityPolicy.trusted() if request.param == "trusted" else SecurityPolicy.sandboxed(time_limit=5)
    m = ScriptManager(policy=policy, cache=False, output=lambda lang, text: None)
    doc = m.setup_dom_bridge(Document())
    doc.append_child(doc.root, doc.create_element("button", {"id": "btn"}))
    yield m
    m.close()


def test_registrations_are_owned_and_released(manager):
    doc = manager.dom
    for _ in range(3):
        manager.load_script_from_source("ui", "lua", UI)
        assert doc.callback_counts() == {"listeners": 1, "watchers": 1, "timers": 1, "animations": 0}
        assert doc.click("btn") == 1
        manager.hot_reload_script("ui", UI)
        assert doc.callback_counts()["listeners"] == 1, "a reload replaces the old version's listener"
        with pytest.raises(ScriptError):
            manager.hot_reload_script("ui", UI + "\nerror('broken')\n")
        assert doc.callback_counts()["listeners"] == 1, "a failed reload takes back what it registered"
        manager.unload_script("ui")
        assert doc.callback_counts() == EMPTY
        assert doc.click("btn") == 0


def test_each_script_has_its_own_read_only_table(manager):
    manager.load_script_from_source("a", "lua", """
function same() return kryon.log == kryon.log end
function unknown() return kryon.noSuchThing end
function write() kryon.log = nil end
function table_of() return tostring(kryon) end
""")
    manager.load_script_from_source("b", "lua", "function table_of() return tostring(kryon) end")
    assert manager.call_function("a.same") is True
    assert manager.call_function("a.unknown") is None
    with pytest.raises(ScriptError, match="read-only"):
        manager.call_function("a.write")
    assert manager.call_function("a.table_of") != manager.call_function("b.table_of")


def test_calls_carry_the_callers_trust():
    """A sandboxed script may call a trusted one only through an export (the
    contract has the full matrix); here the refusal names the caller."""
    m = ScriptManager(policy=SecurityPolicy.trusted(), cache=False)
    try:
        m.load_script_from_source("app", "lua", "function secret() return 42 end")
        m.load_script_from_source("guest", "lua", 'function f() return kryon.call("app.secret") end',
                                  policy=SecurityPolicy.sandboxed())
        with pytest.raises(ScriptError, match="expose"):
            m.call_function("guest.f")
        m.expose("app.secret", to="guest")
        assert m.call_function("guest.f") == 42
    finally:
        m.close()


def test_kryon_call_goes_straight_to_the_route_with_the_views_errors(manager, monkeypatch):
    """A script's ``kryon.call`` is the view's router (no frame between the
    script and the route): no name reaches the view's method, a name that is
    not a string is refused by the router as the method refuses it, and
    errors name the language, script and line."""
    from kryon_core import ScriptBridge

    general = ScriptBridge.call
    reached = []

    def counted(self, *args):
        reached.append(args[0])
        return general(self, *args)

    monkeypatch.setattr(ScriptBridge, "call", counted)
    manager.load_script_from_source("lib", "lua", "function twice(x) return x * 2 end")
    manager.load_script_from_source("app", "lua", """
function go(x) return kryon.call("lib.twice", x) end
function missing()
  return kryon.call("lib.nope")
end
function odd() return kryon.call(42) end
""")
    assert manager.call_function("app.go", [21]) == 42
    with pytest.raises(ScriptError) as info:
        manager.call_function("app.missing")
    assert (info.value.language, info.value.script, info.value.line) == ("lua", "app", 4)
    assert reached == []
    with pytest.raises(DOMError, match="function name must be a string, not int") as info:
        manager.call_function("app.odd")
    assert (info.value.language, info.value.script, info.value.line) == ("lua", "app", 6)
    assert reached == []
