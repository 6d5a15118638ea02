"""Statement probes for debugging: JavaScript source rewritten so that each
statement first calls the debugger's probe.

QuickJS has no line hook, so a script loaded while a debugger is attached
runs a rewritten copy of its source. A tree-sitter parse (the
tree-sitter-javascript grammar) finds every statement; before each one goes

    ;__kryon_dbg(__kryon_f,ID,__kryon_e);

``ID`` indexes :attr:`Rewritten.probes` (line, column, function, names in
scope); ``__kryon_e`` is the block's evaluator, ``__k=>eval(__k)`` declared
at the block's start: a direct ``eval`` in the block's scope, which the
debugger calls to read variables and evaluate expressions in the frame.
Each function body starts with ``const __kryon_f={};try{`` (the frame's
identity) and ends with ``}catch(__kryon_x){__kryon_dbt(__kryon_f,__kryon_x);
throw __kryon_x}finally{__kryon_dbx(__kryon_f)}`` (an error leaving the
function is reported once, where it was raised; the frame is gone); a catch
clause's body starts by reporting what it caught; unbraced bodies of ``if``/``for``/``while``/``do``/``with`` get braces.
Statements of a ``switch`` use the enclosing block's evaluator (a ``let`` of
the switch itself is not shown).

Nothing is inserted at a line break, and a probe goes right after the end of
the code before its statement (the previous statement, a ``{``, a ``case
x:``), so every statement keeps its line, and a statement that starts a line
keeps its column: error positions and stack traces stay true. Only a
statement sharing its line with code before it (``a(); b();``, a one-line
``if (x) f();``, the first statement of a file's first line) moves right.

Function declarations get no probe (they are hoisted, not run in order): a
breakpoint on a function's header line moves to its first statement.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Probe", "Rewritten", "RewriteError", "rewrite", "code_lines", "PROBE", "FRAME", "EXIT"]

PROBE = "__kryon_dbg"
EXIT = "__kryon_dbx"
FRAME = "__kryon_f"
EVAL = "__kryon_e"
RAISED = "__kryon_dbt"
CAUGHT = "__kryon_x"
#: a block's evaluator: a direct eval in the block's scope (made once per entry into the block)
EVALUATOR = f"const {EVAL}=__k=>eval(__k);"

FUNCTIONS = frozenset({
    "function_declaration", "function_expression", "function", "generator_function_declaration",
    "generator_function", "arrow_function", "method_definition", "class_static_block",
})
#: statements whose body may be a single unbraced statement (the field holding it)
BODIES = {
    "if_statement": ("consequence",), "for_statement": ("body",), "for_in_statement": ("body",),
    "while_statement": ("body",), "do_statement": ("body",), "with_statement": ("body",),
}
#: nodes that open a block scope (let/const/class/function declarations land there)
BLOCKS = frozenset({"statement_block", "switch_body", "for_statement", "for_in_statement", "catch_clause"})
#: the order of insertions at one offset
PROLOGUE, CLOSE, OPEN, FINALLY = 0, 1, 2, 3
NO_PROBE = frozenset({"empty_statement", "function_declaration", "generator_function_declaration", "comment",
                      "hash_bang_line", "html_comment"})


class RewriteError(ValueError):
    """The source does not parse (the engine then reports QuickJS's own error)."""


@dataclass
class Scope:
    names: list[str] = field(default_factory=list)

    def add(self, name: str) -> None:
        if name not in self.names:
            self.names.append(name)


@dataclass(frozen=True)
class Probe:
    """One statement: 1-based position in the original source, the function
    it belongs to (index into :attr:`Rewritten.functions`, 0 = top level),
    and the scopes it sees: its function's own (innermost first), the
    enclosing functions', the script's top level."""

    line: int
    column: int
    function: int
    locals: tuple[Scope, ...]
    closure: tuple[Scope, ...]
    globals: Scope

    def names(self, which: str) -> list[str]:
        scopes = {"Locals": self.locals, "Closure": self.closure, "Globals": (self.globals,)}[which]
        out: list[str] = []
        for scope in scopes:
            out.extend(n for n in scope.names if n not in out)
        return out


@dataclass(frozen=True)
class Rewritten:
    source: str
    probes: tuple[Probe, ...]
    functions: tuple[str, ...]

    @functools.cached_property
    def lines(self) -> tuple[int, ...]:
        return tuple(sorted({p.line for p in self.probes}))


@functools.lru_cache(maxsize=1)
def tree_parser() -> Any:
    import tree_sitter_javascript
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_javascript.language()))


