"""What the host tells a worker about itself (host side): how it compiles
(:class:`CompilerSpec`), the limits and grants a policy turns into
(:func:`limits_for`), and where the confinement libraries are
(:func:`confinement_paths`). The init message is assembled from these in
``host_workers.py``.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Any

from ..policy import SecurityPolicy

__all__ = ["CONFINEMENT_MODULES", "CompilerSpec", "confinement_paths", "limits_for"]

#: the libraries the worker confines itself with (found on the host, handed to the worker)
CONFINEMENT_MODULES = ("landlock", "pyseccomp")


@dataclass(frozen=True)
class CompilerSpec:
    """How the worker turns source into code.

    ``name`` is ``"python"`` (``ast.parse``) or ``"module:function"``: a
    function ``(source, filename) -> ast.Module | code`` imported inside the
    worker before the sandbox is armed. An AST goes through the sandbox's
    guard, a code object must be checked by the compiler itself.
    ``site`` runs ``site.main()`` first (for compilers installed in editable
    mode); ``preload`` names modules to import before arming; ``runtime_imports``
    names modules the compiled code imports at run time (Hy's ``hy``), which
    scripts are then allowed to import; ``module_aliases`` and
    ``api_in_namespace`` let code compiled outside the worker (the host's
    cache) run as the worker's own compile would. ``columns``: the compiled code's
    column positions are the source's own, as errors should name them (Hy's
    1-based .kl columns), so stack frames carry them; Python's 0-based AST
    offsets are not reported.
    """

    name: str = "python"
    site: bool = False
    preload: tuple[str, ...] = ()
    runtime_imports: tuple[str, ...] = ()
    columns: bool = False
    #: imports scripts spell one way and get another module for (Hy's compiled ``import hy``: its curated runtime)
    module_aliases: tuple[tuple[str, str], ...] = ()
    #: a script's namespace starts with the ``kryon`` API bound (what Hy's compiled code expects)
    api_in_namespace: bool = False
    #: ``"module:function"`` showing a value for the debugger in the language's notation (text); "": ``repr``
    debug_show: str = ""


def limits_for(policy: SecurityPolicy) -> dict[str, Any]:
    """The init message's limits and grants for a policy."""
    return {
        "limits": {
            "memory": policy.memory_limit,
            "time": policy.time_limit,
            "value_size": policy.max_value_size,
        },
        "grants": {
            "file_system": policy.allow_file_system,
            "network": policy.allow_network,
            "processes": policy.allow_processes,
            "imports": policy.allow_imports,
        },
        "recursion": policy.max_recursion,
        "accept_weaker": sorted(policy.accept_weaker_isolation),
    }


_CONFINEMENT_PATHS: list[str] | None = None


def confinement_paths() -> list[str]:
    """The directories that hold the confinement libraries: the worker runs
    with ``-I -S`` (no site-packages) and is told where to import them from."""
    global _CONFINEMENT_PATHS
    if _CONFINEMENT_PATHS is None:
        paths: list[str] = []
        for name in CONFINEMENT_MODULES:
            spec = importlib.util.find_spec(name)
            origin = spec.origin if spec is not None else None
            if origin:
                top = os.path.dirname(origin)
                if spec is not None and spec.submodule_search_locations:  # a package: its parent
                    top = os.path.dirname(top)
                if top not in paths:
                    paths.append(top)
        _CONFINEMENT_PATHS = paths
    return list(_CONFINEMENT_PATHS)
