"""What a script stores in the document is charged to it (kryon_core/domquota.py): every kind of
DOM write, from every language, stops at the script's quota with a MemoryLimitError naming
script, language and line, stores nothing past it, and is released on overwrite, removal, a
timer firing and unload; a bystander keeps its state; a trusted policy has no quota."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator

import pytest

from kryon_core import Document, MemoryLimitError, ScriptManager, SecurityPolicy

ENTRIES = 40
BYTES = 64 * 1024
KINDS = ("vars", "props", "styles", "classes", "elems", "listeners", "watchers", "timers", "anims", "flashes")

LUA = """\
local box = kryon.getElementById("box")
local function cb() end
function vars(n) for i = 1, n do kryon.setVariable("v" .. i, i) end end
function props(n) for i = 1, n do kryon.setProperty(box, "p" .. i, i) end end
function styles(n) for i = 1, n do kryon.setStyle(box, "s" .. i, i) end end
function classes(n) for i = 1, n do kryon.addClass(box, "c" .. i) end end
function elems(n) for i = 1, n do kryon.appendChild(box, kryon.createElement("div")) end end
function listeners(n) for i = 1, n do kryon.addEventListener(box, "e", cb) end end
function watchers(n) for i = 1, n do kryon.watchVariable("w", cb) end end
function timers(n) for i = 1, n do kryon.setTimeout(cb, 1000) end end
function anims(n) for i = 1, n do kryon.animate(box, {property = "a" .. i, to = 1, duration = 1000}) end end
function flashes(n) for i = 1, n do kryon.animate(box, {property = "f" .. i, to = i, duration = 0}) end end
function same(n) for i = 1, n do kryon.setVariable("same", i) end end
function churn(n) for i = 1, n do kryon.removeElement(kryon.createElement("div")) end end
function big(n) kryon.setVariable("big", ("x"):rep(n)) end
"""

JS = """\
const box = kryon.getElementById("box");
function cb() {}
function vars(n) { for (let i = 1; i <= n; i++) kryon.setVariable("v" + i, i); }
function props(n) { for (let i = 1; i <= n; i++) kryon.setProperty(box, "p" + i, i); }
function styles(n) { for (let i = 1; i <= n; i++) kryon.setStyle(box, "s" + i, i); }
function classes(n) { for (let i = 1; i <= n; i++) kryon.addClass(box, "c" + i); }
function elems(n) { for (let i = 1; i <= n; i++) kryon.appendChild(box, kryon.createElement("div")); }
function listeners(n) { for (let i = 1; i <= n; i++) kryon.addEventListener(box, "e", cb); }
function watchers(n) { for (let i = 1; i <= n; i++) kryon.watchVariable("w", cb); }
function timers(n) { for (let i = 1; i <= n; i++) kryon.setTimeout(cb, 1000); }
function anims(n) { for (let i = 1; i <= n; i++) kryon.animate(box, {property: "a" + i, to: 1, duration: 1000}); }
function flashes(n) { for (let i = 1; i <= n; i++) kryon.animate(box, {property: "f" + i, to: i, duration: 0}); }
function same(n) { for (let i = 1; i <= n; i++) kryon.setVariable("same", i); }
function churn(n) { for (let i = 1; i <= n; i++) kryon.removeElement(kryon.createElement("div")); }
function big(n) { kryon.setVariable("big", "x".repeat(n)); }
"""

WREN = """\
import "kryon" for Kryon
class W {
  static box { Kryon.getElementById("box") }
  static cb { Fn.new { } }
  static vars(n) { for (i in 1..n) Kryon.setVariable("v%(i)", i) }
  static props(n) { for (i in 1..n) Kryon.setProperty(box, "p%(i)", i) }
  static styles(n) { for (i in 1..n) Kryon.setStyle(box, "s%(i)", i) }
  static classes(n) { for (i in 1..n) Kryon.addClass(box, "c%(i)") }
  static elems(n) { for (i in 1..n) Kryon.appendChild(box, Kryon.createElement("div")) }
  static listeners(n) { for (i in 1..n) Kryon.addEventListener(box, "e", cb) }
  static watchers(n) { for (i in 1..n) Kryon.watchVariable("w", cb) }
  static timers(n) { for (i in 1..n) Kryon.setTimeout(cb, 1000) }
  static anims(n) { for (i in 1..n) Kryon.animate(box, {"property": "a%(i)", "to": 1, "duration": 1000}) }
  static flashes(n) { for (i in 1..n) Kryon.animate(box, {"property": "f%(i)", "to": i, "duration": 0}) }
  static same(n) { for (i in 1..n) Kryon.setVariable("same", i) }
  static churn(n) { for (i in 1..n) Kryon.removeElement(Kryon.createElement("div")) }
  static big(n) { Kryon.setVariable("big", "x" * n) }
}
"""

PYTHON = """\
import kryon
box = kryon.get_element_by_id("box")
def cb(*args): pass
def vars(n):
    for i in range(1, n + 1): kryon.set_variable("v%d" % i, i)
