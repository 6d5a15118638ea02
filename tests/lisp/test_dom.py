"""The kryon API in kebab-case, driven by real Lisp scripts against a Document."""

from __future__ import annotations

import pytest

from kryon_core import Document, FunctionRef, ScriptManager, ScriptRuntimeError, SecurityPolicy

TODO_APP = """
(setv items [])

(defn render []
  (setv lst (get-element-by-id "list"))
  (set-property! lst "count" (len items))
  (set-variable! "remaining" (len (lfor i items :if (not (get i "done")) i))))

(defn add-item! [text]
  (setv el (create-element "li" {:class "item" "text" text}))
  (append-child! (get-element-by-id "list") el)
  (.append items {"text" text "done" False "el" el})
  (render)
  el)

(defn on-add [event]
  (add-item! (get-property (get-element-by-id "input") "value")))

(add-event-listener! (get-element-by-id "add") "click" on-add)
(watch-variable! "remaining"
  (fn [new old name] (log (.format "{}: {} -> {}" name old new))))
"""


@pytest.fixture
def app():
    logs: list[tuple[str, str]] = []
    m = ScriptManager(cache_dir=False, policy=SecurityPolicy.trusted())
    doc = m.setup_dom_bridge(Document(on_log=lambda level, msg: logs.append((level, msg))))
    doc.build(
        {
            "type": "form",
            "children": [
                {"type": "input", "id": "input", "properties": {"value": ""}},
                {"type": "button", "id": "add"},
                {"type": "ul", "id": "list"},
            ],
        }
    )
    yield m, doc, logs
    m.close()


def test_event_handlers_drive_the_document(app):
    m, doc, logs = app
    m.load_script_from_source("todo", "lisp", TODO_APP)
    doc.set_property("input", "value", "write tests")
    assert doc.click("add") == 1
    doc.set_property("input", "value", "ship")
    doc.click("add")
    assert doc.get_property("list", "count") == 2
    items = doc.get_elements_by_class("item")
    assert [doc.get_property(el, "text") for el in items] == ["write tests", "ship"]
    assert doc.get_variable("remaining") == 2
    assert ("info", "remaining: 1 -> 2") in logs
    assert not doc.errors


def test_callbacks_are_function_refs_owned_by_the_script(app):
    m, doc, _ = app
    m.load_script_from_source("todo", "lisp", TODO_APP)
    seen = []
    doc.owned_callbacks(lambda cb: seen.append(cb) or False)
    assert len(seen) == 2
    assert all(isinstance(cb, FunctionRef) and (cb.language, cb.script) == ("lisp", "todo") for cb in seen)
    assert {cb.name for cb in seen} == {"on-add", "fn"}


def test_unload_and_reload_release_callbacks(app):
    m, doc, _ = app
    m.load_script_from_source("todo", "lisp", TODO_APP)
    assert doc.callback_counts()["listeners"] == 1 and doc.callback_counts()["watchers"] == 1
    m.hot_reload_script("todo", TODO_APP)  # the new version registers its own; the old ones go
    assert doc.callback_counts()["listeners"] == 1 and doc.callback_counts()["watchers"] == 1
    m.unload_script("todo")
    assert doc.callback_counts() == {"listeners": 0, "watchers": 0, "timers": 0, "animations": 0}
    assert doc.click("add") == 0


def test_timers_intervals_and_clock(dom):
    m, doc = dom
    m.load_script_from_source(
        "clock",
        "lisp",
        """
(setv ticks [])
(setv interval-id
  (set-interval! (fn []
                   (.append ticks (get-current-time))
                   (when (>= (len ticks) 3)
                     (clear-timer! interval-id)))
                 100))
(set-timeout! (fn [] (set-variable! "late" (get-current-time))) 250)
(defn get-ticks [] ticks)
""",
    )
    doc.advance(1000)
    assert m.call_function("get-ticks") == [100.0, 200.0, 300.0]
    assert doc.get_variable("late") == 250.0
    assert doc.pending_timers == 0


