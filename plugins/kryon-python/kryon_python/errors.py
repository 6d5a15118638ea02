"""Python exceptions raised by trusted scripts, as Kryon errors.

A frame belongs to a script when ``is_script(filename)`` says so (the code's
file name is the script id); host and library frames are left out of the
stack. A ScriptError passing through keeps its type and gains the script
frames it crossed.
"""

from __future__ import annotations

import types
from typing import Callable

from kryon_core import (
    CompileError,
    MemoryLimitError,
    RecursionLimitError,
    ScriptError,
    ScriptRuntimeError,
    ScriptTimeoutError,
    StackFrame,
)
from kryon_core.watchdog import TimeLimitExceeded

from .plugin import LANGUAGE

__all__ = ["traceback_frames", "translate"]


def traceback_frames(tb: types.TracebackType | None, is_script: Callable[[str], bool]) -> list[StackFrame]:
    """Script frames of a traceback, innermost first."""
    frames = []
    while tb is not None:
        code = tb.tb_frame.f_code
        if is_script(code.co_filename):
            frames.append(StackFrame(code.co_name, script=code.co_filename, line=tb.tb_lineno, language=LANGUAGE))
        tb = tb.tb_next
    frames.reverse()
    return frames


def translate(
    exc: BaseException, script: str | None, is_script: Callable[[str], bool], time_limit: float | None = None
) -> ScriptError:
    frames = traceback_frames(exc.__traceback__, is_script)
    if isinstance(exc, ScriptError):
        known = {(f.script, f.line, f.function) for f in exc.stack}
        exc.stack = [f for f in frames if (f.script, f.line, f.function) not in known] + list(exc.stack)
        if exc.script is None:
            exc.script = frames[0].script if frames else script
            exc.line = frames[0].line if frames else exc.line
            exc.language = exc.language or LANGUAGE
        return exc.with_traceback(None)
    where = frames[0] if frames else None
    kw = dict(
        language=LANGUAGE,
        script=where.script if where else script,
        line=where.line if where else None,
        stack=frames,
    )
    if isinstance(exc, TimeLimitExceeded):
        limit = f" of {time_limit:g} s" if time_limit is not None else ""
        return ScriptTimeoutError(f"time limit{limit} exceeded", **kw)
    if isinstance(exc, RecursionError):
        return RecursionLimitError(f"RecursionError: {exc}", **kw)
    if isinstance(exc, MemoryError):
        return MemoryLimitError(f"MemoryError: {exc}", **kw)
    if isinstance(exc, SyntaxError):  # exec/compile inside a script
        return CompileError(exc.msg or "invalid syntax", language=LANGUAGE, script=script, line=exc.lineno)
    return ScriptRuntimeError(f"{type(exc).__name__}: {exc}", **kw)
