"""Kryon Lisp inside a ``kryon_core.isolation`` worker process.

The worker imports this module before it arms its sandbox (the compiler
spec ``kryon_lisp.sandboxed:compile``), so everything Hy loads lazily is
loaded here, by compiling a warm-up sample. After arming, :func:`compile`
turns a sandboxed script's source into an ``ast.Module`` that the worker
checks with its AST guard and runs. A sandboxed Lisp is a whole Lisp: the
script is compiled here, inside the confined worker, in the script's own
module, so its macros (``defmacro``, ``defreader``, ``do-mac``,
``eval-when-compile``, ``require`` of a module the policy grants,
``get-macro``) run here, under the script's time limit, with its builtins:

1. code that runs while compiling (a macro's definition, ``do-mac``,
   ``eval-when-compile``) is compiled by :class:`SandboxCompiler`, which
   rewrites and checks it with the worker's guard exactly as the script's
   own code, then runs it in the script's module; what it does at run time
   (open a file, import a module the policy withholds) is refused there,
   and the error names the line of the form that ran it;
2. the source is compiled with Hy (reader and macro errors become a
   ``SyntaxError`` with the .kl line and column, which the worker reports as
   a CompileError; an access, timeout, memory or recursion error raised by a
   macro stays what it is);
3. ``import hy`` becomes ``import kryon_lisp_hy as hy``: a module holding only
   what compiled Hy code needs at run time (the model classes, ``mangle``,
   ``gensym``, the operator functions, macro registration into the
   script's own namespace...) and ``hy.eval``, ``hy.read``,
   ``hy.read-many`` and ``hy.I`` of the sandbox's own: ``hy.eval`` compiles
   with this module's compiler in the calling script's module and runs the
   result only after the guard checked it, with the script's builtins (a
   ``globals`` dict of the script's gets them too); ``hy.I`` imports through
   the script's own ``__import__``; ``hy.errors``, ``hy.models`` and
   ``hy.compat`` (its version flags) are submodules a script may import.
   Any other part of Hy is refused when the code reaching for it runs, and
   writing ``hy.*`` at load;
4. reading an attribute the worker's guard refuses (``obj._x``, a dunder)
   becomes the script's ``getattr``, which applies the same rule when the
   read runs, so the rest of the file loads;
5. the ``kryon`` API is bound without an import (``from kryon import *``,
   under the mangled kebab-case names the host registered) and ``kryon``
   itself is importable as in Python.

Every module this one imports is bound under an underscore name: the guard
refuses ``_`` attributes, so a script reaching this module sees nothing of Hy.
"""

from __future__ import annotations

import ast as _ast
import builtins as _builtins
import sys as _sys
import types as _types
from typing import Any as _Any

import hy as _hy
import hy.pyops as _pyops
from hy import models as _models
from hy.compiler import HyASTCompiler as _HyASTCompiler
from hy.compiler import hy_compile as _hy_compile
from hy.reader import HyReader as _HyReader
from hy.reader import read as _hy_read
from hy.reader import read_many as _hy_read_many
from hy.reader.mangling import slashes2dots as _slashes2dots

from kryon_core import CompileError as _CompileError

from . import compiler as _compiler
from . import sandboxed_scripts as _scripts

__all__ = ["compile", "RUNTIME_MODULE"]

#: the name compiled scripts import in place of ``hy``
RUNTIME_MODULE = "kryon_lisp_hy"

_MODEL_NAMES = (
    "Object", "Lazy", "Keyword", "String", "Bytes", "Symbol", "Integer", "Float", "Complex",
    "Sequence", "FComponent", "FString", "List", "Tuple", "Set", "Dict", "Expression", "as_model", "replace_hy_obj",
)


def _macro(name: str) -> _Any:
    """``hy.macros.macro`` for sandboxed code: registers the function as a
    macro in its own module's namespace (the script's), where compiling
    looks macros up (Hy's own renames the function, which remakes a code
    object: the sandbox refuses that)."""
    key = _hy.mangle(name)

    def install(fn: _Any) -> _Any:
        if not isinstance(fn, _types.FunctionType):
            raise TypeError("a macro must be a function")
        fn.__globals__.setdefault("_hy_macros", {})[key] = fn
        return fn

    return install


def _reader_macro(name: str, fn: _Any) -> None:
    """``hy.macros.reader_macro`` for sandboxed code (see :func:`_macro`)."""
    if not isinstance(fn, _types.FunctionType):
        raise TypeError("a reader macro must be a function")
    fn.__globals__.setdefault("_hy_reader_macros", {})[name] = fn


