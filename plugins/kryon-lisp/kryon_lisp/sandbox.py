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
  :mod:`kryon_lisp.sandboxed` (:data:`LISP_COMPILER`), where its macros run.
  Source with forms that run code while compiling (``defmacro``,
  ``eval-when-compile``, ``require``..., :func:`kryon_lisp.scan.sandbox_violation`)
  is never compiled in this process; other sandboxed source (which runs only
  Hy's own macros) is, for the cache;
- a **trusted** policy runs in-process, with the limits in-process code can
  keep kept as conveniences and the rest refused (``kryon_core.pyhost.policy``;
  see README.md). Hy's runtime (``hy``, ``hyrule``) is importable whatever
  the policy's imports: compiled Lisp imports it itself.
"""

from __future__ import annotations

from kryon_core.isolation import CompilerSpec

__all__ = ["LISP_COMPILER", "RUNTIME_MODULES"]

#: how a worker compiles Lisp: Hy imported (and warmed up) before the sandbox
#: is armed; compiled code imports the curated ``kryon_lisp_hy`` as ``hy``;
#: errors name Hy's columns (the .kl file's, 1-based, as in-process errors do)
LISP_COMPILER = CompilerSpec(
    name="kryon_lisp.sandboxed:compile",
    site=True,
    preload=("encodings.unicode_escape", "encodings.raw_unicode_escape", "kryon_lisp.sandboxed"),
    runtime_imports=("kryon_lisp_hy",),
    columns=True,
    # code the host compiled (a warm load from its cache) imports `hy` and binds no API itself
    module_aliases=(("hy", "kryon_lisp_hy"),),
    api_in_namespace=True,
    # the debugger shows values in Lisp notation, inside the worker as in process
    debug_show="kryon_lisp.values:show",
)

#: modules a script's compiled code imports itself (Hy's runtime)
RUNTIME_MODULES = frozenset({"hy", "hyrule"})
