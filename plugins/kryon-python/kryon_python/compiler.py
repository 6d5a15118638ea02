"""Python source to code objects, and what a script defines.

``compile_source`` parses and compiles a script (nothing runs) and lists its
top-level functions and assignments from the AST; ``code_for`` gives back
the code object of a compiled script (its marshalled bytecode when this
interpreter made it for this script id, else the source compiled again);
``compile_evaluation`` splits code for ``evaluate`` into its statements and
a final expression; ``compile_module`` compiles a file a script imports.
"""

from __future__ import annotations

import ast
import marshal
import types

from kryon_core import CompiledScript, FunctionInfo
from kryon_core.isolation import guard
from kryon_core.pyhost.bytecode import load_bytecode

from .errors import compile_error
from .plugin import LANGUAGE

__all__ = ["compile_source", "code_for", "compile_evaluation", "compile_module"]


def compile_source(text: str, name: str, version: str, *, sandboxed: bool = False) -> CompiledScript:
    """Compile to a code object (``bytecode`` is its marshal form) and list
    the top-level functions. Nothing runs. For a sandboxed script the reads of
    ``format`` are rewritten as the worker's guard rewrites them
    (``guard.rewrite_format_reads``), so that the worker can run the cached
    code instead of compiling the source (it checks it first)."""
    try:
        tree = ast.parse(text, name, "exec")
        functions, names = _top_level(tree)
        if sandboxed:
            guard.rewrite_format_reads(tree)
        code = compile(tree, name, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise compile_error(exc, name) from None
    return CompiledScript(
        id=name,
        language=LANGUAGE,
        source=text,
        bytecode=marshal.dumps(code),
        functions=functions,
        globals=names,
        engine_version=version,
    )


def code_for(compiled: CompiledScript, version: str) -> types.CodeType:
    """The code object to run: the cached bytecode when this interpreter made
    it (named for this script) and not for the sandbox (the cache is shared by
    trusted and sandboxed loads of one source), else the source compiled again."""
    if compiled.bytecode and compiled.engine_version == version:
        code = load_bytecode(compiled, LANGUAGE)
        if not guard.reads_checked(code):
            return code
    try:
        return compile(compiled.source, compiled.id, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise compile_error(exc, compiled.id) from None


def compile_evaluation(code: str, script: str) -> tuple[types.CodeType, types.CodeType | None]:
    """The statements of ``code`` and, when it ends in an expression, that
    expression on its own (its value is what ``evaluate`` returns). Lines are
    the lines within ``code``; errors name ``script``."""
    filename = f"<evaluate {script}>"
    try:
        tree = ast.parse(code, filename, "exec")
        last = tree.body[-1] if tree.body else None
        expression = None
        if isinstance(last, ast.Expr):
            tree.body.pop()
            expression = compile(ast.Expression(last.value), filename, "eval", dont_inherit=True)
        return compile(tree, filename, "exec", dont_inherit=True), expression
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise compile_error(exc, script) from None


def compile_module(source: str, filename: str) -> types.CodeType:
    """A file a script imports relatively."""
    try:
        return compile(source, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise compile_error(exc, filename) from None


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
