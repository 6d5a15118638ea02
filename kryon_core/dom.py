"""The DOM bridge: the UI document scripts drive.

:class:`DOMBridge` is the specification's trait; :class:`Document` is the
reference implementation: an element tree with ids, classes, tags,
properties and styles, event dispatch (bubbling to ancestors), variables
with watchers, and timers and animations on a clock. Tests move the clock by
hand with :meth:`Document.advance`; applications drive it from asyncio with
:meth:`Document.run_clock`.

Callbacks are :class:`~kryon_core.FunctionRef` handles (or any Python
callable). An error raised by one callback is reported to the document's
error handler and the others still run: one broken script never stops the app.
"""

from __future__ import annotations

import abc
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .domquota import DomCharge, DomLedger, DomUsage, slot_size
from .errors import DOMError, MemoryLimitError, ScriptError
from .values import UserData, approximate_size

if TYPE_CHECKING:
    import random

__all__ = ["DOMBridge", "Document", "Element", "ElementHandle", "AnimationConfig", "EASINGS", "LogLevel"]

log = logging.getLogger("kryon.dom")


class LogLevel:
    DEBUG, INFO, WARN, ERROR = "debug", "info", "warn", "error"
    ALL = ("debug", "info", "warn", "error")


class ElementHandle(UserData):
    """A script's handle to an element: opaque, compared by element number."""

    __slots__ = ()

    def __init__(self, number: int) -> None:
        super().__init__(number)

    @property
    def number(self) -> int:
        number: int = self.value
        return number

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ElementHandle) and other.value == self.value

    def __hash__(self) -> int:
        return hash(("element", self.value))

    def __repr__(self) -> str:
        return f"ElementHandle({self.value})"


def _ease_in_out(t: float) -> float:
    return 2 * t * t if t < 0.5 else 1 - (-2 * t + 2) ** 2 / 2


EASINGS: dict[str, Callable[[float], float]] = {
    "linear": lambda t: t,
    "ease-in": lambda t: t * t,
    "ease-out": lambda t: 1 - (1 - t) * (1 - t),
    "ease-in-out": _ease_in_out,
    "ease-in-cubic": lambda t: t**3,
    "ease-out-cubic": lambda t: 1 - (1 - t) ** 3,
    "ease-in-sine": lambda t: 1 - math.cos(t * math.pi / 2),
    "ease-out-sine": lambda t: math.sin(t * math.pi / 2),
    "step": lambda t: 1.0 if t >= 1 else 0.0,
}


@dataclass
class AnimationConfig:
    """What ``animate`` moves: ``property`` from ``from_value`` to ``to_value``
    over ``duration_ms`` along ``easing``; ``on_complete`` runs at the end.
    Numbers interpolate; other values switch at the end."""

    property: str
    to_value: Any
    duration_ms: float
    from_value: Any = None
    easing: str = "linear"
    on_complete: Callable[..., Any] | None = None

    @classmethod
    def coerce(cls, config: "AnimationConfig | Mapping[str, Any]") -> "AnimationConfig":
        if isinstance(config, AnimationConfig):
            return config
        if not isinstance(config, Mapping):
            raise DOMError(f"animation config must be a table/object, not {type(config).__name__}")
        def get(*names: str, default: Any = None) -> Any:
            return next((config[n] for n in names if n in config), default)

        prop = get("property", "prop")
        if not isinstance(prop, str):
            raise DOMError("animation config needs a 'property' name")
        duration = get("duration_ms", "durationMs", "duration", "duration-ms", default=0)
        if not isinstance(duration, (int, float)) or duration < 0:
            raise DOMError(f"animation duration must be a non-negative number, not {duration!r}")
        easing = get("easing", default="linear")
        if easing not in EASINGS:
            raise DOMError(f"unknown easing {easing!r}; known: {', '.join(EASINGS)}")
        return cls(
            property=prop,
            from_value=get("from_value", "fromValue", "from", "from-value"),
            to_value=get("to_value", "toValue", "to", "to-value"),
            duration_ms=float(duration),
            easing=easing,
            on_complete=get("on_complete", "onComplete", "on-complete"),
        )


