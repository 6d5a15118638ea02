"""The worker's start-up before any script runs: import what the policy
grants, then seal (worker side, standard library only, loaded by path like
every sibling of ``worker.py``).

:func:`warm_up` makes the imports no policy changes (the path, the
confinement libraries, ``site``, the preloaded modules, the lazily loaded
codecs, the compiler); a fork server (``zygote.py``) does it once and its
children inherit it. :func:`import_what_is_granted` adds what this policy
grants while files can still be read; :func:`keep_reachable` keeps the
granted directories importable after the drop to ``nobody``; :func:`seal`
applies the kernel's confinement (``confine.seal``) and then the audit hook.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import confine, guard, scriptenv, worker_channel, worker_compile
else:  # loaded by worker.py (``_load_sibling``) before this module
    confine = sys.modules["kryon_isolation_confine"]
    guard = sys.modules["kryon_isolation_guard"]
    scriptenv = sys.modules["kryon_isolation_scriptenv"]
    worker_channel = sys.modules["kryon_isolation_worker_channel"]
    worker_compile = sys.modules["kryon_isolation_worker_compile"]

S = worker_channel.S
resolve_compiler = worker_compile.resolve_compiler

#: the init keys :func:`warm_up` reads: what no policy changes
WARM_KEYS = ("sys_path", "confine_paths", "site", "preload", "compiler")
#: the warm-up this process did (a fork server's child inherits it)
_warmed: tuple[Any, ...] | None = None
#: read-only proxies of the modules every script may import (made by warm_up)
_proxies: dict[str, types.ModuleType] = {}


def warm_up(init: dict[str, Any]) -> None:
    """The imports every worker with these :data:`WARM_KEYS` makes, whatever
    its policy: the path, the confinement libraries, ``site``, the preloaded
    modules, the lazily loaded codecs, the compiler. A fork server does this
    once; its children skip it (``site.main`` must not run twice)."""
    global _warmed
    key = tuple(json_key(init.get(k)) for k in WARM_KEYS)
    if _warmed == key:
        return
    confine.load_libraries(init.get("confine_paths") or [])
    for p in init.get("sys_path") or []:
        if p not in sys.path:
            sys.path.append(p)
    if init.get("site"):
        import site

        site.main()
    for name in init.get("preload", ()):
        __import__(name)
    for name in scriptenv.EAGER_MODULES + scriptenv.SAFE_MODULES:
        try:
            __import__(name)
        except ImportError:
            pass
    resolve_compiler(init.get("compiler"))
    _proxies.clear()
    _proxies.update(scriptenv.proxy_modules(guard.attribute_allowed))
    import ast  # noqa: F401  (compile_script and function_infos use these after sealing)
    import atexit  # noqa: F401  (weakref.finalize imports it on first use)
    import inspect  # noqa: F401
    import resource  # noqa: F401

    _warmed = key


def proxies() -> dict[str, types.ModuleType]:
    """The read-only module proxies :func:`warm_up` made."""
    return _proxies


def json_key(value: Any) -> Any:
    """``value`` (plain JSON data) as something hashable and comparable."""
    if isinstance(value, list):
        return tuple(json_key(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, json_key(v)) for k, v in value.items()))
    return value


def import_what_is_granted(init: dict[str, Any]) -> list[str]:
    """Everything scripts may use, imported while files can still be read.
    Returns the directories granted modules load submodules from lazily."""
    warm_up(init)
    if init.get("grants", {}).get("network"):
        import encodings.idna  # noqa: F401  (host names are encoded with it, lazily)
    granted_dirs: list[str] = []
    for name in init.get("allowed_imports", ()):
        try:
            module = __import__(name)
        except Exception:
            continue
        granted_dirs += [p for p in getattr(sys.modules.get(name, module), "__path__", ()) if isinstance(p, str)]
    S.compile = resolve_compiler(init.get("compiler"))
    if init.get("debug_show"):  # how the debugger shows values (Lisp notation), resolved while imports work
        worker_channel.D.show = resolve_compiler(init["debug_show"])  # type: ignore[assignment]  # text from a value
    S.modules = dict(_proxies)
    if init.get("asyncio"):
        import asyncio

        S.loop = asyncio.new_event_loop()
        # scripts with async code may import it (what it would do with files,
        # sockets or processes is refused when they try)
        S.modules.setdefault("asyncio", scriptenv.proxy_module("asyncio", asyncio))

    if init.get("grants", {}).get("imports"):
        # any module on the path may be imported lazily: its directories stay readable
        return [p for p in sys.path if isinstance(p, str) and os.path.isdir(p)]
    return granted_dirs


def keep_reachable(paths: list[str]) -> None:
    """Granted directories stay importable after the drop to nobody.

    A worker started as root becomes nobody, who may not be allowed to walk
    into a directory above a granted one (an interpreter under a home only
    its owner may enter). Each granted directory is opened now, and the
    import system (``sys.path`` and packages' ``__path__``) reaches it as
    ``/proc/self/fd/N``, which does not walk its parents. Landlock still
    decides what may be read there; the descriptors do not reach children."""
    if os.geteuid() != 0:
        return
    mapping: list[tuple[str, str]] = []
    for path in paths:
        try:
            fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            continue
        mapping.append((path.rstrip(os.sep) or os.sep, f"/proc/self/fd/{fd}"))
    if not mapping:
        return  # nothing granted to reach: the path stays as it is
    mapping.sort(key=lambda pair: len(pair[0]), reverse=True)  # the deepest directory wins

    def through_fd(entry: Any) -> Any:
        if not isinstance(entry, str):
            return entry
        for directory, fd_path in mapping:
            if entry == directory or entry.startswith(directory + os.sep):
                return fd_path + entry[len(directory):]
        return entry

    sys.path[:] = [through_fd(entry) for entry in sys.path]
    for module in list(sys.modules.values()):
        search = getattr(module, "__path__", None)
        if type(search) is list:
            search[:] = [through_fd(entry) for entry in search]
    sys.path_importer_cache.clear()


def _allowed_import(init: dict[str, Any]) -> Callable[[str], bool]:
    allowed = set(init.get("allowed_imports", ())) | set(scriptenv.SAFE_MODULES) | {"kryon"}
    allow_all = bool(init.get("grants", {}).get("imports"))

    def allowed_import(name: str) -> bool:
        return allow_all or name in allowed or name.split(".", 1)[0] in allowed

    return allowed_import


def seal(init: dict[str, Any], read_paths: list[str], forked: bool) -> dict[str, Any]:
    """The kernel's confinement, then the audit hook (when the Python layers
    are on). Returns the hardening report (``forked``: this worker came from
    a fork server)."""
    plan = confine.Plan.from_init(init, read_paths)
    # a module imported after sealing is never written back as bytecode: the
    # worker may not write files, and the import system's marshal.dumps would be refused
    sys.dont_write_bytecode = True
    report = confine.seal(plan)
    if S.python_layers:
        sys.addaudithook(
            confine.audit_hook(plan, _allowed_import(init), lambda: S.internal > 0, scriptenv.AccessDenied,
                               scriptenv.ImportDenied, scriptenv.FileDenied)
        )
    report["audit_hook"] = S.python_layers
    report["guard"] = S.python_layers
    report["builtins"] = "curated" if S.python_layers else "python"
    report["start"] = "fork" if forked else "fresh"
    return report