def _enable_readers(module: _Any, reader: _Any, names: _Any) -> None:
    """``hy.macros.enable_readers``: reader macros a ``require`` brought in
    become active in the reader compiling the script (at run time, when no
    reader is reading, there is nothing to do)."""
    if reader is None:
        return
    if module is not None:
        raise TypeError("sandboxed Lisp enables reader macros of its own module only")
    defined = _sys._getframe(1).f_globals.get("_hy_reader_macros", {})
    for name in defined.keys() if names == "ALL" else names:
        if name not in defined:
            raise NameError(f"reader {name} is not defined")
        reader.reader_macros[name] = defined[name]


def _require_vals(module_name: str, target: _Any = None, assignments: _Any = "ALL", prefix: str = "") -> list[_Any]:
    """``hy.macros.require_vals``, which a ``require`` inside a function runs
    to bind the macros it required as locals: the module is imported through
    the calling script's own import (the policy's grants, its files beside
    it), never Python's, and its macros are handed out by name."""
    if not isinstance(module_name, str):
        raise TypeError("a module name must be a string")
    record, _ = _scripts.caller("require")
    if module_name.startswith("."):  # a file beside the script
        rest = module_name.lstrip(".")
        module: _Any = _scripts.import_relative(record.package, rest, len(module_name) - len(rest))
    else:
        record.builtins["__import__"](module_name, None, None, (), 0)
        module = _sys.modules.get(module_name)
    macros = getattr(module, "__dict__", {}).get("_hy_macros", {})
    if assignments in ("ALL", "EXPORTS"):
        return list(macros.values())
    out = []
    for name, _alias in assignments:
        key = _hy.mangle(name)
        if key not in macros:
            raise NameError(f"no macro {name} in {module_name}")
        out.append(macros[key])
    return out


def _no_require(*args: object, **kwargs: object) -> None:
    """``require`` at run time: the macros were required into the script's
    module while it was compiled (in this worker); nothing is imported again."""
    return None


def _submodule(name: str, doc: str, values: dict[str, _Any]) -> _types.ModuleType:
    """``kryon_lisp_hy.<name>``, listed in ``sys.modules`` so that
    ``(import hy.models [Symbol])`` (rewritten to import it) finds it."""
    mod = _types.ModuleType(f"{RUNTIME_MODULE}.{name}", doc)
    vars(mod).update(values)
    _sys.modules[mod.__name__] = mod
    return mod


def _error_classes() -> dict[str, type]:
    """Hy's exception classes (``hy.errors``): what compiling and ``hy.eval``
    raise, so a script can catch them by name. Classes only: the module's
    functions (traceback filters, its environment switches) stay out."""
    import hy.errors as errors

    return {n: v for n, v in vars(errors).items()
            if not n.startswith("_") and isinstance(v, type) and issubclass(v, BaseException)}


def _compat_flags() -> dict[str, bool]:
    import hy.compat as compat

    return {n: v for n, v in vars(compat).items() if n.isupper() and isinstance(v, bool)}


def _withheld(name: str) -> _Any:
    """A part of Hy the runtime does not hold: refused when the code reaching
    for it runs (a branch that never runs, or a test that never calls it, loads)."""
    if name.startswith("__"):  # Python's own probes (__path__, __file__...)
        raise AttributeError(name)
    raise _denied(f"hy.{_hy.unmangle(name)} is not available in sandboxed Lisp")


def _denied(message: str) -> BaseException:
    scriptenv = _sys.modules.get("kryon_isolation_scriptenv")
    error: BaseException = scriptenv.AccessDenied(message) if scriptenv is not None else PermissionError(message)
    return error