def props(n):
    for i in range(1, n + 1): kryon.set_property(box, "p%d" % i, i)
def styles(n):
    for i in range(1, n + 1): kryon.set_style(box, "s%d" % i, i)
def classes(n):
    for i in range(1, n + 1): kryon.add_class(box, "c%d" % i)
def elems(n):
    for i in range(1, n + 1): kryon.append_child(box, kryon.create_element("div"))
def listeners(n):
    for i in range(1, n + 1): kryon.add_event_listener(box, "e", cb)
def watchers(n):
    for i in range(1, n + 1): kryon.watch_variable("w", cb)
def timers(n):
    for i in range(1, n + 1): kryon.set_timeout(cb, 1000)
def anims(n):
    for i in range(1, n + 1): kryon.animate(box, {"property": "a%d" % i, "to": 1, "duration": 1000})
def flashes(n):
    for i in range(1, n + 1): kryon.animate(box, {"property": "f%d" % i, "to": i, "duration": 0})
def same(n):
    for i in range(1, n + 1): kryon.set_variable("same", i)
def churn(n):
    for i in range(1, n + 1): kryon.remove_element(kryon.create_element("div"))
def big(n):
    kryon.set_variable("big", "x" * n)
"""

LISP = """\
(setv box (get-element-by-id "box"))
(defn cb [#* args] None)
(defn vars [n] (for [i (range 1 (+ n 1))] (set-variable! (+ "v" (str i)) i)))
(defn props [n] (for [i (range 1 (+ n 1))] (set-property! box (+ "p" (str i)) i)))
(defn styles [n] (for [i (range 1 (+ n 1))] (set-style! box (+ "s" (str i)) i)))
(defn classes [n] (for [i (range 1 (+ n 1))] (add-class! box (+ "c" (str i)))))
(defn elems [n] (for [i (range 1 (+ n 1))] (append-child! box (create-element "div"))))
(defn listeners [n] (for [i (range 1 (+ n 1))] (add-event-listener! box "e" cb)))
(defn watchers [n] (for [i (range 1 (+ n 1))] (watch-variable! "w" cb)))
(defn timers [n] (for [i (range 1 (+ n 1))] (set-timeout! cb 1000)))
(defn anims [n] (for [i (range 1 (+ n 1))] (animate! box {"property" (+ "a" (str i)) "to" 1 "duration" 1000})))
(defn flashes [n] (for [i (range 1 (+ n 1))] (animate! box {"property" (+ "f" (str i)) "to" i "duration" 0})))
(defn same [n] (for [i (range 1 (+ n 1))] (set-variable! "same" i)))
(defn churn [n] (for [i (range 1 (+ n 1))] (remove-element! (create-element "div"))))
(defn big [n] (set-variable! "big" (* "x" n)))
"""

SOURCES = {"lua": LUA, "javascript": JS, "wren": WREN, "python": PYTHON, "lisp": LISP}
PLUGINS = {"lua": "kryon_lua", "javascript": "kryon_js", "wren": "kryon_wren", "python": "kryon_python", "lisp": "kryon_lisp"}
BYSTANDER = """\
kryon.setVariable("mine", 7)
function get() return kryon.getVariable("mine") end
function put(n) kryon.setVariable("mine", n) end
"""


def _manager(policy: SecurityPolicy) -> tuple[ScriptManager, Document]:
    m = ScriptManager(policy=policy, cache=False, output=lambda lang, text: None)
    doc = m.setup_dom_bridge(Document())
    doc.append_child(doc.root, doc.create_element("div", {"id": "box"}))
    return m, doc


@pytest.fixture(params=list(SOURCES))
def hog(request: pytest.FixtureRequest) -> Iterator[tuple[ScriptManager, Document, str]]:
    language: str = request.param
    if importlib.util.find_spec(PLUGINS[language]) is None:
        pytest.skip(f"{language} is not installed")
    if language in ("python", "lisp") and sys.platform != "linux":
        pytest.skip("sandboxed Python and Lisp run in Linux workers")
    policy = SecurityPolicy.sandboxed(time_limit=30, max_dom_entries=ENTRIES, max_dom_bytes=BYTES)
    m, doc = _manager(policy)
    m.load_script_from_source("by", "lua", BYSTANDER)
    m.load_script_from_source("hog", language, SOURCES[language])
    yield m, doc, language
    m.close()


def _fn(language: str, name: str) -> str:
    return f"hog.W.{name}" if language == "wren" else f"hog.{name}"


def _over(m: ScriptManager, language: str, name: str, n: int, match: str) -> MemoryLimitError:
    with pytest.raises(MemoryLimitError, match=match) as info:
        m.call_function(_fn(language, name), [n])
    err = info.value
    assert (err.language, err.script) == (language, "hog"), err
    assert err.line is not None and err.line > 0, f"{name}: the error names the script line ({err!r})"
    return err


def test_every_kind_of_write_stops_at_the_entry_quota_and_unload_releases_it(hog):
    m, doc, language = hog
    for kind in KINDS:
        _over(m, language, kind, 3 * ENTRIES, "max_dom_entries")
        usage = doc.dom_usage(language, "hog")
        # an animation holds two entries while it starts (itself and its property), one once done
        full = ENTRIES - 1 if kind == "flashes" else ENTRIES
        assert usage.entries == full, f"{kind}: nothing stored past the quota ({usage})"
        m.unload_script("hog")
        assert doc.dom_usage(language, "hog").entries == 0, f"{kind}: unload releases what the script held"
        m.load_script_from_source("hog", language, SOURCES[language])
    assert doc.get_variable("v1") == 1 and doc.get_variable(f"v{ENTRIES + 1}") is None
    assert m.call_function("by.get") == 7, "the bystander keeps its state"
    m.call_function("by.put", [8])
    assert doc.get_variable("mine") == 8, "and keeps working"


def test_bytes_quota_refuses_a_large_value_and_stores_nothing(hog):
    m, doc, language = hog
    _over(m, language, "big", 2 * BYTES, "max_dom_bytes")
    assert doc.get_variable("big") is None
    m.call_function(_fn(language, "big"), [BYTES // 2])  # fits, and a larger one replaces it...
    assert len(doc.get_variable("big")) == BYTES // 2
    m.call_function(_fn(language, "big"), [BYTES * 3 // 4])  # ...since an overwrite releases the old value
    assert len(doc.get_variable("big")) == BYTES * 3 // 4
    assert m.call_function("by.get") == 7


def test_overwrite_removal_and_fired_timers_release_what_they_held(hog):
    m, doc, language = hog
    m.call_function(_fn(language, "same"), [3 * ENTRIES])  # one variable written over and over
    assert doc.dom_usage(language, "hog").entries == 1
    m.call_function(_fn(language, "churn"), [3 * ENTRIES])  # elements made and removed
    assert doc.dom_usage(language, "hog").entries == 1
    _over(m, language, "elems", 3 * ENTRIES, "max_dom_entries")
    for child in list(doc.element("box").children):  # the host removes them
        doc.remove_element(child)
    assert doc.dom_usage(language, "hog").entries == 1
    _over(m, language, "timers", 3 * ENTRIES, "max_dom_entries")
    doc.advance(2000)  # the timeouts fire
    assert doc.dom_usage(language, "hog").entries == 1
    m.call_function(_fn(language, "timers"), [ENTRIES - 1])
    doc.set_variable("same", "host")  # a host write takes the slot from the script
    assert doc.dom_usage(language, "hog").entries == ENTRIES - 1
    assert m.call_function("by.get") == 7


def test_a_trusted_policy_has_no_dom_quota():
    m, doc = _manager(SecurityPolicy.trusted())
    try:
        m.load_script_from_source("hog", "lua", LUA)
        for kind in KINDS:
            m.call_function(f"hog.{kind}", [3 * ENTRIES])
        m.call_function("hog.big", [4 * BYTES])
        assert len(doc.variables) > 3 * ENTRIES and doc.dom_usage("lua", "hog").entries == 0
    finally:
        m.close()


def test_an_animation_charges_the_property_it_writes():
    doc = Document()
    box = doc.create_element("div")
    policy = SecurityPolicy.sandboxed(max_dom_entries=None, max_dom_bytes=4096)
    by = (("lua", "a"), policy)
    with pytest.raises(MemoryLimitError, match="max_dom_bytes"):  # its final value would not fit
        doc.animate(box, {"property": "x", "to": "y" * 8192, "duration": 0}, by=by)
    assert doc.get_property(box, "x") is None and doc.dom_usage("lua", "a").entries == 0
    doc.animate(box, {"property": "x", "to": 1, "duration": 100}, by=by)
    doc.advance(200)  # finished: the animation's entry is released, the property it set stays charged
    assert doc.get_property(box, "x") == 1 and doc.dom_usage("lua", "a").entries == 1


def test_the_document_moves_a_slot_between_writers():
    doc = Document()
    box = doc.create_element("div")
    policy = SecurityPolicy.sandboxed(max_dom_entries=2, max_dom_bytes=None)
    a, b = (("lua", "a"), policy), (("lua", "b"), policy)
    doc.set_property(box, "x", 1, by=a)
    doc.set_property(box, "x", 2, by=b)  # b overwrote a's value: b pays for it now
    assert doc.dom_usage("lua", "a").entries == 0 and doc.dom_usage("lua", "b").entries == 1
    doc.add_class(box, "k", by=b)
    with pytest.raises(MemoryLimitError):
        doc.set_variable("v", 1, by=b)
    assert "v" not in doc.variables
    doc.remove_class(box, "k")
    doc.set_variable("v", 1, by=b)
    doc.remove_element(box)
    assert doc.dom_usage("lua", "b").entries == 1, "the element's property went with it; the variable stays"
