"""Kryon Lisp source to Python code objects, through Hy.

``compile_source`` reads the source with ``hy.read_many``, compiles the forms
with ``hy.compiler.hy_compile`` into one ``ast.Module`` and that with
``compile()`` into a code object whose file name is the script id. Hy keeps
the source position of every form on the Python AST, so line numbers (and
columns, via ``co_positions``) in the code object are the .kl file's own.
The code object is stored marshalled in ``CompiledScript.bytecode``.

Reader errors (unbalanced parentheses, bad literals), macro-expansion errors
and Hy or Python syntax errors all become :class:`~kryon_core.CompileError`
with the script, line and column.

Compiling runs macros (``defmacro`` bodies, reader macros, ``require``) in
this process: it is as trusted as running the script. Sandboxed source is
first read (reading runs no user code); if any form would run code while
compiling (:func:`.scan.sandbox_violation`) it is not compiled here at all
(:func:`source_only`: its worker compiles it, macros and all), so compiling
sandboxed source here runs only Hy's own macros (``sandbox.py``).
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import importlib.util
import marshal
import platform
import types
import warnings
from collections.abc import Iterator
from typing import Any

import hy
from hy.compiler import HyASTCompiler, hy_compile
from hy.errors import HyLanguageError, HyMacroExpansionError
from hy.models import Expression, Keyword, Lazy, Symbol
from hy.reader.exceptions import LexException

from kryon_core import CompiledScript, CompileError, FunctionInfo, StackFrame
from kryon_core.isolation import guard
from kryon_core.pyhost.bytecode import load_bytecode

from . import __version__
from .plugin import LANGUAGE
from .scan import CLOSERS, has_relative_require, spelled_names, top_level_name, unclosed_opener

__all__ = [
    "ENGINE_VERSION",
    "compile_source",
    "source_only",
    "compile_ast",
    "compile_evaluation",
    "compile_module",
    "load_code",
    "function_info",
    "display_name",
]

#: part of the compilation-cache key: bytecode depends on the Python version
#: (marshal format, magic number), on Hy's code generation and on our prelude
ENGINE_VERSION = (
    f"Kryon Lisp {__version__} (Hy {hy.__version__}, {platform.python_implementation()} "
    f"{platform.python_version()}, bytecode {importlib.util.MAGIC_NUMBER.hex()})"
)

def _defn_async(*args: Any) -> Expression:
    """``(defn/a name [params] body...)``: Hy 0.x spelling of ``(defn :async ...)``."""
    return Expression([Symbol("defn"), Keyword("async"), *args])


def _fn_async(*args: Any) -> Expression:
    """``(fn/a [params] body...)``: Hy 0.x spelling of ``(fn :async ...)``."""
    return Expression([Symbol("fn"), Keyword("async"), *args])


#: macros every Kryon Lisp script has besides Hy's own
PRELUDE_MACROS = {hy.mangle("defn/a"): _defn_async, hy.mangle("fn/a"): _fn_async}


def display_name(identifier: str) -> str:
    """The Lisp spelling of a Python identifier Hy produced (``set_it`` -> ``set-it``)."""
    return str(hy.unmangle(identifier))


def compile_source(source: str, name: str, *, sandboxed: bool = False) -> CompiledScript:
    """Compile Kryon Lisp source into a :class:`CompiledScript` (see module doc).
    For a sandboxed script the reads of ``format`` are rewritten as the
    worker's guard rewrites them, so that its worker can run the cached code
    (it checks it first) instead of compiling the source.

    A script that requires macros from a file beside it (``(require .macros
    ...)``) is not compiled now: what it expands to depends on that file,
    which only the load can find (inside the script's root). Its entry holds
    the source, and the load compiles it."""
    if has_relative_require(source, name):
        return source_only(source, name)
    forms: list[Any] = []
    module = compile_ast(source, name, forms)
    if sandboxed:
        guard.rewrite_format_reads(module)
    code = _code(module, name)
    return CompiledScript(
        id=name,
        language=LANGUAGE,
        source=source,
        bytecode=marshal.dumps(code),
        functions=function_info(module, spelled_names(forms)),
        globals=_globals(module),
        dependencies=_dependencies(module),
        engine_version=ENGINE_VERSION,
    )


def source_only(source: str, name: str) -> CompiledScript:
    """An entry that holds the source and the functions its forms name, for
    a script compiled only where it loads (a sandboxed script with macros
    compiles inside its worker; a relative require resolves at the load)."""
    try:
        spelled = spelled_names(list(hy.read_many(source, filename=name)))
    except (LexException, RecursionError, HyLanguageError):
        spelled = {}  # the compiler reports the reader error where it compiles
    return CompiledScript(
        id=name, language=LANGUAGE, source=source, engine_version=ENGINE_VERSION,
        functions={n: FunctionInfo(name=n) for n in spelled.values()},
    )


def _code(module: "ast.Module | ast.Expression", name: str, mode: str = "exec", script: str | None = None) -> types.CodeType:
    """``compile()`` of a Hy-made AST, its errors as CompileErrors on the Lisp
    lines (naming ``script``, by default ``name``)."""
    name, filename = script or name, name
    try:
        code: types.CodeType = compile(module, filename, mode, dont_inherit=True)
        return code
    except SyntaxError as exc:  # e.g. `return` outside a function: Hy positions, so Lisp lines
        raise _error(exc.msg or str(exc), name, exc.lineno, exc.offset) from None
    except (RecursionError, MemoryError) as exc:
        raise _too_deep(exc, name) from None
    except (ValueError, TypeError) as exc:  # an AST Python refuses, e.g. a dict literal with an odd count
        line, column = _odd_dict(module) if isinstance(module, ast.Module) else (None, None)
        raise _error(f"invalid form: {exc}", name, line, column) from None


def load_code(compiled: CompiledScript, module: types.ModuleType | None = None) -> types.CodeType:
    """The code object of a compiled script, with its file name set to the
    script id (a cached entry may have been compiled under another name).
    Without bytecode the source is compiled now, in ``module`` (so that
    relative requires resolve in the script's own package)."""
    if compiled.bytecode and compiled.engine_version == ENGINE_VERSION:
        code = load_bytecode(compiled, LANGUAGE)
        if not guard.reads_checked(code):  # compiled for a sandboxed load of the same source
            return code
    return _code(compile_ast(compiled.source, compiled.id, module=module), compiled.id)


def compile_evaluation(code: str, script: str, module: types.ModuleType) -> tuple[types.CodeType, types.CodeType]:
    """``code`` for ``evaluate``: its forms but the last as statements, and the
    value of the last (None when it is a statement), compiled in the script's
    ``module`` (its macros apply). Lines are the lines within ``code``; errors
    name ``script``."""
    filename = f"<evaluate {script}>"
    with _compile_errors(code, script):
        body, expression = hy_compile(
            hy.read_many(code, filename=filename), module, filename=filename, source=code, get_expr=True,
            extra_macros=PRELUDE_MACROS,
        )
    return _code(body, filename, script=script), _code(expression, filename, "eval", script=script)


def compile_module(source: str, filename: str, module: types.ModuleType) -> types.CodeType:
    """A file a script imports (or requires) relatively, compiled in its own ``module``."""
    return _code(compile_ast(source, filename, module=module), filename)


#: the compiling module of a script compiled for the cache: a relative require
#: resolves in no package from it (the load compiles such scripts instead)
_UNRESOLVED = "kryon-lisp-compiling"

def compile_ast(source: str, name: str, forms: list[Any] | None = None,
                module: types.ModuleType | None = None, compiler_class: type[HyASTCompiler] | None = None) -> ast.Module:
    """Read and compile to a Python AST in ``module`` (by default one whose
    relative requires resolve nowhere); the top-level forms read are appended
    to ``forms`` (reading stays lazy, form by form, as Hy needs for reader
    macros). ``compiler_class`` replaces Hy's compiler (the sandbox's checks
    code that runs while compiling)."""
    if module is None:
        module = types.ModuleType(f"{_UNRESOLVED}.{name}")
    with _compile_errors(source, name):
        tree = hy.read_many(source, filename=name)
        if forms is not None:
            tree = _recording(tree, forms)
        compiler = (
            compiler_class(module, filename=name, source=source, extra_macros=PRELUDE_MACROS) if compiler_class else None
        )
        compiled: ast.Module = hy_compile(tree, module, filename=name, source=source, extra_macros=PRELUDE_MACROS,
                                          compiler=compiler)
    return compiled


@contextlib.contextmanager
def _compile_errors(source: str, name: str) -> Iterator[None]:
    """Hy's reader, macro and compiler errors as CompileErrors on the Lisp lines."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            yield
    except LexException as exc:
        raise _reader_error(exc, source, name) from None
    except HyMacroExpansionError as exc:
        raise _error(_one_line(exc.msg), name, exc.lineno, exc.offset, what="macro expansion failed") from None
    except HyLanguageError as exc:
        if "maximum recursion depth" in str(exc.msg):
            raise _too_deep(exc, name) from None
        raise _error(_one_line(exc.msg), name, exc.lineno, exc.offset) from None
    except (RecursionError, MemoryError) as exc:
        raise _too_deep(exc, name) from None
    except CompileError:
        raise
    except Exception as exc:  # an internal compiler error or a macro's own exception type
        raise _error(f"{type(exc).__name__}: {exc}", name, None, None) from None


def _recording(tree: Lazy, forms: list[Any]) -> Lazy:
    def read() -> Any:
        for form in tree:
            forms.append(form)
            yield form

    recorded = Lazy(read())
    recorded.source, recorded.filename, recorded.reader = tree.source, tree.filename, tree.reader
    return recorded


def _too_deep(exc: BaseException, name: str) -> CompileError:
    return _error(f"the script is nested too deeply to compile ({type(exc).__name__})", name, None, None)


def _odd_dict(module: ast.Module) -> tuple[int | None, int | None]:
    for node in ast.walk(module):
        if isinstance(node, ast.Dict) and len(node.keys) != len(node.values):
            return getattr(node, "lineno", None), getattr(node, "col_offset", None)
    return None, None


def _error(message: str, name: str, line: int | None, column: int | None, what: str = "") -> CompileError:
    text = f"{what}: {message}" if what else message
    frame = StackFrame(top_level_name, script=name, line=line, column=column, language=LANGUAGE)
    return CompileError(text, language=LANGUAGE, script=name, line=line, column=column, stack=[frame])


def _one_line(message: Any) -> str:
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    if not lines:
        return "error"
    return lines[0] if len(lines) == 1 else f"{lines[0]}: {' '.join(lines[1:])}"


def _reader_error(exc: LexException, source: str, name: str) -> CompileError:
    message = _one_line(exc.msg)
    if "maximum recursion depth" in message:
        return _error("the script is nested too deeply to read (RecursionError)", name, exc.lineno, exc.offset)
    if type(exc).__name__ == "PrematureEndOfInput":
        opener = unclosed_opener(source)
        if opener is not None:
            char, line, column = opener
            kind = "string" if char == '"' else f"'{char}'"
            return _error(
                f"unbalanced parentheses: {kind} opened at line {line}, column {column} is never closed "
                f"(end of input reached: {message})",
                name,
                line,
                column,
            )
    elif "wasn't expected" in message:
        opener = unclosed_opener(source, (exc.lineno, exc.offset)) if exc.lineno and exc.offset else None
        if opener is not None and opener[0] != '"':
            char, line, column = opener
            message = (
                f"unbalanced parentheses: {message} ('{char}' opened at line {line}, column {column} "
                f"needs '{CLOSERS[char]}')"
            )
        else:
            message = f"unbalanced parentheses: {message}"
    return _error(message, name, exc.lineno, exc.offset)


# -- what a compiled script defines -------------------------------------------------

_GEN_NODES = (ast.Yield, ast.YieldFrom)


def _is_generator(fn: ast.AST) -> bool:
    todo = list(ast.iter_child_nodes(fn))
    while todo:
        node = todo.pop()
        if isinstance(node, _GEN_NODES):
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        todo.extend(ast.iter_child_nodes(node))
    return False


def _info(name: str, fn: "ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda") -> FunctionInfo:
    a = fn.args
    params = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
    return FunctionInfo(
        name=display_name(name),
        parameter_count=len(params),
        parameter_names=tuple(display_name(p) for p in params),
        is_async=isinstance(fn, ast.AsyncFunctionDef),
        is_generator=_is_generator(fn),
        is_variadic=a.vararg is not None,
        line=getattr(fn, "lineno", None),
    )


def function_info(module: ast.Module, spelled: dict[str, str] | None = None) -> dict[str, FunctionInfo]:
    """The public functions a module's top level defines, as the AST shows
    them: ``defn`` and ``defn :async`` / ``defn/a`` forms, and ``(setv name
    (fn ...))``; named as ``spelled`` gives (else by ``hy.unmangle``)."""
    spelled = spelled or {}
    defs: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    out: dict[str, FunctionInfo] = {}

    def add(name: str, fn: Any) -> None:
        info = _info(name, fn)
        spelling = spelled.get(name, info.name)
        out[spelling] = dataclasses.replace(info, name=spelling)

    for node in module.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            defs[node.name] = node
            if not node.name.startswith("_"):
                add(node.name, node)
        elif (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and not node.targets[0].id.startswith("_")
        ):
            target, value = node.targets[0].id, node.value
            if isinstance(value, ast.Name) and value.id in defs:
                add(target, defs[value.id])
            elif isinstance(value, ast.Lambda):  # a one-expression (fn [...] ...)
                add(target, value)
    return out


def _globals(module: ast.Module) -> list[str]:
    names: list[str] = []
    for node in module.body:
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        for t in targets:
            if isinstance(t, ast.Name) and not t.id.startswith("_") and display_name(t.id) not in names:
                names.append(display_name(t.id))
    return names


def _dependencies(module: ast.Module) -> list[str]:
    deps: list[str] = []
    for node in ast.walk(module):
        mods: list[str] = []
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            mods = [node.module]
        for m in mods:
            if m != "hy" and m not in deps:
                deps.append(m)
    return deps
