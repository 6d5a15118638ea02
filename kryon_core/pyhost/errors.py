"""Python exceptions leaving script code, as Kryon errors with script stacks.

A frame belongs to a script when its globals are a script namespace (they
carry :data:`~kryon_core.pyhost.state.SCRIPT_KEY`); frames of the host, of
libraries and of the engine are left out. Lines come from the code objects
(a dialect's compiler keeps its source's lines), columns from
``co_positions``. At most :data:`MAX_FRAMES` frames are kept: the innermost,
and the outermost few, so a deep recursion still shows where it started.
"""

from __future__ import annotations

import itertools
import types
from typing import Any

from ..errors import (
    MemoryLimitError,
    RecursionLimitError,
    ScriptError,
    ScriptRuntimeError,
    ScriptTimeoutError,
    StackFrame,
)
from ..watchdog import TimeLimitExceeded
from .dialect import Dialect
from .state import SCRIPT_KEY

__all__ = ["MAX_FRAMES", "RecursionLimitExceeded", "ErrorTranslator"]

#: at most this many frames are kept: deep recursion must not become a megabyte of stack
MAX_FRAMES = 64
#: of which this many are the outermost (the entry into the script)
OUTER_FRAMES = 8


class RecursionLimitExceeded(BaseException):
    """Raised into script code nested deeper than its policy's ``max_recursion``
    (a BaseException, so ``except Exception`` in a script does not swallow it)."""


class ErrorTranslator:
    """Stacks and errors worded by one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.language = dialect.language

    # -- stacks ---------------------------------------------------------------------------
    def frame(self, frame: types.FrameType, line: int | None, lasti: int, *, with_locals: bool = False) -> StackFrame | None:
        """A StackFrame for a frame of a script, None for any other frame."""
        script = frame.f_globals.get(SCRIPT_KEY)
        if script is None:
            return None
        code = frame.f_code
        return StackFrame(
            function=self.dialect.frame_name(code.co_name),
            script=script,
            line=line,
            column=self._column(code, lasti),
            language=self.language,
            locals=self._locals(frame) if with_locals else {},
        )

    def from_traceback(self, tb: types.TracebackType | None) -> list[StackFrame]:
        """Script frames of a traceback, innermost first."""
        frames: list[StackFrame] = []
        while tb is not None:
            info = self.frame(tb.tb_frame, tb.tb_lineno, tb.tb_lasti)
            if info is not None:
                frames.append(info)
            tb = tb.tb_next
        frames.reverse()
        if len(frames) > MAX_FRAMES:
            frames = frames[: MAX_FRAMES - OUTER_FRAMES] + frames[-OUTER_FRAMES:]
        return frames

    def from_frame(self, frame: types.FrameType | None, *, with_locals: bool = False) -> list[StackFrame]:
        """Script frames from ``frame`` outwards, innermost first (with each frame's locals if asked)."""
        frames: list[StackFrame] = []
        while frame is not None and len(frames) < MAX_FRAMES:
            info = self.frame(frame, frame.f_lineno, frame.f_lasti, with_locals=with_locals)
            if info is not None:
                frames.append(info)
            frame = frame.f_back
        return frames

    def _column(self, code: types.CodeType, lasti: int) -> int | None:
        base = self.dialect.column_base
        positions = getattr(code, "co_positions", None)  # Python 3.11+: columns; none before
        if base is None or lasti < 0 or positions is None:
            return None
        for position in itertools.islice(positions(), lasti // 2, None):
            return None if position[2] is None else position[2] + base
        return None

    def _locals(self, frame: types.FrameType) -> dict[str, Any]:
        spelling = self.dialect.spelling
        return {
            spelling(k): v
            for k, v in frame.f_locals.items()
            if not k.startswith("_") and not isinstance(v, types.ModuleType)
        }

    # -- errors -----------------------------------------------------------------------------
    def translate(self, exc: BaseException, script: str | None, time_limit: float | None = None,
                  max_recursion: int | None = None) -> ScriptError:
        """The Kryon error for an exception that left script code.

        A ScriptError (from the bridge, another script or language) keeps its
        type and message and gains the script frames it passed through; one
        that names no line (a DOM argument error, a refused import) gets the
        innermost script location. The caller raises the result with its
        traceback cleared, so an outer boundary adds only the frames outside."""
        stack = self.from_traceback(exc.__traceback__)
        top = stack[0] if stack else None
        if isinstance(exc, ScriptError):
            return self._passing(exc, stack, script)
        where: dict[str, Any] = dict(
            language=self.language,
            script=top.script if top else script,
            line=top.line if top else None,
            column=top.column if top else None,
            stack=stack,
        )
        if isinstance(exc, TimeLimitExceeded):
            limit = f" of {time_limit:g} s" if time_limit is not None else ""
            return ScriptTimeoutError(f"the call ran past the time limit{limit}", **where)
        if isinstance(exc, RecursionLimitExceeded):
            return RecursionLimitError(f"script calls nested deeper than the policy's max_recursion ({max_recursion})", **where)
        if isinstance(exc, RecursionError):
            return RecursionLimitError("maximum recursion depth exceeded", **where)
        if isinstance(exc, MemoryError):
            return MemoryLimitError("out of memory", **where)
        if isinstance(exc, SystemExit):
            return ScriptRuntimeError(f"the script tried to exit the process (exit code {exc.code!r})", **where)
        error = ScriptRuntimeError(self.dialect.describe(exc), **where)
        error.__cause__ = exc
        return error

    def _passing(self, exc: ScriptError, stack: list[StackFrame], script: str | None) -> ScriptError:
        top = stack[0] if stack else None
        if exc.language is None or (exc.language == self.language and exc.line is None):
            exc.language = self.language
            if top is not None:
                exc.script, exc.line, exc.column = top.script, top.line, top.column
            elif exc.script is None:
                exc.script = script
        known = {(f.script, f.line, f.function, f.language) for f in exc.stack}
        exc.stack.extend(f for f in stack if (f.script, f.line, f.function, f.language) not in known)
        return exc