def _runtime_module() -> _types.ModuleType:
    mod = _types.ModuleType(RUNTIME_MODULE, "What sandboxed Hy code sees as `hy`.")
    names = vars(mod)  # attributes set through the namespace: a ModuleType declares none of them
    names["models"] = _submodule("models", "Hy's model classes.",
                                 {n: getattr(_models, n) for n in _MODEL_NAMES if hasattr(_models, n)})
    names["errors"] = _submodule("errors", "Hy's exception classes.", _error_classes())
    names["compat"] = _submodule("compat", "Which Python runs Hy: the version flags of hy.compat.", _compat_flags())
    names["__getattr__"] = _withheld  # module __getattr__ (PEP 562): hy.<other> is refused when it runs
    pyops = _types.SimpleNamespace(
        **{
            n: v
            for n, v in vars(_pyops).items()
            if not n.startswith("_") and callable(v) and not isinstance(v, _types.ModuleType)
        }
    )
    names["pyops"] = pyops
    # macro registration writes into the defining function's own globals (the script's namespace)
    names["macros"] = _types.SimpleNamespace(
        macro=_macro, reader_macro=_reader_macro, require=_no_require, require_reader=_no_require,
        require_vals=_require_vals,
        enable_readers=_enable_readers,
    )
    # a reader macro's definition registers itself with the reader compiling the script
    names["reader"] = _types.SimpleNamespace(HyReader=_types.SimpleNamespace(current_reader=_HyReader.current_reader))
    for name in ("mangle", "unmangle", "gensym", "repr", "repr_register", "as_model"):
        if hasattr(_hy, name):
            setattr(mod, name, getattr(_hy, name))
    names.update(eval=_hy_eval, read=_hy_read, read_many=_hy_read_many, I=_Importer())
    return mod


def _hy_eval(model: _Any, globals: _Any = None, locals: _Any = None, module: _Any = None, macros: _Any = None) -> _Any:
    """``hy.eval`` for sandboxed code: ``model`` compiled in the calling
    script's module (its macros apply) by the script's compiler, which checks
    what it runs while compiling; the result is rewritten and checked by the
    guard like the script's own code, then run with the script's builtins
    (also in a ``globals`` dict the script passes, which gets them: without,
    Python would hand it the unrestricted ones). A refusal names the line of
    the ``hy.eval`` call."""
    record, frame = _scripts.caller("hy.eval")
    if module is not None:
        record = _scripts.record_of(getattr(module, "__dict__", None)) or _no_module()
    target = record.module()
    if target is None:
        raise RuntimeError("the script was unloaded")
    if globals is None:
        globals = target.__dict__
        if locals is None and module is None:
            locals = frame.f_locals  # as Hy's: the caller's local names are seen
    elif type(globals) is not dict:  # a subclass could refuse the builtins set below: Python's would be used
        raise TypeError("globals must be a dict")
    else:
        globals["__builtins__"] = record.builtins
    if locals is None:
        locals = globals
    if macros is not None and not isinstance(macros, dict):
        raise TypeError("macros must be a dict")
    # not the script's own file name: the worker's stacks then name the line of the hy.eval call
    filename = f"{frame.f_code.co_filename}:hy.eval"
    inner = record.compiler_class(target, filename=filename, source=getattr(model, "source", None),
                                  extra_macros={**_compiler.PRELUDE_MACROS, **(macros or {})})
    try:
        try:
            body, expression = _hy_compile(model, target, get_expr=True, compiler=inner, import_stdlib=False,
                                           filename=filename)
        except Exception as exc:
            raised = _raised_at_run_time(exc)
            if raised is None:
                raise
            raise raised.with_traceback(None) from None
        statements = _compile_checked(body, filename, "exec", record.check)
        value = _compile_checked(expression, filename, "eval", record.check)
    except BaseException as exc:
        guard = _sys.modules.get("kryon_isolation_guard")
        if guard is not None and isinstance(exc, guard.GuardViolation):
            raise guard.GuardViolation(f"{exc} (in code hy.eval compiled)", frame.f_lineno, None) from None
        raise
    added = "hy" not in globals  # compiled Hy refers to `hy` (quoted forms); Hy's own eval adds it too
    if added:
        globals["hy"] = _RUNTIME
    try:
        exec(statements, globals, locals)
        return eval(value, globals, locals)
    finally:
        if added and globals is not target.__dict__:
            globals.pop("hy", None)


def _no_module() -> _Any:
    raise TypeError("hy.eval's module must be the script's own or one it imported beside it")


class _Importer:
    """``hy.I`` for sandboxed code: ``(hy.I.math.sqrt 2)``, ``(hy.I "math")``;
    imports through the calling script's own ``__import__`` (the policy's
    grants, the safe modules' proxies), never Python's."""

    def __call__(self, module_name: str) -> _Any:
        if not isinstance(module_name, str):
            raise TypeError("a module name must be a string")
        record, _ = _scripts.caller("hy.I")
        top = record.builtins["__import__"](module_name, None, None, (), 0)
        if "." not in module_name or module_name not in _sys.modules:
            return top
        return _sys.modules[module_name]

    def __getattr__(self, name: str) -> _Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self(_slashes2dots(name))

    def __repr__(self) -> str:
        return "hy.I"


