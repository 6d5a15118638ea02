"""Python exceptions raised by Lisp code, as Kryon errors with Lisp stacks.

A frame belongs to a script when its globals are a script namespace (they
carry ``__kryon_script__``); frames of Hy's runtime, of the host and of this
package are left out of the stack. Lines come from the code objects, which
hold the .kl file's own lines; columns come from ``co_positions`` (Hy stores
1-based columns, which this reports as they are).
"""

from __future__ import annotations

import itertools
import types
from typing import Any

import hy

from kryon_core import (
    MemoryLimitError,
    RecursionLimitError,
    ScriptError,
    ScriptRuntimeError,
    ScriptTimeoutError,
    StackFrame,
)

from .compiler import top_level_name
from .sandbox import TimeLimitExceeded
from .plugin import LANGUAGE
from .values import SCRIPT_KEY

__all__ = ["translate", "lisp_name", "stack_from_traceback", "stack_from_frame", "frame_info", "MAX_FRAMES"]

#: at most this many frames are kept (the innermost ones): deep recursion
#: must not turn into a megabyte of stack trace
MAX_FRAMES = 64


def lisp_name(name: str) -> str:
    """A Python function name as Lisp shows it: the top level, ``fn`` for
    anonymous functions, else the unmangled name."""
    if name == "<module>":
        return top_level_name
    if name == "<lambda>" or name.startswith("_hy_anon"):
        return "fn"
    return hy.unmangle(name)


def _column(code: types.CodeType, lasti: int) -> int | None:
    if lasti < 0:
        return None
    for pos in itertools.islice(code.co_positions(), lasti // 2, None):
        return pos[2]
    return None


def _locals(frame: types.FrameType) -> dict[str, Any]:
    items = frame.f_locals.items()
    return {
        hy.unmangle(k): v
        for k, v in items
        if not k.startswith("_") and k != "hy" and not isinstance(v, types.ModuleType)
    }


def frame_info(
    frame: types.FrameType, lineno: int | None, lasti: int, *, with_locals: bool = False
) -> StackFrame | None:
    """A StackFrame for a frame of a script, or None for any other frame."""
    script = frame.f_globals.get(SCRIPT_KEY)
    if script is None:
        return None
    code = frame.f_code
    return StackFrame(
        function=lisp_name(code.co_name),
        script=script,
        line=lineno,
        column=_column(code, lasti),
        language=LANGUAGE,
        locals=_locals(frame) if with_locals else {},
    )


def stack_from_traceback(tb: types.TracebackType | None) -> list[StackFrame]:
    """Script frames of a traceback, innermost first."""
    frames: list[StackFrame] = []
    while tb is not None:
        info = frame_info(tb.tb_frame, tb.tb_lineno, tb.tb_lasti)
        if info is not None:
            frames.append(info)
        tb = tb.tb_next
    frames.reverse()
    return frames[:MAX_FRAMES]


def stack_from_frame(frame: types.FrameType | None, *, with_locals: bool = False) -> list[StackFrame]:
    """Script frames from ``frame`` outwards (innermost first)."""
    frames: list[StackFrame] = []
    while frame is not None and len(frames) < MAX_FRAMES:
        info = frame_info(frame, frame.f_lineno, frame.f_lasti, with_locals=with_locals)
        if info is not None:
            frames.append(info)
        frame = frame.f_back
    return frames


def _message(exc: BaseException) -> str:
    if isinstance(exc, NameError) and getattr(exc, "name", None):
        return f"NameError: name '{hy.unmangle(exc.name)}' is not defined"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def translate(exc: BaseException, script: str | None, time_limit: float | None = None) -> ScriptError:
    """The Kryon error for an exception that left Lisp code.

    A ScriptError (from the bridge, another language or a limit) keeps its
    type and message; the Lisp frames it passed through are added to its
    stack, and where it names no line (a DOM argument error, an import
    refused) it gets the Lisp location. The caller raises the result with
    its traceback cleared, so an outer Lisp boundary adds only the frames
    outside this one. The watchdog's interrupt becomes ScriptTimeoutError
    (naming ``time_limit``), Python's own limits RecursionLimitError /
    MemoryLimitError, anything else ScriptRuntimeError."""
    stack = stack_from_traceback(exc.__traceback__)
    top = stack[0] if stack else None
    if isinstance(exc, ScriptError):
        if exc.language is None or (exc.language == LANGUAGE and exc.line is None):
            exc.language = LANGUAGE
            if top is not None:
                exc.script, exc.line, exc.column = top.script, top.line, top.column
            elif exc.script is None:
                exc.script = script
        exc.stack.extend(stack)
        return exc
    where = dict(
        language=LANGUAGE,
        script=top.script if top else script,
        line=top.line if top else None,
        column=top.column if top else None,
        stack=stack,
    )
    if isinstance(exc, TimeLimitExceeded):
        limit = f" of {time_limit:g} s" if time_limit is not None else ""
        error: ScriptError = ScriptTimeoutError(f"the call ran past the time limit{limit}", **where)
    elif isinstance(exc, RecursionError):
        error = RecursionLimitError(f"maximum recursion depth exceeded ({exc})", **where)
    elif isinstance(exc, MemoryError):
        error = MemoryLimitError("out of memory", **where)
    elif isinstance(exc, SystemExit):
        error = ScriptRuntimeError(f"the script tried to exit the process (exit code {exc.code!r})", **where)
    else:
        error = ScriptRuntimeError(_message(exc), **where)
    error.__cause__ = exc if not isinstance(exc, (RecursionError, MemoryError, TimeLimitExceeded)) else None
    return error
