"""A static check of script code run inside the worker before it executes.

The process is the boundary (see ``worker.py``); this guard is the first of
several layers inside it and the one that turns the classic escapes into a
clear ``AccessDeniedError`` naming the line, instead of a crash further on.
It refuses:

- attribute names that start with ``_`` (``().__class__.__base__``,
  ``random._os``, ``f.__globals__``), except a few harmless dunders (``__init__``,
  ``__name__``, ...) and single-underscore attributes of ``self``/``cls``;
- the attributes that walk frames, code and tracebacks (``gi_frame``,
  ``f_back``, ``f_globals``, ``tb_frame``, ``cr_frame``, ``mro``, ...);
- the same attribute names in class patterns (``case object(__globals__=g)``
  reads ``__globals__`` with no attribute expression in the source), and
  positional sub-patterns of class patterns (``case C(g)`` reads the names
  ``C.__match_args__`` holds, data a script can choose);
- names that reach the interpreter (``__builtins__``, ``__loader__``, ``__spec__``,
  ``__import__``) and any other ``__dunder__`` name except ``__name__``/``__doc__``/``__file__``/``__debug__``.

``str.format`` reads attributes named in its format string (``"{0.__globals__}"``):
:func:`prepare` rewrites every read of an attribute named ``format`` into a call
of the script's :data:`FORMAT_READER` builtin, which hands back a checked
``str.format`` (``scriptenv``), before it checks the tree. What a rewrite cannot
cover is refused: ``x.format += ...`` and ``case C(format=f)`` read it raw.

Works on any ``ast.Module``: Python source parsed by ``ast.parse`` or the AST
another compiler (Hy) produced. Standard library only (the worker loads it by path).
"""

from __future__ import annotations

import ast
import types
from typing import Any

__all__ = [
    "GuardViolation", "check", "check_code", "prepare", "rewrite_format_reads", "reads_checked", "attribute_allowed",
    "SAFE_DUNDERS", "FORBIDDEN_ATTRIBUTES", "FORMAT_READER",
]

SAFE_DUNDERS = frozenset(
    {
        "__init__", "__name__", "__qualname__", "__doc__", "__len__", "__iter__", "__next__",
        "__enter__", "__exit__", "__str__", "__repr__", "__eq__", "__ne__", "__lt__", "__le__",
        "__gt__", "__ge__", "__hash__", "__contains__", "__getitem__", "__setitem__", "__delitem__",
        "__add__", "__sub__", "__mul__", "__truediv__", "__floordiv__", "__mod__", "__neg__",
        "__bool__", "__call__", "__post_init__", "__aenter__", "__aexit__", "__aiter__", "__anext__",
        # a function's or class's annotations: the objects its own definition named
        # (the worker's functions a script reaches hold strings there: postponed annotations)
        "__annotations__",
        # the exception a script's own `raise ... from` named
        "__cause__",
    }
)

FORBIDDEN_ATTRIBUTES = frozenset(
    {
        "gi_frame", "gi_code", "gi_yieldfrom", "gi_running",
        "cr_frame", "cr_code", "cr_await", "cr_origin",
        "ag_frame", "ag_code", "ag_await",
        "f_back", "f_globals", "f_locals", "f_builtins", "f_code", "f_trace", "f_lasti",
        "tb_frame", "tb_next", "tb_lasti",
        "co_code", "co_consts", "co_names",
        "func_globals", "func_code", "im_func", "im_self",
        "mro", "format_map",
    }
)

#: the attribute whose reads are rewritten: ``str.format`` parses attribute names out of data
CHECKED_ATTRIBUTE = "format"
#: the builtin a rewritten read calls (``x.format`` -> ``__kryon_format__(x)``); scriptenv
#: binds it. A dunder: a script cannot assign it (its own name rule), only read it
FORMAT_READER = "__kryon_format__"

#: ``__debug__`` is a constant the compiler folds (and cannot be assigned): Hy emits it for ``assert``
_SAFE_NAMES = frozenset({"__name__", "__doc__", "__file__", "__debug__"})


class GuardViolation(Exception):
    """Script code uses something the sandbox refuses; ``line``/``column`` say where."""

    def __init__(self, message: str, line: int | None, column: int | None) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


def attribute_allowed(name: str, *, on_self: bool = False) -> bool:
    """Whether an attribute of this name may be read or written by script code."""
    if name in FORBIDDEN_ATTRIBUTES:
        return False
    if name.startswith("_"):
        if name in SAFE_DUNDERS:
            return True
        if on_self and not name.startswith("__"):
            return True
        return False
    return True


