"""Kryon Lisp inside a ``kryon_core.isolation`` worker process.

The worker imports this module before it arms its sandbox (the compiler
spec ``kryon_lisp.sandboxed:compile``), so everything Hy loads lazily is
loaded here, by compiling a warm-up sample. After arming, :func:`compile`
turns a sandboxed script's source into an ``ast.Module`` that the worker
checks with its AST guard and runs:

1. forms that run code while compiling (``defmacro``, ``defreader``,
   ``eval-when-compile``, ``require``, ``hy.R``...) are refused, so compiling
   runs only Hy's own macros;
2. the source is compiled with Hy (reader and macro errors become a
   ``SyntaxError`` with the .kl line and column, which the worker reports as
   a CompileError);
3. ``import hy`` becomes ``import kryon_lisp_hy as hy``: a module holding only
   what compiled Hy code needs at run time (the model classes, ``mangle``,
   ``gensym``, the operator functions...). ``hy.eval``, ``hy.read``,
   ``hy.I`` and ``hy.R`` (which would compile or import past the guard) are
   not in it, and any use of a ``hy.`` attribute outside it is refused;
4. the ``kryon`` API is bound without an import (``from kryon import *``,
   under the mangled kebab-case names the host registered) and ``kryon``
   itself is importable as in Python.

Every module this one imports is bound under an underscore name: the guard
refuses ``_`` attributes, so a script reaching this module sees nothing of Hy.
"""

from __future__ import annotations

import ast as _ast
import sys as _sys
import types as _types

import hy as _hy
import hy.pyops as _pyops
from hy import models as _models

from kryon_core import CompileError as _CompileError

from . import compiler as _compiler
from . import scan as _scan

__all__ = ["compile", "RUNTIME_MODULE"]

#: the name compiled scripts import in place of ``hy``
RUNTIME_MODULE = "kryon_lisp_hy"

_MODEL_NAMES = (
    "Object", "Lazy", "Keyword", "String", "Bytes", "Symbol", "Integer", "Float", "Complex",
    "Sequence", "FComponent", "FString", "List", "Tuple", "Set", "Dict", "Expression", "as_model", "replace_hy_obj",
)


def _no_macros(*args: object, **kwargs: object) -> object:
    """Macro registration at run time: macros were expanded while compiling,
    and sandboxed scripts define none, so there is nothing to register."""
    if len(args) == 1 and isinstance(args[0], str):
        return lambda fn: fn
    return None


def _runtime_module() -> _types.ModuleType:
    mod = _types.ModuleType(RUNTIME_MODULE, "What sandboxed Hy code sees as `hy`.")
    setattr(mod, "models", _types.SimpleNamespace(**{n: getattr(_models, n) for n in _MODEL_NAMES if hasattr(_models, n)}))
    pyops = _types.SimpleNamespace(
        **{
            n: v
            for n, v in vars(_pyops).items()
            if not n.startswith("_") and callable(v) and not isinstance(v, _types.ModuleType)
        }
    )
    setattr(mod, "pyops", pyops)
    setattr(mod, "macros", _types.SimpleNamespace(macro=_no_macros, reader_macro=_no_macros, require=_no_macros))
    for name in ("mangle", "unmangle", "gensym", "repr", "repr_register", "as_model"):
        if hasattr(_hy, name):
            setattr(mod, name, getattr(_hy, name))
    return mod


_RUNTIME = _runtime_module()
_sys.modules.setdefault(RUNTIME_MODULE, _RUNTIME)
_ALLOWED = frozenset(n for n in vars(_RUNTIME) if not n.startswith("_"))

