"""One ``sys.settrace`` hook for breakpoints and the recursion limit.

The hook is installed only while a script call runs that needs it (a
breakpoint exists, or the script's policy sets ``max_recursion``) and only on
that thread, so scripts pay nothing for it otherwise.

- **Breakpoints**: a frame of a script whose file has breakpoints traces its
  lines; reaching one calls the handler with a :class:`BreakpointHit` (the
  script stack, the innermost frame's locals), untraced, then the script goes on.
- **Recursion**: script frames are counted from the call that installed the
  hook (their ``call`` and ``return`` events; line events stay off). A frame
  nested deeper than the limit gets :class:`.errors.RecursionLimitExceeded`
  raised in it, scheduled as an asynchronous exception so the hook itself
  stays installed (an exception raised by a trace function would remove it).
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import types
from collections.abc import Callable, Iterable
from typing import Any

from ..engine import BreakpointHit
from ..errors import ScriptError
from ..watchdog import async_exc_setter
from .errors import ErrorTranslator, RecursionLimitExceeded
from .state import SCRIPT_KEY

__all__ = ["Breakpoints", "Tracer"]

TraceFunction = Callable[[types.FrameType, str, Any], Any]


class Breakpoints:
    """Breakpoints by file and line, resolved to script ids on first use.

    ``names_of(script_id)`` gives the file names a breakpoint may use for a
    script (its id, id plus extension, its file name and path)."""

    def __init__(self, language: str, names_of: Callable[[str], set[str]], errors: ErrorTranslator) -> None:
        self.language = language
        self.names_of = names_of
        self.errors = errors
        self.handler: Callable[[BreakpointHit], None] | None = None
        self._by_id: dict[int, tuple[str, int]] = {}
        self._ids = itertools.count(1)
        self._lines: dict[str, dict[int, int]] = {}  # script id -> line -> breakpoint id (a cache)
        self._lock = threading.Lock()
        #: whether a debugger is attached (see :mod:`.debugging`): every call traces then
        self.debugging = False
        #: whether any breakpoint exists or a debugger is attached (read on every call: a plain attribute)
        self.active = False

    def add(self, file: str, line: int) -> int:
        if not isinstance(line, int) or isinstance(line, bool) or line < 1:
            raise ScriptError(f"a breakpoint needs a line number >= 1, not {line!r}", language=self.language)
        with self._lock:
            bid = next(self._ids)
            self._by_id[bid] = (str(file), line)
            self._lines = {}
            self.active = True
        return bid

    def remove(self, breakpoint_id: int) -> None:
        with self._lock:
            if self._by_id.pop(breakpoint_id, None) is None:
                raise ScriptError(f"no breakpoint {breakpoint_id}", language=self.language)
            self._lines = {}
            self.active = bool(self._by_id) or self.debugging

    def set_debugging(self, on: bool) -> None:
        with self._lock:
            self.debugging = on
            self.active = bool(self._by_id) or on

    def forget(self, script_id: str) -> None:
        """A script's names may have changed (loaded, reloaded, unloaded)."""
        self._lines.pop(script_id, None)

    def lines(self, script_id: str) -> dict[int, int]:
        """Line -> breakpoint id for one script."""
        lines = self._lines.get(script_id)
        if lines is None:
            names = self.names_of(script_id)
            with self._lock:
                lines = {ln: bid for bid, (file, ln) in sorted(self._by_id.items()) if file in names}
                self._lines[script_id] = lines
        return lines

    def for_scripts(self, script_ids: Iterable[str]) -> dict[str, dict[int, int]]:
        return {sid: lines for sid in script_ids if (lines := self.lines(sid))}

    def hit(self, bid: int, script_id: str, frame: types.FrameType) -> None:
        handler = self.handler
        if handler is None:
            return
        stack = self.errors.from_frame(frame, with_locals=True)
        previous = sys.gettrace()
        sys.settrace(None)  # the handler itself is not traced
        try:
            handler(BreakpointHit(bid, self.language, script_id, frame.f_lineno, stack))
        finally:
            sys.settrace(previous)