class _Checker(ast.NodeVisitor):
    def visit_Attribute(self, node: ast.Attribute) -> None:
        on_self = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
        if not attribute_allowed(node.attr, on_self=on_self):
            raise GuardViolation(
                f"access to the attribute '{node.attr}' is not allowed in the sandbox",
                getattr(node, "lineno", None),
                getattr(node, "col_offset", None),
            )
        self.generic_visit(node)

    def visit_MatchClass(self, node: ast.MatchClass) -> None:
        # `case C(p)` reads the attribute C.__match_args__[0] names, a name that is data: a class
        # made with type(name, bases, {"__match_args__": ("__globals__",)}) and a metaclass whose
        # __instancecheck__ accepts anything read any object's globals
        if node.patterns:
            raise GuardViolation(
                "a class pattern with positional sub-patterns is not allowed in the sandbox (it reads the "
                "attributes the class's __match_args__ names): use keyword patterns, or `case C() as x`",
                getattr(node, "lineno", None),
                getattr(node, "col_offset", None),
            )
        # `case C(attr=p)` reads `attr` from the subject with no Attribute node in sight:
        # `case object(__globals__=g)` would bind a function's real globals
        for attr in node.kwd_attrs:
            if not attribute_allowed(attr) or attr == CHECKED_ATTRIBUTE:
                raise GuardViolation(
                    f"access to the attribute '{attr}' is not allowed in the sandbox",
                    getattr(node, "lineno", None),
                    getattr(node, "col_offset", None),
                )
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        # `s.format += r` reads the raw method and hands it to `r.__radd__`: no rewrite covers it
        target = node.target
        if isinstance(target, ast.Attribute) and target.attr == CHECKED_ATTRIBUTE:
            raise GuardViolation(
                f"augmented assignment to the attribute '{CHECKED_ATTRIBUTE}' is not allowed in the sandbox",
                getattr(node, "lineno", None),
                getattr(node, "col_offset", None),
            )
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        if name == FORMAT_READER and isinstance(node.ctx, ast.Load):
            return
        if name.startswith("__") and name.endswith("__") and name not in _SAFE_NAMES:
            raise GuardViolation(
                f"the name '{name}' is not allowed in the sandbox",
                getattr(node, "lineno", None),
                getattr(node, "col_offset", None),
            )
        self.generic_visit(node)


def check(tree: ast.AST) -> None:
    """Raise :class:`GuardViolation` at the first refused construct."""
    _Checker().visit(tree)


class _FormatReads(ast.NodeTransformer):
    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        if node.attr != CHECKED_ATTRIBUTE or not isinstance(node.ctx, ast.Load):
            return node
        reader = ast.copy_location(ast.Name(id=FORMAT_READER, ctx=ast.Load()), node)
        return ast.copy_location(ast.Call(func=reader, args=[node.value], keywords=[]), node)


def rewrite_format_reads(tree: ast.AST) -> None:
    """Every read of an attribute named ``format`` becomes a call of
    :data:`FORMAT_READER` with the object (in place; the tree's root is a
    module or an expression, never replaced). Nothing else changes: a code
    object compiled from the result holds no ``LOAD_ATTR format``, which
    :func:`check_code` requires of cached code."""
    _FormatReads().visit(tree)


def prepare(tree: ast.AST) -> None:
    """What a script's tree goes through before it is compiled in the
    sandbox: :func:`rewrite_format_reads`, then :func:`check`."""
    rewrite_format_reads(tree)
    check(tree)


def reads_checked(code: "types.CodeType") -> bool:
    """Whether ``code`` (or a code object inside it) calls :data:`FORMAT_READER`:
    compiled for the sandbox, so not what a trusted script runs."""
    todo = [code]
    while todo:
        current = todo.pop()
        if FORMAT_READER in current.co_names:
            return True
        todo.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
    return False


