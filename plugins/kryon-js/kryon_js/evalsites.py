"""Direct-eval call sites rewritten so their argument is checked.

Under a time limit, source compiled at run time is bounded by the policy's
``max_source_size`` (QuickJS's parser never looks at the interrupt handler);
under a memory limit it needs room first (QuickJS's compiler crashes the
process when an allocation is refused midway). ``globalThis.eval`` is then a
checking wrapper, and the intrinsic ``eval``
lives in a global lexical binding named ``eval`` (declared after the prelude),
which is what makes ``eval(x)`` still a *direct* eval: QuickJS treats the call
as direct only when the callee it finds is the realm's intrinsic. Every other
use of that binding must not hand the unchecked intrinsic out, so before a
source is compiled (the script at load, code the host evaluates, and every
string compiled at run time):

- a direct call ``eval(a, ...)`` (also ``(eval)(...)``) becomes
  ``eval(__kryon_evalArg(a), ...)``, and one with a spread argument
  ``eval(...__kryon_evalArgs([...xs]))``: the callee is still the binding,
  its first argument passes through the length check (and this rewrite);
- every other read of ``eval`` (``eval?.(s)``, ``const e = eval``, ``{eval}``,
  ``typeof eval``, tagged templates) becomes ``__kryon_eval``, the wrapper;
- a binding or assignment target named ``eval`` (sloppy mode only) and any
  identifier starting with ``__kryon_eval`` are refused.

Nothing is inserted at a line break, so every line keeps its number; on the
line of a direct call, code after the inserted text moves right, and
:class:`ColumnMap` maps error columns back. Sources without the token ``eval``
(or a ``\\u`` escape of one of its letters, which could spell it) are not
parsed at all.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from typing import Any

from .probes import parse_within

__all__ = ["EVAL_REF", "EVAL_ARG", "EVAL_ARGS", "RESERVED", "ColumnMap", "EvalSiteError", "SiteTimeout", "may_have_sites", "rewrite",
           "rewrite_mapped"]

EVAL_REF = "__kryon_eval"
EVAL_ARG = "__kryon_evalArg"
EVAL_ARGS = "__kryon_evalArgs"
RESERVED = "__kryon_eval"

_ESCAPE = re.compile(r"\\u\{([0-9a-fA-F]+)\}|\\u([0-9a-fA-F]{4})")
#: (parent type, field) pairs whose identifier child is a binding or an assignment target
_TARGET_FIELDS = {
    ("variable_declarator", "name"), ("assignment_expression", "left"), ("augmented_assignment_expression", "left"),
    ("for_in_statement", "left"), ("catch_clause", "parameter"), ("assignment_pattern", "left"),
    ("object_assignment_pattern", "left"), ("pair_pattern", "value"), ("function_declaration", "name"),
    ("function_expression", "name"), ("generator_function_declaration", "name"), ("generator_function", "name"),
    ("class_declaration", "name"), ("class", "name"), ("arrow_function", "parameter"),
}
#: parents every identifier child of which is a binding or an assignment target
_TARGET_PARENTS = frozenset({"formal_parameters", "array_pattern", "object_pattern", "rest_pattern",
                             "update_expression", "import_specifier", "namespace_import", "import_clause"})
_NAMES = frozenset({"identifier", "shorthand_property_identifier", "shorthand_property_identifier_pattern"})


class EvalSiteError(ValueError):
    """The source cannot be checked: a refused name, or syntax tree-sitter cannot read."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


class SiteTimeout(Exception):
    """The deadline passed while the source was being read."""


#: an escaped e, v, a or l: an identifier spelling ``eval`` (or a reserved name, which contains it) without
#: the four plain letters has one of these
_EVAL_LETTER = re.compile(r"\\u(?:00(?:65|76|61|6[cC])|\{0*(?:65|76|61|6[cC])\})")


def may_have_sites(text: str) -> bool:
    """Whether ``text`` may use the identifier ``eval`` or a reserved name."""
    return "eval" in text or ("\\u" in text and _EVAL_LETTER.search(text) is not None)


def _decode(name: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), name) if "\\" in name else name


def _is_target(node: Any) -> bool:
    parent = node.parent
    if parent is None:
        return False
    if parent.type in _TARGET_PARENTS:
        return True
    for ptype, fname in _TARGET_FIELDS:
        if parent.type == ptype and parent.child_by_field_name(fname) == node:
            return True
    return False


def _direct_call(node: Any) -> Any:
    """The ``arguments`` node when ``node`` is the callee of a non-optional call, else None."""
    q = node
    while q.parent is not None and q.parent.type == "parenthesized_expression":
        q = q.parent
    call = q.parent
    if call is None or call.type != "call_expression" or call.child_by_field_name("function") != q:
        return None
    if any(c.type in ("optional_chain", "?.") for c in call.children):
        return None
    args = call.child_by_field_name("arguments")
    return args if args is not None and args.type == "arguments" else None