#: bytes handed to tree-sitter per read by :func:`parse_within`, between two looks at the deadline
READ_CHUNK = 1 << 16


def parse_within(data: bytes, expired: Callable[[], bool] | None) -> Any:
    """The tree of ``data``, or None once ``expired()`` turned true while it
    was read (the parse asks for the source chunk by chunk, so a deadline
    stops a long parse). Read a node's text from ``data``, never ``node.text``:
    that reads through the same callback, which answers ``b""`` once the
    deadline passed, and tree-sitter then waits for the text forever."""
    cancelled = False

    def read(offset: int, _point: object) -> bytes:
        nonlocal cancelled
        if expired is not None and expired():
            cancelled = True
            return b""
        return data[offset:offset + READ_CHUNK]

    tree = tree_parser().parse(read)
    return None if cancelled else tree


def _pattern_names(node: Any, out: list[str]) -> None:
    """The names a binding pattern (a parameter, a declarator's left side) declares."""
    t = node.type
    if t in ("identifier", "shorthand_property_identifier_pattern"):
        out.append(node.text.decode())
    elif t in ("object_pattern", "array_pattern", "rest_pattern", "formal_parameters"):
        for c in node.named_children:
            _pattern_names(c, out)
    elif t == "pair_pattern":
        value = node.child_by_field_name("value")
        if value is not None:
            _pattern_names(value, out)
    elif t in ("assignment_pattern", "object_assignment_pattern"):
        left = node.child_by_field_name("left")
        if left is not None:
            _pattern_names(left, out)


