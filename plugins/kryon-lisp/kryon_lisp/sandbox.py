"""What a policy means for Kryon Lisp.

Hy compiles to Python bytecode and runs in the host interpreter, so nothing
done inside this process can contain untrusted Lisp: any script reaches
``object.__subclasses__()``, frames and ``os`` in a few steps, and compiling
runs its macros. Therefore:

- a **sandboxed** policy (``policy.sandboxed``, the default of a bare
  ``ScriptManager()``) runs each script in a worker process of its own
  through ``kryon_core.isolation`` (as kryon-python's untrusted mode does):
  OS limits for memory and CPU, no files, network or processes, an audit
  hook and the AST guard; the script is compiled inside the worker by
  :mod:`kryon_lisp.sandboxed`. Forms that run code while compiling
  (``defmacro``, ``eval-when-compile``, ``require``...) are refused, so the
  engine may also compile sandboxed source in-process for the cache.
  A kryon-core without ``kryon_core.isolation`` gets an
  :class:`~kryon_core.AccessDeniedError` instead, never an in-process run;
- a **trusted** policy runs in-process. Its optional limits and grants are
  honoured as conveniences against mistakes, not as a security boundary:
  ``time_limit`` by a watchdog thread that raises in the running thread
  (it interrupts Lisp code, not a blocking host call), Python's own
  recursion limit as a :class:`~kryon_core.RecursionLimitError`, and with
  ``allow_imports`` / ``allow_file_system`` turned off, ``import`` and
  ``open`` in scripts checked against the policy.
"""

from __future__ import annotations

import builtins
from typing import Any, Callable

import hy

from kryon_core import AccessDeniedError, ScriptBridge, SecurityPolicy
from kryon_core.watchdog import TimeLimitExceeded, Watchdog

from .plugin import LANGUAGE

try:
    from kryon_core.isolation import CompilerSpec, IsolatedRuntime
except ImportError:  # an older kryon-core: sandboxed Lisp is refused
    CompilerSpec = IsolatedRuntime = None  # type: ignore[assignment,misc]

__all__ = [
    "ISOLATION_MISSING",
    "LISP_COMPILER",
    "make_runtime",
    "api_names",
    "require_isolation",
    "script_builtins",
    "TimeLimitExceeded",
    "Watchdog",
]

ISOLATION_MISSING = (
    "sandboxed Lisp needs kryon_core.isolation (Hy runs as Python bytecode, and in-process "
    "Python cannot be sandboxed); it is not available in this kryon-core, so the script was not run. "
    "Load trusted scripts with policy=SecurityPolicy.trusted()"
)

#: how a worker compiles Lisp: Hy imported (and warmed up) before the sandbox
#: is armed; compiled code imports the curated ``kryon_lisp_hy`` as ``hy``;
#: errors name Hy's columns (the .kl file's, 1-based, as in-process errors do)
LISP_COMPILER = (
    CompilerSpec(
        name="kryon_lisp.sandboxed:compile",
        site=True,
        preload=("encodings.unicode_escape", "encodings.raw_unicode_escape", "kryon_lisp.sandboxed"),
        runtime_imports=("kryon_lisp_hy",),
        columns=True,
    )
    if CompilerSpec is not None
    else None
)

#: modules a script's compiled code imports itself (Hy's runtime)
_RUNTIME_MODULES = frozenset({"hy", "hyrule"})


def require_isolation(script: str | None) -> None:
    """Refuse a sandboxed script when this kryon-core cannot isolate it."""
    if IsolatedRuntime is None:
        raise AccessDeniedError(ISOLATION_MISSING, language=LANGUAGE, script=script)


def api_names(bridge: ScriptBridge) -> dict[str, str]:
    """Name in a worker script (the mangled kebab-case name) -> bridge method."""
    return {hy.mangle(method.kebab): method.name for method, _ in bridge.methods()}


def make_runtime(output: Callable[[str], None]) -> Any:
    require_isolation(None)
    return IsolatedRuntime(LANGUAGE, compiler=LISP_COMPILER, output=output)


def script_builtins(policy: SecurityPolicy) -> dict[str, Any]:
    """The builtins a trusted script runs with under ``policy``: Python's,
    with ``__import__`` and ``open`` checked where the policy withholds them."""
    table = dict(builtins.__dict__)
    if not policy.allow_imports:
        real_import = builtins.__import__

        def guarded_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
            root = name.split(".", 1)[0]
            if level == 0 and (root in _RUNTIME_MODULES or policy.may_import(name)):
                return real_import(name, globals, locals, fromlist, level)
            script = globals.get("__kryon_script__") if isinstance(globals, dict) else None
            raise AccessDeniedError(
                f"import of '{name}' is not allowed by the script's policy (allow_imports is off)",
                language=LANGUAGE,
                script=script,
            )

        table["__import__"] = guarded_import
    if not policy.allow_file_system:

        def guarded_open(*args: Any, **kwargs: Any) -> Any:
            raise AccessDeniedError("file access is not allowed by the script's policy", language=LANGUAGE)

        table["open"] = guarded_open
    return table


