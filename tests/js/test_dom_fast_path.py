"""The element methods of ``kryon`` (``kryon_js.bridge.ELEMENT_METHODS``:
``setProperty``, ``getProperty``, ``setStyle``, ``getStyle``, ``addClass``,
``removeClass``, ``hasClass``, ``toggleClass``) have their own way into the
host (``prelude.js`` ``elementMethod`` -> ``kryon_js.inbound.element_call``)
when called with a handle or an element id, a string and at most one scalar.
It must do what the general path (``callHost`` -> ``host_call``) does: the
same script is loaded twice on one document, once without the element entries
(``ELEMENT_METHODS`` emptied while it loads), and every call must give the
same result, the same document and the same error in both."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from kryon_core import (
    ConversionError,
    Document,
    DOMError,
    ElementHandle,
    ScriptManager,
    ScriptRuntimeError,
    ScriptTimeoutError,
    SecurityPolicy,
    SizeLimitError,
)

pytest.importorskip("kryon_js")

import kryon_js.state  # noqa: E402

JS = "javascript"
LIMIT = 1000  # max_value_size of the sandboxed policy here ("=long" is one longer)

SCRIPT = """
const el = kryon.getElementById("box");
const SPECIAL = { negZero: -0, nan: NaN, inf: Infinity, half: 2.5, whole: 3.0, big: 2 ** 53 + 2, int32: 2 ** 31,
                  undef: undefined, nul: null, t: true, f: false, s: "10px", astral: "\\u{1F600}", lone: "\\uD800",
                  nul0: "a\\u0000b", obj: { a: 1 }, list: [1, 2], long: "v".repeat(1001), big2: 10n };
