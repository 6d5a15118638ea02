"""What a script sees inside the worker: its builtins, its imports, ``kryon``.

Loaded by the worker by file path (standard library only). With the Python
layers on (the default) a script gets curated builtins (no ``eval``, ``exec``,
``compile``, ``open``, ``globals``, ``vars``...; ``getattr`` and friends apply
the guard's attribute rule), an ``__import__`` that hands out ``kryon``,
read-only proxies of a few pure modules and whatever the policy grants, and
nothing else. These are speed bumps that give clear errors; the kernel's
confinement (``confine.py``) is the boundary. With the layers switched off
for a test, a script gets Python's own builtins and imports.
"""

from __future__ import annotations

import builtins
import types
from collections.abc import Callable
from typing import Any

__all__ = [
    "AccessDenied",
    "FileDenied",
    "ImportDenied",
    "KryonError",
    "SAFE_MODULES",
    "EAGER_MODULES",
    "ScriptOutput",
    "make_builtins",
    "make_kryon_module",
    "proxy_modules",
    "proxy_module",
]

#: modules a sandboxed script may import without a grant: pure computation,
#: handed over as read-only proxies of their public, non-module attributes
SAFE_MODULES = (
    "math", "cmath", "random", "json", "re", "string", "itertools", "functools", "collections",
    "heapq", "bisect", "datetime", "time", "decimal", "fractions", "statistics", "textwrap", "copy",
)

#: modules the standard library loads lazily on first use (codecs, strptime),
#: imported before the file system closes so they keep working after it
EAGER_MODULES = (
    "encodings.ascii", "encodings.latin_1", "encodings.utf_16", "encodings.utf_32", "encodings.cp1252",
    "encodings.unicode_escape", "encodings.raw_unicode_escape", "_strptime",
)

_REMOVED_BUILTINS = (
    "eval", "exec", "compile", "open", "input", "breakpoint", "help", "exit", "quit",
    "__import__", "__loader__", "__spec__", "__build_class__", "copyright", "credits", "license",
    "globals", "locals", "vars", "memoryview",
)


class AccessDenied(Exception):
    """The sandbox refused an operation (reported to the host as AccessDeniedError)."""


class ImportDenied(AccessDenied, ImportError):
    """An import the sandbox refused: also an ImportError, so code that
    imports an optional module (``try: import x except ImportError``) goes on
    without it."""


class FileDenied(AccessDenied, PermissionError):
    """A file operation the sandbox refused: also a PermissionError (an
    OSError), as an unreadable file's is, so library code that goes on
    without a file it cannot read (``linecache``, so ``traceback``) does."""


class KryonError(Exception):
    """An error the host reported for a ``kryon`` call; ``kind`` is the error kind."""

    def __init__(self, message: str, kind: str = "runtime", stack: Any = ()) -> None:
        super().__init__(message)
        self.kind = kind
        self.host_stack = list(stack)


Checker = Callable[..., bool]


def _exact(name: Any) -> Any:
    """A ``str`` subclass as the plain string Python's attribute lookup uses:
    the rule must judge that string, not methods the subclass overrides
    (``startswith`` answering False let ``S("__globals__")`` through)."""
    return str.__str__(name) if isinstance(name, str) and type(name) is not str else name

#: the builtin the guard's rewrite of ``x.format`` calls (``guard.FORMAT_READER``)
FORMAT_READER = "__kryon_format__"


def _safe_getattr(attribute_allowed: Checker, checked: Callable[[Any], Any]) -> Callable[..., Any]:
    def getattr_(obj: Any, name: str, *default: Any) -> Any:
        if not isinstance(name, str):
            raise TypeError("attribute name must be a string")
        name = _exact(name)
        if not attribute_allowed(name):
            raise AccessDenied(f"access to the attribute '{name}' is not allowed in the sandbox")
        return checked(getattr(obj, name, *default))

    getattr_.__name__ = "getattr"
    return getattr_