@dataclass
class Element:
    """A node of the document tree."""

    number: int
    type: str
    id: str | None = None
    classes: list[str] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    style: dict[str, Any] = field(default_factory=dict)
    style_name: str | None = None
    parent: int | None = None
    children: list[int] = field(default_factory=list)


class DOMBridge(abc.ABC):
    """The specification's DOMBridge trait: what scripts may do to the UI.

    Element arguments accept an :class:`ElementHandle` or an element id string."""

    @abc.abstractmethod
    def get_element_by_id(self, id: str) -> ElementHandle | None: ...
    @abc.abstractmethod
    def get_elements_by_class(self, class_name: str) -> list[ElementHandle]: ...
    @abc.abstractmethod
    def get_elements_by_tag(self, tag_name: str) -> list[ElementHandle]: ...
    @abc.abstractmethod
    def set_property(self, element: Any, property: str, value: Any) -> None: ...
    @abc.abstractmethod
    def get_property(self, element: Any, property: str) -> Any: ...
    @abc.abstractmethod
    def set_style(self, element: Any, style_name: str, value: Any = None) -> None: ...
    @abc.abstractmethod
    def add_class(self, element: Any, class_name: str) -> None: ...
    @abc.abstractmethod
    def remove_class(self, element: Any, class_name: str) -> None: ...

    # Not abstract, so bridges written before these existed keep working: the defaults are
    # built on the abstract lookups above; a document overrides them with a direct test.
    def has_class(self, element: Any, class_name: str) -> bool:
        """Whether the element carries ``class_name``."""
        target = element if isinstance(element, ElementHandle) else self.get_element_by_id(str(element))
        return target is not None and target in self.get_elements_by_class(class_name)

    def toggle_class(self, element: Any, class_name: str) -> bool:
        """Add ``class_name`` if it is absent, else remove it; returns whether it is present now."""
        if self.has_class(element, class_name):
            self.remove_class(element, class_name)
            return False
        self.add_class(element, class_name)
        return True

    @abc.abstractmethod
    def create_element(self, element_type: str, properties: Mapping[str, Any] | None = None) -> ElementHandle: ...
    @abc.abstractmethod
    def append_child(self, parent: Any, child: Any) -> None: ...
    @abc.abstractmethod
    def remove_element(self, element: Any) -> None: ...
    @abc.abstractmethod
    def add_event_listener(self, element: Any, event_type: str, callback: Callable[..., Any]) -> int: ...
    @abc.abstractmethod
    def remove_event_listener(self, listener_id: int) -> None: ...
    @abc.abstractmethod
    def emit_custom_event(self, element: Any, event_name: str, data: Any = None) -> None: ...
    @abc.abstractmethod
    def set_variable(self, name: str, value: Any) -> None: ...
    @abc.abstractmethod
    def get_variable(self, name: str) -> Any: ...
    @abc.abstractmethod
    def watch_variable(self, name: str, callback: Callable[..., Any]) -> int: ...
    @abc.abstractmethod
    def unwatch_variable(self, watcher_id: int) -> None: ...
    @abc.abstractmethod
    def animate(self, element: Any, animation: "AnimationConfig | Mapping[str, Any]") -> int: ...
    @abc.abstractmethod
    def set_timeout(self, callback: Callable[..., Any], delay_ms: float) -> int: ...
    @abc.abstractmethod
    def set_interval(self, callback: Callable[..., Any], interval_ms: float) -> int: ...
    @abc.abstractmethod
    def clear_timer(self, timer_id: int) -> None: ...
    @abc.abstractmethod
    def log(self, level: str, message: str) -> None: ...
    @abc.abstractmethod
    def get_current_time(self) -> float: ...
    @abc.abstractmethod
    def get_random(self) -> float: ...


@dataclass
class _Timer:
    id: int
    due: float
    interval: float | None
    callback: Callable[..., Any]


@dataclass
class _Animation:
    id: int
    element: int
    config: AnimationConfig
    start: float
    start_value: Any
    #: the script its property writes are charged to (None: the host)
    by: DomCharge | None = None


