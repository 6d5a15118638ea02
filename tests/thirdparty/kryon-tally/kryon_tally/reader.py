"""The Tally reader: source text to forms, each knowing its line and column.

Syntax: ``(head arg ...)`` lists, ``"strings"`` with ``\\n \\t \\" \\\\``
escapes, integers (``42``), floats (``1.5``, ``2e3``), ``true``, ``false``,
``nil``, and symbols (anything else, e.g. ``make-adder`` or
``kryon.setVariable``). ``;`` starts a comment to the end of the line.
"""

from __future__ import annotations

import bisect
import re
from typing import Any

__all__ = ["Sym", "Form", "ReadError", "read"]

TOKEN = re.compile(
    r"""(?P<space>[\s,]+|;[^\n]*)
      |(?P<open>\()|(?P<close>\))
      |(?P<string>"(?:[^"\\]|\\.)*")
      |(?P<badstring>")
      |(?P<atom>[^\s()";,]+)""",
    re.VERBOSE,
)
INT = re.compile(r"[+-]?\d+\Z")
FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?\Z")
ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
CONSTANTS = {"true": True, "false": False, "nil": None}


class Sym(str):
    """A symbol, with where it was read."""

    line: int = 0
    col: int = 0


class Form(list):
    """A parenthesised form, with where its ``(`` was read."""

    line: int = 0
    col: int = 0


class ReadError(Exception):
    def __init__(self, message: str, line: int, col: int) -> None:
        super().__init__(message)
        self.message, self.line, self.col = message, line, col


def read(text: str) -> list[Any]:
    """Every top-level form of ``text``. Raises ReadError."""
    starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def where(pos: int) -> tuple[int, int]:
        line = bisect.bisect_right(starts, pos)
        return line, pos - starts[line - 1] + 1

    top: list[Any] = []
    stack: list[list[Any]] = [top]
    for m in TOKEN.finditer(text):
        kind = m.lastgroup
        if kind == "space":
            continue
        line, col = where(m.start())
        if kind == "open":
            form = Form()
            form.line, form.col = line, col
            stack[-1].append(form)
            stack.append(form)
        elif kind == "close":
            if len(stack) == 1:
                raise ReadError("unexpected ')'", line, col)
            stack.pop()
        elif kind == "string":
            stack[-1].append(_unescape(m.group()[1:-1], line, col))
        elif kind == "badstring":
            raise ReadError("unterminated string", line, col)
        else:
            stack[-1].append(_atom(m.group(), line, col))
    if len(stack) > 1:
        unclosed = stack[-1]
        raise ReadError("'(' is never closed", unclosed.line, unclosed.col)  # type: ignore[attr-defined]
    return top


def _unescape(body: str, line: int, col: int) -> str:
    def sub(m: "re.Match[str]") -> str:
        c = m.group(1)
        if c not in ESCAPES:
            raise ReadError(f"unknown escape '\\{c}' in a string", line, col)
        return ESCAPES[c]

    return re.sub(r"\\(.)", sub, body, flags=re.S)


def _atom(text: str, line: int, col: int) -> Any:
    if INT.match(text):
        return int(text)
    if FLOAT.match(text):
        return float(text)
    if text in CONSTANTS:
        return CONSTANTS[text]
    sym = Sym(text)
    sym.line, sym.col = line, col
    return sym