def _safe_setattr(attribute_allowed: Checker) -> Callable[..., None]:
    def setattr_(obj: Any, name: str, value: Any) -> None:
        name = _exact(name)
        if not isinstance(name, str) or not attribute_allowed(name):
            raise AccessDenied(f"setting the attribute '{name}' is not allowed in the sandbox")
        setattr(obj, name, value)

    setattr_.__name__ = "setattr"
    return setattr_


def _safe_delattr(attribute_allowed: Checker) -> Callable[..., None]:
    def delattr_(obj: Any, name: str) -> None:
        name = _exact(name)
        if not isinstance(name, str) or not attribute_allowed(name):
            raise AccessDenied(f"deleting the attribute '{name}' is not allowed in the sandbox")
        delattr(obj, name)

    delattr_.__name__ = "delattr"
    return delattr_


def _safe_hasattr(attribute_allowed: Checker) -> Callable[..., bool]:
    def hasattr_(obj: Any, name: str) -> bool:
        name = _exact(name)
        if not isinstance(name, str) or not attribute_allowed(name):
            return False
        return hasattr(obj, name)

    hasattr_.__name__ = "hasattr"
    return hasattr_


def _denied(what: str, refusal: type[AccessDenied] = AccessDenied) -> Callable[..., Any]:
    def stub(*args: Any, **kwargs: Any) -> Any:
        raise refusal(f"{what} is not allowed by the sandbox policy")

    stub.__name__ = what
    return stub


class _ModuleProxy(types.ModuleType):
    """A safe module's public, non-module attributes; the rest is refused."""

    def __getattr__(self, attr: str) -> Any:
        raise AccessDenied(f"'{self.__name__}.{attr}' is not available in the sandbox")


def proxy_module(name: str, module: types.ModuleType) -> types.ModuleType:
    """A read-only proxy of ``module``'s public, non-module attributes."""
    proxy = _ModuleProxy(name)
    for attr, value in vars(module).items():
        if attr.startswith("_") or isinstance(value, types.ModuleType):
            continue
        setattr(proxy, attr, value)
    return proxy


def _guarded_formatter(attribute_allowed: Checker) -> type:
    """``string.Formatter`` whose field names (``"{0.attr[key]}"``) obey the
    guard's attribute rule: ``get_field`` walks attributes named in a string,
    a classic way around a static check (``"0.__class__.__base__..."``).

    A copy of the class, not a subclass: with ``string.Formatter`` among its
    bases a script's subclass reached the unchecked ``get_field`` through
    ``super(string.Formatter, self)``."""
    import _string  # type: ignore[import-not-found]  # CPython's formatter helpers, no stubs
    import string

    def get_field(self: Any, field_name: str, args: Any, kwargs: Any) -> Any:
        first, rest = _string.formatter_field_name_split(field_name)
        obj = self.get_value(first, args, kwargs)
        for is_attribute, name in rest:
            if is_attribute:
                if not attribute_allowed(name):
                    raise AccessDenied(f"access to the attribute '{name}' is not allowed in the sandbox")
                obj = getattr(obj, name)
            else:
                obj = obj[name]
        return obj, first

    return _copied_class(string.Formatter, get_field=get_field)


def _copied_class(cls: type, **replaced: Any) -> type:
    """``cls`` made again from its own namespace with ``replaced`` methods, on
    its bases: the original is in no script-reachable MRO, so ``super()`` finds
    none of the methods replaced."""
    namespace = {k: v for k, v in vars(cls).items() if k not in ("__dict__", "__weakref__")}
    namespace.update(replaced)
    copied: type = type(cls)(cls.__name__, cls.__bases__, namespace)
    return copied


