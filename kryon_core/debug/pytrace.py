"""A :class:`DebugTarget` for script code that runs as Python bytecode in this
process (trusted Python, trusted Kryon Lisp, test engines), over
``sys.settrace``.

While a debugger is attached the engine installs :meth:`PyTraceTarget.trace`
as the thread's trace function whenever it enters script code (``enter``),
or calls it from a trace function of its own (:meth:`PyTraceTarget.call_event`,
when the engine already traces for its limits); the global trace sees only
calls, and turns line events on for the frames of scripts that need them (a
breakpoint in that script, or every line while stepping). A pause from
another thread turns line events on for the frames that thread is running,
so an endless loop stops at its next line. Without a debugger nothing is
installed.

Language specifics come from the engine: which frames are script code
(``script_of`` / ``frame_script``), how a Python line maps to the script's
own line and column (Lisp maps to its ``.kl`` positions), how names are
spelled, how an expression is evaluated and how a value is shown.
"""

from __future__ import annotations

import sys
import threading
import weakref
from collections.abc import Callable, Mapping
from types import CodeType, FrameType
from typing import Any

from ..errors import ScriptError, ScriptRuntimeError
from . import pyframes
from .target import DebugEvents, DebugTarget, FrameInfo, ScopeInfo, TraceMode, ValueInfo

__all__ = ["PyTraceTarget", "Chain"]

TraceFunction = Callable[[FrameType, str, Any], Any]


def _untraced(frame: FrameType, event: str, arg: Any) -> Any:
    return _untraced


def _show(value: Any) -> tuple[str, str]:
    return pyframes.short_repr(value), type(value).__name__


def _has_children(value: Any) -> bool:
    return isinstance(value, (list, tuple, dict, set, frozenset)) and len(value) > 0 or (
        hasattr(value, "__dict__") and not callable(value) and not isinstance(value, type)
    )


class Chain:
    """A frame's local trace made of two: the engine's own (limits) and the
    debugger's. Both see every event; the debugger's runs last, so its choice
    of line events for the frame stands."""

    __slots__ = ("inner", "mine")

    def __init__(self, inner: TraceFunction, mine: TraceFunction) -> None:
        self.inner, self.mine = inner, mine

    def __call__(self, frame: FrameType, event: str, arg: Any) -> "Chain":
        self.inner = self.inner(frame, event, arg) or _untraced
        self.mine(frame, event, arg)
        return self


