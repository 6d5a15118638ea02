"""``kryon.setProperty(handle, name, scalar)`` has its own way into the host
(``prelude.js`` ``setProperty`` -> ``kryon_js.inbound.dom_set``): it must do
what the general path does. The general path is reached here with the same
values by naming the element by its id string (not a handle) or by passing a
value that is not a scalar; results, errors, limits and the script's line
must agree."""

from __future__ import annotations

import math

import pytest

from kryon_core import (
    ConversionError,
    Document,
    DOMError,
    ScriptManager,
    ScriptRuntimeError,
    ScriptTimeoutError,
    SecurityPolicy,
    SizeLimitError,
)

pytest.importorskip("kryon_js")

import kryon_js.state  # noqa: E402

JS = "javascript"
POLICIES = {"trusted": SecurityPolicy.trusted(), "sandboxed": SecurityPolicy.sandboxed()}

SCRIPT = """
const el = kryon.getElementById("box");
function both(v) {            // fast path to x, general path (element by id) to y
  kryon.setProperty(el, "x", v);
  kryon.setProperty("box", "y", v);
}
function fast(name, v) { kryon.setProperty(el, name, v); }
function general(name, v) { kryon.setProperty("box", name, v); }
function fastCaught(name, v) { try { kryon.setProperty(el, name, v); return "ok"; } catch (e) { return e.name + ": " + e.message; } }
function generalCaught(name, v) { try { kryon.setProperty("box", name, v); return "ok"; } catch (e) { return e.name + ": " + e.message; } }
function twoArgs() { kryon.setProperty(el, "x"); }
function fourArgs() { kryon.setProperty(el, "x", 1, 2); }
function special(which) {
  const vs = { negZero: -0, nan: NaN, inf: Infinity, half: 2.5, whole: 3.0, big: 2 ** 53 + 2, int32: 2 ** 31,
               undef: undefined, nul: null, t: true, f: false, s: "10px", astral: "\\u{1F600}", lone: "\\uD800",
               nul0: "a\\u0000b" };
  both(vs[which]);
}
function loop(n) { for (let i = 0; i < n; i++) kryon.setProperty(el, "x", i); return n; }
"""


def make(policy: SecurityPolicy, **doc_args: object) -> tuple[ScriptManager, Document]:
    mgr = ScriptManager(cache_dir=False, policy=policy, output=lambda lang, text: None)
    doc = mgr.setup_dom_bridge(Document(**doc_args))  # type: ignore[arg-type]
    doc.append_child(doc.root, doc.create_element("div", {"id": "box"}))
    mgr.load_script_from_source("ui", JS, SCRIPT)
    return mgr, doc


@pytest.fixture(params=sorted(POLICIES))
def ui(request):
    mgr, doc = make(POLICIES[request.param])
    yield mgr, doc
    mgr.close()


@pytest.fixture
def fast_calls(monkeypatch) -> list[tuple[object, ...]]:
    """Every call of the fast entry, for scripts loaded after the fixture."""
    calls: list[tuple[object, ...]] = []
    real = kryon_js.state.dom_set

    def counting(state, uid, name, value):
        calls.append((uid, name, value))
        return real(state, uid, name, value)

    monkeypatch.setattr(kryon_js.state, "dom_set", counting)
    return calls


def props(doc: Document) -> dict[str, object]:
    return doc.element("box").properties


@pytest.mark.parametrize("which", ["negZero", "nan", "inf", "half", "whole", "big", "int32", "undef", "nul", "t", "f",
                                   "s", "astral", "lone", "nul0"])
def test_a_scalar_arrives_as_the_general_path_gives_it(fast_calls, which):
    for policy in (SecurityPolicy.trusted(), SecurityPolicy.sandboxed()):
        mgr, doc = make(policy)
        with mgr:
            fast_calls.clear()
            mgr.call_function("ui.special", [which])
            x, y = props(doc)["x"], props(doc)["y"]
            assert type(x) is type(y)
            if isinstance(x, float) and math.isnan(x):
                assert math.isnan(y)  # type: ignore[arg-type]
            else:
                assert x == y
                if isinstance(x, float):
                    assert math.copysign(1.0, x) == math.copysign(1.0, y)  # type: ignore[arg-type]
            # strings that do not cross as they are (a lone surrogate, NUL) take the general path
            taken = which not in ("lone", "nul0")
            assert len(fast_calls) == (1 if taken else 0), which


def test_the_values_are_exact(ui):
    mgr, doc = ui
    mgr.call_function("ui.fast", ["a", 2.5])
    mgr.call_function("ui.fast", ["b", 7])
    mgr.call_function("ui.fast", ["c", "\U0001f600"])
    mgr.call_function("ui.fast", ["d", None])
    assert props(doc) == {"a": 2.5, "b": 7, "c": "\U0001f600", "d": None}
    assert type(props(doc)["b"]) is int


def test_the_loop_goes_through_the_fast_entry_only(fast_calls):
    mgr, doc = make(SecurityPolicy.sandboxed())
    with mgr:
        seen: list[object] = []
        doc.observe(lambda kind, details: seen.append(details["value"]))
        assert mgr.call_function("ui.loop", [50]) == 50
        assert len(fast_calls) == 50
        assert seen == list(range(50))
        assert props(doc)["x"] == 49