def test_classes_styles_custom_events_and_animation(dom):
    m, doc = dom
    m.load_script_from_source(
        "fx",
        "lisp",
        """
(setv btn (get-element-by-id "btn"))
(add-class! btn "primary")
(set-style! btn "color" "red")
(add-event-listener! btn "pulse"
  (fn [event]
    (toggle-class! btn "active")
    (set-variable! "pulse-data" (get event "data"))))
(defn fade []
  (animate! btn {"property" "opacity" "from" 0 "to" 1 "duration" 100
                 "on_complete" (fn [el] (set-variable! "faded" (has-class? el "primary")))}))
(defn pulse [] (emit-custom-event! btn "pulse" {:level 3}))
""",
    )
    el = doc.element("btn")
    assert el.classes == ["primary"] and el.style == {"color": "red"}
    m.call_function("pulse")
    assert doc.get_variable("pulse-data") == {"level": 3}  # keyword keys cross as strings
    assert "active" in doc.element("btn").classes
    m.call_function("fade")
    doc.advance(50)
    assert 0 < doc.get_property("btn", "opacity") < 1
    doc.advance(60)
    assert doc.get_property("btn", "opacity") == 1 and doc.get_variable("faded") is True


def test_kryon_object_and_kryon_call(dom):
    m, doc = dom
    m.load_script_from_source("lib", "lisp", "(defn double [x] (* 2 x))")
    m.load_script_from_source(
        "app",
        "lisp",
        '(kryon.set-property! (kryon.get-element-by-id "btn") "text" (str (kryon-call "lib.double" 21)))',
    )
    assert doc.get_property("btn", "text") == "42"


def test_errors_in_handlers_stay_in_the_document(dom):
    m, doc = dom
    m.load_script_from_source("bad", "lisp", '(add-event-listener! (get-element-by-id "btn") "click"\n  (fn [e] (/ 1 0)))')
    doc.click("btn")
    assert len(doc.errors) == 1
    err = doc.errors[0]
    assert (err.language, err.script, err.line) == ("lisp", "bad", 2)


def test_cross_language_callbacks(dom):
    m, doc = dom
    if "lua" not in m.languages:
        pytest.skip("kryon-lua is not installed")
    m.load_script_from_source("lua_side", "lua", "function run(f, x) return f(x) + 1 end")
    m.load_script_from_source("lisp_side", "lisp", '(defn go [n] (kryon-call "lua_side.run" (fn [x] (* x 10)) n))')
    assert m.call_function("lisp_side.go", [4]) == 41


def test_errors_cross_languages_with_both_stacks(dom):
    m, _ = dom
    if "lua" not in m.languages:
        pytest.skip("kryon-lua is not installed")
    m.load_script_from_source("lua_side", "lua", 'function explode()\n  error("lua broke")\nend')
    m.load_script_from_source(
        "lisp_side",
        "lisp",
        '(defn go []\n  (kryon-call "lua_side.explode"))\n'
        '(defn safe []\n  (try (go) (except [e Exception] (+ "caught: " (. e message)))))',
    )
    with pytest.raises(ScriptRuntimeError) as info:
        m.call_function("lisp_side.go")
    err = info.value
    assert "lua broke" in str(err) and err.language == "lua"
    languages = [f.language for f in err.stack]
    assert "lua" in languages and languages[-1] == "lisp"
    assert (err.stack[-1].script, err.stack[-1].line) == ("lisp_side", 2)
    assert "lua broke" in m.call_function("lisp_side.safe")  # Lisp catches it like any exception


def test_shared_data(dom):
    m, _ = dom
    m.shared.create("settings", {"theme": "dark"})
    m.load_script_from_source(
        "shared",
        "lisp",
        '(defn theme [] (get (get-shared "settings") "theme"))\n(defn set-theme! [t] (set-shared! "settings" {:theme t}))',
    )
    assert m.call_function("theme") == "dark"
    m.call_function("set-theme!", ["light"])
    assert m.shared.read("settings", "host") == {"theme": "light"}
