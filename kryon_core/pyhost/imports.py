"""What a script's builtins hold, and where its imports resolve.

Each script runs with its own copy of the builtins, in which:

- ``__import__`` answers ``import kryon`` with the script's own API module,
  refuses host modules the policy does not grant (``allow_imports`` /
  ``allowed_modules``; a dialect's runtime modules, Hy for Lisp, always
  load), and resolves **relative** imports (``from . import helpers``,
  ``(import .helpers)``, ``(require .macros ...)``) in the script's own
  package: files beside the script, found through the manager's module
  loader (``EngineConfig.module_loader``), which keeps them inside the
  script's root (anything else is AccessDeniedError);
- ``open`` is refused when the policy withholds the file system;
- ``print`` writes complete lines to the host's output;
- the engine's globals sit, live (a script's own definition shadows one).

Every script version gets a package of its own (``kryon-scripts#<n>``, a name
no import statement can spell) listed in ``sys.modules`` while it lives; the
modules it imports relatively are its submodules, compiled by the dialect,
run with the script's builtins, and dropped with it.
"""

from __future__ import annotations

import builtins
import importlib.machinery
import sys
import threading
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import AccessDeniedError
from ..policy import SecurityPolicy

__all__ = ["Printer", "script_builtins", "Packages", "PACKAGES"]

# importlib.abc's Loader only for the type checker: importing importlib.abc imports
# importlib.resources, several milliseconds of every trusted script's start-up
if TYPE_CHECKING:
    from importlib.abc import Loader as _LoaderBase
else:
    _LoaderBase = object

_REAL_IMPORT = builtins.__import__

ModuleLoader = Callable[[str, str], "str | None"]
ModuleCompiler = Callable[[str, str, types.ModuleType], types.CodeType]


class Printer:
    """``print`` for scripts: complete lines go to ``output()`` (the host's)."""

    def __init__(self, output: Callable[[], Callable[[str], None]]) -> None:
        self._output = output
        self._pending = ""
        self._lock = threading.Lock()

    def __call__(self, *values: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False) -> None:
        if file is not None:
            builtins.print(*values, sep=sep, end=end, file=file, flush=flush)
            return
        text = (" " if sep is None else sep).join(map(str, values)) + ("\n" if end is None else end)
        with self._lock:
            *lines, self._pending = (self._pending + text).split("\n")
        emit = self._output()
        for line in lines:
            emit(line)


def script_builtins(
    policy: SecurityPolicy,
    language: str,
    kryon: types.ModuleType,
    runtime_modules: frozenset[str],
) -> dict[str, Any]:
    """A script's own builtins (see the module docstring; the caller adds
    ``print``, the API names and the engine's globals)."""
    table = dict(vars(builtins))

    def __import__(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
        if level == 0:
            if name == "kryon":
                return kryon
            if name.partition(".")[0] not in runtime_modules and not policy.may_import(name):
                raise AccessDeniedError(
                    f"import of '{name}' is not allowed by the script's policy (allow_imports is off)", language=language
                )
        return _REAL_IMPORT(name, globals, locals, fromlist, level)

    table["__import__"] = __import__
    if not policy.allow_file_system:

        def open(*args: Any, **kwargs: Any) -> Any:  # noqa: A001 - the builtin a script calls
            raise AccessDeniedError("file access is not allowed by the script's policy", language=language)

        table["open"] = open
    return table


class _Package:
    """One script version's package: where its relative imports come from."""

    __slots__ = ("name", "script", "builtins", "load", "compile")

    def __init__(self, name: str, script: str, builtins: dict[str, Any], load: ModuleLoader | None,
                 compile: ModuleCompiler) -> None:
        self.name, self.script, self.builtins, self.load, self.compile = name, script, builtins, load, compile


class _Loader(_LoaderBase):
    def __init__(self, package: _Package, source: str, relative: str, is_package: bool) -> None:
        self.package, self.source, self.relative, self.is_package = package, source, relative, is_package

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        module.__dict__["__builtins__"] = self.package.builtins
        if self.is_package:  # a folder with an __init__ file
            module.__path__ = []
        filename = f"{self.package.script}:{self.relative}"
        module.__file__ = filename
        exec(self.package.compile(self.source, filename, module), module.__dict__)  # noqa: S102


class Packages:  # a meta path finder (the protocol: find_spec)
    """The packages of live script versions (one finder on ``sys.meta_path``)."""

    def __init__(self) -> None:
        self._packages: dict[str, _Package] = {}
        self._lock = threading.Lock()
        self._installed = False

    def add(self, name: str, script: str, builtins: dict[str, Any], load: ModuleLoader | None,
            compile: ModuleCompiler) -> None:
        with self._lock:
            if not self._installed:
                sys.meta_path.insert(0, self)
                self._installed = True
            self._packages[name] = _Package(name, script, builtins, load, compile)
        package = types.ModuleType(name, f"the modules script '{script}' imports relatively")
        package.__path__ = []
        package.__package__ = name
        sys.modules[name] = package

    def drop(self, name: str) -> None:
        with self._lock:
            self._packages.pop(name, None)
        prefix = name + "."
        for key in [k for k in list(sys.modules) if k == name or k.startswith(prefix)]:
            sys.modules.pop(key, None)

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        head, dot, rest = fullname.partition(".")
        package = self._packages.get(head)
        if package is None or not dot:
            return None
        relative = rest.replace(".", "/")
        load = package.load
        source = load(package.script, relative) if load is not None else None
        is_package = False
        if source is None and load is not None:  # a folder of modules: its __init__ file
            source = load(package.script, f"{relative}/__init__")
            is_package = source is not None
        if source is None:
            # no ``name``: the import system would turn it into a vaguer "cannot import name"
            raise ModuleNotFoundError(f"script '{package.script}' has no module '{rest}' beside it")
        return importlib.machinery.ModuleSpec(fullname, _Loader(package, source, relative, is_package), is_package=is_package)


#: the one finder every in-process engine registers its scripts' packages with
PACKAGES = Packages()