@pytest.mark.parametrize(("name", "value"), [("id", 1), ("x", [1, 2])])
def test_errors_match_the_general_path(ui, name, value):
    mgr, _ = ui
    fast = mgr.call_function("ui.fastCaught", [name, value])
    general = mgr.call_function("ui.generalCaught", [name, value])
    assert fast == general
    if name == "id":
        assert fast == "DOMError: an element's id cannot be changed"


def test_a_stale_element_is_a_domerror_with_the_script_line(ui):
    mgr, doc = ui
    doc.remove_element("box")
    with pytest.raises(DOMError) as fast:
        mgr.call_function("ui.fast", ["x", 1])
    with pytest.raises(DOMError) as general:  # an object value takes the general path
        mgr.call_function("ui.fast", ["x", {"a": 1}])
    assert str(fast.value.message) == str(general.value.message)
    assert "no element" in fast.value.message
    assert fast.value.language == JS and fast.value.script == "ui"
    assert fast.value.line == 7  # the line of kryon.setProperty in fast()
    caught = mgr.call_function("ui.fastCaught", ["x", 1])
    assert caught.startswith("DOMError: no element")


def test_arity_is_checked_as_before(ui):
    mgr, _ = ui
    with pytest.raises(ScriptRuntimeError, match=r"kryon.setProperty takes 3 argument\(s\), 2 given"):
        mgr.call_function("ui.twoArgs")
    with pytest.raises(ScriptRuntimeError, match=r"kryon.setProperty takes 3 argument\(s\), 4 given"):
        mgr.call_function("ui.fourArgs")


def test_size_limits_hold_on_the_fast_path(fast_calls):
    mgr, doc = make(SecurityPolicy.sandboxed(max_value_size=64))
    with mgr:
        # the long strings are made inside the script (passing them in would hit the limit on the way in)
        mgr.evaluate(JS, script="ui", code="""
            function long(el, name, value) { kryon.setProperty(el, "n".repeat(name) || "x", "v".repeat(value)); }""")
        for element in ("el", "'box'"):  # a handle (fast path), an id string (general path)
            mgr.evaluate(JS, script="ui", code=f"function longOn(n, v) {{ long({element}, n, v); }}")
            with pytest.raises(SizeLimitError, match="a string crossing"):
                mgr.call_function("ui.longOn", [0, 65])
            with pytest.raises(SizeLimitError, match="a string crossing"):
                mgr.call_function("ui.longOn", [65, 1])
        assert "x" not in props(doc)
        assert len(fast_calls) == 2  # the checks ran in the fast entry
        mgr.call_function("ui.fast", ["x", "v" * 60])
        assert props(doc)["x"] == "v" * 60


def test_without_a_document_it_is_a_domerror():
    mgr = ScriptManager(cache_dir=False, policy=SecurityPolicy.sandboxed(), output=lambda lang, text: None)
    with mgr:
        doc = Document()
        doc.append_child(doc.root, doc.create_element("div", {"id": "box"}))
        mgr.setup_dom_bridge(doc)
        mgr.load_script_from_source("ui", JS, SCRIPT)
        mgr.setup_dom_bridge(Document())  # a new document: the script's handle names nothing in it
        with pytest.raises(DOMError, match="no element"):
            mgr.call_function("ui.fast", ["x", 1])
        assert "x" not in props(doc)


def test_a_handle_the_script_dropped_from_the_host_table_is_refused(ui):
    mgr, _ = ui
    state = next(s for s in _states(mgr) if s.script == "ui")
    state.handles.ud_objs.clear()  # as if swept
    with pytest.raises(ConversionError, match="unknown handle"):
        mgr.call_function("ui.fast", ["x", 1])


def test_an_observer_calling_back_into_the_script_nests_correctly(ui):
    mgr, doc = ui
    mgr.evaluate(JS, script="ui", code="var seen = []; function note(v) { seen.push(v); return seen.length; }")
    counts: list[object] = []
    doc.observe(lambda kind, details: counts.append(mgr.call_function("ui.note", [details["value"]])))
    mgr.call_function("ui.loop", [3])
    assert counts == [1, 2, 3]
    assert mgr.evaluate(JS, script="ui", code="seen.join(',')") == "0,1,2"


def test_a_loop_of_writes_still_hits_the_time_limit():
    mgr, _ = make(SecurityPolicy.sandboxed(time_limit=0.3))
    with mgr:
        mgr.evaluate(JS, script="ui", code="function forever() { for (let i = 0; ; i++) kryon.setProperty(el, 'x', i); }")
        with pytest.raises(ScriptTimeoutError):
            mgr.call_function("ui.forever")
        assert mgr.call_function("ui.loop", [3]) == 3  # the script still works afterwards


def _states(mgr: ScriptManager) -> list[kryon_js.state.ScriptState]:
    engine = mgr.engine(JS)
    found = []
    for value in vars(engine).values():
        if isinstance(value, dict):
            found += [v for v in value.values() if isinstance(v, kryon_js.state.ScriptState)]
    return found
