"""The compile cost of regular-expression literals in source compiled under a
time limit (the host's half of the regex guard in ``compile_guards.js``).

QuickJS compiles a regex literal while it parses the source around it, and
its regex compiler never polls: the watchdog's cut (``cutoff.py``) lands at
the compiler's next allocation, and two shapes work long without one. Each
``|`` of a disjunction moves all the bytecode compiled so far (a quadratic
number of byte moves between two growths of one buffer), and each forward
named reference ``\\k<name>`` rescans the whole pattern. So the cost of a
pattern is taken as its length times (its ``|`` count + ``KREF`` x its
``\\k<`` count), and a pattern over ``REWORK`` is refused before the compiler
runs (``compile_guards.js`` does the same for patterns built from strings;
the constants are the same there).

A literal cannot span a line terminator, so a line whose own cost is within
``REWORK`` holds no literal over it: only longer lines (a minified bundle,
say) are read with tree-sitter to find the literals in them. A line over the
bound that tree-sitter cannot parse is refused too, and so is a comment over
the bound (QuickJS and tree-sitter read HTML-like comments differently): where
the two parsers might disagree about what is a literal, the safe answer is no.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from .probes import parse_within, tree_parser

#: the largest cost accepted: about 0.1 s of CPU for the worst shape (``'|'.repeat(32768)``) on a 2-core
#: x86-64 machine (measured: 0.06-0.09 s; ``a0|a1|...`` at the bound 0.03-0.04 s, forward references at 0.4 of it 0.025 s)
REWORK = 2 ** 30
#: a forward named reference costs a rescan of the pattern, about sixteen times a '|' (measured)
KREF = 16
#: patterns this short are never over REWORK (length x (length + KREF x length / 3) is below it)
FREE = 8192
#: ECMAScript line terminators (a regex literal contains none)
_LINES = re.compile("[\n\r\u2028\u2029]")


class CostlyPattern(ValueError):
    """A regular expression over the bound (``line``/``column`` 1-based in the text read)."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


class ReadTimeout(Exception):
    """The deadline passed while the source was being read."""


def cost(pattern: str) -> tuple[int, int, int]:
    """(length, '|' count, '\\k<' count) of ``pattern``."""
    return len(pattern), pattern.count("|"), pattern.count("\\k<")


def over(length: int, bars: int, refs: int) -> bool:
    return length * (bars + KREF * refs) > REWORK


def describe(what: str, length: int, bars: int, refs: int) -> str:
    return (f"{what} is too costly to compile under the policy's time_limit ({length} characters x "
            f"({bars} '|' + {KREF} x {refs} '\\k<'), at most {REWORK})")


def check_literals(text: str, expired: Callable[[], bool] | None = None) -> None:
    """Raise :class:`CostlyPattern` if a regex literal in ``text`` is over the bound
    (:class:`ReadTimeout` if ``expired()`` turns true while reading)."""
    if len(text) <= FREE or not over(len(text), text.count("|"), text.count("\\k<")):
        return
    long_lines = [m for m in _line_spans(text) if over(m[1] - m[0], *_counts(text, m[0], m[1]))]
    if not long_lines:
        return
    data = text.encode("utf-8", "surrogatepass")
    tree = parse_within(data, expired)
    if tree is None:
        raise ReadTimeout()
    if tree.root_node.has_error:
        start = long_lines[0][0]
        line = text.count("\n", 0, start) + 1
        raise CostlyPattern("a line too long to compile under the policy's time_limit, with '|' or '\\k<' enough "
                            "for a costly regular expression, in source that does not parse", line, 1)
    found = _query().captures(tree.root_node)
    for kind in ("pattern", "comment"):
        for node in found.get(kind, []):
            # from the bytes, never node.text (see parse_within)
            length, bars, refs = cost(data[node.start_byte:node.end_byte].decode("utf-8", "surrogatepass"))
            if over(length, bars, refs):
                what = "a regular expression literal" if kind == "pattern" else "a comment (as a regular expression)"
                raise CostlyPattern(describe(what, length, bars, refs), node.start_point.row + 1,
                                    node.start_point.column + 1)


@functools.cache
def _query() -> Any:
    from tree_sitter import Query, QueryCursor

    parser_language = tree_parser().language
    return QueryCursor(Query(parser_language, "(regex_pattern) @pattern (comment) @comment (html_comment) @comment"))


def _line_spans(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for m in _LINES.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    return spans


def _counts(text: str, start: int, end: int) -> tuple[int, int]:
    return text.count("|", start, end), text.count("\\k<", start, end)