function arg(x) { return x === "@el" ? el : typeof x === "string" && x[0] === "=" ? SPECIAL[x.slice(1)] : x; }
function op(method, ...xs) {   // kryon[method](...xs), "@el" meaning the handle, "=name" a value made here
  try { const r = kryon[method](...xs.map(arg)); return ["ok", r === undefined ? "undefined" : r]; }
  catch (e) { return ["error", e.name + ": " + String(e.message).slice(0, 300)]; }
}
function raw(method, ...xs) { return kryon[method](...xs.map(arg)); }
function loop(n) { for (let i = 0; i < n; i++) kryon.setProperty(el, "x", i); return n; }
"""

METHODS = ["setProperty", "getProperty", "setStyle", "getStyle", "addClass", "removeClass", "hasClass", "toggleClass"]
VALUES = ["=negZero", "=nan", "=inf", "=half", "=whole", "=big", "=int32", "=undef", "=nul", "=t", "=f", "=s",
          "=astral", "=lone", "=nul0", "=obj", "=list", "=long", "=big2", 7, "text"]
ELEMENTS = ["@el", "box", "nope", "=long", 5, "=nul"]
NAMES = ["x", "id", "=long", "=lone", 3, "=nul"]


class Pair:
    """One document, the script loaded with (``fast``) and without (``general``) the element entries."""

    def __init__(self, policy: SecurityPolicy, monkeypatch: pytest.MonkeyPatch) -> None:
        self.mgr = ScriptManager(cache_dir=False, policy=policy, output=lambda lang, text: None)
        self.doc = self.mgr.setup_dom_bridge(Document())
        self.reset()
        self.calls: list[tuple[object, ...]] = []
        real = kryon_js.state.element_call

        def counting(state, fn, uid, *rest):
            self.calls.append((state.script, fn.__name__, *rest))
            return real(state, fn, uid, *rest)

        # the entries are bound per script as it loads: count through the function they are made from
        monkeypatch.setattr(kryon_js.state, "element_call", counting)
        self.mgr.load_script_from_source("fast", JS, SCRIPT)
        with monkeypatch.context() as patch:
            patch.setattr(kryon_js.state, "ELEMENT_METHODS", frozenset())
            self.mgr.load_script_from_source("general", JS, SCRIPT)

    def reset(self) -> None:
        """The element back to its first state (the same element: the scripts hold its handle)."""
        if self.doc.get_element_by_id("box") is None:
            self.doc.append_child(self.doc.root, self.doc.create_element("div", {"id": "box"}))
        el = self.doc.element("box")
        el.properties.clear()
        el.style.clear()
        el.style_name = None
        el.classes[:] = ["a"]

    def both(self, method: str, *args: object) -> tuple[object, object, object, object]:
        """(fast result, document after it, general result, document after it), from the same start."""
        self.reset()
        fast = self.mgr.call_function("fast.op", [method, *args])
        after_fast = _snapshot(self.doc)
        self.reset()
        general = self.mgr.call_function("general.op", [method, *args])
        return fast, after_fast, general, _snapshot(self.doc)


def _snapshot(doc: Document) -> object:
    el = doc.element("box")
    return _comparable({"properties": el.properties, "style": el.style, "style_name": el.style_name,
                        "classes": el.classes})


def _comparable(value: object) -> object:
    """Values compared exactly: types kept, NaN equal to itself, -0.0 apart from 0.0."""
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else value.hex())
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_comparable(v) for v in value]
    return (type(value).__name__, value)


def _states(mgr: ScriptManager) -> list[kryon_js.state.ScriptState]:
    found = []
    for value in vars(mgr.engine(JS)).values():
        if isinstance(value, dict):
            found += [v for v in value.values() if isinstance(v, kryon_js.state.ScriptState)]
    return found


@pytest.fixture(params=["trusted", "sandboxed"])
def pair(request, monkeypatch) -> Iterator[Pair]:
    policy = SecurityPolicy.trusted() if request.param == "trusted" else SecurityPolicy.sandboxed(max_value_size=LIMIT)
    p = Pair(policy, monkeypatch)
    yield p
    p.mgr.close()


def _same(pair: Pair, method: str, *args: object) -> tuple[object, object]:
    fast, fast_doc, general, general_doc = pair.both(method, *args)
    assert _comparable(fast) == _comparable(general), (method, args)
    assert fast_doc == general_doc, (method, args)
    return fast, fast_doc


@pytest.mark.parametrize("method", METHODS)
def test_every_method_and_argument_gives_what_the_general_path_gives(pair, method):
    for element in ELEMENTS:
        for name in NAMES:
            _same(pair, method, element, name)
            for value in VALUES:
                _same(pair, method, element, name, value)
        _same(pair, method, element)
    _same(pair, method)
    _same(pair, method, "@el", "x", 1, 2)


@pytest.mark.parametrize("value", VALUES)
def test_a_value_read_back_is_what_the_general_path_gives(pair, value):
    fast, _ = _same(pair, "setProperty", "@el", "x", value)
    for setter in ("fast", "general"):
        pair.reset()
        pair.mgr.call_function(f"{setter}.op", ["setProperty", "@el", "x", value])
        got = [pair.mgr.call_function(f"{reader}.op", ["getProperty", "@el", "x"]) for reader in ("fast", "general")]
        assert _comparable(got[0]) == _comparable(got[1])


@pytest.mark.parametrize("value", [2**40, -(2**31) - 1, "caf\u00e9", [1, "a"], {"k": 1}, 1.25])
def test_results_that_need_converting_come_back_alike(pair, value):
    for reader in ("fast", "general"):
        pair.reset()
        pair.doc.set_property("box", "v", value)
        assert pair.mgr.call_function(f"{reader}.raw", ["getProperty", "@el", "v"]) == value


def test_a_handle_result_is_the_scripts_own_handle(pair):
    pair.doc.set_property("box", "h", pair.doc.get_element_by_id("box"))
    pair.mgr.evaluate(JS, script="fast", code="var same = kryon.getProperty(el, 'h') === el;")
    assert pair.mgr.evaluate(JS, script="fast", code="same") is True


def test_the_element_entries_are_taken(pair):
    pair.calls.clear()
    pair.mgr.call_function("fast.op", ["setProperty", "@el", "x", "=half"])
    pair.mgr.call_function("fast.op", ["addClass", "box", "b"])
    pair.mgr.call_function("fast.op", ["getStyle", "@el", "w"])
    pair.mgr.call_function("general.op", ["setProperty", "@el", "x", 1])
    pair.mgr.call_function("fast.op", ["setProperty", "@el", "x", "=obj"])  # not a scalar: general path
    pair.mgr.call_function("fast.op", ["setProperty", "@el", "x", "=lone"])  # does not cross as it is
    pair.mgr.call_function("fast.op", ["getStyle", "@el"])  # one argument: general path
    assert pair.calls == [("fast", "set_property", "x", 2.5), ("fast", "add_class", "b"), ("fast", "get_style", "w")]
    assert pair.mgr.call_function("fast.loop", [20]) == 20
    assert len(pair.calls) == 23


def test_errors_carry_the_script_and_line(pair):
    pair.doc.remove_element("box")
    for script in ("fast", "general"):
        with pytest.raises(DOMError, match="no element ElementHandle") as info:
            pair.mgr.call_function(f"{script}.raw", ["setProperty", "@el", "x", 1])
        assert info.value.language == JS and info.value.script == script and info.value.line == 11
    with pytest.raises(DOMError, match="no element 'nope'"):
        pair.mgr.call_function("fast.raw", ["addClass", "nope", "b"])
    with pytest.raises(ScriptRuntimeError, match=r"kryon.setProperty takes 3 argument\(s\), 2 given"):
        pair.mgr.call_function("fast.raw", ["setProperty", "@el", "x"])


def test_size_limits_hold_on_the_element_entry(monkeypatch):
    p = Pair(SecurityPolicy.sandboxed(max_value_size=LIMIT), monkeypatch)
    with p.mgr:
        for args in (["@el", "x", "=long"], ["@el", "=long", 1], ["=long", "x", 1]):
            p.calls.clear()
            with pytest.raises(SizeLimitError, match="a string crossing"):
                p.mgr.call_function("fast.raw", ["setProperty", *args])
            assert len(p.calls) == 1  # refused by the element entry itself
        assert "x" not in p.doc.element("box").properties


def test_without_a_document_it_is_a_domerror():
    with ScriptManager(cache_dir=False, policy=SecurityPolicy.sandboxed(), output=lambda lang, text: None) as mgr:
        mgr.load_script_from_source("ui", JS, "function set() { kryon.setProperty('box', 'x', 1); }")
        with pytest.raises(DOMError, match="no document is attached"):
            mgr.call_function("ui.set")


def test_a_new_document_leaves_old_handles_naming_nothing(pair):
    pair.mgr.setup_dom_bridge(Document())
    with pytest.raises(DOMError, match="no element ElementHandle"):
        pair.mgr.call_function("fast.raw", ["setProperty", "@el", "x", 1])


def test_a_handle_dropped_from_the_host_table_is_refused(pair):
    state = next(s for s in _states(pair.mgr) if s.script == "fast")
    state.handles.ud_objs.clear()  # as if swept
    with pytest.raises(ConversionError, match="unknown handle"):
        pair.mgr.call_function("fast.raw", ["setProperty", "@el", "x", 1])


def test_an_observer_calling_back_into_the_script_nests_correctly(pair):
    pair.mgr.evaluate(JS, script="fast", code="var seen = []; function note(v) { seen.push(v); return seen.length; }")
    counts: list[object] = []
    pair.doc.observe(lambda kind, details: counts.append(pair.mgr.call_function("fast.note", [details["value"]])))
    pair.mgr.call_function("fast.loop", [3])
    assert counts == [1, 2, 3]
    assert pair.mgr.evaluate(JS, script="fast", code="seen.join(',')") == "0,1,2"


def test_a_loop_of_writes_still_hits_the_time_limit():
    with ScriptManager(cache_dir=False, policy=SecurityPolicy.sandboxed(time_limit=0.3),
                       output=lambda lang, text: None) as mgr:
        doc = mgr.setup_dom_bridge(Document())
        doc.append_child(doc.root, doc.create_element("div", {"id": "box"}))
        mgr.load_script_from_source("ui", JS, SCRIPT + "function forever() { for (let i = 0; ; i++) kryon.setProperty(el, 'x', i); }")
        with pytest.raises(ScriptTimeoutError):
            mgr.call_function("ui.forever")
        assert mgr.call_function("ui.loop", [3]) == 3  # the script still works afterwards
        assert isinstance(doc.get_element_by_id("box"), ElementHandle)


def test_a_bigint_argument_crosses_exactly_to_the_api_and_to_host_functions(pair):
    """A BigInt goes as tagged JSON (the binding takes none: it used to fail with a SystemError)."""
    pair.mgr.evaluate(JS, script="fast", code="function big(f) { kryon.setProperty(el, 'b', 2n ** 70n); return f(-(10n ** 20n)); }")
    seen: list[object] = []
    assert pair.mgr.call_function("fast.big", [lambda v: seen.append(v) or "ok"]) == "ok"
    assert pair.doc.element("box").properties["b"] == 2**70
    assert seen == [-(10**20)]