#: one snippet per construct, compiled one by one at import: every part of
#: Hy that loads lazily (macros, pattern parsers, operator modules) is loaded
#: before the worker arms its sandbox and refuses imports
_WARM_UP = (
    "(import asyncio) (defn :async f [x #* args #** kw] (await (asyncio.sleep 0)) x)",
    "(defn g [[a 1] * b] (yield a))",
    "(lfor i (range 3) :if (> i 0) i) (dfor k [1] k k) (sfor s [1] s) (gfor x [1] x)",
    "(setv q '(a :b \"c\" 1 2.0 [3] {4 5} #{6} #(7)) qq `(a ~q ~@q) fs f\"{q !r :>10}\")",
    "(try (raise (ValueError \"x\")) (except [e [ValueError TypeError]] e) (else 1) (finally 2))",
    "(with [x (open \"f\")] (match x [1 2] 3 {\"a\" b} b _ 4))",
    "(cond (= 1 2) 3 True 4) (when 1 2) (let [z 1] z) (defclass C [object] (defn __init__ [self] None))",
    "(print (+ 1 2) (get q 0) (cut q 1 2) (. q [0]) (and 1 2) (or 1 2) (not 1) (reduce + [1 2]))",
    "(while False (break)) (for [i [1]] (continue)) (assert True) (del (get {} 1)) (setx y 1)",
    "(defn k [] (global gg) (setv gg 1) (fn [] (nonlocal gg)))",
    "(hy.mangle \"a-b\") (hy.gensym) (hy.repr 1) (f #* [1] #** {}) #_ 1",
    "(defn/a h [] 1) (fn/a [] 1) (annotate x int) (py \"1\") (pys \"1\")",
    "(import math [sqrt]) (import os.path :as p) (unpack-iterable 1) (chainc 1 < 2 < 3)",
)


def _warm_up() -> None:
    for sample in _WARM_UP:
        try:
            _compiler.compile_ast(sample, "kryon-lisp-warm-up")
        except Exception:
            pass  # only loads what compiling needs; a sample's own errors do not matter


def _violation(message: str, line: int | None, column: int | None) -> BaseException:
    """The worker's own guard error when it is loaded (reported as
    AccessDeniedError with the line), else a PermissionError."""
    guard = _sys.modules.get("kryon_isolation_guard")
    if guard is not None:
        violation: BaseException = guard.GuardViolation(message, line, column)
        return violation
    return PermissionError(f"line {line}: {message}")


class _Rewrite(_ast.NodeTransformer):
    def visit_Import(self, node: _ast.Import) -> _ast.AST:
        for alias in node.names:
            if alias.name == "hy" or alias.name.startswith("hy."):
                if alias.name != "hy":
                    raise _violation(f"importing '{alias.name}' is not allowed in sandboxed Lisp", node.lineno, node.col_offset)
                alias.name, alias.asname = RUNTIME_MODULE, alias.asname or "hy"
        return node

    def visit_ImportFrom(self, node: _ast.ImportFrom) -> _ast.AST:
        if node.module == "hy" or (node.module or "").startswith("hy."):
            raise _violation(f"importing from '{node.module}' is not allowed in sandboxed Lisp", node.lineno, node.col_offset)
        return node

    def visit_Attribute(self, node: _ast.Attribute) -> _ast.AST:
        if isinstance(node.value, _ast.Name) and node.value.id == "hy" and node.attr not in _ALLOWED:
            raise _violation(
                f"hy.{_hy.unmangle(node.attr)} is not available in sandboxed Lisp", node.lineno, node.col_offset
            )
        self.generic_visit(node)
        return node


def compile(source: str, filename: str) -> _ast.Module:  # noqa: A001 - the worker's compiler hook
    """Sandboxed Kryon Lisp source to a checked ``ast.Module`` (see module doc)."""
    found = _scan.sandbox_violation(source, filename)
    if found is not None:
        raise _violation(*found)
    try:
        module = _compiler.compile_ast(source, filename)
    except _CompileError as exc:
        raise SyntaxError(exc.message, (filename, exc.line, exc.column, None)) from None
    module = _checked(_Rewrite().visit(module))
    prelude = [
        _ast.Import(names=[_ast.alias(name="kryon")]),
        _ast.ImportFrom(module="kryon", names=[_ast.alias(name="*")], level=0),
    ]
    for node in prelude:
        node.lineno = node.end_lineno = 1
        node.col_offset = node.end_col_offset = 0
    module.body[:0] = prelude
    return module


def _checked(module: object) -> _ast.Module:
    """What the rewrite gives back is still a module (a transformer may replace any node)."""
    if not isinstance(module, _ast.Module):
        raise TypeError("the rewritten script is not a module")
    return module
