"""The scripts a sandboxed Lisp worker compiled, and the files beside them.

Runs inside the isolation worker (imported by :mod:`kryon_lisp.sandboxed`
before the sandbox is armed). Each script module the worker compiles is
registered here with what its run-time helpers need: its builtins, the
worker's guard check and the compiler class that applies it. ``hy.eval`` and
``hy.I`` find the script that called them through this registry (never
through a frame's own builtins, which the worker's frames have unrestricted).

Relative imports and requires (``(import .helpers [f])``, ``(require
.macros [m])``) resolve here, beside the script: the worker cannot read
files, so it asks the host for the file's source (the host's module loader
keeps it inside the script's root, symlinks resolved, and refuses anything
else), compiles it in this worker with the script's compiler and guard, and
runs it with the script's builtins. The modules live in a package of the
script's own (``kryon-lisp-script#<n>``, a name no import can spell), loaded
without the import system (whose audit event the worker refuses for names
the policy does not grant).
"""

from __future__ import annotations

import itertools as _itertools
import sys as _sys
import types as _types
import weakref as _weakref
from collections.abc import Callable as _Callable
from typing import Any as _Any

__all__ = ["Record", "register", "record_of", "caller", "import_relative", "is_script_module_name", "denied"]

#: the prefix of every script package's name (``#`` makes it unspellable in an import)
_PACKAGE_PREFIX = "kryon-lisp-script#"
_numbers = _itertools.count(1)

SourceLoader = _Callable[[str], "str | None"]


class Record:
    """What the run-time helpers of one script module need."""

    __slots__ = ("module", "builtins", "check", "compiler_class", "package", "load_source", "compile_file",
                 "__weakref__")

    def __init__(self, module: _types.ModuleType, builtins: dict[str, _Any], check: _Any, compiler_class: type,
                 package: str, load_source: SourceLoader | None, compile_file: _Callable[..., _Any]) -> None:
        self.module = _weakref.ref(module)
        self.builtins, self.check, self.compiler_class = builtins, check, compiler_class
        self.package, self.load_source, self.compile_file = package, load_source, compile_file


#: id(module namespace) -> its record (each checked against the namespace it names)
_RECORDS: dict[int, Record] = {}
#: package name -> the record of the script whose package it is
_PACKAGES: dict[str, Record] = {}


def is_script_module_name(name: str) -> bool:
    return name.startswith(_PACKAGE_PREFIX)


def register(module: _types.ModuleType, check: _Any, compiler_class: type, load_source: SourceLoader | None,
             compile_file: _Callable[..., _Any], package: str | None = None) -> Record:
    """Register a script module (or a file it imported, with ``package``,
    its script's): a script gets a package of its own, named in its
    ``__package__``, and its ``__import__`` resolves relative imports there."""
    ns = module.__dict__
    known = record_of(ns)
    if known is not None:
        known.check, known.compiler_class = check, compiler_class
        return known
    builtins = ns.get("__builtins__")
    if not isinstance(builtins, dict):
        raise TypeError("a script module needs its own builtins")
    if package is None:
        package = f"{_PACKAGE_PREFIX}{next(_numbers)}"
        # Hy resolves `(require .m)` from the compiling module's name; Python from __package__
        ns["__name__"] = f"{package}.__script__"
        ns["__package__"] = package
        root = _types.ModuleType(package, "the files a sandboxed script imports beside it")
        root.__path__ = []
        root.__package__ = package
        _sys.modules[package] = root
        _wrap_import(builtins)
    record = Record(module, builtins, check, compiler_class, package, load_source, compile_file)
    key = id(ns)
    _RECORDS[key] = record
    _PACKAGES.setdefault(package, record)
    _weakref.finalize(module, _forget, key, package, record)
    return record


def _forget(key: int, package: str, record: Record) -> None:
    if _RECORDS.get(key) is record:
        del _RECORDS[key]
    if _PACKAGES.get(package) is record:
        del _PACKAGES[package]
        prefix = package + "."
        for name in [n for n in _sys.modules if n == package or n.startswith(prefix)]:
            _sys.modules.pop(name, None)


