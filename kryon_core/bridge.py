"""The ``kryon`` API scripts see, one implementation for every language.

A :class:`ScriptBridge` is what an engine's ``setup_bridge`` receives. It
holds the manager's document (the DOM bridge), cross-language calls, logging,
shared data and plugin-added functions, all as plain host methods taking host
values. Engines only adapt it to their idiom: :data:`API` lists every method
with its camelCase (Lua, JavaScript, Wren), snake_case (Python) and
kebab-case (Lisp) name, so an engine binds the whole API mechanically.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from .dom import DOMBridge, ElementHandle
from .errors import DOMError, RecursionLimitError, ScriptError

if TYPE_CHECKING:
    from .manager import ScriptManager

__all__ = ["ApiMethod", "API", "ScriptBridge", "DEFAULT_CALL_DEPTH"]

#: how deep calls may nest across languages when no policy sets max_recursion
DEFAULT_CALL_DEPTH = 200


@dataclass(frozen=True)
class ApiMethod:
    """One function of the ``kryon`` API under its three spellings."""

    name: str  # snake_case: the ScriptBridge method, and Python's name
    camel: str  # Lua, JavaScript, Wren
    kebab: str  # Kryon Lisp
    arity: tuple[int, int]  # (min, max) arguments; max -1 = variadic
    doc: str


def _m(name: str, camel: str, kebab: str, arity: tuple[int, int], doc: str) -> ApiMethod:
    return ApiMethod(name, camel, kebab, arity, doc)


API: tuple[ApiMethod, ...] = (
    _m("get_element_by_id", "getElementById", "get-element-by-id", (1, 1), "element handle for an id, or nil"),
    _m("get_elements_by_class", "getElementsByClass", "get-elements-by-class", (1, 1), "list of handles"),
    _m("get_elements_by_tag", "getElementsByTag", "get-elements-by-tag", (1, 1), "list of handles"),
    _m("set_property", "setProperty", "set-property!", (3, 3), "set an element property"),
    _m("get_property", "getProperty", "get-property", (2, 2), "read an element property"),
    _m("set_style", "setStyle", "set-style!", (2, 3), "named style, or one inline style property"),
    _m("get_style", "getStyle", "get-style", (1, 2), "named style, or one inline style property"),
    _m("add_class", "addClass", "add-class!", (2, 2), "add a class"),
    _m("remove_class", "removeClass", "remove-class!", (2, 2), "remove a class"),
    _m("has_class", "hasClass", "has-class?", (2, 2), "whether the element has a class"),
    _m("toggle_class", "toggleClass", "toggle-class!", (2, 2), "toggle a class; returns whether it is now set"),
    _m("create_element", "createElement", "create-element", (1, 2), "new detached element"),
    _m("append_child", "appendChild", "append-child!", (2, 2), "attach child under parent"),
    _m("remove_element", "removeElement", "remove-element!", (1, 1), "delete element and subtree"),
    _m("add_event_listener", "addEventListener", "add-event-listener!", (3, 3), "listen; returns listener id"),
    _m("remove_event_listener", "removeEventListener", "remove-event-listener!", (1, 1), "stop listening"),
    _m("emit_custom_event", "emitCustomEvent", "emit-custom-event!", (2, 3), "dispatch an event with data"),
    _m("set_variable", "setVariable", "set-variable!", (2, 2), "set a document variable"),
    _m("get_variable", "getVariable", "get-variable", (1, 1), "read a document variable"),
    _m("watch_variable", "watchVariable", "watch-variable!", (2, 2), "callback(new, old, name) on change"),
    _m("unwatch_variable", "unwatchVariable", "unwatch-variable!", (1, 1), "stop watching"),
    _m("animate", "animate", "animate!", (2, 2), "animate a property; returns animation id"),
    _m("set_timeout", "setTimeout", "set-timeout!", (2, 2), "run callback once after ms"),
    _m("set_interval", "setInterval", "set-interval!", (2, 2), "run callback every ms"),
    _m("clear_timer", "clearTimer", "clear-timer!", (1, 1), "cancel a timer or animation"),
    _m("log", "log", "log", (1, 2), "log(message[, level])"),
    _m("get_current_time", "getCurrentTime", "get-current-time", (0, 0), "document clock in ms"),
    _m("get_random", "getRandom", "get-random", (0, 0), "random float in [0, 1)"),
    _m("call", "call", "kryon-call", (1, -1), "call(name, ...args): a function of any loaded script"),
    _m("get_shared", "getShared", "get-shared", (1, 1), "read a shared object"),
    _m("set_shared", "setShared", "set-shared!", (2, 2), "write a shared object"),
    _m("create_shared", "createShared", "create-shared!", (2, 3), "create a shared object (optional access policy)"),
    _m("watch_shared", "watchShared", "watch-shared!", (2, 2), "callback(id, new, old) after each write"),
)


class ScriptBridge:
    """The host side of the ``kryon`` API for one engine.

    Every method takes and returns host values. DOM methods need a document
    (``ScriptManager.setup_dom_bridge``); without one they raise DOMError.
    """

    def __init__(self, language: str, manager: "ScriptManager | None" = None) -> None:
        self.language = language
        self.manager = manager
        self.dom: DOMBridge | None = None
        self.extra: dict[str, Callable[..., Any]] = {}

    # -- plugin extension ---------------------------------------------------
    def add_function(self, name: str, function: Callable[..., Any]) -> None:
        """Expose ``function`` to scripts as ``kryon.<name>`` (plugins call
        this from ``kryon_setup_bridge``; the name is used as given)."""
        if not callable(function):
            raise TypeError("add_function needs a callable")
        self.extra[name] = function

    def methods(self) -> list[tuple[ApiMethod, Callable[..., Any]]]:
        """Every API method with the bound host function implementing it."""
        out = [(m, _with_language(getattr(self, m.name), self.language)) for m in API]
        out += [(ApiMethod(n, n, n, (0, -1), "plugin function"), f) for n, f in self.extra.items()]
        return out

    def _document(self) -> DOMBridge:
        if self.dom is None:
            raise DOMError(
                "no document is attached: call ScriptManager.setup_dom_bridge(Document()) first",
                language=self.language,
            )
        return self.dom

    # -- DOM -------------------------------------------------------------------
    def get_element_by_id(self, id: str) -> ElementHandle | None:
        return self._document().get_element_by_id(_text(id, "element id"))

    def get_elements_by_class(self, class_name: str) -> list[ElementHandle]:
        return self._document().get_elements_by_class(_text(class_name, "class name"))

    def get_elements_by_tag(self, tag_name: str) -> list[ElementHandle]:
        return self._document().get_elements_by_tag(_text(tag_name, "tag name"))

    def set_property(self, element: Any, property: str, value: Any) -> None:
        self._document().set_property(element, _text(property, "property"), value)

    def get_property(self, element: Any, property: str) -> Any:
        return self._document().get_property(element, _text(property, "property"))

    def set_style(self, element: Any, style_name: str, value: Any = None) -> None:
        self._document().set_style(element, _text(style_name, "style"), value)

    def get_style(self, element: Any, style_name: str | None = None) -> Any:
        doc = self._document()
        getter = getattr(doc, "get_style", None)
        if getter is None:
            raise DOMError("this document has no get_style", language=self.language)
        return getter(element, style_name)

    def add_class(self, element: Any, class_name: str) -> None:
        self._document().add_class(element, _text(class_name, "class name"))

    def remove_class(self, element: Any, class_name: str) -> None:
        self._document().remove_class(element, _text(class_name, "class name"))

    def has_class(self, element: Any, class_name: str) -> bool:
        doc = self._document()
        return bool(getattr(doc, "has_class")(element, _text(class_name, "class name")))

    def toggle_class(self, element: Any, class_name: str) -> bool:
        doc = self._document()
        return bool(getattr(doc, "toggle_class")(element, _text(class_name, "class name")))

    def create_element(self, element_type: str, properties: Mapping[str, Any] | None = None) -> ElementHandle:
        if properties is not None and not isinstance(properties, Mapping):
            raise DOMError("createElement properties must be a table/object", language=self.language)
        return self._document().create_element(_text(element_type, "element type"), properties)

    def append_child(self, parent: Any, child: Any) -> None:
        self._document().append_child(parent, child)

    def remove_element(self, element: Any) -> None:
        self._document().remove_element(element)

    def add_event_listener(self, element: Any, event_type: str, callback: Callable[..., Any]) -> int:
        return self._document().add_event_listener(element, _text(event_type, "event type"), _callable(callback))

    def remove_event_listener(self, listener_id: int) -> None:
        self._document().remove_event_listener(_int(listener_id, "listener id"))

    def emit_custom_event(self, element: Any, event_name: str, data: Any = None) -> None:
        self._document().emit_custom_event(element, _text(event_name, "event name"), data)

    def set_variable(self, name: str, value: Any) -> None:
        self._document().set_variable(_text(name, "variable name"), value)

    def get_variable(self, name: str) -> Any:
        return self._document().get_variable(_text(name, "variable name"))

    def watch_variable(self, name: str, callback: Callable[..., Any]) -> int:
        return self._document().watch_variable(_text(name, "variable name"), _callable(callback))

    def unwatch_variable(self, watcher_id: int) -> None:
        self._document().unwatch_variable(_int(watcher_id, "watcher id"))

    def animate(self, element: Any, config: Mapping[str, Any]) -> int:
        return self._document().animate(element, config)

    def set_timeout(self, callback: Callable[..., Any], delay_ms: float) -> int:
        return self._document().set_timeout(_callable(callback), delay_ms)

    def set_interval(self, callback: Callable[..., Any], interval_ms: float) -> int:
        return self._document().set_interval(_callable(callback), interval_ms)

    def clear_timer(self, timer_id: int) -> None:
        self._document().clear_timer(_int(timer_id, "timer id"))

    def get_current_time(self) -> float:
        return self._document().get_current_time()

    def get_random(self) -> float:
        return self._document().get_random()

    # -- works without a document ------------------------------------------------
    def log(self, message: Any, level: str = "info") -> None:
        text = message if isinstance(message, str) else _display(message)
        if self.dom is not None:
            self.dom.log(str(level), text)
        elif self.manager is not None:
            self.manager._log(self.language, str(level), text)

    def call(self, name: str, *args: Any) -> Any:
        """Call a function of any loaded script, in any language. Calls that
        nest across languages deeper than the policy's ``max_recursion``
        (default 200, and at most a sixteenth of Python's recursion limit)
        raise RecursionLimitError instead of overflowing the host's stack."""
        if self.manager is None:
            raise ScriptError("kryon.call needs a ScriptManager", language=self.language)
        # Each level of kryon.call costs the host a dozen or so Python frames;
        # stop before Python's own recursion limit turns into a host error.
        limit = min(self.manager.policy.max_recursion or DEFAULT_CALL_DEPTH, sys.getrecursionlimit() // 16)
        counter = self.manager._call_depth  # per thread, shared by every engine's bridge
        counter.n = getattr(counter, "n", 0) + 1
        try:
            if counter.n > limit:
                raise RecursionLimitError(
                    f"cross-language calls nested deeper than {limit} (calling '{name}')", language=self.language
                )
            return self.manager.interop.call(self.language, _text(name, "function name"), list(args))
        finally:
            counter.n -= 1

    def get_shared(self, object_id: str) -> Any:
        return self._shared().read(_text(object_id, "shared object id"), self.language)

    def set_shared(self, object_id: str, value: Any) -> None:
        self._shared().write(_text(object_id, "shared object id"), value, self.language)

    def create_shared(self, object_id: str, value: Any, policy: Mapping[str, Any] | None = None) -> None:
        """Create a shared object owned by this language. ``policy`` may give
        ``read`` and ``write`` lists of languages and ``readonly``."""
        from .interop import AccessPolicy

        access = None
        if policy is not None:
            if not isinstance(policy, Mapping):
                raise ScriptError("shared object policy must be a table/object", language=self.language)
            access = AccessPolicy.of(
                read=policy.get("read"), write=policy.get("write"), readonly=bool(policy.get("readonly", False))
            )
        self._shared().create(_text(object_id, "shared object id"), value, owner=self.language, policy=access)

    def watch_shared(self, object_id: str, callback: Callable[..., Any]) -> int:
        shared = self._shared()
        oid = _text(object_id, "shared object id")
        shared.read(oid, self.language)  # watching needs read access
        return shared.on_change(oid, _callable(callback))

    def _shared(self) -> Any:
        if self.manager is None:
            raise ScriptError("shared data needs a ScriptManager", language=self.language)
        return self.manager.shared

    def convert_unknown(self, value: Any) -> Any:
        """Ask the ``kryon_convert_value`` hooks to turn a host object the
        engine does not know into a value; ConversionError when none can."""
        from .errors import ConversionError

        if self.manager is not None:
            converted = self.manager._convert_value(value, self.language)
            if converted is not None:
                return converted
        raise ConversionError(f"cannot pass a {type(value).__name__} to {self.language}", language=self.language)


def _text(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    raise DOMError(f"{what} must be a string, not {type(value).__name__}")


def _int(value: Any, what: str) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise DOMError(f"{what} must be an integer, not {value!r}")


def _callable(value: Any) -> Callable[..., Any]:
    if callable(value):
        return value
    raise DOMError(f"expected a function, got {type(value).__name__}")


def _with_language(method: Callable[..., Any], language: str) -> Callable[..., Any]:
    """Wrap a bridge method so errors it raises without a language get the
    script's language (engines then only add the position)."""

    def call(*args: Any) -> Any:
        try:
            return method(*args)
        except ScriptError as exc:
            if exc.language is None:
                exc.language = language
            raise

    call.__name__ = getattr(method, "__name__", "kryon_api")
    call.__doc__ = getattr(method, "__doc__", None)
    return call


def _display(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
