"""In-process hosting shared by the languages that compile to Python bytecode.

kryon-python and kryon-lisp differ in their compilers and spellings, not in
how a trusted script lives in the host interpreter or a sandboxed one in a
worker. This package is that shared part: a plugin subclasses
:class:`PyHostedEngine` and gives it a :class:`Dialect`.

- :mod:`.engine`: the :class:`~kryon_core.ScriptEngine`, routing each script
  to the host interpreter or a worker by its policy;
- :mod:`.inprocess`, :mod:`.state`, :mod:`.imports`, :mod:`.api`: trusted
  scripts, their namespaces, builtins, relative imports and ``kryon`` API;
- :mod:`.entry`, :mod:`.calls`, :mod:`.tracing`, :mod:`.errors`,
  :mod:`.values`: running script code (gate, limits, breakpoints), its
  results and its errors;
- :mod:`.reload`: reload that keeps state; :mod:`.policy`: the limits
  in-process code cannot keep; :mod:`.memory`: the memory estimate;
- :mod:`.sandboxed`: sandboxed scripts through :mod:`kryon_core.isolation`.


The names below are imported on first use: a worker process that only needs
:mod:`.bytecode` (Kryon Lisp's compiler runs in sandboxed workers) loads
nothing else of the package.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .dialect import NOT_MINE, Dialect
    from .engine import PyHostedEngine
    from .state import SCRIPT_KEY, HostedScript

__all__ = ["Dialect", "HostedScript", "NOT_MINE", "PyHostedEngine", "SCRIPT_KEY"]

_WHERE = {
    "Dialect": "dialect",
    "NOT_MINE": "dialect",
    "PyHostedEngine": "engine",
    "HostedScript": "state",
    "SCRIPT_KEY": "state",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
