"""The ``kryon`` API scripts see, one implementation for every language.

A :class:`ScriptBridge` is what an engine's ``setup_bridge`` receives. It
holds the manager's document (the DOM bridge), cross-language calls, logging,
shared data and plugin-added functions, all as plain host methods taking host
values. Engines only adapt it to their idiom: :data:`API` lists every method
with its camelCase (Lua, JavaScript, Wren), snake_case (Python) and
kebab-case (Lisp) name, so an engine binds the whole API mechanically.

Each script gets its own *view* of the bridge (:meth:`ScriptBridge.for_script`),
so the host knows who is calling: ``kryon.call`` checks that the caller may
call the callee (trust has a direction, see ``SecurityPolicy.covers``),
shared data and registrations are charged to the script, and values handed
to a sandboxed script never carry a more trusted script's functions unless
that script exposed them. An engine binds each script's ``kryon`` API from
that script's view; the language-wide bridge speaks for the manager's
default policy.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .dom import DOMBridge, ElementHandle
from .domquota import DomCharge, charge_for
from .errors import DOMError, ScriptError
from .policy import SecurityPolicy
from .values import FunctionRef

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
    _m("expose", "expose", "expose!", (1, 2), "let less trusted scripts call one of this script's functions"),
)


def _api(method: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a :class:`ScriptBridge` method as part of the ``kryon`` API: errors it
    raises without a language get the bridge's (engines then add the script
    position)."""

    @functools.wraps(method)
    def call(self: "ScriptBridge", *args: Any) -> Any:
        try:
            return method(self, *args)
        except ScriptError as exc:
            if exc.language is None:
                exc.language = self.language
            raise

    return call


