"""A :class:`DebugTarget` for script code that runs as Python bytecode in this
process (trusted Python, trusted Kryon Lisp, test engines), over
``sys.settrace``.

While a debugger is attached the engine installs :meth:`PyTraceTarget.trace`
as the thread's trace function whenever it enters script code (``enter``);
the global trace sees only calls, and turns line events on for the frames
of scripts that need them (a breakpoint in that script, or every line while
stepping). A pause from another thread turns line events on for the frames
that thread is running, so an endless loop stops at its next line. Without
a debugger nothing is installed.

Language specifics come from the engine: which code objects are script code
(``script_of``), how a Python line maps to the script's own line and column
(Lisp maps to its ``.kl`` positions), how an expression is evaluated and how
a value is shown.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping
from types import CodeType, FrameType
from typing import Any

from ..errors import ScriptError, ScriptRuntimeError
from .target import DebugEvents, DebugTarget, FrameInfo, ScopeInfo, TraceMode, ValueInfo

__all__ = ["PyTraceTarget"]

_MAX_CHILDREN = 1000
_MAX_TEXT = 200


def _show(value: Any) -> tuple[str, str]:
    text = repr(value)
    if len(text) > _MAX_TEXT:
        text = text[: _MAX_TEXT - 3] + "..."
    return text, type(value).__name__


def _has_children(value: Any) -> bool:
    return isinstance(value, (list, tuple, dict, set, frozenset)) and len(value) > 0 or (
        hasattr(value, "__dict__") and not callable(value) and not isinstance(value, type)
    )


class PyTraceTarget(DebugTarget):
    """See the module docstring."""

    def __init__(
        self,
        language: str,
        *,
        script_of: Callable[[CodeType], str | None],
        position: Callable[[str, FrameType], tuple[int, int | None]] | None = None,
        evaluate: Callable[[str, Mapping[str, Any], dict[str, Any], str], Any] | None = None,
        show: Callable[[Any], tuple[str, str]] = _show,
        code_lines: Callable[[str, str], set[int]] | None = None,
    ) -> None:
        self.language = language
        self._script_of = script_of
        self._position = position or (lambda script, frame: (frame.f_lineno, None))
        self._evaluate = evaluate or (lambda script, globals_, locals_, expr: eval(expr, dict(globals_), locals_))
        self._show = show
        self._code_lines = code_lines or _python_code_lines
        self._events: DebugEvents | None = None
        self._mode = TraceMode.OFF
        self._lines: Mapping[str, frozenset[int]] = {}
        self._local = threading.local()

    # -- attaching and modes -----------------------------------------------------------
    def attach(self, events: DebugEvents) -> None:
        self._events = events

    def detach(self) -> None:
        self._events = None
        self._mode = TraceMode.OFF
        for frame in sys._current_frames().values():
            while frame is not None:
                if frame.f_trace is self._local_trace:
                    frame.f_trace = None
                frame = frame.f_back  # type: ignore[assignment]

    @property
    def active(self) -> bool:
        """Whether entries into script code should install :meth:`trace`: while
        attached at all, so that a pause can reach a thread already running."""
        return self._events is not None

    def set_mode(self, mode: TraceMode, lines: Mapping[str, frozenset[int]]) -> None:
        self._mode, self._lines = mode, dict(lines)
        if mode is TraceMode.EVERY_LINE:  # a pause: running frames report their next line
            me = threading.get_ident()
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                f: FrameType | None = frame
                while f is not None:
                    if self._script_of(f.f_code) is not None:
                        f.f_trace = self._local_trace
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
        script = self._script_of(frame.f_code)
        if script is None:
            return None
        mode = self._mode
        if mode is TraceMode.OFF:
            return None
        frame.f_trace_lines = mode is TraceMode.EVERY_LINE or bool(self._lines.get(script))
        if mode is TraceMode.EVERY_LINE:
            self._events.call(self)
        return self._local_trace

    def _local_trace(self, frame: FrameType, event: str, arg: Any) -> Any:
        events = self._events
        if events is None:
            return None
        script = self._script_of(frame.f_code)
        if script is None:
            return None
        if event == "line":
            line, _ = self._position(script, frame)
            if self._mode is TraceMode.EVERY_LINE or line in self._lines.get(script, ()):
                self._local.frame = frame
                try:
                    events.line(self, script, line)
                finally:
                    self._local.frame = None
            frame.f_trace_lines = self._mode is TraceMode.EVERY_LINE or bool(self._lines.get(script))
        elif event == "return":
            if self._mode is TraceMode.EVERY_LINE:
                events.ret(self)
        elif event == "exception":
            exc = arg[1]
            error = exc if isinstance(exc, ScriptError) else ScriptRuntimeError(
                f"{type(exc).__name__}: {exc}", language=self.language, script=script,
                line=self._position(script, frame)[0],
            )
            self._local.frame = frame
            try:
                events.exception(self, error)
            finally:
                self._local.frame = None
        return self._local_trace

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
        frame: FrameType | None = getattr(self._local, "frame", None) or sys._getframe(1)
        groups: list[list[FrameInfo]] = []
        current: list[FrameInfo] = []
        while frame is not None:
            script = self._script_of(frame.f_code)
            if script is not None:
                line, column = self._position(script, frame)
                name = frame.f_code.co_name
                current.append(FrameInfo("<top level>" if name == "<module>" else name, script, line, column, frame))
            elif current:  # host code between script frames: an activation ends here
                groups.append(current)
                current = []
            frame = frame.f_back
        if current:
            groups.append(current)
        return groups

    def scopes(self, frame: FrameInfo) -> list[ScopeInfo]:
        f: FrameType = frame.handle
        local_names = dict(f.f_locals)
        out = [ScopeInfo("Locals", ("scope", local_names))]
        if f.f_code.co_freevars:
            out.append(ScopeInfo("Closure", ("scope", {n: local_names[n] for n in f.f_code.co_freevars if n in local_names})))
        if f.f_globals is not f.f_locals:
            module = {k: v for k, v in f.f_globals.items() if not k.startswith("__")}
            out.append(ScopeInfo("Globals", ("scope", module), expensive=len(module) > 100))
        return out

    def children(self, handle: Any) -> list[ValueInfo]:
        kind, value = handle
        if kind == "scope" or isinstance(value, dict):
            items = list(value.items())
        elif isinstance(value, (list, tuple)):
            items = list(enumerate(value))
        elif isinstance(value, (set, frozenset)):
            items = list(enumerate(sorted(value, key=repr)))
        else:
            items = [(k, v) for k, v in vars(value).items() if not k.startswith("__")]
        out = []
        for key, item in items[:_MAX_CHILDREN]:
            text, type_name = self._show(item)
            child = ("value", item) if _has_children(item) else None
            count = len(item) if isinstance(item, (list, tuple, dict, set, frozenset)) else None
            out.append(ValueInfo(str(key), text, type_name, child, count))
        return out

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
        text, type_name = self._show(value)
        count = len(value) if isinstance(value, (list, tuple, dict, set, frozenset)) else None
        return ValueInfo(expression, text, type_name, ("value", value) if _has_children(value) else None, count)


def _python_code_lines(script: str, source: str) -> set[int]:
    """Lines that hold code in Python source: every line some code object runs."""
    lines: set[int] = set()
    stack = [compile(source, script, "exec")]
    while stack:
        code = stack.pop()
        lines.update(line for _, _, line in code.co_lines() if line is not None)
        stack.extend(c for c in code.co_consts if isinstance(c, CodeType))
    return lines