def _checked_format(attribute_allowed: Checker) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """What a read of an attribute named ``format`` hands a script: (``wrap``,
    for a value read by name, as ``getattr`` does; ``read``, the rewritten
    ``x.format``). ``str.format`` reads the attributes its format string
    names, so the template is walked first with CPython's own parser
    (``_string.formatter_parser``, what ``str.format`` runs) and an attribute
    part the guard's rule refuses is refused, in nested format specs too
    (``"{0:{1.__class__}}"``). A bound ``str.format`` whose template passed is
    handed back as it is (a string does not change: it formats what was
    checked); the unbound one becomes a function that checks each template it
    is given. Anything else (a class's own ``format`` method) is handed back."""
    import _string
    import types

    raw = vars(str)["format"]
    bound_type = types.BuiltinMethodType
    # templates of type str already walked (exact type: a subclass's __eq__ could match a checked one)
    seen: dict[str, None] = {}

    def walk(template: str, depth: int = 0) -> None:
        if depth > 2:
            raise ValueError("Max string recursion exceeded")
        for _literal, field, spec, _conversion in _string.formatter_parser(template):
            if field:
                _, rest = _string.formatter_field_name_split(field)
                for is_attribute, name in rest:
                    if is_attribute and not attribute_allowed(name):
                        raise AccessDenied(f"access to the attribute '{name}' is not allowed in the sandbox")
            if spec and "{" in spec:
                walk(spec, depth + 1)

    def check(template: str) -> None:
        if type(template) is not str:
            walk(template)
        elif template not in seen:
            walk(template)
            if len(seen) >= 512:
                seen.clear()
            seen[template] = None

    def format(self: Any, /, *args: Any, **kwargs: Any) -> str:  # noqa: A001 - str.format's own name
        if not isinstance(self, str):
            raise TypeError(f"descriptor 'format' for 'str' objects doesn't apply to a '{type(self).__name__}' object")
        check(self)
        return raw(self, *args, **kwargs)  # type: ignore[no-any-return]

    def checked_bound(template: str, method: Any) -> Any:
        try:
            check(template)
        except ValueError as exc:  # malformed: str.format fails when called, and so does this
            error = exc

            def malformed(*args: Any, **kwargs: Any) -> str:
                raise error

            return malformed
        return method

    def wrap(value: Any) -> Any:
        if value is raw:
            return format
        if type(value) is bound_type:
            owner = value.__self__
            if isinstance(owner, str) and value == raw.__get__(owner):
                return checked_bound(owner, value)
        return value

    def read(obj: Any) -> Any:
        if type(obj) is str:  # the common case: "...".format
            if obj in seen:
                return obj.format
            return checked_bound(obj, obj.format)
        return wrap(obj.format)

    read.__name__ = "format_attribute"
    return wrap, read


def _read_format(obj: Any) -> Any:
    """The rewritten ``x.format`` with the Python layers off: Python's own."""
    return obj.format


def _guarded_user_string(wrap: Callable[[Any], Any]) -> type:
    """``collections.UserString`` whose ``format`` formats through the
    checked ``str.format`` (``format_map`` is refused by name): the original
    calls ``self.data.format(...)`` on the script's string."""
    import collections

    def format(self: Any, /, *args: Any, **kwargs: Any) -> str:  # noqa: A001
        return wrap(self.data.format)(*args, **kwargs)  # type: ignore[no-any-return]

    def format_map(self: Any, mapping: Any) -> str:
        raise AccessDenied("access to the attribute 'format_map' is not allowed in the sandbox")

    return _copied_class(collections.UserString, format=format, format_map=format_map)