class _Rewriter:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.inserts: list[tuple[int, int, int, str]] = []  # (byte offset, order, sequence, text)
        self.probes: list[Probe] = []
        self.functions: list[str] = ["<top level>"]
        self.program = Scope()

    def insert(self, at: int, text: str, order: int = OPEN) -> None:
        seq = len(self.inserts)
        # closing braces at one offset: the innermost (inserted last) closes first
        self.inserts.append((at, order, -seq if order == CLOSE else seq, text))

    # -- scopes ---------------------------------------------------------------------------
    def declare(self, node: Any, fscope: Scope, bscope: Scope) -> None:
        t = node.type
        if t == "variable_declaration":
            for d in node.named_children:
                if d.type == "variable_declarator":
                    names: list[str] = []
                    _pattern_names(d.child_by_field_name("name"), names)
                    for n in names:
                        fscope.add(n)
        elif t == "lexical_declaration":
            for d in node.named_children:
                if d.type == "variable_declarator":
                    names = []
                    _pattern_names(d.child_by_field_name("name"), names)
                    for n in names:
                        bscope.add(n)
        elif t in ("function_declaration", "generator_function_declaration", "class_declaration"):
            name = node.child_by_field_name("name")
            if name is not None:
                bscope.add(name.text.decode())

    # -- the walk ---------------------------------------------------------------------------
    def walk(self, node: Any, fn: int, chain: tuple[Scope, ...], outer: tuple[Scope, ...]) -> None:
        """``chain``: this function's scopes, innermost first; ``outer``: the
        enclosing functions' scopes (the program's excluded)."""
        t = node.type
        if t in FUNCTIONS:
            self.declare(node, chain[-1], chain[0])
            self.function(node, chain, outer)
            return
        if t in BLOCKS:
            chain = (Scope(),) + chain
        if t == "catch_clause":
            param = node.child_by_field_name("parameter")
            if param is not None:
                names: list[str] = []
                _pattern_names(param, names)
                for n in names:
                    chain[0].add(n)
        if t == "for_in_statement":
            left = node.child_by_field_name("left")
            kind = node.child_by_field_name("kind")
            if left is not None and kind is not None:
                names = []
                _pattern_names(left, names)
                target = chain[-1] if kind.type == "var" else chain[0]
                for n in names:
                    target.add(n)
        self.declare(node, chain[-1], chain[0])
        if t == "statement_block":
            self.insert(node.start_byte + 1, ";" + EVALUATOR + self.caught(node), PROLOGUE)
        if t in ("program", "statement_block") or t in ("switch_case", "switch_default"):
            self.statements(node, fn, chain, outer)
        for name in BODIES.get(t, ()):
            body = node.child_by_field_name(name)
            if body is not None:
                self.body(body, fn, chain, outer)
        if t == "else_clause":
            for c in node.named_children:
                if c.type not in NO_PROBE:
                    self.body(c, fn, chain, outer)
        for c in node.children:
            self.walk(c, fn, chain, outer)

    def function(self, node: Any, chain: tuple[Scope, ...], outer: tuple[Scope, ...]) -> None:
        fscope = Scope()
        params = node.child_by_field_name("parameters") or node.child_by_field_name("parameter")
        if params is not None:
            names: list[str] = []
            _pattern_names(params, names)
            for n in names:
                fscope.add(n)
        body = node.child_by_field_name("body")
        if body is None and node.type == "class_static_block":
            body = next((c for c in node.named_children if c.type == "statement_block"), None)
        inner_outer = tuple(s for s in chain if s is not self.program) + outer
        if body is None or body.type != "statement_block":
            for c in node.children:  # an arrow with an expression body: no statements of its own
                self.walk(c, 0, (fscope,), inner_outer)
            return
        fn = len(self.functions)
        self.functions.append(_function_name(node))
        for c in node.children:
            if c != body:
                self.walk(c, fn, (fscope,), inner_outer)  # default parameter values
        start = self.after_directives(body)
        self.insert(start, f";const {FRAME}={{}};try{{{EVALUATOR}", PROLOGUE)
        self.insert(body.end_byte - 1, f"}}catch({CAUGHT}){{{RAISED}({FRAME},{CAUGHT});throw {CAUGHT}}}"
                    f"finally{{{EXIT}({FRAME})}}", FINALLY)
        inner = (Scope(), fscope)
        self.statements(body, fn, inner, inner_outer, start_at=start)
        for c in body.children:
            self.walk(c, fn, inner, inner_outer)

    @staticmethod
    def caught(block: Any) -> str:
        """A catch clause's body reports what it caught (an error raised and
        caught in one function never leaves it, so no function reports it)."""
        parent = block.parent
        if parent is None or parent.type != "catch_clause":
            return ""
        param = parent.child_by_field_name("parameter")
        if param is None or param.type != "identifier":
            return ""
        return f"{RAISED}({FRAME},{param.text.decode()});"

    def after_directives(self, block: Any) -> int:
        """Where code may go in a function body or program: after its opening
        ``{`` (or a hashbang) and its directive prologue (``"use strict"``)."""
        at: int = block.start_byte + (1 if block.type == "statement_block" else 0)
        for c in block.children:
            if c.type in ("{", "comment", "hash_bang_line", "html_comment"):
                if c.type != "comment":
                    at = c.end_byte
                continue
            if c.type == "expression_statement" and c.named_child_count == 1 and c.named_children[0].type == "string":
                at = c.end_byte
                continue
            break
        return at

    def statements(self, node: Any, fn: int, chain: tuple[Scope, ...], outer: tuple[Scope, ...],
                   start_at: int | None = None) -> None:
        """A probe before each statement of a block, program or case."""
        prev_end: int | None = None
        in_case = node.type in ("switch_case", "switch_default")
        for c in node.children:
            if c.type in ("comment", "html_comment"):
                continue
            if in_case:  # a case's value comes before its ':'
                prev_end = c.end_byte
                in_case = c.type != ":"
                continue
            if not c.is_named or c.type == "hash_bang_line" or (start_at is not None and c.start_byte < start_at):
                prev_end = c.end_byte  # a brace, a hashbang, a directive
                continue
            if c.type not in NO_PROBE:
                at = prev_end if prev_end is not None else c.start_byte
                if start_at is not None:
                    at = max(at, start_at)
                self.insert(at, self.probe(c, fn, chain, outer))
            prev_end = c.end_byte

    def body(self, stmt: Any, fn: int, chain: tuple[Scope, ...], outer: tuple[Scope, ...]) -> None:
        """An unbraced body: braces around it, a probe inside."""
        if stmt.type in ("statement_block",) or stmt.type in NO_PROBE:
            return
        prev = stmt.prev_sibling
        while prev is not None and prev.type in ("comment", "html_comment"):
            prev = prev.prev_sibling
        at = prev.end_byte if prev is not None else stmt.start_byte
        self.insert(at, "{" + EVALUATOR + self.probe(stmt, fn, chain, outer))
        self.insert(stmt.end_byte, "}", CLOSE)

    def probe(self, stmt: Any, fn: int, chain: tuple[Scope, ...], outer: tuple[Scope, ...]) -> str:
        pid = len(self.probes)
        row, col = stmt.start_point
        line_start = self.data.rfind(b"\n", 0, stmt.start_byte) + 1
        column = len(self.data[line_start:stmt.start_byte].decode("utf-8", "replace")) + 1
        del col
        local = tuple(s for s in chain if s is not self.program)
        self.probes.append(Probe(row + 1, column, fn, local, outer, self.program))
        return f";{PROBE}({FRAME},{pid},{EVAL});"

    def result(self) -> str:
        out = bytearray()
        last = 0
        for at, _, _, text in sorted(self.inserts):
            out += self.data[last:at]
            out += text.encode()
            last = at
        out += self.data[last:]
        return out.decode("utf-8")