# -- the same rules over compiled code (a cached code object) ----------------------------
_ATTRIBUTE_OPS = frozenset({"LOAD_ATTR", "STORE_ATTR", "DELETE_ATTR", "LOAD_METHOD", "IMPORT_FROM", "LOAD_SUPER_ATTR"})
_NAME_OPS = frozenset({
    "LOAD_NAME", "STORE_NAME", "DELETE_NAME", "LOAD_GLOBAL", "STORE_GLOBAL", "DELETE_GLOBAL",
    "LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_AND_CLEAR", "STORE_FAST", "DELETE_FAST",
    "LOAD_DEREF", "STORE_DEREF", "DELETE_DEREF", "LOAD_CLASSDEREF", "LOAD_FROM_DICT_OR_DEREF",
    "LOAD_CLOSURE", "MAKE_CELL", "IMPORT_NAME",
})
#: what reads an attribute (a rewritten read of ``format`` is a call instead)
_READ_OPS = frozenset({"LOAD_ATTR", "LOAD_METHOD", "LOAD_SUPER_ATTR"})
#: how rewritten code loads :data:`FORMAT_READER` (a builtin: module, class body or function level)
_READER_LOADS = frozenset({"LOAD_NAME", "LOAD_GLOBAL"})
_SELF_LOADS = frozenset({"LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_DEREF"})
#: what a class body stores itself (``class A: ...`` sets these from the name and the qualified name)
_CLASS_BODY_NAMES = frozenset({"__module__", "__qualname__"})


def check_code(code: "types.CodeType") -> None:
    """The guard's rules applied to a compiled code object and every code
    object inside it, instruction by instruction: attribute names (and the
    names ``from`` imports take) as :func:`attribute_allowed` says, a
    ``self``/``cls`` exemption only when the object was loaded just before,
    no raw read of ``format`` (code compiled with :func:`rewrite_format_reads`
    reads it through :data:`FORMAT_READER`, which it may load), no class
    pattern with positional sub-patterns, no ``__dunder__`` name but the safe ones, a dunder method stored only
    right after its function was made, and no opcode Python does not know.

    It is sound, not complete: code it accepts, the AST check accepts too
    (it never lets through what the source would be refused for), while some
    code the AST check accepts is refused here (``self._x += 1``, ``super()``);
    the worker then compiles the source instead. It checks names, not the
    well-formedness of bytecode crafted by hand (the cached code is the
    host's own compile, checksummed; the kernel's confinement holds either way).
    A code object that names nothing starting with ``_`` or forbidden is
    accepted without reading its instructions."""
    import dis

    # a class pattern's opcode as a byte of ``co_code`` (whose code units are an opcode and its argument)
    match_class = bytes([dis.opmap["MATCH_CLASS"]])
    todo = [code]
    while todo:
        current = todo.pop()
        todo.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
        names = current.co_names + current.co_varnames + current.co_cellvars + current.co_freevars
        # the attribute names of `case C(attr=p)` are a tuple constant that MATCH_CLASS takes: code
        # with such a pattern and a refused name in any constant tuple is refused (sound, not exact)
        in_tuples = (n for c in current.co_consts if isinstance(c, tuple) for n in c if isinstance(n, str))
        refused_name = any(not attribute_allowed(n) or n == CHECKED_ATTRIBUTE for n in in_tuples)
        for ins in dis.get_instructions(current) if match_class in current.co_code[::2] else ():
            if ins.opname == "MATCH_CLASS" and (refused_name or ins.arg):  # ins.arg: positional sub-patterns
                raise GuardViolation("a class pattern reads a refused attribute", _line(ins), None)
        if not any(n[:1] == "_" or n in FORBIDDEN_ATTRIBUTES or n == CHECKED_ATTRIBUTE for n in names):
            continue
        previous = None
        for ins in dis.get_instructions(current):
            op = ins.opname
            name = ins.argval
            if op in _ATTRIBUTE_OPS and isinstance(name, str):
                on_self = previous is not None and previous.opname in _SELF_LOADS and previous.argval in ("self", "cls")
                if not attribute_allowed(name, on_self=on_self):
                    raise GuardViolation(f"access to the attribute '{name}' is not allowed in the sandbox",
                                         _line(ins), None)
                if name == CHECKED_ATTRIBUTE and op in _READ_OPS:  # not rewritten: compiled outside the sandbox
                    raise GuardViolation(f"a raw read of the attribute '{name}'", _line(ins), None)
            elif op in _NAME_OPS and isinstance(name, str) and name.startswith("__") and name.endswith("__"):
                made = previous is not None and previous.opname == "MAKE_FUNCTION"
                reader = name == FORMAT_READER and op in _READER_LOADS
                if not (name in _SAFE_NAMES or reader or (op == "STORE_NAME" and (name in _CLASS_BODY_NAMES or
                                                                                   (made and name in SAFE_DUNDERS)))):
                    raise GuardViolation(f"the name '{name}' is not allowed in the sandbox", _line(ins), None)
            previous = ins


def _line(ins: Any) -> int | None:
    positions = getattr(ins, "positions", None)
    return getattr(positions, "lineno", None) if positions is not None else None