def _require_without_files() -> None:
    """Hy's ``require`` touches files it does not need, which a worker that
    may not read them is refused: it finds its caller with
    ``inspect.stack()``, which reads every frame's source, and compares the
    required module's file with the compiling module's (``os.path.samefile``,
    a ``stat`` of a path nobody may reach). In this process only, Hy's macro
    module gets an ``inspect`` whose ``stack`` reads no source, and the
    comparison is by identity: a script's module is never a file a
    ``require`` could name."""
    import inspect

    import hy.macros

    quiet = _types.ModuleType("inspect")
    quiet.__dict__.update(vars(inspect))
    quiet.stack = lambda context=1: inspect.stack(0)  # type: ignore[attr-defined]
    hy.macros.inspect = quiet
    hy.macros._same_modules = lambda source, target: source is not None and source is target
    hy.macros.importlib = _audited_importlib()
    hy.macros.rename_function = _rename_in_place


def _rename_in_place(fn: _Any, new_name: str) -> _Any:
    """``hy.macros.rename_function`` in the worker: a macro defined by a
    granted ``.hy`` module that is imported after the sandbox is armed
    (``tests.resources.macs`` under a grant of ``tests``) is named without
    a new code object, which the sandbox refuses (``code.__new__``): the
    function itself takes the name (it was made for the macro alone)."""
    fn.__name__ = str(new_name)
    qualname = fn.__qualname__
    fn.__qualname__ = qualname.rpartition(".")[0] + "." + str(new_name) if "." in qualname else str(new_name)
    return fn


def _audited_importlib() -> _types.ModuleType:
    """``importlib`` for Hy's ``require``: ``import_module`` raises the
    ``import`` audit event that the ``import`` statement raises (and
    ``importlib`` does not), so the worker's audit hook answers a require of
    a module the policy withholds with a clear refusal naming it, before
    the import system tries the file system."""
    import importlib
    import importlib.util

    def import_module(name: str, package: str | None = None) -> _types.ModuleType:
        full = importlib.util.resolve_name(name, package) if name.startswith(".") else name
        if _scripts.is_script_module_name(full):  # `(require .macros ...)`: a file beside the script
            return _scripts.import_relative(full, "", 0)
        _sys.audit("import", full, None, _sys.path, _sys.meta_path, _sys.path_hooks)
        return importlib.import_module(name, package)

    audited = _types.ModuleType("importlib")
    audited.__dict__.update(vars(importlib))
    audited.import_module = import_module  # type: ignore[attr-defined]
    return audited


_require_without_files()
_RUNTIME = _runtime_module()
_sys.modules.setdefault(RUNTIME_MODULE, _RUNTIME)
_ALLOWED = frozenset(n for n in vars(_RUNTIME) if not n.startswith("_"))
#: the name a refused import raises (bound in every sandboxed script's builtins)
_REFUSAL = "AccessDenied"

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


#: the parts of Hy a sandboxed script may import by name (``hy.models``,
#: ``hy.errors``): the curated runtime's submodules
_SUBMODULES = frozenset({"models", "errors"})


class _Rewrite(_ast.NodeTransformer):
    """``hy`` and its curated submodules become the curated runtime's
    (``(import hy.errors [HySyntaxError])``, ``(import hy [mangle])``);
    any other part of Hy is refused."""

    def visit_Import(self, node: _ast.Import) -> _ast.AST:
        for alias in node.names:
            if alias.name == "hy" or alias.name.startswith("hy."):
                sub = alias.name[3:]
                if alias.name != "hy" and sub not in _SUBMODULES:
                    return _refused(node, f"importing '{alias.name}' is not allowed in sandboxed Lisp")
                if alias.asname and sub:  # (import hy.errors :as e): the submodule itself
                    alias.name = f"{RUNTIME_MODULE}.{sub}"
                else:  # (import hy.errors) binds `hy`, as Python's import does
                    alias.name, alias.asname = RUNTIME_MODULE, alias.asname or "hy"
        return node

    def visit_ImportFrom(self, node: _ast.ImportFrom) -> _ast.AST:
        module = node.module or ""
        if module == "hy" or module.startswith("hy."):
            sub = module[3:]
            names = {a.name for a in node.names}
            if sub in _SUBMODULES and not node.level:
                node.module = f"{RUNTIME_MODULE}.{sub}"
            elif module == "hy" and not node.level and names <= _ALLOWED:
                node.module = RUNTIME_MODULE
            else:
                return _refused(node, f"importing from '{module}' is not allowed in sandboxed Lisp")
        return node

    def visit_Attribute(self, node: _ast.Attribute) -> _ast.AST:
        if isinstance(node.value, _ast.Name) and node.value.id == "hy":
            if not isinstance(node.ctx, _ast.Load):  # the runtime is read-only to scripts
                raise _violation(f"hy.{_hy.unmangle(node.attr)} cannot be changed in sandboxed Lisp",
                                 node.lineno, node.col_offset)
            # reading another public name is refused when it runs (the runtime's __getattr__)
            if node.attr not in _ALLOWED and node.attr.startswith("_"):
                raise _violation(
                    f"hy.{_hy.unmangle(node.attr)} is not available in sandboxed Lisp", node.lineno, node.col_offset
                )
        self.generic_visit(node)
        if _refused_read(node):
            # `obj.__class__` becomes `getattr(obj, "__class__")`: the script's getattr applies
            # the guard's rule when it runs, so one function reading a refused attribute fails
            # when called instead of failing its whole file at load
            call = _ast.Call(func=_ast.Name(id="getattr", ctx=_ast.Load()),
                             args=[node.value, _ast.Constant(value=node.attr)], keywords=[])
            return _ast.fix_missing_locations(_ast.copy_location(call, node))
        return node


