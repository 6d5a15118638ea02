"""What an engine gives the debugger: a :class:`DebugTarget`.

The debugger (``kryon_core.debug.session``) is one for all languages; each
engine contributes a small adapter over its runtime's own hooks (Lua's debug
hook, Python's ``settrace``, the Wren VM's line events, probes in rewritten
JavaScript). The split of work:

- the engine *reports* events on the script's own thread: a line about to run,
  a call and a return (only while the debugger asks for every line), an error
  raised. It reports lines only as the debugger's :class:`TraceMode` asks, so a
  run without a debugger, or with breakpoints far away, stays fast;
- the debugger *decides* whether to stop (breakpoints, conditions, hit counts,
  stepping, pause requests). A stop happens inside the event call: the script's
  thread stays there, serving the debugger's questions (frames, scopes, values,
  evaluation) through the methods below, until it is told to go on;
- the engine *answers* those questions about its runtime on the stopped
  thread, where it is safe to touch it.

Handles (``FrameInfo.handle``, ``ScopeInfo.handle``, ``ValueInfo.handle``) are
the engine's own objects, valid only while the thread stays stopped.
"""

from __future__ import annotations

import abc
import enum
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..errors import ScriptError
    from ..policy import SecurityPolicy

__all__ = ["TraceMode", "FrameInfo", "ScopeInfo", "ValueInfo", "DebugEvents", "DebugTarget", "PolledDebugTarget"]


class TraceMode(enum.Enum):
    """Which events the debugger wants from an engine."""

    #: none: the engine runs as if no debugger were attached
    OFF = "off"
    #: line events only at the lines given with the mode (breakpoints), and errors
    BREAKPOINTS = "breakpoints"
    #: every line, call and return, on every thread (stepping and pausing)
    EVERY_LINE = "every-line"


@dataclass(frozen=True)
class FrameInfo:
    """One script frame: ``name`` is the function (``"<top level>"`` for a
    script's top level), positions are 1-based."""

    name: str
    script: str | None
    line: int | None
    column: int | None = None
    handle: Any = None


@dataclass(frozen=True)
class ScopeInfo:
    """A group of variables of a frame: ``"Locals"`` first, then for example
    ``"Closure"`` (upvalues) and ``"Globals"`` (module level)."""

    name: str
    handle: Any
    expensive: bool = False


@dataclass(frozen=True)
class ValueInfo:
    """A variable or an evaluation result, as the language shows it.

    ``value`` is display text in the language's own notation; ``type`` the
    language's type name; ``handle`` is not None when the value has children
    (a table, list, map, object), which :meth:`DebugTarget.children` lists on
    demand; ``count`` is how many, when known."""

    name: str
    value: str
    type: str
    handle: Any = None
    count: int | None = None


class DebugEvents(abc.ABC):
    """The debugger's side: called by an engine on the script's thread. Any of
    these may block while the thread is stopped."""

    @abc.abstractmethod
    def line(self, target: "DebugTarget", script: str, line: int) -> None:
        """A line of ``script`` is about to run."""

    @abc.abstractmethod
    def call(self, target: "DebugTarget") -> None:
        """A script function was entered (reported in ``EVERY_LINE`` mode only)."""

    @abc.abstractmethod
    def ret(self, target: "DebugTarget") -> None:
        """A script function returned or unwound (``EVERY_LINE`` mode only)."""

    @abc.abstractmethod
    def exception(self, target: "DebugTarget", error: "ScriptError") -> None:
        """``error`` was just raised in script code (the frames are still
        there); whether a handler will catch it is not known yet."""


class DebugTarget(abc.ABC):
    """An engine's debugging adapter (``ScriptEngine.debug_target()``)."""

    language: str = ""

    @abc.abstractmethod
    def attach(self, events: DebugEvents) -> None:
        """Start reporting to ``events`` (in the mode :meth:`set_mode` sets)."""

    @abc.abstractmethod
    def detach(self) -> None:
        """Stop reporting; remove every hook, so runs cost what they did before."""

    @abc.abstractmethod
    def set_mode(self, mode: TraceMode, lines: Mapping[str, frozenset[int]]) -> None:
        """Which events to report from now on: ``lines`` maps script ids to the
        breakpoint lines of ``BREAKPOINTS`` mode. Callable from any thread, also
        while a script runs (a pause request switches to ``EVERY_LINE``): it takes
        effect at the next line the runtime reaches, an endless loop included."""

    @abc.abstractmethod
    def resolve_line(self, script: str, source: str, line: int) -> int | None:
        """The line a breakpoint asked for at ``line`` lands on: ``line`` itself
        if it holds code, else the next line that does (within the same
        function), or None when none does. Works before the script loads."""

    def refuses(self, policy: "SecurityPolicy") -> str | None:
        """Why scripts loaded under ``policy`` cannot be debugged (say, they run
        in a worker process the debugger cannot reach), or None when they can.
        Their breakpoints are not verified and carry this message."""
        return None

    # -- on the stopped thread only ----------------------------------------------------
    @abc.abstractmethod
    def frames(self) -> list[list[FrameInfo]]:
        """This engine's script frames on the current thread, innermost first,
        grouped by activation (each entry into the runtime from the host is one
        activation; a script calling another language and being called back has
        two). The debugger interleaves activations of all engines."""

    @abc.abstractmethod
    def scopes(self, frame: FrameInfo) -> list[ScopeInfo]:
        """The frame's scopes, ``"Locals"`` first."""

    @abc.abstractmethod
    def children(self, handle: Any) -> list[ValueInfo]:
        """The members of a scope or of a structured value."""

    @abc.abstractmethod
    def evaluate(self, frame: FrameInfo | None, expression: str) -> ValueInfo:
        """Evaluate ``expression`` in ``frame`` (its locals, closure and
        globals), or in the script's module scope when ``frame`` is None, under
        the script's own policy: a sandboxed script's evaluation stays in its
        sandbox. Errors are ScriptErrors."""


class PolledDebugTarget(DebugTarget):
    """A target whose runtime asks for the mode itself (Lua's count hook,
    JavaScript's probes) instead of being told: the mode and breakpoint lines
    live here with a generation number that goes up at every change, so the
    runtime's hot path compares one integer and fetches the rest only when it
    moved. Subclasses call ``super().__init__()`` and read ``_events``,
    ``_mode``, ``_lines`` and ``_generation``."""

    def __init__(self) -> None:
        self._events: DebugEvents | None = None
        self._mode = TraceMode.OFF
        self._lines: dict[str, frozenset[int]] = {}
        self._generation = 0
        self._lock = threading.Lock()

    def attach(self, events: DebugEvents) -> None:
        self._events = events
        self._bump()

    def detach(self) -> None:
        """The runtime goes quiet at its next poll."""
        self._events = None
        self._mode = TraceMode.OFF
        self._bump()

    def set_mode(self, mode: TraceMode, lines: Mapping[str, frozenset[int]]) -> None:
        self._mode, self._lines = mode, dict(lines)
        self._bump()

    def _bump(self) -> None:
        with self._lock:
            self._generation += 1
