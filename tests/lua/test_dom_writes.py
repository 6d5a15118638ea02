"""A host function called from Lua takes scalar arguments within the size
limit and element handles as they are (``kryon_lua.runtime.AS_THEY_ARE``),
with or without a memory cap, and a None result goes back without
conversion: ``kryon.setProperty`` from Lua must give what converting every
argument gives. The general conversion is reached with the same values by
putting them in a table; errors keep the script's line; the size limit and
the memory cap still hold."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("kryon_lua")

import kryon_lua.values  # noqa: E402

from kryon_core import (  # noqa: E402
    Document,
    DOMError,
    MemoryLimitError,
    ScriptManager,
    SecurityPolicy,
    SizeLimitError,
)

LUA = "lua"
SCRIPT = """\
el = kryon.getElementById("box")
function set(name, v) kryon.setProperty(el, name, v) end
function boxed(name, v) kryon.setProperty(el, name, {v}) end
function long(n) kryon.setProperty(el, "x", string.rep("v", n)) end
function longName(n) kryon.setProperty(el, string.rep("n", n), 1) end
function loop(n) local set = kryon.setProperty for i = 1, n do set(el, "x", i) end return n end
function caught(name, v)
  local ok, err = pcall(kryon.setProperty, el, name, v)
  return ok and "ok" or tostring(err)
end
keep = {}
function hog(n) for i = 1, n do keep[#keep + 1] = string.rep("x", 1000) .. i end return #keep end
"""
POLICIES = {
    "trusted": SecurityPolicy.trusted(),
    "no-cap": SecurityPolicy.sandboxed(memory_limit=None, max_value_size=None),
    "sandboxed": SecurityPolicy.sandboxed(),
    "jit": SecurityPolicy.sandboxed(use_jit=True),
}


def make(policy: SecurityPolicy) -> tuple[ScriptManager, Document]:
    mgr = ScriptManager(cache_dir=False, policy=policy, output=lambda lang, text: None)
    doc = mgr.setup_dom_bridge(Document())
    doc.append_child(doc.root, doc.create_element("div", {"id": "box"}))
    mgr.load_script_from_source("ui", LUA, SCRIPT)
    return mgr, doc


@pytest.fixture(params=sorted(POLICIES))
def ui(request):
    mgr, doc = make(POLICIES[request.param])
    yield mgr, doc
    mgr.close()


@pytest.fixture
def conversions(monkeypatch) -> list[object]:
    """Every value converted by Converter.from_lua (the general conversion)."""
    seen: list[object] = []
    real = kryon_lua.values.Converter.from_lua

    def counting(self, value, depth=0):
        seen.append(value)
        return real(self, value, depth)

    monkeypatch.setattr(kryon_lua.values.Converter, "from_lua", counting)
    return seen


def props(doc: Document) -> dict[str, object]:
    return doc.element("box").properties


@pytest.mark.parametrize("value", [0, -7, 2**40, 2.5, -0.0, math.inf, True, False, None, "10px", "\U0001f600"])
def test_values_arrive_as_the_general_conversion_gives_them(ui, value):
    mgr, doc = ui
    mgr.call_function("ui.set", ["x", value])
    mgr.call_function("ui.boxed", ["y", value])
    x, y = props(doc)["x"], props(doc)["y"]
    assert isinstance(y, list)
    expected = y[0] if y else None  # a nil in a table leaves it empty
    assert type(x) is type(expected) and x == expected
    if isinstance(x, float):
        assert math.copysign(1.0, x) == math.copysign(1.0, expected)


def test_the_write_loop_converts_nothing(conversions):
    for policy in POLICIES.values():
        mgr, doc = make(policy)
        with mgr:
            seen: list[object] = []
            doc.observe(lambda kind, details, seen=seen: seen.append(details["value"]))
            conversions.clear()
            assert mgr.call_function("ui.loop", [40]) == 40
            assert seen == list(range(1, 41))
            assert [c for c in conversions if c == "x" or not isinstance(c, int)] == []


def test_a_stale_element_is_a_domerror_with_the_lua_line(ui):
    mgr, doc = ui
    doc.remove_element("box")
    with pytest.raises(DOMError, match="no element") as info:
        mgr.call_function("ui.set", ["x", 1])
    assert info.value.language == LUA and info.value.script == "ui" and info.value.line == 2
    assert "no element" in mgr.call_function("ui.caught", ["x", 1])


def test_the_id_cannot_change(ui):
    mgr, _ = ui
    assert "an element's id cannot be changed" in mgr.call_function("ui.caught", ["id", "other"])


def test_the_size_limit_holds_for_values_and_names():
    mgr, doc = make(SecurityPolicy.sandboxed(max_value_size=64))
    with mgr:
        with pytest.raises(SizeLimitError):
            mgr.call_function("ui.long", [65])
        with pytest.raises(SizeLimitError):
            mgr.call_function("ui.longName", [65])
        assert "x" not in props(doc)
        mgr.call_function("ui.long", [64])
        assert props(doc)["x"] == "v" * 64


def test_the_memory_cap_holds_after_many_writes():
    mgr, doc = make(SecurityPolicy.sandboxed(memory_limit=4 * 1024 * 1024, time_limit=30))
    with mgr:
        assert mgr.call_function("ui.loop", [2000]) == 2000
        with pytest.raises(MemoryLimitError):
            for _ in range(100):
                mgr.call_function("ui.hog", [200])
        assert props(doc)["x"] == 2000