def _guarded_functools(proxy: types.ModuleType, attribute_allowed: Checker) -> None:
    """``functools.update_wrapper`` and ``wraps`` read and write the attributes
    their ``assigned`` and ``updated`` tuples name: names beyond Python's
    defaults obey the guard's rule (``updated=("__globals__",)`` handed a
    function's globals to the wrapper's ``__dict__``-like object)."""
    import functools

    defaults = frozenset(functools.WRAPPER_ASSIGNMENTS) | frozenset(functools.WRAPPER_UPDATES)

    def names(given: Any) -> tuple[Any, ...]:
        checked = tuple(_exact(name) for name in given)
        for name in checked:
            if not isinstance(name, str) or not (name in defaults or attribute_allowed(name)):
                raise AccessDenied(f"access to the attribute '{name}' is not allowed in the sandbox")
        return checked

    def update_wrapper(wrapper: Any, wrapped: Any, assigned: Any = functools.WRAPPER_ASSIGNMENTS,
                       updated: Any = functools.WRAPPER_UPDATES) -> Any:
        return functools.update_wrapper(wrapper, wrapped, names(assigned), names(updated))

    def wraps(wrapped: Any, assigned: Any = functools.WRAPPER_ASSIGNMENTS,
              updated: Any = functools.WRAPPER_UPDATES) -> Any:
        return functools.partial(update_wrapper, wrapped=wrapped, assigned=names(assigned), updated=names(updated))

    proxy.update_wrapper = update_wrapper  # type: ignore[attr-defined]
    proxy.wraps = wraps  # type: ignore[attr-defined]


def _guarded_copy(proxy: types.ModuleType, setattr_: Callable[..., None]) -> None:
    """``copy.copy`` and ``deepcopy`` set the attributes a reduce value's slot
    state names with Python's ``setattr``: a script's ``__reduce__`` returning
    ``(cls, (), (None, {"__class__": other}))`` set names the guard refuses.
    The proxy gets the module's functions made again over a namespace whose
    ``setattr`` is the script's, and dispatch tables that point to them."""
    import copy

    original = vars(copy)
    namespace = dict(original)
    namespace["setattr"] = setattr_
    clones: dict[Any, Any] = {}
    for name, value in original.items():
        if isinstance(value, types.FunctionType) and value.__globals__ is original:
            clones[value] = namespace[name] = types.FunctionType(value.__code__, namespace, value.__name__,
                                                                 None, value.__closure__)

    def cloned(value: Any) -> Any:
        return clones.get(value, value) if isinstance(value, types.FunctionType) else value

    for value, clone in clones.items():  # defaults name the originals (`deepcopy=deepcopy`)
        if value.__defaults__ is not None:
            clone.__defaults__ = tuple(cloned(v) for v in value.__defaults__)
        if value.__kwdefaults__ is not None:
            clone.__kwdefaults__ = {k: cloned(v) for k, v in value.__kwdefaults__.items()}
    for table in ("_copy_dispatch", "_deepcopy_dispatch"):
        namespace[table] = {k: cloned(v) for k, v in original[table].items()}
    proxy.copy = namespace["copy"]  # type: ignore[attr-defined]
    proxy.deepcopy = namespace["deepcopy"]  # type: ignore[attr-defined]


def proxy_modules(attribute_allowed: Checker) -> dict[str, types.ModuleType]:
    """Read-only proxies of :data:`SAFE_MODULES` (imported now)."""
    proxies = {}
    for name in SAFE_MODULES:
        try:
            proxies[name] = proxy_module(name, __import__(name))
        except ImportError:
            pass
    if "string" in proxies:
        proxies["string"].Formatter = _guarded_formatter(attribute_allowed)  # type: ignore[attr-defined]
    if "collections" in proxies:
        wrap, _ = _checked_format(attribute_allowed)
        proxies["collections"].UserString = _guarded_user_string(wrap)  # type: ignore[attr-defined]
    if "functools" in proxies:
        _guarded_functools(proxies["functools"], attribute_allowed)
    if "copy" in proxies:
        _guarded_copy(proxies["copy"], _safe_setattr(attribute_allowed))
    return proxies


def _make_import(
    kryon: types.ModuleType, proxies: dict[str, types.ModuleType], allowed: set[str], allow_all: bool,
    aliases: dict[str, str],
) -> Callable[..., Any]:
    def safe_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
        if level:
            raise AccessDenied("relative imports are not allowed in the sandbox")
        root = name.split(".", 1)[0]
        if name == "kryon":
            return kryon
        if name in aliases:
            return __import__(aliases[name])
        if allow_all or name in allowed or root in allowed:
            return __import__(name, globals, locals, fromlist, level)
        if name in proxies:
            return proxies[name]
        raise ImportDenied(f"importing '{name}' is not allowed by the sandbox policy")

    return safe_import