class ColumnMap:
    """Columns of the rewritten source back to the original's (lines never
    change). QuickJS counts columns in UTF-8 bytes, 1-based, as this does."""

    def __init__(self, old: bytes, new: bytes, runs: list[tuple[int, int, int, int]]) -> None:
        #: (offset in the new text, offset in the old, length, where the text inserted after it reports
        #: as in the old) of each unchanged run, in order
        self.runs = runs
        self.new_at = [r[0] for r in runs]
        self.old_lines = [0] + [m.end() for m in re.finditer(b"\n", old)]
        self.new_lines = [0] + [m.end() for m in re.finditer(b"\n", new)]

    def original(self, line: int, column: int) -> int:
        if not 1 <= line <= len(self.new_lines) or column < 1:
            return column
        at = self.new_lines[line - 1] + column - 1
        i = bisect.bisect_right(self.new_at, at) - 1
        if i < 0:
            return column
        new_off, old_off, length, anchor = self.runs[i]
        old_at = old_off + (at - new_off) if at - new_off < length else anchor
        return old_at - self.old_lines[line - 1] + 1


def rewrite(text: str, prefix: str = "", suffix: str = "", expired: Callable[[], bool] | None = None) -> str:
    """``text`` with its eval sites rewritten (read as part of ``prefix + text +
    suffix``, the context it is compiled in). Raises :class:`EvalSiteError`
    or, when ``expired()`` turns true while reading, :class:`SiteTimeout`."""
    return rewrite_mapped(text, prefix, suffix, expired)[0]


def rewrite_mapped(text: str, prefix: str = "", suffix: str = "",
                   expired: Callable[[], bool] | None = None) -> tuple[str, ColumnMap | None]:
    """:func:`rewrite`, and the map of its columns (None when nothing changed)."""
    if not may_have_sites(text):
        return text, None
    data = (prefix + text + suffix).encode("utf-8", "surrogatepass")
    start = len(prefix.encode("utf-8", "surrogatepass"))
    end = len(data) - len(suffix.encode("utf-8", "surrogatepass"))
    tree = parse_within(data, expired)
    if tree is None:
        raise SiteTimeout()
    root = tree.root_node
    if root.has_error:
        raise EvalSiteError("the source does not parse (the eval check reads it with tree-sitter)")
    edits: dict[int, str] = {}          # byte offset -> text inserted there
    replace: dict[int, tuple[int, str]] = {}  # byte offset -> (end, replacement)
    seen: set[int] = set()
    anchors: dict[int, int] = {}     # byte offset of an insertion -> the original offset it reports as
    for token in (b"eval", b"\\u"):
        i = data.find(token, start)
        while 0 <= i < end:
            node = root.descendant_for_byte_range(i, i + len(token))
            i = data.find(token, i + 1)
            if node is None or node.type not in _NAMES or node.start_byte in seen:
                continue
            if node.start_byte < start or node.end_byte > end:
                continue
            seen.add(node.start_byte)
            # from the bytes, never node.text (see parse_within)
            name = _decode(data[node.start_byte:node.end_byte].decode("utf-8", "surrogatepass"))
            line, col = node.start_point.row + 1, node.start_point.column + 1
            if prefix:
                line -= prefix.count("\n")
            if name.startswith(RESERVED):
                raise EvalSiteError(f"the name {name!r} is reserved by Kryon", line, col)
            if name != "eval":
                continue
            if node.type == "shorthand_property_identifier_pattern" or _is_target(node):
                raise EvalSiteError("a time- or memory-limited script cannot declare or assign a binding named eval", line, col)
            if node.type == "shorthand_property_identifier":
                replace[node.start_byte] = (node.end_byte, "eval:" + EVAL_REF)
                continue
            args = _direct_call(node)
            if args is None:
                replace[node.start_byte] = (node.end_byte, EVAL_REF)
            else:
                given = [c for c in args.named_children if c.type != "comment"]
                if not given:
                    continue  # eval(): nothing to compile
                if all(c.type != "spread_element" for c in given):  # eval(a, ...) -> eval(__kryon_evalArg(a), ...)
                    a0, a1 = given[0].start_byte, given[0].end_byte
                    edits[a0] = edits.get(a0, "") + EVAL_ARG + "("
                    anchors[a0] = node.start_byte  # QuickJS places the eval call where its callee starts
                    edits[a1] = ")" + edits.get(a1, "")
                else:  # eval(...xs) -> eval(...__kryon_evalArgs([...xs]))
                    a0, a1 = args.start_byte + 1, args.end_byte - 1
                    edits[a0] = "..." + EVAL_ARGS + "([" + edits.get(a0, "")
                    edits[a1] = edits.get(a1, "") + "])"
    if not edits and not replace:
        return text, None
    out: list[bytes] = []
    runs: list[tuple[int, int, int, int]] = []
    pos, size = start, 0   # the next original byte to copy; bytes written so far
    for at in sorted(set(edits) | set(replace)):
        runs.append((size, pos - start, at - pos, anchors.get(at, at) - start))
        out.append(data[pos:at])
        size += at - pos
        pos = at
        piece = edits.get(at, "") + (replace[at][1] if at in replace else "")
        out.append(piece.encode())
        size += len(piece)
        if at in replace:
            pos = replace[at][0]
    runs.append((size, pos - start, end - pos, end - start))
    out.append(data[pos:end])
    new = b"".join(out)
    return new.decode("utf-8", "surrogatepass"), ColumnMap(data[start:end], new, runs)