def _refused_read(node: _ast.Attribute) -> bool:
    """A read of an attribute the worker's guard refuses (``_x`` of anything
    but ``self``/``cls``, dunders but the harmless ones, frame and code
    attributes). Writes and deletions stay refused at load."""
    guard = _sys.modules.get("kryon_isolation_guard")
    if guard is None or not isinstance(node.ctx, _ast.Load):
        return False
    on_self = isinstance(node.value, _ast.Name) and node.value.id in ("self", "cls")
    return not guard.attribute_allowed(node.attr, on_self=on_self)


def _refused(node: _ast.stmt, message: str) -> _ast.stmt:
    """An import of a part of Hy the sandbox withholds becomes a statement
    raising the refusal where the import stood: refused when it runs, like
    an import the policy withholds (a function that is never called loads)."""
    error = _ast.Call(func=_ast.Name(id=_REFUSAL, ctx=_ast.Load()), args=[_ast.Constant(value=message)], keywords=[])
    return _ast.fix_missing_locations(_ast.copy_location(_ast.Raise(exc=error, cause=None), node))


class SandboxCompiler(_HyASTCompiler):  # type: ignore[misc]  # Hy ships no types
    """Hy's compiler for sandboxed scripts: code it runs while compiling (a
    macro's definition, ``do-mac``, ``eval-when-compile``...) is rewritten and
    checked like the script's own code, then run in the script's module.

    A macro may receive the compiler (a first parameter named
    ``_hy_compiler``) and change its attributes or its class's: so neither
    the check nor the namespace code runs in is taken from them. The
    namespace must be a script module's the worker compiled (never a module
    without the script's builtins, where Python would supply its own), and
    the check is that script's, from the registry scripts cannot reach."""

    def __init__(self, module: _Any, *args: _Any, **kwargs: _Any) -> None:
        super().__init__(module, *args, **kwargs)
        # Hy's compiler binds the real ``hy`` in the module it compiles in (the
        # script's namespace, where code run while compiling looks it up)
        self.module.hy = _RUNTIME

    def eval(self, model: _Any) -> _Any:
        inner = type(self)(self.module, filename=self.filename, source=self.source,
                           extra_macros=_compiler.PRELUDE_MACROS)
        try:
            ns = getattr(self.module, "__dict__", None)
            record = _scripts.record_of(ns)
            if record is None or ns is None:
                raise _scripts.denied("code run while compiling runs in the script's own module only")
            body, expression = _hy_compile(model, self.module, get_expr=True, compiler=inner, import_stdlib=False)
            exec(_compile_checked(body, self.filename, "exec", record.check), ns, ns)
            return eval(_compile_checked(expression, self.filename, "eval", record.check), ns, ns)
        except BaseException as exc:
            # Hy does not wrap what `eval-when-compile` raises: remember the form's line for the error
            line = getattr(getattr(self, "this", None), "start_line", None) or getattr(model, "start_line", None)
            if line and getattr(exc, "kryon_compile_line", None) is None:
                try:
                    exc.kryon_compile_line = line  # type: ignore[attr-defined]
                except AttributeError:
                    pass
            raise


