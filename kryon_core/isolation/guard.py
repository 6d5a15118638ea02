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
- names that reach the interpreter (``__builtins__``, ``__loader__``, ``__spec__``,
  ``__import__``) and any other ``__dunder__`` name except ``__name__``/``__doc__``/``__file__``/``__debug__``.

Works on any ``ast.Module``: Python source parsed by ``ast.parse`` or the AST
another compiler (Hy) produced. Standard library only (the worker loads it by path).
"""

from __future__ import annotations

import ast

__all__ = ["GuardViolation", "check", "attribute_allowed", "SAFE_DUNDERS", "FORBIDDEN_ATTRIBUTES"]

SAFE_DUNDERS = frozenset(
    {
        "__init__", "__name__", "__qualname__", "__doc__", "__len__", "__iter__", "__next__",
        "__enter__", "__exit__", "__str__", "__repr__", "__eq__", "__ne__", "__lt__", "__le__",
        "__gt__", "__ge__", "__hash__", "__contains__", "__getitem__", "__setitem__", "__delitem__",
        "__add__", "__sub__", "__mul__", "__truediv__", "__floordiv__", "__mod__", "__neg__",
        "__bool__", "__call__", "__post_init__", "__aenter__", "__aexit__", "__aiter__", "__anext__",
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

    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
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