class PyTraceTarget(DebugTarget):
    """See the module docstring."""

    def __init__(
        self,
        language: str,
        *,
        script_of: Callable[[CodeType], str | None],
        position: Callable[[str, FrameType], tuple[int, int | None]] | None = None,
        line: Callable[[str, FrameType], int] | None = None,
        evaluate: Callable[[str, Mapping[str, Any], dict[str, Any], str], Any] | None = None,
        show: Callable[[Any], tuple[str, str]] = _show,
        code_lines: Callable[[str, str], set[int]] | None = None,
        frame_script: Callable[[FrameType], str | None] | None = None,
        spell: Callable[[str], str] = str,
        frame_name: Callable[[str], str] = str,
    ) -> None:
        self.language = language
        self._script_of = script_of
        self._frame_script = frame_script or (lambda frame: script_of(frame.f_code))
        self._position = position or (lambda script, frame: (frame.f_lineno, None))
        self._line = line or (lambda script, frame: self._position(script, frame)[0])
        self._evaluate = evaluate or (lambda script, globals_, locals_, expr: eval(expr, dict(globals_), locals_))
        self._show = show
        self._code_lines = code_lines or _python_code_lines
        self._spell = spell
        self._frame_name = frame_name
        self._events: DebugEvents | None = None
        self._mode = TraceMode.OFF
        self._lines: Mapping[str, frozenset[int]] = {}
        self._local = threading.local()
        self._code_lines_cache: "weakref.WeakKeyDictionary[CodeType, frozenset[int]]" = weakref.WeakKeyDictionary()

    # -- attaching and modes -----------------------------------------------------------
    def attach(self, events: DebugEvents) -> None:
        self._events = events

    def detach(self) -> None:
        self._events = None
        self._mode = TraceMode.OFF
        for frame in sys._current_frames().values():
            f: FrameType | None = frame
            while f is not None:
                if f.f_trace is self._local_trace:
                    f.f_trace = None
                elif isinstance(f.f_trace, Chain) and f.f_trace.mine == self._local_trace:
                    f.f_trace = f.f_trace.inner
                f = f.f_back

    @property
    def active(self) -> bool:
        """Whether entries into script code should install :meth:`trace`: while
        attached at all, so that a pause can reach a thread already running."""
        return self._events is not None

    def set_mode(self, mode: TraceMode, lines: Mapping[str, frozenset[int]]) -> None:
        self._mode, self._lines = mode, dict(lines)
        if mode is TraceMode.EVERY_LINE:  # a pause or a step: running frames report their next line
            for frame in sys._current_frames().values():
                f: FrameType | None = frame
                while f is not None:
                    if self._frame_script(f) is not None:
                        current = f.f_trace
                        if current is None:
                            f.f_trace = self._local_trace
                        elif current != self._local_trace and not (
                            isinstance(current, Chain) and current.mine == self._local_trace
                        ):
                            f.f_trace = Chain(current, self._local_trace)
                        f.f_trace_lines = True
                    f = f.f_back

    def enter(self) -> Any:
        """Install the trace function on the calling thread (the engine calls
        this when it enters script code while :attr:`active`); returns the
        previous one, for :meth:`leave`."""
        previous = sys.gettrace()
        sys.settrace(self.trace)
        return previous

    def leave(self, previous: Any) -> None:
        sys.settrace(previous)

    # -- the trace functions --------------------------------------------------------------
    def trace(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event != "call" or self._events is None:
            return None
        script = self._frame_script(frame)
        if script is None:
            return None
        mode = self._mode
        if mode is TraceMode.OFF:
            return None
        frame.f_trace_lines = mode is TraceMode.EVERY_LINE or self._has_breakpoint(frame.f_code, script)
        if mode is TraceMode.EVERY_LINE:
            self._events.call(self)
        return self._local_trace

    def _has_breakpoint(self, code: CodeType, script: str) -> bool:
        """Whether a breakpoint is on a line of ``code`` (itself, not nested
        functions): only such frames pay for line events in ``BREAKPOINTS`` mode."""
        return pyframes.has_breakpoint(self._code_lines_cache, self._lines.get(script), code)

    def call_event(self, frame: FrameType, inner: TraceFunction | None) -> TraceFunction | None:
        """For an engine tracing on its own (limits): the local trace of a
        frame just called, ``inner`` (the engine's, or None) chained with the
        debugger's."""
        mine = self.trace(frame, "call", None)
        if mine is None:
            return inner
        if inner is None:
            return mine  # type: ignore[no-any-return]
        return Chain(inner, mine)

    def _local_trace(self, frame: FrameType, event: str, arg: Any) -> Any:
        events = self._events
        if events is None:
            return None
        script = self._frame_script(frame)
        if script is None:
            return None
        if event == "line":
            line = self._line(script, frame)
            if self._mode is TraceMode.EVERY_LINE or line in self._lines.get(script, ()):
                self._stopped_in(frame, "line", events.line, self, script, line)
            frame.f_trace_lines = self._mode is TraceMode.EVERY_LINE or self._has_breakpoint(frame.f_code, script)
        elif event == "return":
            if self._mode is TraceMode.EVERY_LINE:
                events.ret(self)
        elif event == "exception":
            exc, tb = arg[1], arg[2]
            if isinstance(exc, pyframes.CONTROL_FLOW) or pyframes.passing_through(tb, self._frame_script):
                return self._local_trace
            error = exc if isinstance(exc, ScriptError) else ScriptRuntimeError(
                f"{type(exc).__name__}: {exc}", language=self.language, script=script,
                line=self._line(script, frame),
            )
            self._stopped_in(frame, "exception", events.exception, self, error)
        return self._local_trace

    def _stopped_in(self, frame: FrameType, event: str, report: Callable[..., None], *args: Any) -> None:
        """Report an event with ``frame`` as the innermost one (nested: an
        evaluation may run script code that reports again)."""
        outer = getattr(self._local, "frame", None), getattr(self._local, "event", None)
        self._local.frame, self._local.event = frame, event
        try:
            report(*args)
        finally:
            self._local.frame, self._local.event = outer

    def at_line_start(self, frame: FrameType) -> bool:
        """Whether ``frame`` is stopped before its line runs (a line event),
        rather than inside it (a call it makes, an error it raised)."""
        return frame is getattr(self._local, "frame", None) and getattr(self._local, "event", None) == "line"

    # -- breakpoint lines -----------------------------------------------------------------
    def resolve_line(self, script: str, source: str, line: int) -> int | None:
        try:
            lines = self._code_lines(script, source)
        except (SyntaxError, ScriptError, ValueError):
            return None
        after = [n for n in lines if n >= line]
        return min(after) if after else None

    # -- inspection (on the stopped thread) ---------------------------------------------------
    def frames(self) -> list[list[FrameInfo]]:
        start: FrameType | None = getattr(self._local, "frame", None) or sys._getframe(1)
        return [[self._frame_info(frame, script) for frame, script in group]
                for group in pyframes.activations(start, self._frame_script)]

    def _frame_info(self, frame: FrameType, script: str) -> FrameInfo:
        line, column = self._position(script, frame)
        name = frame.f_code.co_name
        shown = "<top level>" if name == "<module>" else self._frame_name(name)
        return FrameInfo(shown, script, line, column, frame)

    def scopes(self, frame: FrameInfo) -> list[ScopeInfo]:
        return [ScopeInfo(name, ("scope", names), expensive=expensive)
                for name, names, expensive in pyframes.scopes(frame.handle)]

    def children(self, handle: Any) -> list[ValueInfo]:
        kind, value = handle
        spell = self._spell if kind == "scope" else str
        return [self._value(spell(key) if isinstance(key, str) else str(key), item)
                for key, item in pyframes.child_items(kind, value)]

    def _value(self, name: str, value: Any) -> ValueInfo:
        text, type_name = self._show(value)
        return ValueInfo(name, text, type_name, ("value", value) if _has_children(value) else None, pyframes.count(value))

    def evaluate(self, frame: FrameInfo | None, expression: str) -> ValueInfo:
        if frame is None:
            raise ScriptRuntimeError("no frame to evaluate in", language=self.language)
        f: FrameType = frame.handle
        try:
            value = self._evaluate(frame.script or "", f.f_globals, dict(f.f_locals), expression)
        except ScriptError:
            raise
        except Exception as exc:
            raise ScriptRuntimeError(f"{type(exc).__name__}: {exc}", language=self.language, script=frame.script) from None
        return self._value(expression, value)


def _python_code_lines(script: str, source: str) -> set[int]:
    """Lines that hold code in Python source: every line some code object runs."""
    return code_lines(compile(source, script, "exec"))


def code_lines(code: CodeType) -> set[int]:
    """Every line some code object in ``code`` (nested ones included) runs."""
    lines: set[int] = set()
    stack = [code]
    while stack:
        c = stack.pop()
        lines.update(line for _, _, line in c.co_lines() if line is not None)
        stack.extend(k for k in c.co_consts if isinstance(k, CodeType))
    return lines