def record_of(ns: object) -> Record | None:
    record = _RECORDS.get(id(ns))
    if record is None:
        return None
    module = record.module()
    return record if module is not None and module.__dict__ is ns else None


def caller(what: str, depth: int = 2) -> tuple[Record, _types.FrameType]:
    """The registered script whose code is the nearest caller (frames of the
    worker and of Hy in between are skipped), and its frame."""
    frame: _types.FrameType | None = _sys._getframe(depth)
    while frame is not None:
        record = record_of(frame.f_globals)
        if record is not None:
            return record, frame
        frame = frame.f_back
    raise PermissionError(f"{what} is available to script code only")


def denied(message: str) -> BaseException:
    scriptenv = _sys.modules.get("kryon_isolation_scriptenv")
    return scriptenv.AccessDenied(message) if scriptenv is not None else PermissionError(message)


def _wrap_import(builtins: dict[str, _Any]) -> None:
    """The script's ``__import__`` with relative imports resolved in its package."""
    inner = builtins["__import__"]

    def import_(name: str, globals: _Any = None, locals: _Any = None, fromlist: _Any = (), level: int = 0) -> _Any:
        if not level:
            return inner(name, globals, locals, fromlist, level)
        package = globals.get("__package__") if isinstance(globals, dict) else None
        if not isinstance(package, str) or package.split(".", 1)[0] not in _PACKAGES:
            raise denied("relative imports resolve only beside a script")
        module = import_relative(package, name, level)
        for item in fromlist or ():
            if isinstance(item, str) and item != "*" and not hasattr(module, item) and hasattr(module, "__path__"):
                import_relative(module.__name__, item, 0)
        return module

    import_.__name__ = "__import__"
    builtins["__import__"] = import_


def import_relative(package: str, name: str, level: int) -> _types.ModuleType:
    """``from <level dots><name> import ...`` in ``package`` (a script's
    package or a folder inside it): the module, loaded on first use."""
    parts = package.split(".")
    if level > len(parts):
        raise denied("a relative import reaches above the script's folder")
    base = parts[: len(parts) - level + 1] if level else parts
    full = ".".join([*base, *(name.split(".") if name else [])])
    root = full.split(".", 1)[0]
    record = _PACKAGES.get(root)
    if record is None:
        raise denied("relative imports resolve only beside a script")
    if full == root:  # `from . import helpers`: the script's package, its modules loaded by the fromlist
        return _sys.modules[root]
    return _load(record, full)


def _load(record: Record, full: str) -> _types.ModuleType:
    loaded = _sys.modules.get(full)
    if loaded is not None:
        return loaded
    parent_name, _, leaf = full.rpartition(".")
    parent = _load(record, parent_name) if "." in parent_name else _sys.modules.get(parent_name)
    relative = full.split(".", 1)[1].replace(".", "/")
    if record.load_source is None:
        raise ModuleNotFoundError(f"no module '{relative}' beside the script: this worker cannot ask for files")
    source = record.load_source(relative)
    is_package = False
    if source is None:
        source = record.load_source(f"{relative}/__init__")
        is_package = source is not None
    if source is None:
        raise ModuleNotFoundError(f"the script has no module '{relative.replace('/', '.')}' beside it")
    module = _types.ModuleType(full)
    ns = module.__dict__
    ns["__builtins__"] = record.builtins
    ns["__package__"] = full if is_package else parent_name
    if is_package:
        ns["__path__"] = []
    script = record.module()
    filename = f"{getattr(script, '__file__', None) or '?'}:{relative}"
    ns["__file__"] = filename
    _sys.modules[full] = module
    try:
        record.compile_file(source, filename, module, record)
    except BaseException:
        _sys.modules.pop(full, None)
        raise
    if parent is not None:
        setattr(parent, leaf, module)
    return module