class ScriptBridge:
    """The host side of the ``kryon`` API for one engine, or, as a view made
    by :meth:`for_script`, for one script of it.

    Every method takes and returns host values. DOM methods need a document
    (``ScriptManager.setup_dom_bridge``); without one they raise DOMError.
    """

    def __init__(self, language: str, manager: "ScriptManager | None" = None) -> None:
        self.language = language
        self.manager = manager
        #: the script this view speaks for (None on the language-wide bridge)
        self.script: str | None = None
        #: that script's policy (None on the language-wide bridge)
        self.policy: SecurityPolicy | None = None
        self._root = self
        #: what this view's DOM writes are charged as (None: unlimited, or no script)
        self._charge: DomCharge | None = None
        self._dom: DOMBridge | None = None
        self._extra: dict[str, Callable[..., Any]] = {}
        #: ``kryon.call`` targets resolved for this view's caller (see ``CrossLanguageRegistry.call``),
        #: kept by its :meth:`router`
        self.routes: dict[str, Any] = {}
        self._router: Callable[..., Any] | None = None

    def for_script(self, script_id: str, policy: SecurityPolicy) -> "ScriptBridge":
        """The view of this bridge that one script's ``kryon`` API is bound to.
        It shares the document and plugin functions; calls through it act on
        behalf of ``script_id`` under ``policy``. Cheap: make one per script."""
        view = object.__new__(type(self))
        view.language = self.language
        view.manager = self.manager
        view.script = script_id
        view.policy = policy
        view._charge = charge_for(self.language, script_id, policy)
        view._root = self._root
        view.routes = {}
        view._router = None
        return view

    def router(self) -> Callable[..., Any] | None:
        """This view's ``kryon.call(name, *args)`` as the manager routes it
        (``CrossLanguageRegistry.router``: the caller, its policy and its
        resolved targets bound once), made on first use; None without a
        manager. An engine may bind it as the script's ``kryon.call``."""
        router = self._router
        if router is None and self.manager is not None:
            manager = self.manager
            policy = self.policy if self.policy is not None else manager.policy
            router = self._router = manager.interop.router(self.language, self.script, policy, self.routes)
        return router

    @property
    def dom(self) -> DOMBridge | None:
        return self._root._dom

    @dom.setter
    def dom(self, document: DOMBridge | None) -> None:
        self._root._dom = document

    @property
    def extra(self) -> dict[str, Callable[..., Any]]:
        """Plugin functions added with :meth:`add_function` (shared by every view)."""
        return self._root._extra

    def caller_policy(self) -> SecurityPolicy | None:
        """The policy calls through this bridge act under: the script's own on a
        view, the manager's default on the language-wide bridge."""
        if self.policy is not None:
            return self.policy
        return self.manager.policy if self.manager is not None else None

    # -- plugin extension ---------------------------------------------------
    def add_function(self, name: str, function: Callable[..., Any]) -> None:
        """Expose ``function`` to scripts as ``kryon.<name>`` (plugins call
        this from ``kryon_setup_bridge``; the name is used as given)."""
        if not callable(function):
            raise TypeError("add_function needs a callable")
        self.extra[name] = function

    def methods(self) -> list[tuple[ApiMethod, Callable[..., Any]]]:
        """Every API method with the host function implementing it, bound to
        this bridge (or view)."""
        out = [(m, getattr(self, m.name)) for m in API]
        out += [(ApiMethod(n, n, n, (0, -1), "plugin function"), _tagged(f, self.language)) for n, f in self.extra.items()]
        return out

    def _document(self) -> DOMBridge:
        dom = self._root._dom
        if dom is None:
            raise DOMError(
                "no document is attached: call ScriptManager.setup_dom_bridge(Document()) first",
                language=self.language,
            )
        return dom

    def _charged(self, dom: DOMBridge) -> DomCharge | None:
        """The charge this view's writes carry to ``dom`` (a document that
        keeps DOM quotas says so with ``charges_writers``)."""
        charge = self._charge
        if charge is None or not getattr(dom, "charges_writers", False):
            return None
        return charge

    def _admit(self, value: Any) -> Any:
        """``value`` as it may reach this view's script: a sandboxed script never
        receives a function of a script it does not cover, unless exposed."""
        policy = self.policy
        if policy is None or not policy.sandboxed or self.manager is None:
            return value
        if value is None or type(value) in _PLAIN:
            return value
        return self.manager.admit(value, self.script, policy)

    # -- DOM -------------------------------------------------------------------
    @_api
    def get_element_by_id(self, id: str) -> ElementHandle | None:
        return self._document().get_element_by_id(_text(id, "element id"))

    @_api
    def get_elements_by_class(self, class_name: str) -> list[ElementHandle]:
        return self._document().get_elements_by_class(_text(class_name, "class name"))

    @_api
    def get_elements_by_tag(self, tag_name: str) -> list[ElementHandle]:
        return self._document().get_elements_by_tag(_text(tag_name, "tag name"))

    def set_property(self, element: Any, property: str, value: Any) -> None:
        # the _api wrapper, _document and _text written out: every script's DOM write comes here
        try:
            dom = self._root._dom
            if dom is None:
                dom = self._document()
            if type(property) is not str:
                property = _text(property, "property")
            charge = self._charge
            if charge is None or not getattr(dom, "charges_writers", False):
                dom.set_property(element, property, value)
            else:
                dom.set_property(element, property, value, by=charge)  # type: ignore[call-arg]
        except ScriptError as exc:
            if exc.language is None:
                exc.language = self.language
            raise

    @_api
    def get_property(self, element: Any, property: str) -> Any:
        return self._admit(self._document().get_property(element, _text(property, "property")))

    @_api
    def set_style(self, element: Any, style_name: str, value: Any = None) -> None:
        dom = self._document()
        charge = self._charged(dom)
        if charge is None:
            dom.set_style(element, _text(style_name, "style"), value)
        else:
            dom.set_style(element, _text(style_name, "style"), value, by=charge)  # type: ignore[call-arg]

    @_api
    def get_style(self, element: Any, style_name: str | None = None) -> Any:
        doc = self._document()
        getter = getattr(doc, "get_style", None)
        if getter is None:
            raise DOMError("this document has no get_style", language=self.language)
        return self._admit(getter(element, style_name))

    @_api
    def add_class(self, element: Any, class_name: str) -> None:
        dom = self._document()
        charge = self._charged(dom)
        if charge is None:
            dom.add_class(element, _text(class_name, "class name"))
        else:
            dom.add_class(element, _text(class_name, "class name"), by=charge)  # type: ignore[call-arg]

    @_api
    def remove_class(self, element: Any, class_name: str) -> None:
        self._document().remove_class(element, _text(class_name, "class name"))

    @_api
    def has_class(self, element: Any, class_name: str) -> bool:
        doc = self._document()
        return bool(doc.has_class(element, _text(class_name, "class name")))

    @_api
    def toggle_class(self, element: Any, class_name: str) -> bool:
        doc = self._document()
        name = _text(class_name, "class name")
        charge = self._charged(doc)
        if charge is None:
            return bool(doc.toggle_class(element, name))
        if doc.has_class(element, name):
            doc.remove_class(element, name)
            return False
        doc.add_class(element, name, by=charge)  # type: ignore[call-arg]
        return True

    @_api
    def create_element(self, element_type: str, properties: Mapping[str, Any] | None = None) -> ElementHandle:
        if properties is not None and not isinstance(properties, Mapping):
            raise DOMError("createElement properties must be a table/object", language=self.language)
        dom = self._document()
        charge = self._charged(dom)
        if charge is None:
            return dom.create_element(_text(element_type, "element type"), properties)
        return dom.create_element(_text(element_type, "element type"), properties, by=charge)  # type: ignore[call-arg]

    @_api
    def append_child(self, parent: Any, child: Any) -> None:
        self._document().append_child(parent, child)

    @_api
    def remove_element(self, element: Any) -> None:
        self._document().remove_element(element)

    @_api
    def add_event_listener(self, element: Any, event_type: str, callback: Callable[..., Any]) -> int:
        dom = self._document()
        charge = self._charged(dom)
        listener = self._receiving(_callable(callback))
        if charge is None:
            return dom.add_event_listener(element, _text(event_type, "event type"), listener)
        return dom.add_event_listener(element, _text(event_type, "event type"), listener, by=charge)  # type: ignore[call-arg]

    @_api
    def remove_event_listener(self, listener_id: int) -> None:
        self._document().remove_event_listener(_int(listener_id, "listener id"))

    @_api
    def emit_custom_event(self, element: Any, event_name: str, data: Any = None) -> None:
        self._document().emit_custom_event(element, _text(event_name, "event name"), data)

    @_api
    def set_variable(self, name: str, value: Any) -> None:
        dom = self._document()
        charge = self._charged(dom)
        if charge is None:
            dom.set_variable(_text(name, "variable name"), value)
        else:
            dom.set_variable(_text(name, "variable name"), value, by=charge)  # type: ignore[call-arg]

    @_api
    def get_variable(self, name: str) -> Any:
        return self._admit(self._document().get_variable(_text(name, "variable name")))

    @_api
    def watch_variable(self, name: str, callback: Callable[..., Any]) -> int:
        dom = self._document()
        charge = self._charged(dom)
        watcher = self._receiving(_callable(callback))
        if charge is None:
            return dom.watch_variable(_text(name, "variable name"), watcher)
        return dom.watch_variable(_text(name, "variable name"), watcher, by=charge)  # type: ignore[call-arg]

    @_api
    def unwatch_variable(self, watcher_id: int) -> None:
        self._document().unwatch_variable(_int(watcher_id, "watcher id"))

    @_api
    def animate(self, element: Any, config: Mapping[str, Any]) -> int:
        from .dom import AnimationConfig

        animation = AnimationConfig.coerce(config)
        if animation.on_complete is not None:
            animation.on_complete = self._owned(_callable(animation.on_complete))
        dom = self._document()
        charge = self._charged(dom)
        if charge is None:
            return dom.animate(element, animation)
        return dom.animate(element, animation, by=charge)  # type: ignore[call-arg]

    @_api
    def set_timeout(self, callback: Callable[..., Any], delay_ms: float) -> int:
        dom = self._document()
        charge = self._charged(dom)
        if charge is None:
            return dom.set_timeout(self._owned(_callable(callback)), delay_ms)
        return dom.set_timeout(self._owned(_callable(callback)), delay_ms, by=charge)  # type: ignore[call-arg]

    @_api
    def set_interval(self, callback: Callable[..., Any], interval_ms: float) -> int:
        dom = self._document()
        charge = self._charged(dom)
        if charge is None:
            return dom.set_interval(self._owned(_callable(callback)), interval_ms)
        return dom.set_interval(self._owned(_callable(callback)), interval_ms, by=charge)  # type: ignore[call-arg]

    @_api
    def clear_timer(self, timer_id: int) -> None:
        self._document().clear_timer(_int(timer_id, "timer id"))

    @_api
    def get_current_time(self) -> float:
        return self._document().get_current_time()

    @_api
    def get_random(self) -> float:
        return self._document().get_random()

    # -- works without a document ------------------------------------------------
    @_api
    def log(self, message: Any, level: str = "info") -> None:
        text = message if isinstance(message, str) else _display(message)
        dom = self._root._dom
        if dom is not None:
            dom.log(str(level), text)
        elif self.manager is not None:
            self.manager.log_script(self.language, str(level), text)

    def call(self, name: str, *args: Any) -> Any:
        """Call a function of any loaded script, in any language, on behalf of
        this view's script. A call into a script whose grants the caller's
        policy does not cover needs that function to be exposed
        (:meth:`expose`, ``ScriptManager.expose``); results never hand the
        caller a function it could not call itself. Calls that nest across
        languages deeper than the policy's ``max_recursion`` raise
        RecursionLimitError (see ``CrossLanguageRegistry.call``, which also
        keeps this view's resolved targets)."""
        # the router gives errors the view's language, as the _api wrapper does
        router = self._router or self.router()
        if router is None:
            raise ScriptError("kryon.call needs a ScriptManager", language=self.language)
        return router(name, *args)

    @_api
    def expose(self, function: str, to: Any = None) -> None:
        """Let scripts less trusted than this one call ``function`` (one of this
        script's own functions): ``to`` is omitted for every script, or a
        script id or list of script ids. Declared at top level, it is part of
        the load: a load that fails declares nothing."""
        manager = self._manager("kryon.expose")
        if self.script is None:
            raise ScriptError("kryon.expose needs a script (the language-wide bridge has none)", language=self.language)
        targets = _expose_targets(to)
        manager.expose_from_script(self.script, _text(function, "function name"), targets)

    @_api
    def get_shared(self, object_id: str) -> Any:
        value = self._shared().read(_text(object_id, "shared object id"), self.language, **self._requester())
        return self._admit(value)

    @_api
    def set_shared(self, object_id: str, value: Any) -> None:
        self._shared().write(_text(object_id, "shared object id"), value, self.language, **self._requester())

    @_api
    def create_shared(self, object_id: str, value: Any, policy: Mapping[str, Any] | None = None) -> None:
        """Create a shared object owned by this script. ``policy`` may give
        ``read`` and ``write`` lists of languages and ``readonly``; without
        one, scripts whose policy covers this script's may read and write it."""
        from .interop import AccessPolicy

        access = None
        if policy is not None:
            if not isinstance(policy, Mapping):
                raise ScriptError("shared object policy must be a table/object", language=self.language)
            access = AccessPolicy.of(
                read=policy.get("read"), write=policy.get("write"), readonly=bool(policy.get("readonly", False))
            )
        self._shared().create(
            _text(object_id, "shared object id"), value, owner=self.language, policy=access, **self._requester()
        )

    @_api
    def watch_shared(self, object_id: str, callback: Callable[..., Any]) -> int:
        shared = self._shared()
        oid = _text(object_id, "shared object id")
        shared.read(oid, self.language, **self._requester())  # watching needs read access
        listener: int = shared.on_change(oid, self._receiving(_callable(callback)))
        return listener

    # -- plumbing ------------------------------------------------------------------
    def _manager(self, what: str) -> "ScriptManager":
        if self.manager is None:
            raise ScriptError(f"{what} needs a ScriptManager", language=self.language)
        return self.manager

    def _shared(self) -> Any:
        return self._manager("shared data").shared

    def _requester(self) -> dict[str, Any]:
        return {"script": self.script, "trust": self.caller_policy()}

    def _owned(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        """``callback`` as a FunctionRef owned by this view's script, so that an
        unload, a reload or a failed load finds and releases it whatever the
        engine made of the function (engines need not stamp ownership)."""
        if self.script is None or (isinstance(callback, FunctionRef) and callback.script == self.script):
            return callback
        name = getattr(callback, "name", None) or getattr(callback, "__name__", "callback")
        return FunctionRef(callback, name=str(name), language=self.language, script=self.script)

    def _receiving(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        """A callback of this view's script that the host will call with data
        from elsewhere (event data, variable and shared-data values): owned by
        the script (see :meth:`_owned`), and for a sandboxed script the data is
        admitted first (see :meth:`_admit`)."""
        policy = self.policy
        if policy is None or not policy.sandboxed or self.manager is None:
            return self._owned(callback)
        admit = self._admit

        def receive(*args: Any) -> Any:
            return callback(*[admit(a) for a in args])

        name = getattr(callback, "name", None) or getattr(callback, "__name__", "callback")
        return FunctionRef(receive, name=str(name), language=self.language, script=self.script)

    def convert_unknown(self, value: Any) -> Any:
        """Ask the ``kryon_convert_value`` hooks to turn a host object the
        engine does not know into a value; ConversionError when none can."""
        from .errors import ConversionError

        if self.manager is not None:
            converted = self.manager.convert_value(value, self.language)
            if converted is not None:
                return converted
        raise ConversionError(f"cannot pass a {type(value).__name__} to {self.language}", language=self.language)


_PLAIN = frozenset({bool, int, float, str, bytes})


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
        function: Callable[..., Any] = value
        return function
    raise DOMError(f"expected a function, got {type(value).__name__}")


def _expose_targets(to: Any) -> "frozenset[str] | None":
    """None for every script, else the set of script ids ``to`` names."""
    if to is None or to == "*":
        return None
    if isinstance(to, str):
        return frozenset({to})
    if isinstance(to, (list, tuple)) and all(isinstance(t, str) for t in to):
        return frozenset(to)
    raise ScriptError("expose: 'to' must be a script id or a list of script ids")


def _tagged(function: Callable[..., Any], language: str) -> Callable[..., Any]:
    """Wrap a plugin function so errors it raises without a language get the
    script's language (engines then only add the position)."""

    def call(*args: Any) -> Any:
        try:
            return function(*args)
        except ScriptError as exc:
            if exc.language is None:
                exc.language = language
            raise

    call.__name__ = getattr(function, "__name__", "kryon_api")
    call.__doc__ = getattr(function, "__doc__", None)
    return call


def _display(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