def _function_name(node: Any) -> str:
    name = node.child_by_field_name("name")
    if name is not None:
        text = str(name.text.decode())
        owner = node.parent.parent if node.type == "method_definition" and node.parent is not None else None
        if owner is not None and owner.type in ("class_declaration", "class"):
            cls = owner.child_by_field_name("name")
            if cls is not None:
                return f"{cls.text.decode()}.{text}"
        return text
    if node.type == "class_static_block":
        return "<static>"
    parent = node.parent
    if parent is not None and parent.type in ("variable_declarator", "pair", "assignment_expression", "field_definition"):
        target = (parent.child_by_field_name("name") or parent.child_by_field_name("key")
                  or parent.child_by_field_name("left") or parent.child_by_field_name("property"))
        if target is not None:
            return str(target.text.decode())
    return "<anonymous>"


def rewrite(source: str) -> Rewritten:
    """``source`` with a probe before every statement (see the module docstring)."""
    return _rewrite(source)


@functools.lru_cache(maxsize=64)
def _rewrite(source: str) -> Rewritten:
    data = source.encode("utf-8")
    tree = tree_parser().parse(data)
    root = tree.root_node
    if root.has_error:
        raise RewriteError("the source does not parse")
    rw = _Rewriter(data)
    chain = (rw.program,)
    start = rw.after_directives(root)
    rw.insert(start, f";let {FRAME}={{}};{EVALUATOR}", PROLOGUE)
    rw.declare(root, rw.program, rw.program)
    rw.statements(root, 0, chain, (), start_at=start)
    for c in root.children:
        rw.walk(c, 0, chain, ())
    return Rewritten(rw.result(), tuple(rw.probes), tuple(rw.functions))


def code_lines(source: str) -> tuple[int, ...]:
    """The lines holding a statement a breakpoint can stop at."""
    return rewrite(source).lines