class Document(DOMBridge):
    """The reference DOM: an in-memory element tree on a manual or asyncio clock.

    Its write methods take ``by``: the writing script's charge (see
    :mod:`kryon_core.domquota`); ``ScriptBridge`` passes it, so what each
    script stores is held to its policy's ``max_dom_*`` quota.

    ``seed`` makes ``get_random`` repeatable; ``on_error`` receives errors
    raised by callbacks (default: logged); ``on_log`` receives script log
    lines as ``(level, message)``.
    """

    #: its write methods take ``by`` and keep DOM quotas (``ScriptBridge`` passes the writer)
    charges_writers = True

    def __init__(
        self,
        *,
        seed: int | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_log: Callable[[str, str], None] | None = None,
        root_type: str = "app",
    ) -> None:
        self._lock = threading.RLock()
        self._numbers = itertools.count(1)
        self._ids = itertools.count(1)
        self._elements: dict[int, Element] = {}
        self._by_id: dict[str, int] = {}
        self._listeners: dict[int, tuple[int, str, Callable[..., Any]]] = {}
        self._variables: dict[str, Any] = {}
        self._watchers: dict[int, tuple[str, Callable[..., Any]]] = {}
        self._timers: dict[int, _Timer] = {}
        self._animations: dict[int, _Animation] = {}
        self._observers: list[Callable[[str, dict[str, Any]], None]] = []
        self._now = 0.0
        self._seed = seed
        self._random: random.Random | None = None  # made on first use: most documents never draw a number
        self.on_error = on_error or (lambda exc: log.error("callback failed: %s", exc))
        self.on_log = on_log or (lambda level, msg: log.log(_LOG_LEVELS.get(level, logging.INFO), msg))
        self.errors: list[BaseException] = []
        #: what each script holds in the document (its DOM quota)
        self.ledger = DomLedger()
        self._charged = self.ledger._slots  # truthy while any slot is charged: host writes check it first
        self.root = self._new_element(root_type, {})

    # -- element access ------------------------------------------------------
    def _new_element(self, element_type: str, properties: Mapping[str, Any]) -> ElementHandle:
        props = dict(properties)
        number = next(self._numbers)
        el = Element(number=number, type=element_type)
        el_id = props.pop("id", None)
        classes = props.pop("class", props.pop("classes", None))
        style = props.pop("style", None)
        if isinstance(classes, str):
            el.classes = classes.split()
        elif isinstance(classes, (list, tuple)):
            el.classes = [str(c) for c in classes]
        if isinstance(style, Mapping):
            el.style = dict(style)
        elif isinstance(style, str):
            el.style_name = style
        el.properties = props
        if el_id is not None:
            el_id = str(el_id)
            if el_id in self._by_id:
                raise DOMError(f"an element with id '{el_id}' already exists")
            el.id = el_id
            self._by_id[el_id] = number
        self._elements[number] = el
        return ElementHandle(number)

    def element(self, ref: Any) -> Element:
        """The :class:`Element` for a handle, an id string or an element number."""
        with self._lock:
            if isinstance(ref, ElementHandle):
                el = self._elements.get(ref.number)
            elif isinstance(ref, str):
                number = self._by_id.get(ref)
                el = self._elements.get(number) if number is not None else None
            elif isinstance(ref, int) and not isinstance(ref, bool):
                el = self._elements.get(ref)
            else:
                raise DOMError(f"expected an element handle or id, got {type(ref).__name__}")
            if el is None:
                raise DOMError(f"no element {ref!r} in the document")
            return el

    def handle(self, ref: Any) -> ElementHandle:
        return ElementHandle(self.element(ref).number)

    def get_element_by_id(self, id: str) -> ElementHandle | None:
        with self._lock:
            number = self._by_id.get(str(id))
            return ElementHandle(number) if number is not None else None

    def get_elements_by_class(self, class_name: str) -> list[ElementHandle]:
        with self._lock:
            return [ElementHandle(n) for n in self._walk_numbers() if class_name in self._elements[n].classes]

    def get_elements_by_tag(self, tag_name: str) -> list[ElementHandle]:
        with self._lock:
            return [ElementHandle(n) for n in self._walk_numbers() if self._elements[n].type == tag_name]

    def _walk_numbers(self, start: int | None = None) -> Iterator[int]:
        """Element numbers in document order from ``start`` (the root by default)."""
        stack = [start if start is not None else self.root.number]
        while stack:
            number = stack.pop()
            yield number
            stack.extend(reversed(self._elements[number].children))

    # -- element manipulation -----------------------------------------------------
    def set_property(self, element: Any, property: str, value: Any, *, by: DomCharge | None = None) -> None:
        with self._lock:
            el = self.element(element)
            if property == "id":
                raise DOMError("an element's id cannot be changed")
            if by is not None:
                self.ledger.charge(("prop", el.number, property), by, slot_size(property, value))
            elif self._charged:
                self.ledger.release(("prop", el.number, property))
            old = el.properties.get(property)
            el.properties[property] = value
        self._notify("property", {"element": el.number, "property": property, "value": value, "old": old})

    def get_property(self, element: Any, property: str) -> Any:
        with self._lock:
            el = self.element(element)
            if property == "id":
                return el.id
            if property in ("type", "tag"):
                return el.type
            return el.properties.get(property)

    def set_style(self, element: Any, style_name: str, value: Any = None, *, by: DomCharge | None = None) -> None:
        """Without ``value``: give the element the named style. With one:
        set the inline style property ``style_name`` to ``value``."""
        with self._lock:
            el = self.element(element)
            slot = ("style", el.number, None if value is None else style_name)
            if by is not None:
                self.ledger.charge(slot, by, slot_size(style_name, value))
            elif self._charged:
                self.ledger.release(slot)
            if value is None:
                el.style_name = style_name
            else:
                el.style[style_name] = value
        self._notify("style", {"element": el.number, "style": style_name, "value": value})

    def get_style(self, element: Any, style_name: str | None = None) -> Any:
        with self._lock:
            el = self.element(element)
            return el.style_name if style_name is None else el.style.get(style_name)

    def add_class(self, element: Any, class_name: str, *, by: DomCharge | None = None) -> None:
        with self._lock:
            el = self.element(element)
            if class_name not in el.classes:
                if by is not None:
                    self.ledger.charge(("class", el.number, class_name), by, approximate_size(class_name))
                el.classes.append(class_name)
        self._notify("class", {"element": el.number, "classes": list(el.classes)})

    def remove_class(self, element: Any, class_name: str) -> None:
        with self._lock:
            el = self.element(element)
            if class_name in el.classes:
                el.classes.remove(class_name)
                if self._charged:
                    self.ledger.release(("class", el.number, class_name))
        self._notify("class", {"element": el.number, "classes": list(el.classes)})

    def has_class(self, element: Any, class_name: str) -> bool:
        with self._lock:
            return class_name in self.element(element).classes

    # -- creation and removal -------------------------------------------------------
    def create_element(
        self, element_type: str, properties: Mapping[str, Any] | None = None, *, by: DomCharge | None = None
    ) -> ElementHandle:
        if not isinstance(element_type, str) or not element_type:
            raise DOMError("create_element needs an element type name")
        with self._lock:
            if by is None:
                return self._new_element(element_type, properties or {})
            # charged to a slot no element has yet, then moved to the new element's
            size = approximate_size(element_type) + approximate_size(dict(properties or {}))
            self.ledger.charge(("el", 0), by, size)
            try:
                handle = self._new_element(element_type, properties or {})
            finally:
                self.ledger.release(("el", 0))
            self.ledger.charge(("el", handle.number), by, size)
        return handle

    def append_child(self, parent: Any, child: Any) -> None:
        with self._lock:
            p, c = self.element(parent), self.element(child)
            if p.number == c.number or c.number in self._ancestors(p.number):
                raise DOMError("an element cannot be appended inside itself or its own descendant")
            if c.parent is not None:
                self._elements[c.parent].children.remove(c.number)
            c.parent = p.number
            p.children.append(c.number)
        self._notify("append", {"parent": p.number, "child": c.number})

    def _ancestors(self, number: int) -> list[int]:
        out = []
        parent = self._elements[number].parent
        while parent is not None:
            out.append(parent)
            parent = self._elements[parent].parent
        return out

    def remove_element(self, element: Any) -> None:
        """Detach and delete the element and its subtree, with their listeners
        and animations."""
        with self._lock:
            el = self.element(element)
            if el.number == self.root.number:
                raise DOMError("the root element cannot be removed")
            doomed = set(self._walk_numbers(el.number))
            if el.parent is not None:
                self._elements[el.parent].children.remove(el.number)
            ledger = self.ledger
            for number in doomed:
                gone = self._elements.pop(number)
                if gone.id is not None:
                    self._by_id.pop(gone.id, None)
                if self._charged:
                    _release_element(ledger, gone)
            for lid in [lid for lid, (n, _, _) in self._listeners.items() if n in doomed]:
                del self._listeners[lid]
                ledger.release(("listener", lid))
            for aid in [aid for aid, a in self._animations.items() if a.element in doomed]:
                del self._animations[aid]
                ledger.release(("timer", aid))
        self._notify("remove", {"element": el.number})

    # -- events -------------------------------------------------------------------
    def add_event_listener(
        self, element: Any, event_type: str, callback: Callable[..., Any], *, by: DomCharge | None = None
    ) -> int:
        if not callable(callback):
            raise DOMError("event listener must be a function")
        with self._lock:
            el = self.element(element)
            lid = next(self._ids)
            if by is not None:
                self.ledger.charge(("listener", lid), by, _CALLBACK_SIZE + approximate_size(str(event_type)))
            self._listeners[lid] = (el.number, str(event_type), callback)
            return lid

    def remove_event_listener(self, listener_id: int) -> None:
        with self._lock:
            if self._listeners.pop(listener_id, None) is None:
                raise DOMError(f"no event listener {listener_id}")
            self.ledger.release(("listener", listener_id))

    def emit_custom_event(self, element: Any, event_name: str, data: Any = None) -> None:
        self.dispatch_event(element, event_name, data)

    def dispatch_event(self, element: Any, event_type: str, data: Any = None) -> int:
        """Deliver an event to the element's listeners, then its ancestors'
        (bubbling). Returns how many listeners ran. A listener that raises is
        reported to ``on_error``; the rest still run."""
        with self._lock:
            target = self.element(element)
            path = [target.number, *self._ancestors(target.number)]
            calls = []
            for number in path:
                for n, etype, cb in list(self._listeners.values()):
                    if n == number and etype == event_type:
                        calls.append((number, cb))
        ran = 0
        for number, cb in calls:
            event = {
                "type": event_type,
                "target": ElementHandle(target.number),
                "targetId": target.id,
                "currentTarget": ElementHandle(number),
                "data": data,
                "time": self._now,
            }
            self._run_callback(cb, event)
            ran += 1
        return ran

    def click(self, element: Any) -> int:
        """Shorthand for dispatching a "click" event."""
        return self.dispatch_event(element, "click")

    def _run_callback(self, callback: Callable[..., Any], *args: Any) -> Any:
        try:
            return callback(*args)
        except (ScriptError, DOMError, Exception) as exc:  # one script's error never stops the document
            self.errors.append(exc)
            self.on_error(exc)
            return None

    # -- variables ----------------------------------------------------------------
    def set_variable(self, name: str, value: Any, *, by: DomCharge | None = None) -> None:
        with self._lock:
            if by is not None:
                self.ledger.charge(("var", name), by, slot_size(name, value))
            elif self._charged:
                self.ledger.release(("var", name))
            old = self._variables.get(name)
            self._variables[name] = value
            watchers = [cb for (n, cb) in self._watchers.values() if n == name]
        for cb in watchers:
            self._run_callback(cb, value, old, name)
        self._notify("variable", {"name": name, "value": value})

    def get_variable(self, name: str) -> Any:
        with self._lock:
            return self._variables.get(name)

    @property
    def variables(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._variables)

    def watch_variable(self, name: str, callback: Callable[..., Any], *, by: DomCharge | None = None) -> int:
        """``callback(new, old, name)`` runs after every ``set_variable(name)``."""
        if not callable(callback):
            raise DOMError("variable watcher must be a function")
        with self._lock:
            wid = next(self._ids)
            if by is not None:
                self.ledger.charge(("watcher", wid), by, _CALLBACK_SIZE + approximate_size(name))
            self._watchers[wid] = (name, callback)
            return wid

    def unwatch_variable(self, watcher_id: int) -> None:
        with self._lock:
            if self._watchers.pop(watcher_id, None) is None:
                raise DOMError(f"no variable watcher {watcher_id}")
            self.ledger.release(("watcher", watcher_id))

    # -- timers and animations -------------------------------------------------------
    def set_timeout(self, callback: Callable[..., Any], delay_ms: float, *, by: DomCharge | None = None) -> int:
        return self._add_timer(callback, delay_ms, None, by)

    def set_interval(self, callback: Callable[..., Any], interval_ms: float, *, by: DomCharge | None = None) -> int:
        if not isinstance(interval_ms, (int, float)) or interval_ms <= 0:
            raise DOMError(f"interval must be a positive number of milliseconds, not {interval_ms!r}")
        return self._add_timer(callback, interval_ms, float(interval_ms), by)

    def _add_timer(
        self, callback: Callable[..., Any], delay_ms: float, interval: float | None, by: DomCharge | None = None
    ) -> int:
        if not callable(callback):
            raise DOMError("timer callback must be a function")
        if not isinstance(delay_ms, (int, float)) or isinstance(delay_ms, bool) or delay_ms < 0:
            raise DOMError(f"delay must be a non-negative number of milliseconds, not {delay_ms!r}")
        with self._lock:
            tid = next(self._ids)
            if by is not None:
                self.ledger.charge(("timer", tid), by, _CALLBACK_SIZE)
            self._timers[tid] = _Timer(tid, self._now + float(delay_ms), interval, callback)
            return tid

    def clear_timer(self, timer_id: int) -> None:
        """Cancel a timeout, interval or animation. Clearing one already
        finished is allowed (as in browsers)."""
        with self._lock:
            self._timers.pop(timer_id, None)
            self._animations.pop(timer_id, None)
            self.ledger.release(("timer", timer_id))

    def animate(
        self, element: Any, animation: "AnimationConfig | Mapping[str, Any]", *, by: DomCharge | None = None
    ) -> int:
        config = AnimationConfig.coerce(animation)
        with self._lock:
            el = self.element(element)
            start_value = config.from_value if config.from_value is not None else el.properties.get(config.property)
            aid = next(self._ids)
            if by is not None:
                # the animation, and the property it writes at its largest (its steps are charged to the script)
                self.ledger.charge(("timer", aid), by, _CALLBACK_SIZE)
                size = max(slot_size(config.property, start_value), slot_size(config.property, config.to_value))
                try:
                    self.ledger.charge(("prop", el.number, config.property), by, size)
                except MemoryLimitError:
                    self.ledger.release(("timer", aid))
                    raise
            self._animations[aid] = _Animation(aid, el.number, config, self._now, start_value, by)
        if config.from_value is not None:
            self.set_property(el.number, config.property, config.from_value, by=by)
        if config.duration_ms == 0:
            self._step_animations()
        return aid

    @property
    def pending_timers(self) -> int:
        with self._lock:
            return len(self._timers) + len(self._animations)

    def advance(self, ms: float) -> None:
        """Move the clock forward by ``ms``, running every timer that falls due
        in order (an interval as many times as it falls due) and stepping
        animations at each timer and at the end."""
        if ms < 0:
            raise DOMError("the clock cannot go backwards")
        end = self._now + ms
        while True:
            with self._lock:
                due = [t for t in self._timers.values() if t.due <= end]
                if not due:
                    break
                timer = min(due, key=lambda t: (t.due, t.id))
                self._now = max(self._now, timer.due)
                if timer.interval is None:
                    del self._timers[timer.id]
                    self.ledger.release(("timer", timer.id))
                else:
                    timer.due += timer.interval
            self._step_animations()
            self._run_callback(timer.callback)
        with self._lock:
            self._now = end
        self._step_animations()

    def _step_animations(self) -> None:
        with self._lock:
            active = list(self._animations.values())
        finished = []
        for anim in active:
            cfg = anim.config
            progress = 1.0 if cfg.duration_ms == 0 else min(1.0, (self._now - anim.start) / cfg.duration_ms)
            value = _interpolate(anim.start_value, cfg.to_value, EASINGS[cfg.easing](progress), progress)
            try:
                self.set_property(anim.element, cfg.property, value, by=anim.by)
            except DOMError:  # element removed meanwhile
                progress = 1.0
            except MemoryLimitError as exc:  # its script is over its DOM quota now: the animation stops there
                self.errors.append(exc)
                self.on_error(exc)
                progress = 1.0
            if progress >= 1.0:
                finished.append(anim)
        for anim in finished:
            with self._lock:
                still = self._animations.pop(anim.id, None)
                self.ledger.release(("timer", anim.id))
            if still is not None and anim.config.on_complete is not None:
                self._run_callback(anim.config.on_complete, ElementHandle(anim.element))

    async def run_clock(self, *, tick_ms: float = 16.0, until_idle: bool = False) -> None:
        """Drive timers and animations from real time on the running loop.
        With ``until_idle`` it returns once no timer or animation is left."""
        import asyncio  # only apps that drive the clock from a loop pay for asyncio

        last = time.monotonic()
        while True:
            await asyncio.sleep(tick_ms / 1000.0)
            now = time.monotonic()
            self.advance((now - last) * 1000.0)
            last = now
            if until_idle and not self.pending_timers:
                return

    # -- utilities -------------------------------------------------------------------
    def log(self, level: str, message: str) -> None:
        self.on_log(level if level in LogLevel.ALL else LogLevel.INFO, str(message))

    def get_current_time(self) -> float:
        """Milliseconds on the document's clock."""
        return self._now

    def get_random(self) -> float:
        if self._random is None:
            with self._lock:
                if self._random is None:
                    import random

                    self._random = random.Random(self._seed)
        return self._random.random()

    # -- release of what scripts own ------------------------------------------------------
    def owned_callbacks(self, owns: Callable[[Callable[..., Any]], bool]) -> list[tuple[str, int]]:
        """Keys of every listener, watcher, timer and animation whose callback
        ``owns(callback)`` claims (a script's, when it is reloaded or unloaded)."""
        with self._lock:
            keys = [("listener", k) for k, v in self._listeners.items() if owns(v[2])]
            keys += [("watcher", k) for k, v in self._watchers.items() if owns(v[1])]
            keys += [("timer", k) for k, v in self._timers.items() if owns(v.callback)]
            keys += [
                ("animation", k)
                for k, a in self._animations.items()
                if a.config.on_complete is not None and owns(a.config.on_complete)
            ]
            return keys

    def drop_callbacks(self, keys: Iterable[tuple[str, int]]) -> None:
        """Remove the callbacks ``owned_callbacks`` listed (a completion
        callback is detached; its animation still finishes)."""
        with self._lock:
            for kind, key in keys:
                if kind == "listener":
                    self._listeners.pop(key, None)
                    self.ledger.release(("listener", key))
                elif kind == "watcher":
                    self._watchers.pop(key, None)
                    self.ledger.release(("watcher", key))
                elif kind == "timer":
                    self._timers.pop(key, None)
                    self.ledger.release(("timer", key))
                elif kind == "animation" and key in self._animations:
                    self._animations[key].config.on_complete = None

    def release_writer(self, language: str, script: str) -> int:
        """A script was unloaded: what it stored stays, held by the host, and no
        longer counts against its DOM quota. Returns how many slots it held."""
        with self._lock:
            for anim in self._animations.values():
                if anim.by is not None and anim.by[0] == (language, script):
                    anim.by = None  # its steps are the host's from now on
            return self.ledger.release_owner(language, script)

    def dom_usage(self, language: str, script: str) -> DomUsage:
        """What ``script`` holds in the document now (entries and bytes charged to it)."""
        with self._lock:
            return self.ledger.usage(language, script)

    def callback_counts(self) -> dict[str, int]:
        with self._lock:
            return {
                "listeners": len(self._listeners),
                "watchers": len(self._watchers),
                "timers": len(self._timers),
                "animations": len(self._animations),
            }

    # -- observation and serialisation -------------------------------------------------------
    def observe(self, observer: Callable[[str, dict[str, Any]], None]) -> Callable[[], None]:
        """Call ``observer(kind, details)`` after every change; returns an unsubscribe function."""
        self._observers.append(observer)
        return lambda: self._observers.remove(observer) if observer in self._observers else None

    def _notify(self, kind: str, details: dict[str, Any]) -> None:
        for observer in list(self._observers):
            try:
                observer(kind, details)
            except Exception as exc:  # an observer must not break a script's DOM call
                log.warning("document observer failed: %s", exc)

    def to_dict(self, element: Any = None) -> dict[str, Any]:
        """The (sub)tree as plain data: type, id, classes, properties, style, children."""
        with self._lock:
            el = self.element(element if element is not None else self.root)
            out: dict[str, Any] = {"type": el.type}
            if el.id is not None:
                out["id"] = el.id
            if el.classes:
                out["class"] = list(el.classes)
            if el.properties:
                out["properties"] = {k: _plain(v) for k, v in el.properties.items()}
            if el.style or el.style_name:
                out["style"] = dict(el.style) if el.style else el.style_name
            if el.children:
                out["children"] = [self.to_dict(c) for c in el.children]
            return out

    def build(
        self,
        tree: Mapping[str, Any],
        parent: Any = None,
        *,
        element_types: Iterable[str] | None = None,
        errors: list[DOMError] | None = None,
    ) -> ElementHandle | None:
        """Create elements from plain data (the shape ``to_dict`` gives),
        appended under ``parent`` (the root by default). With
        ``element_types``, an unknown type is a DOMError; with an ``errors``
        list, a bad element is recorded there and skipped (its subtree too)
        while its siblings are still built."""
        allowed = set(element_types) if element_types is not None else None
        try:
            kind = tree.get("type") if isinstance(tree, Mapping) else None
            if not isinstance(kind, str):
                raise DOMError(f"element without a 'type': {tree!r}")
            if allowed is not None and kind not in allowed:
                raise DOMError(f"unknown element type '{kind}'; known: {', '.join(sorted(allowed))}")
            props = dict(tree.get("properties", {}))
            for key in ("id", "class", "style"):
                if key in tree:
                    props[key] = tree[key]
            handle = self.create_element(kind, props)
            self.append_child(parent if parent is not None else self.root, handle)
        except DOMError as exc:
            if errors is None:
                raise
            errors.append(exc)
            return None
        for child in tree.get("children", []):
            self.build(child, handle, element_types=allowed, errors=errors)
        return handle

    def render_text(self, element: Any = None, indent: int = 0) -> str:
        """A readable outline of the tree, for terminals and test failures."""
        el = self.element(element if element is not None else self.root)
        head = "  " * indent + el.type
        if el.id:
            head += f"#{el.id}"
        if el.classes:
            head += "".join(f".{c}" for c in el.classes)
        if el.properties:
            head += " " + " ".join(f"{k}={_plain(v)!r}" for k, v in sorted(el.properties.items()))
        lines = [head] + [self.render_text(c, indent + 1) for c in el.children]
        return "\n".join(lines)


#: bytes charged for a stored callback (its handle and the document's record of it)
_CALLBACK_SIZE = 128


def _release_element(ledger: DomLedger, el: Element) -> None:
    """Release the charges of a removed element and every value stored on it."""
    n = el.number
    ledger.release(("el", n))
    for name in el.properties:
        ledger.release(("prop", n, name))
    for name in el.style:
        ledger.release(("style", n, name))
    ledger.release(("style", n, None))
    for name in el.classes:
        ledger.release(("class", n, name))


_LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}


def _interpolate(start: Any, end: Any, eased: float, progress: float) -> Any:
    numeric = (int, float)
    if isinstance(start, numeric) and isinstance(end, numeric) and not isinstance(start, bool):
        value = start + (end - start) * eased
        if progress >= 1.0:
            return end
        return value
    return end if progress >= 1.0 else start


def _plain(value: Any) -> Any:
    if isinstance(value, ElementHandle):
        return {"element": value.number}
    if isinstance(value, UserData):
        return repr(value)
    if callable(value):
        return repr(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
