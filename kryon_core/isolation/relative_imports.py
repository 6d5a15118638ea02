"""Files beside a sandboxed script, imported relatively, inside its worker.

``from . import helpers``, ``from .helpers import f`` and ``from .sub.deep
import g`` (a folder with an ``__init__`` file) resolve beside the script's
file, as they do for a trusted script (``kryon_core.pyhost.imports``). The
worker cannot read files: it asks the host for a file's source (the ``mod``
request; the host's module loader keeps it inside the script's root, symlinks
resolved, serves files only and never another loaded script's source),
compiles it with the script's compiler and guard, and runs it with the
script's builtins, under the limits of the call that imported it.

Used for compilers that are not module-aware (Python's); a module-aware
compiler (Hy's) resolves its relative imports itself through the same
request. Each script gets a package of its own (``kryon-script#<n>``, a name
no import statement can spell); its modules are kept here, not in
``sys.modules``, and go with the script's module. Which package an import
runs in is looked up by the importing code's globals (the namespace this
module made or registered), never read from ``__package__``, which a script
could set. Absolute imports (``import helpers``) are not resolved beside the
script: trusted scripts do not do that either.

Standard library only: the worker loads it by path.
"""

from __future__ import annotations

import itertools
import types
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["RelativeImports", "PACKAGE_PREFIX"]

#: the prefix of every script package's name (``#`` makes it unspellable in an import)
PACKAGE_PREFIX = "kryon-script#"

#: relative path without extension (``helpers``, ``sub/deep``) -> its source, or None
SourceLoader = Callable[[str], "str | None"]
#: (source, filename) -> code, checked by the script's guard
Compiler = Callable[[str, str], types.CodeType]


class _Script:
    """One script's package: its builtins and its modules by full dotted name."""

    __slots__ = ("script", "package", "builtins", "modules")

    def __init__(self, script: str, package: str, builtins: dict[str, Any]) -> None:
        self.script, self.package, self.builtins = script, package, builtins
        root = types.ModuleType(package, "the files a sandboxed script imports beside it")
        root.__dict__["__path__"] = []
        self.modules: dict[str, types.ModuleType] = {package: root}


class _Namespace:
    """A namespace whose imports resolve in ``package`` of ``owner``."""

    __slots__ = ("owner", "package", "module", "is_script")

    def __init__(self, owner: _Script, package: str, module: types.ModuleType, is_script: bool) -> None:
        self.owner, self.package, self.module = owner, package, weakref.ref(module)
        self.is_script = is_script


