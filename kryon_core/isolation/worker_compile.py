"""Compiling scripts inside the worker (worker side, standard library only,
loaded by path like every sibling of ``worker.py``).

The compiler is the policy's hook (:func:`resolve_compiler`: ``"python"``,
or ``"module:function"`` such as Hy's), resolved while the worker can still
import. Whatever it returns passes the AST guard before it is compiled
(:func:`compile_script`, :func:`compile_evaluation`), unless it is a code
object the hook checked itself. A warm load runs the code object the host
cached instead (:func:`cached_code`), held to the same rules.
:func:`module_source` is how a module-aware compiler (Hy's) reads a file
beside the script for a relative import: it asks the host.
:func:`function_infos` lists a loaded script's functions for the host.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import guard, protocol, scriptenv, worker_channel
else:  # loaded by worker.py (``_load_sibling``) before this module
    guard = sys.modules["kryon_isolation_guard"]
    protocol = sys.modules["kryon_isolation_protocol"]
    scriptenv = sys.modules["kryon_isolation_scriptenv"]
    worker_channel = sys.modules["kryon_isolation_worker_channel"]

S = worker_channel.S
AccessDenied = scriptenv.AccessDenied
KryonError = scriptenv.KryonError


def _python_compiler(source: str, filename: str) -> Any:
    import ast

    return ast.parse(source, filename, "exec")


def resolve_compiler(spec: str | None) -> Callable[[str, str], Any]:
    if spec in (None, "", "python"):
        return _python_compiler
    module_name, _, attr = str(spec).partition(":")
    obj: Any = __import__(module_name, fromlist=["_"])
    for part in (attr or "compile").split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]


def compile_tree(source: str, filename: str) -> Any:
    """What the compiler hook makes of ``source``: an ``ast.Module`` (to be
    checked by the guard) or a code object (the hook checked it itself).

    A hook marked ``kryon_module_aware`` (Hy's) compiles in the script's own
    module, where code it runs while compiling (macros) lives and finds the
    script's builtins, and gets the guard to check that code with first."""
    import ast

    assert S.compile is not None
    if getattr(S.compile, "kryon_module_aware", False):
        module = S.module_of.get(filename)
        result = S.compile(source, filename, module=module, check=_check_tree, load_module=module_source)
    else:
        result = S.compile(source, filename)
    if isinstance(result, (ast.Module, types.CodeType)):
        return result
    raise TypeError(f"the compiler returned {type(result).__name__}, not an AST module or code object")


def module_source(name: str) -> str | None:
    """The source of the file ``name`` (``helpers``, ``sub/helpers``; no
    extension) beside the loading script, asked of the host, whose module
    loader keeps it inside the script's root: None when there is none, an
    ``AccessDenied`` when the host refuses it. For a module-aware compiler's
    relative imports."""
    try:
        source = worker_channel.host_request("mod", {"n": name})
    except KryonError as exc:
        if exc.kind == "access":
            raise AccessDenied(str(exc)) from None
        raise
    if source is not None and not isinstance(source, str):
        raise protocol.ProtocolError("a module's source must be text")
    return source


def _check_tree(tree: Any) -> None:
    """The module-aware compiler's check of a tree it compiles (code run while
    compiling, files beside the script): the guard's rewrite and check, in place."""
    if S.python_layers:
        guard.prepare(tree)


def compile_checked(tree: Any, filename: str, mode: str = "exec") -> types.CodeType:
    """An AST rewritten and checked by the guard (``guard.prepare``: reads of
    ``format`` become checked reads) when the Python layers are on, and compiled."""
    if S.python_layers:
        guard.prepare(tree)
    fix_locations(tree)
    code: types.CodeType = compile(tree, filename, mode, dont_inherit=True)
    return code


def fix_locations(tree: Any) -> None:
    """Positions for nodes a compiler left without them; an end filled in
    before its start (a node with a start and no end, under a parent with
    neither) is moved to the start, which ``compile`` requires."""
    import ast

    ast.fix_missing_locations(tree)
    for node in ast.walk(tree):
        start, end = getattr(node, "col_offset", None), getattr(node, "end_col_offset", None)
        if start is not None and end is not None and getattr(node, "end_lineno", None) == getattr(node, "lineno", None):
            if end < start:
                node.end_col_offset = start  # type: ignore[attr-defined]


def compile_script(source: str, filename: str) -> types.CodeType:
    """The compiler hook returns an ``ast.Module`` (checked by the guard, then
    compiled) or a code object (then it must have checked the code itself)."""
    result = compile_tree(source, filename)
    return result if isinstance(result, types.CodeType) else compile_checked(result, filename)


def compile_evaluation(code: str, script: str) -> tuple[types.CodeType, types.CodeType | None]:
    """``code`` compiled by the script's compiler and checked by the guard:
    its statements, and the value of its last expression (None when it ends
    with a statement)."""
    import ast

    tree = compile_tree(code, script)
    expression = None
    last = tree.body[-1] if isinstance(tree, ast.Module) and tree.body else None
    if isinstance(last, ast.Expr):
        tree.body.pop()
        expression = ast.Expression(last.value)
    statements = compile_checked(tree, script) if not isinstance(tree, types.CodeType) else tree
    value_code = compile_checked(expression, script, "eval") if expression is not None else None
    return statements, value_code


def cached_code(raw: Any, script: str) -> types.CodeType | None:
    """The code object the host sent from its compilation cache (a warm load
    compiles nothing), or None to compile the source instead: when none was
    sent, when it is not a valid code object of this Python, or when the
    guard's rules refuse it (:func:`guard.check_code`, the same rules the
    AST check applies to source). Unmarshalling and renaming are the
    worker's own steps (the audit hook refuses both to scripts)."""
    if not isinstance(raw, bytes):
        return None
    import marshal

    S.internal += 1
    try:
        code = marshal.loads(raw)
        if not isinstance(code, types.CodeType):
            return None
        if code.co_filename != script:
            code = _renamed(code, script)
    except (ValueError, EOFError, TypeError):
        return None
    finally:
        S.internal -= 1
    if S.python_layers:
        try:
            guard.check_code(code)
        except guard.GuardViolation:
            return None
    return code


def _renamed(code: types.CodeType, filename: str) -> types.CodeType:
    consts = tuple(_renamed(c, filename) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def function_infos(script: str, ns: dict[str, Any]) -> list[dict[str, Any]]:
    import inspect

    out = []
    for name, value in ns.items():
        if not isinstance(value, types.FunctionType):
            continue
        code = value.__code__
        if code.co_filename != script and value.__globals__ is not ns:  # defined in the namespace: hy.eval's too
            continue
        params = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        out.append(
            {
                "name": name,
                "parameter_count": code.co_argcount,
                "parameter_names": list(params[: code.co_argcount]),
                "is_async": inspect.iscoroutinefunction(value) or inspect.isasyncgenfunction(value),
                "is_generator": inspect.isgeneratorfunction(value) or inspect.isasyncgenfunction(value),
                "is_variadic": bool(code.co_flags & 0x04),
                "line": code.co_firstlineno,
            }
        )
    return out