def _compile_checked(tree: _ast.AST, filename: str, mode: str, check: _Any) -> _types.CodeType:
    tree = _Rewrite().visit(tree)
    if check is not None:
        check(tree)
    code: _types.CodeType = _builtin_compile(tree, filename, mode, dont_inherit=True)  # type: ignore[call-overload]
    return code


_builtin_compile = _builtins.compile


def _raised_at_run_time(error: BaseException) -> BaseException | None:
    """What code run while compiling raised, when it is a refusal or a limit
    (Hy wraps a macro's exception in its own error, even a BaseException)."""
    scriptenv = _sys.modules.get("kryon_isolation_scriptenv")
    guard = _sys.modules.get("kryon_isolation_guard")
    kinds: tuple[type, ...] = (MemoryError, RecursionError, PermissionError)
    if scriptenv is not None:
        kinds += (scriptenv.AccessDenied,)
    if guard is not None:
        kinds += (guard.GuardViolation,)
    seen = 0
    cause: BaseException | None = error
    while cause is not None and seen < 50:
        if isinstance(cause, kinds) or not isinstance(cause, Exception):
            return cause
        cause = cause.__cause__ or cause.__context__
        seen += 1
    return None


def compile(  # noqa: A001 - the worker's compiler hook
    source: str, filename: str, module: _types.ModuleType | None = None, check: _Any = None,
    load_module: _scripts.SourceLoader | None = None,
) -> _ast.Module:
    """Sandboxed Kryon Lisp source to a checked ``ast.Module``, compiled in
    the script's ``module`` with the worker's ``check`` applied to code that
    runs while compiling (see the module doc). ``load_module`` asks the host
    for the source of a file beside the script (relative imports)."""
    compiler_class = type("ScriptCompiler", (SandboxCompiler,), {})
    if module is not None:
        _scripts.register(module, check, compiler_class, load_module, _compile_file)
    try:
        tree = _compiler.compile_ast(source, filename, module=module, compiler_class=compiler_class)
    except _CompileError as exc:
        inner = _raised_at_run_time(exc)
        if inner is None:
            raise SyntaxError(exc.message, (filename, exc.line, exc.column, None)) from None
        guard = _sys.modules.get("kryon_isolation_guard")
        if guard is not None and isinstance(inner, guard.GuardViolation):
            raise inner from None
        if isinstance(inner, Exception) and not isinstance(inner, (MemoryError, RecursionError)):
            detail = exc.message.splitlines()[0][:200] if exc.message else ""
            text = str(inner) if detail in ("", str(inner)) else f"{inner} (while compiling: {detail})"
            line = getattr(inner, "kryon_compile_line", None) or exc.line
            raise _violation(text, line, exc.column) from None
        raise inner.with_traceback(None) from None
    checked = _checked(_Rewrite().visit(tree))
    prelude = [
        _ast.Import(names=[_ast.alias(name="kryon")]),
        _ast.ImportFrom(module="kryon", names=[_ast.alias(name="*")], level=0),
    ]
    for node in prelude:
        node.lineno = node.end_lineno = 1
        node.col_offset = node.end_col_offset = 0
    checked.body[:0] = prelude
    return checked


def _compile_file(source: str, filename: str, module: _types.ModuleType, record: _scripts.Record) -> None:
    """A file a script imports or requires relatively: compiled here like the
    script (its macros, the guard, the prelude) and run in ``module`` with the
    script's builtins. Its errors name the file and its line (the worker's
    stack shows the script's line that imported it)."""
    _scripts.register(module, record.check, record.compiler_class, record.load_source, _compile_file,
                      package=record.package)
    guard = _sys.modules.get("kryon_isolation_guard")
    try:
        tree = compile(source, filename, module, record.check)
        if record.check is not None:
            record.check(tree)
        _ast.fix_missing_locations(tree)
        code = _builtin_compile(tree, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise ImportError(f"cannot compile {filename}, line {exc.lineno}: {exc.msg}") from None
    except Exception as exc:
        if guard is not None and isinstance(exc, guard.GuardViolation):
            raise _scripts.denied(f"{filename}, line {exc.line}: {exc}") from None
        raise
    exec(code, module.__dict__)


def _checked(module: object) -> _ast.Module:
    """What the rewrite gives back is still a module (a transformer may replace any node)."""
    if not isinstance(module, _ast.Module):
        raise TypeError("the rewritten script is not a module")
    return module


#: the worker hands this hook the script's module and its guard check
compile.kryon_module_aware = True  # type: ignore[attr-defined]
