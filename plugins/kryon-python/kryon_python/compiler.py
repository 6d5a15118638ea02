"""Python source to code objects, and what a script defines.

``compile_source`` parses and compiles a script (nothing runs) and lists its
top-level functions and assignments from the AST; ``code_of`` gives back the
code object of a compiled script (its marshalled bytecode when it was made by
this interpreter, else the source compiled again); ``namespace_functions``
lists the functions a script's namespace holds after its top level ran.
"""

from __future__ import annotations

import ast
import inspect
import marshal
import types
from typing import Any

from kryon_core import CompiledScript, CompileError, FunctionInfo

from .plugin import LANGUAGE

__all__ = ["source_text", "compile_source", "code_of", "namespace_functions"]


def source_text(source: "str | bytes", name: str) -> str:
    if isinstance(source, (bytes, bytearray)):
        try:
            return bytes(source).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CompileError(f"source is not valid UTF-8 (byte {exc.start})", language=LANGUAGE, script=name) from None
    return source


def compile_source(text: str, name: str, version: str) -> CompiledScript:
    """Compile to a code object (``bytecode`` is its marshal form) and list
    the top-level functions. Nothing runs."""
    try:
        tree = ast.parse(text, name, "exec")
        code = compile(tree, name, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise CompileError(
            exc.msg or "invalid syntax", language=LANGUAGE, script=name, line=exc.lineno, column=exc.offset
        ) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise CompileError(f"cannot compile: {exc}", language=LANGUAGE, script=name) from None
    functions, names = _top_level(tree)
    return CompiledScript(
        id=name,
        language=LANGUAGE,
        source=text,
        bytecode=marshal.dumps(code),
        functions=functions,
        globals=names,
        engine_version=version,
    )


def code_of(compiled: CompiledScript, version: str) -> types.CodeType:
    """The code object to run: the cached bytecode when this interpreter made
    it for this script id, else the source compiled again."""
    if compiled.bytecode and compiled.engine_version == version:
        try:
            code = marshal.loads(compiled.bytecode)
            if isinstance(code, types.CodeType) and code.co_filename == compiled.id:
                return code
        except (ValueError, EOFError, TypeError):
            pass
    try:
        return compile(compiled.source, compiled.id, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise CompileError(
            exc.msg or "invalid syntax", language=LANGUAGE, script=compiled.id, line=exc.lineno, column=exc.offset
        ) from None


def _top_level(tree: ast.Module) -> tuple[dict[str, FunctionInfo], list[str]]:
    functions: dict[str, FunctionInfo] = {}
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            params = tuple(p.arg for p in (*a.posonlyargs, *a.args))
            functions[node.name] = FunctionInfo(
                name=node.name,
                parameter_count=len(params),
                parameter_names=params,
                is_async=isinstance(node, ast.AsyncFunctionDef),
                is_generator=_yields(node),
                is_variadic=a.vararg is not None,
                line=node.lineno,
            )
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name) and t.id not in names:
                    names.append(t.id)
    return functions, names


def _yields(fn: ast.AST) -> bool:
    stack = list(ast.iter_child_nodes(fn))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Yield, ast.YieldFrom)):
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        stack.extend(ast.iter_child_nodes(node))
    return False


def namespace_functions(sid: str, ns: dict[str, Any]) -> dict[str, FunctionInfo]:
    out = {}
    for name, value in ns.items():
        if not isinstance(value, types.FunctionType) or value.__code__.co_filename != sid:
            continue
        code = value.__code__
        params = code.co_varnames[: code.co_argcount]
        out[name] = FunctionInfo(
            name=name,
            parameter_count=code.co_argcount,
            parameter_names=tuple(params),
            is_async=inspect.iscoroutinefunction(value) or inspect.isasyncgenfunction(value),
            is_generator=inspect.isgeneratorfunction(value) or inspect.isasyncgenfunction(value),
            is_variadic=bool(code.co_flags & inspect.CO_VARARGS),
            line=code.co_firstlineno,
        )
    return out
