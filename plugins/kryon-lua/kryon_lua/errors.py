"""Translation of lupa's exceptions into kryon_core errors.

Chunks are loaded with the name "=<script id>", so Lua reports positions as
"counter:12: message" and tracebacks as "counter:12: in function 'add'".
Limits raised by the prelude's hook carry the marker "kryon-limit:<kind>",
sandbox denials "kryon-denied:", size limits "kryon-size:"; all arrive as
ordinary Lua errors.
"""

from __future__ import annotations

import re
from typing import Any

from kryon_core import AccessDeniedError, CompileError, ScriptError, ScriptRuntimeError, StackFrame
from kryon_core.errors import MemoryLimitError, RecursionLimitError, ScriptTimeoutError, SizeLimitError  # the limit errors

from .plugin import LANGUAGE

_POSITION = re.compile(r"^(?P<src>[^\n]*?):(?P<line>\d+): (?P<msg>.*)$", re.S)
_FRAME = re.compile(r"^\s*(?P<src>[^\n]*?):(?P<line>\d+): in (?P<what>.*)$")
_FUNC_NAME = re.compile(r"(?:function|local|method|field|upvalue) '([^']+)'|function <[^>]*>|(main chunk)")
_NEAR = re.compile(r"near '(.+)'$")

LIMIT = "kryon-limit:"
DENIED = "kryon-denied:"
SIZE = "kryon-size:"


def split_traceback(text: str) -> tuple[str, list[StackFrame]]:
    """(message, frames) from a Lua error text with an optional traceback."""
    head, sep, trace = text.partition("\nstack traceback:")
    frames = []
    for line in trace.splitlines() if sep else ():
        m = _FRAME.match(line)
        if not m or m.group("src") in ("[C]", "kryon-prelude", "kryon-sandbox"):
            continue
        what = m.group("what")
        name = _FUNC_NAME.search(what)
        fname = (name.group(1) or name.group(2)) if name and (name.group(1) or name.group(2)) else what
        frames.append(StackFrame(function=fname, script=m.group("src"), line=int(m.group("line")), language=LANGUAGE))
    return head, frames


def translate(exc: BaseException, script: str | None, *, compiling: bool = False) -> ScriptError:
    """A kryon_core error for a lupa exception raised running ``script``."""
    if isinstance(exc, ScriptError):
        return exc
    text = _message(exc)
    head, frames = split_traceback(text)
    src, line, message = script, None, head
    m = _POSITION.match(head)
    if m:
        src, line, message = m.group("src"), int(m.group("line")), m.group("msg")
    if src and src.startswith("[string"):
        src = script
    kw: dict[str, Any] = dict(language=LANGUAGE, script=src or script, line=line, stack=frames)
    if compiling or "error loading code" in text:
        column = None
        near = _NEAR.search(message)
        if near and line is not None and getattr(exc, "_kryon_source", None):
            column = _column_of(exc._kryon_source, line, near.group(1))  # type: ignore[attr-defined]
        return CompileError(message.replace("error loading code: ", ""), column=column, **kw)
    if type(exc).__name__ == "LuaMemoryError" or "not enough memory" in message:
        return MemoryLimitError("memory limit exceeded (not enough memory)", **kw)
    if message.startswith(LIMIT):
        kind = message[len(LIMIT) :].strip()
        if kind == "timeout":
            return ScriptTimeoutError("time limit exceeded", **kw)
        if kind == "recursion":
            return RecursionLimitError("recursion limit exceeded", **kw)
    if message.startswith(SIZE):
        return SizeLimitError(message[len(SIZE) :].strip(), **kw)
    if message.startswith(DENIED):
        return AccessDeniedError(message[len(DENIED) :], **kw)
    if "stack overflow" in message:
        return RecursionLimitError(f"recursion too deep ({message})", **kw)
    return ScriptRuntimeError(message, **kw)


def _message(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else ""
    if isinstance(arg, bytes):
        return arg.decode("utf-8", "replace")
    return str(arg) if arg is not None else type(exc).__name__


def _column_of(source: str, line: int, token: str) -> int | None:
    lines = source.splitlines()
    if not 1 <= line <= len(lines):
        return None
    if token == "<eof>":
        return len(lines[line - 1]) + 1
    index = lines[line - 1].find(token)
    return index + 1 if index >= 0 else None