def names_for(script_id: str, filename: str | None, extensions: Iterable[str]) -> set[str]:
    """The names a breakpoint may give a script's file by."""
    names = {script_id, *(script_id + ext for ext in extensions)}
    if filename:
        names |= {filename, os.path.basename(filename)}
    return names


class _Count:
    """Per thread: the recursion limit in force and the script frames counted."""

    __slots__ = ("limit", "depth", "fired")

    def __init__(self) -> None:
        self.limit: int | None = None
        self.depth = 0
        self.fired = False


class Tracer:
    """The trace hook (see the module docstring)."""

    def __init__(self, breakpoints: Breakpoints) -> None:
        self.breakpoints = breakpoints
        self._local = threading.local()
        #: the debugger's target while one is attached (a kryon_core.debug.pytrace.PyTraceTarget)
        self.debug: Any = None
        #: raises RecursionLimitExceeded in a thread: loaded (ctypes) by the first call with a limit
        self._set_async_exc: Callable[[int, type], None] | None = None

    @property
    def active(self) -> bool:
        """Whether every script call must install the hook (breakpoints exist)."""
        return self.breakpoints.active

    def _count(self) -> _Count:
        count = getattr(self._local, "count", None)
        if count is None:
            count = self._local.count = _Count()
        return count

    def enter(self, max_recursion: int | None) -> tuple[Any, int | None] | None:
        """Install the hook for a script call if it needs one; the token undoes it."""
        count = self._count()
        outer = count.limit
        limit = outer if max_recursion is None else max_recursion if outer is None else min(outer, max_recursion)
        if limit is None and not self.breakpoints.active:
            return None
        if limit is not None and self._set_async_exc is None:
            self._set_async_exc = async_exc_setter()
        if outer is None and limit is not None:
            count.depth, count.fired = 0, False
        count.limit = limit
        previous = sys.gettrace()
        if previous is not self._call:
            sys.settrace(self._call)
        return previous, outer

    def leave(self, token: tuple[Any, int | None] | None) -> None:
        if token is None:
            return
        previous, outer = token
        count = self._count()
        count.limit = outer
        if sys.gettrace() is not previous:
            sys.settrace(previous)
        if outer is None and count.fired:
            _absorb_pending()

    def _call(self, frame: types.FrameType, event: str, arg: Any) -> TraceFunction | None:
        script_id = frame.f_globals.get(SCRIPT_KEY)
        if script_id is None:
            return None
        debug = self.debug
        if debug is not None:
            return debug.call_event(frame, self._limits(frame, script_id))  # type: ignore[no-any-return]
        return self._limits(frame, script_id)

    def _limits(self, frame: types.FrameType, script_id: str) -> TraceFunction | None:
        count = self._count()
        counting = count.limit is not None
        if counting:
            count.depth += 1
            if count.depth > count.limit and not count.fired:  # type: ignore[operator]
                count.fired = True
                (self._set_async_exc or async_exc_setter())(threading.get_ident(), RecursionLimitExceeded)
        lines = self.breakpoints.lines(script_id) if self.breakpoints.active else None
        if lines and frame.f_code.co_filename == script_id:
            return self._line_tracer(lines, script_id, count if counting else None)
        if counting:
            frame.f_trace_lines = False
            return self._returned
        return None

    def _returned(self, frame: types.FrameType, event: str, arg: Any) -> TraceFunction:
        if event == "return":
            count = self._count()
            count.depth -= 1
            if count.limit is not None and count.depth <= count.limit:
                count.fired = False
        return self._returned

    def _line_tracer(self, lines: dict[int, int], script_id: str, count: _Count | None) -> TraceFunction:
        hit, returned = self.breakpoints.hit, self._returned

        def trace(frame: types.FrameType, event: str, arg: Any) -> TraceFunction:
            if event == "line":
                bid = lines.get(frame.f_lineno)
                if bid is not None:
                    hit(bid, script_id, frame)
            elif event == "return" and count is not None:
                returned(frame, event, arg)
            return trace

        return trace


def _absorb_pending() -> None:
    """Let a RecursionLimitExceeded still pending for this thread land here, not
    in host code (a short loop reaches the next check of pending exceptions)."""
    try:
        for _ in range(64):
            pass
    except RecursionLimitExceeded:
        pass
