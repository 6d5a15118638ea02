"""The ``kryon`` module trusted scripts import.

One module object per engine, never put in the host's ``sys.modules``:
``import kryon`` in a script resolves through the script's own
``__import__`` (see ``sandbox.py``). Every :data:`kryon_core.API` method
appears under its snake_case name (``kryon.get_element_by_id``), plus the
functions plugins add with ``ScriptBridge.add_function``. Script callables
handed to the API (listeners, timers, watchers) become FunctionRefs owned by
their script.
"""

from __future__ import annotations

import types
from typing import Any, Callable

import kryon_core
from kryon_core import ScriptBridge

__all__ = ["build_kryon_api"]


def build_kryon_api(
    bridge: ScriptBridge | None, arg: Callable[[Any], Any], output: Callable[[str], None]
) -> types.ModuleType:
    """The ``kryon`` module: ``arg`` converts each argument a script passes,
    ``output`` takes ``kryon.log`` lines when there is no bridge."""
    mod = types.ModuleType("kryon", "The Kryon API (snake_case), backed by the host's ScriptBridge.")
    if bridge is not None:
        for method, fn in bridge.methods():
            setattr(mod, method.name, _bind(method.name, fn, arg, method.doc))
    else:
        def log(message: Any, level: str = "info") -> None:
            output(str(message))

        mod.log = log
    # errors a script may catch or raise
    for name in ("ScriptError", "ScriptRuntimeError", "DOMError", "AccessDeniedError", "ConversionError"):
        setattr(mod, name, getattr(kryon_core, name))
    return mod


def _bind(name: str, fn: Callable[..., Any], arg: Callable[[Any], Any], doc: str) -> Callable[..., Any]:
    def api(*args: Any) -> Any:
        return fn(*[arg(a) for a in args])

    api.__name__ = api.__qualname__ = name
    api.__doc__ = doc
    return api