def _open_import(kryon: types.ModuleType, aliases: dict[str, str]) -> Callable[..., Any]:
    """Python's own import, plus ``kryon`` and the compiler's aliases (the Python layers are off)."""

    def import_(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
        if name == "kryon" and not level:
            return kryon
        if name in aliases and not level:
            return __import__(aliases[name])
        return __import__(name, globals, locals, fromlist, level)

    return import_


def make_builtins(
    cfg: dict[str, Any],
    *,
    kryon: types.ModuleType,
    proxies: dict[str, types.ModuleType],
    engine_globals: dict[str, Any],
    attribute_allowed: Checker,
    curated: bool,
) -> dict[str, Any]:
    """A script's builtins: curated (the Python layers on) or Python's own."""
    b = dict(vars(builtins))
    aliases = {k: v for k, v in (cfg.get("module_aliases") or {}).items() if isinstance(k, str) and isinstance(v, str)}
    if not curated:
        b[FORMAT_READER] = _read_format  # code cached for the sandbox calls it
        b["__import__"] = _open_import(kryon, aliases)
        b["AccessDenied"] = AccessDenied
        b.update(engine_globals)
        return b
    grants = cfg.get("grants", {})
    for name in _REMOVED_BUILTINS:
        b.pop(name, None)
    b["__build_class__"] = builtins.__build_class__
    b["__import__"] = _make_import(kryon, proxies, set(cfg.get("allowed_imports", ())), bool(grants.get("imports")),
                                   aliases)
    wrap, b[FORMAT_READER] = _checked_format(attribute_allowed)
    b["getattr"] = _safe_getattr(attribute_allowed, wrap)
    b["setattr"] = _safe_setattr(attribute_allowed)
    b["delattr"] = _safe_delattr(attribute_allowed)
    b["hasattr"] = _safe_hasattr(attribute_allowed)
    b["open"] = open if grants.get("file_system") else _denied("open", FileDenied)
    for name in ("eval", "exec", "compile", "breakpoint", "input", "globals", "locals", "vars"):
        b[name] = _denied(name)
    b["AccessDenied"] = AccessDenied
    b.update(engine_globals)
    return b


class ScriptOutput:
    """``sys.stdout`` for scripts: each line goes to the host's output."""

    def __init__(self, send_line: Callable[[str], None]) -> None:
        self.buf = ""
        self.send_line = send_line

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError("write() argument must be str")
        self.buf += text
        if "\n" in self.buf:
            *lines, self.buf = self.buf.split("\n")
            for line in lines:
                self.send_line(line)
        return len(text)

    def flush(self) -> None:
        if self.buf:
            self.send_line(self.buf)
            self.buf = ""


def make_kryon_module(api_names: dict[str, str], call_api: Callable[[str, tuple[Any, ...]], Any]) -> types.ModuleType:
    """The ``kryon`` module: one function per API name, each a host request."""
    mod = types.ModuleType("kryon")

    def bind(script_name: str, method: str) -> Callable[..., Any]:
        def api(*args: Any) -> Any:
            return call_api(method, args)

        api.__name__ = script_name
        api.__qualname__ = script_name
        return api

    # one update of the module's dict, not setattr: setattr interns each name, an
    # insert into the interpreter's table of interned strings, which in a worker
    # forked by a fork server copies a shared page of that large table per name
    vars(mod).update({script_name: bind(script_name, method) for script_name, method in api_names.items()})
    mod.KryonError = KryonError  # type: ignore[attr-defined]
    mod.ScriptError = KryonError  # type: ignore[attr-defined]
    mod.AccessDenied = AccessDenied  # type: ignore[attr-defined]
    return mod

