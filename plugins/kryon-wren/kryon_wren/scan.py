"""Scans of Wren source text that read it without running it: one tokenizer
(:func:`tokens`), the functions a script defines (:func:`scan_functions`,
for ``compile`` and ``evaluate``), the modules it imports (:func:`imports`)
and the renaming of ``this`` the debugger's evaluation needs
(:func:`rename_this`).

The tokenizer knows Wren's lexical structure: ``"..."`` strings with
backslash escapes and ``%(...)`` interpolations (which nest, and hold code
with strings and comments of their own), ``\"\"\"`` raw strings, and ``//``
and ``/* */`` comments (block comments nest).
"""

from __future__ import annotations

import bisect
import re
from typing import NamedTuple

from kryon_core import FunctionInfo

#: FunctionInfo.documentation of a static getter (called without parentheses)
GETTER = "Wren getter"
#: the placeholder token of a string (or of a string's piece between interpolations)
STRING = '""'
#: what `this` is called inside the debugger's evaluation function (see rename_this)
THIS = "kryonThis_"

_IMPORT = re.compile(r'^[ \t]*import[ \t]+"([^"\n]+)"', re.M)


class Token(NamedTuple):
    """An identifier, a punctuation character or a string (``STRING``), with
    its 1-based line and its span in the text."""

    text: str
    line: int
    start: int
    end: int


def tokens(text: str, *, interpolations: bool = False) -> list[Token]:
    """The tokens of ``text``, comments skipped. A string is one ``STRING``
    token; with ``interpolations`` the code inside its ``%(...)`` is
    tokenized too (each piece of the string around it then is a ``STRING``)."""
    newlines = [i for i, c in enumerate(text) if c == "\n"]
    out: list[Token] = []
    n = len(text)

    def add(kind: str, start: int, end: int) -> None:
        out.append(Token(kind, bisect.bisect_left(newlines, start) + 1, start, end))

    def string(i: int, opened: int) -> int:
        """Scan a string from ``i`` (just after its opening quote or after
        an interpolation's closing parenthesis) to just after its end."""
        while i < n:
            c = text[i]
            if c == "\\":
                i += 2
            elif c == '"':
                add(STRING, opened, i + 1)
                return i + 1
            elif c == "%" and text.startswith("%(", i):
                if interpolations:
                    add(STRING, opened, i)
                    i = code(i + 2, nested=True)
                    opened = i
                else:
                    i = skip_interpolation(i + 2)
            else:
                i += 1
        add(STRING, opened, n)
        return n

    def skip_interpolation(i: int) -> int:
        """Past the ``)`` closing an interpolation whose code starts at ``i``
        (parentheses counted, nested strings skipped)."""
        depth = 1
        while i < n and depth:
            c = text[i]
            if c == '"':
                i = skip_string(i)
                continue
            depth += (c == "(") - (c == ")")
            i += 1
        return i

    def skip_string(i: int) -> int:
        mark = len(out)
        end = raw_or_string(i)
        del out[mark:]
        return end

    def raw_or_string(i: int) -> int:
        if text.startswith('"""', i):
            end = text.find('"""', i + 3)
            end = n if end < 0 else end + 3
            add(STRING, i, end)
            return end
        return string(i + 1, i)

    def code(i: int, nested: bool) -> int:
        """Tokenize code from ``i``; ``nested``: inside an interpolation,
        whose closing ``)`` ends it (returns just after that)."""
        depth = 1
        while i < n:
            c = text[i]
            if c in " \t\r\n":
                i += 1
            elif text.startswith("//", i):
                end = text.find("\n", i)
                i = n if end < 0 else end
            elif text.startswith("/*", i):
                level, i = 1, i + 2
                while i < n and level:
                    if text.startswith("/*", i):
                        level, i = level + 1, i + 2
                    elif text.startswith("*/", i):
                        level, i = level - 1, i + 2
                    else:
                        i += 1
            elif c == '"':
                i = raw_or_string(i)
            elif c.isalpha() or c == "_":
                j = i
                while j < n and (text[j].isalnum() or text[j] == "_"):
                    j += 1
                add(text[i:j], i, j)
                i = j
            else:
                if nested:
                    depth += (c == "(") - (c == ")")
                    if not depth:
                        return i + 1
                add(c, i, i + 1)
                i += 1
        return n

    code(0, nested=False)
    return out


def _params(toks: list[Token], i: int, close: str) -> tuple[tuple[str, ...], int]:
    names = []
    while i < len(toks) and toks[i].text != close:
        if toks[i].text not in (",",):
            names.append(toks[i].text)
        i += 1
    return tuple(names), i + 1


def scan_functions(text: str) -> dict[str, FunctionInfo]:
    """Static methods (and getters) of top-level classes and top-level
    variables that may hold a Fn, with parameter names where the source
    gives them (``Fn.new { |a, b| ... }``)."""
    toks = tokens(text)
    found: dict[str, FunctionInfo] = {}
    depth = 0
    cls: str | None = None
    i = 0
    while i < len(toks):
        tok, line = toks[i].text, toks[i].line
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
            if depth == 0:
                cls = None
        elif depth == 0 and tok == "class" and i + 1 < len(toks):
            cls = toks[i + 1].text
        elif depth == 0 and tok == "var" and i + 1 < len(toks) and toks[i + 1].text.isidentifier():
            name = toks[i + 1].text
            params: tuple[str, ...] = ()
            if [t.text for t in toks[i + 3:i + 7]] == ["Fn", ".", "new", "{"] and i + 7 < len(toks) \
                    and toks[i + 7].text == "|":
                params, _ = _params(toks, i + 8, "|")
            found.setdefault(name, FunctionInfo(name=name, parameter_count=len(params), parameter_names=params,
                                                line=line))
        elif depth == 1 and cls is not None and tok in ("static", "construct") and i + 2 < len(toks):
            name, after = toks[i + 1].text, toks[i + 2].text
            if name.isidentifier() and name not in ("foreign",):
                qualified = f"{cls}.{name}"
                if after == "(":
                    params, _ = _params(toks, i + 3, ")")
                    found.setdefault(qualified, FunctionInfo(name=qualified, parameter_count=len(params),
                                                             parameter_names=params, line=line))
                elif after == "{" and tok == "static":
                    found.setdefault(qualified, FunctionInfo(name=qualified, line=line, documentation=GETTER))
        i += 1
    return found


def imports(text: str) -> list[str]:
    """The modules ``text`` imports, in order, each once (``kryon`` and ``io``,
    which the engine provides, left out)."""
    return [d for d in dict.fromkeys(_IMPORT.findall(text)) if d not in ("kryon", "io")]


def rename_this(expression: str) -> str:
    """``expression`` with each ``this`` in its code (not in strings or
    comments, but inside strings' ``%(...)`` interpolations) renamed to
    ``THIS``: the debugger evaluates an expression as a function outside the
    frame's class, where Wren forbids ``this``."""
    parts: list[str] = []
    last = 0
    for tok in tokens(expression, interpolations=True):
        if tok.text == "this":
            parts += [expression[last:tok.start], THIS]
            last = tok.end
    parts.append(expression[last:])
    return "".join(parts)