class RelativeImports:
    """Relative imports for the scripts of one worker (see the module doc).

    ``load_source`` asks the host for a file's source; ``compile`` compiles
    with the script's compiler and guard; ``denied`` makes the refusal the
    worker reports as an AccessDeniedError; ``violation`` is the guard's
    error class (its line is a line of the imported file, which the message
    names: the error's own line is the importing line of the script)."""

    def __init__(self, load_source: SourceLoader, compile: Compiler, denied: Callable[[str], BaseException],
                 violation: type[BaseException]) -> None:
        self._load_source = load_source
        self._compile = compile
        self._denied = denied
        self._violation = violation
        self._numbers = itertools.count(1)
        #: id(namespace) -> where that namespace's relative imports resolve
        self._namespaces: dict[int, _Namespace] = {}

    def attach(self, module: types.ModuleType, script: str) -> None:
        """Give a script's module a package of its own and its builtins an
        ``__import__`` that resolves relative imports there."""
        builtins = module.__dict__.get("__builtins__")
        if not isinstance(builtins, dict):
            raise TypeError("a script module needs builtins of its own")
        owner = _Script(script, f"{PACKAGE_PREFIX}{next(self._numbers)}", builtins)
        self._register(module, owner, owner.package, is_script=True)
        inner = builtins["__import__"]

        def import_(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
            if not level:
                return inner(name, globals, locals, fromlist, level)
            return self._import(name, globals, fromlist, level)

        import_.__name__ = "__import__"
        builtins["__import__"] = import_

    def _register(self, module: types.ModuleType, owner: _Script, package: str, is_script: bool = False) -> None:
        key = id(module.__dict__)
        self._namespaces[key] = _Namespace(owner, package, module, is_script)
        weakref.finalize(module, self._forget, key)

    def _forget(self, key: int) -> None:
        """A module is gone; when it was the script's, its files go too."""
        entry = self._namespaces.get(key)
        if entry is None or entry.module() is not None:
            return  # the key was reused by a live namespace
        del self._namespaces[key]
        owner = entry.owner
        if entry.is_script:
            self._namespaces = {k: e for k, e in self._namespaces.items() if e.owner is not owner}
            owner.modules.clear()

    def _namespace(self, globals: Any) -> _Namespace | None:
        entry = self._namespaces.get(id(globals))
        if entry is None:
            return None
        module = entry.module()
        return entry if module is not None and module.__dict__ is globals else None

    def _import(self, name: Any, globals: Any, fromlist: Any, level: Any) -> types.ModuleType:
        entry = self._namespace(globals)
        if entry is None:
            raise self._denied("relative imports resolve only beside a script")
        if not isinstance(name, str) or not isinstance(level, int) or level < 0:
            raise self._denied("a relative import needs a module name and a level")
        if name and not all(part.isidentifier() for part in name.split(".")):
            raise self._denied(f"'{name}' is not a module name")
        parts = entry.package.split(".")
        if level > len(parts):
            raise self._denied("a relative import reaches above the script's folder")
        full = ".".join(parts[: len(parts) - level + 1] + (name.split(".") if name else []))
        module = self._load(entry.owner, full)
        for item in fromlist or ():
            # `from . import helpers`: a package's modules are loaded by the names imported from it
            if isinstance(item, str) and item != "*" and hasattr(module, "__path__") and not hasattr(module, item):
                if not item.isidentifier():
                    raise self._denied(f"'{item}' is not a module name")
                self._load(entry.owner, f"{module.__name__}.{item}")
        return module

    def _load(self, owner: _Script, full: str) -> types.ModuleType:
        """The module ``full`` of ``owner``'s package, loaded on first use
        (its parents first, as Python's import does)."""
        loaded = owner.modules.get(full)
        if loaded is not None:
            return loaded
        parent_name, _, leaf = full.rpartition(".")
        parent = self._load(owner, parent_name)
        relative = full.split(".", 1)[1].replace(".", "/")
        if "__path__" not in parent.__dict__:  # `from .helpers.x import y` with helpers a file, as Python says
            raise ModuleNotFoundError(f"'{relative.rpartition('/')[0].replace('/', '.')}' beside script "
                                      f"'{owner.script}' is a module, not a folder of modules")
        source = self._load_source(relative)
        is_package = False
        if source is None:  # a folder of modules: its __init__ file
            source = self._load_source(f"{relative}/__init__")
            is_package = source is not None
        if source is None:
            dotted = relative.replace("/", ".")
            raise ModuleNotFoundError(f"script '{owner.script}' has no module '{dotted}' beside it")
        module = types.ModuleType(full)
        filename = f"{owner.script}:{relative}"
        module.__dict__.update({"__builtins__": owner.builtins, "__file__": filename})
        if is_package:
            module.__dict__["__path__"] = []
        self._register(module, owner, full if is_package else parent_name)
        owner.modules[full] = module  # cycles between files see the module being loaded, as in Python
        try:
            code = self._compiled(source, filename)
            exec(code, module.__dict__)  # noqa: S102 - checked by the guard, with the script's builtins
        except BaseException:
            owner.modules.pop(full, None)
            raise
        setattr(parent, leaf, module)
        return module

    def _compiled(self, source: str, filename: str) -> types.CodeType:
        """``source`` compiled as the script's own code is; a syntax error or
        a refusal names the file and its line."""
        try:
            return self._compile(source, filename)
        except SyntaxError as exc:
            raise ImportError(f"cannot compile {filename}, line {exc.lineno}: {exc.msg}") from None
        except Exception as exc:
            if isinstance(exc, self._violation):
                raise self._denied(f"{filename}, line {getattr(exc, 'line', None)}: {exc}") from None
            raise
