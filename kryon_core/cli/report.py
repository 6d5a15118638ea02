"""How the command reports a failed script: as text or as one JSON object.

Engines name a script by its id (the file's stem); the command knows which
file each id came from, so every location printed is ``path:line:column``
with the path the user gave. Long stacks from unbounded recursion are
collapsed: a frame (or a short cycle of frames) repeated many times is
printed once, followed by how many more times it occurred.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from ..errors import ScriptError, StackFrame
from .exits import CommandError, status_for

__all__ = ["Frame", "describe", "format_text", "collapse", "print_error"]

#: the longest cycle of frames (mutual recursion) that is collapsed
MAX_CYCLE = 4
#: a run shorter than this many repetitions is printed in full
MIN_REPEATS = 3


@dataclass(frozen=True)
class Frame:
    """A stack frame with its script id replaced by the file it came from."""

    function: str
    file: str | None
    line: int | None
    column: int | None
    language: str | None

    def where(self) -> str:
        return location(self.file, self.line, self.column) or "?"

    def as_dict(self) -> dict[str, Any]:
        return {"function": self.function, "file": self.file, "line": self.line,
                "column": self.column, "language": self.language}


def location(file: str | None, line: int | None, column: int | None) -> str:
    """``file:line:column``, leaving out what is not known."""
    if file is None:
        return ""
    text = file
    if line is not None:
        text += f":{line}"
        if column is not None:
            text += f":{column}"
    return text


def _file_of(script: str | None, files: Mapping[str, str]) -> str | None:
    if script is None:
        return None
    return files.get(script, script)


def _frame(frame: StackFrame, files: Mapping[str, str]) -> Frame:
    function = frame.function
    for script_id, path in files.items():  # Lua names anonymous functions "function <id:line>"
        function = function.replace(f"<{script_id}:", f"<{path}:")
    return Frame(function, _file_of(frame.script, files), frame.line, frame.column, frame.language)


def describe(exc: BaseException, files: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The failure as plain data: what ``--json`` prints, and what the text form is made from."""
    files = files or {}
    if isinstance(exc, ScriptError):
        return {
            "error": type(exc).__name__,
            "language": exc.language,
            "file": _file_of(exc.script, files),
            "line": exc.line,
            "column": exc.column,
            "message": exc.message,
            "stack": [_frame(f, files).as_dict() for f in exc.stack],
            "exit_status": status_for(exc),
        }
    message = exc.message if isinstance(exc, CommandError) else str(exc) or type(exc).__name__
    return {"error": type(exc).__name__, "language": None, "file": None, "line": None, "column": None,
            "message": message, "stack": [], "exit_status": status_for(exc)}


def collapse(frames: Sequence[Frame], language: str | None = None) -> list[str]:
    """The stack as printed lines, innermost first; a frame or a cycle of up
    to MAX_CYCLE frames repeated MIN_REPEATS times or more is printed once
    with a count of the frames left out. A frame names its language when it
    is not ``language`` (the error's)."""
    lines: list[str] = []
    i = 0
    while i < len(frames):
        size, repeats = _longest_repeat(frames, i)
        block = frames[i : i + size]
        for frame in block:
            lines.append(_frame_line(frame, language))
        if repeats >= MIN_REPEATS:
            hidden = (repeats - 1) * size
            what = ", ".join(f"{f.function} at {f.where()}" for f in block)
            lines.append(f"  ... {hidden} more frames of {what}")
            i += repeats * size
        else:
            i += size
    return lines


def _longest_repeat(frames: Sequence[Frame], start: int) -> tuple[int, int]:
    """(cycle length, repetitions) of the best run starting at ``start``:
    the one hiding the most frames; (1, 1) when nothing repeats."""
    best = (1, 1)
    for size in range(1, MAX_CYCLE + 1):
        block = frames[start : start + size]
        if len(block) < size:
            break
        repeats = 1
        while frames[start + repeats * size : start + (repeats + 1) * size] == block:
            repeats += 1
        if repeats >= MIN_REPEATS and (repeats - 1) * size > (best[1] - 1) * best[0]:
            best = (size, repeats)
    return best


def _frame_line(frame: Frame, language: str | None) -> str:
    lang = f" [{frame.language}]" if frame.language and frame.language != language else ""
    return f"  at {frame.where()} in {frame.function}{lang}"


def format_text(exc: BaseException, files: Mapping[str, str] | None = None, *, label: str | None = "error") -> str:
    """``path:line:column: error: message [language]`` and the collapsed
    stack; without ``label`` just ``path:line:column: message [language]``."""
    files = files or {}
    info = describe(exc, files)
    where = location(info["file"], info["line"], info["column"])
    lang = f" [{info['language']}]" if info["language"] and where else ""
    parts = [p for p in (where, label) if p]
    head = ": ".join([*parts, info["message"]]) + lang
    if isinstance(exc, ScriptError) and exc.stack:
        return "\n".join([head, *collapse([_frame(f, files) for f in exc.stack], exc.language)])
    return head


def print_error(
    exc: BaseException, files: Mapping[str, str] | None = None, *, as_json: bool = False, out: TextIO | None = None
) -> int:
    """Report ``exc`` on stderr (text, or one JSON object per line); return its exit status."""
    stream = out or sys.stderr
    if os.environ.get("KRYON_DEBUG", "") not in ("", "0") and exc.__traceback__ is not None:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=stream)
    if as_json:
        print(json.dumps(describe(exc, files)), file=stream, flush=True)
    else:
        print(format_text(exc, files), file=stream, flush=True)
    return status_for(exc)
