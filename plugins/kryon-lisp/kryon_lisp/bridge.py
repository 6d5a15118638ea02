"""The ``kryon`` API in Kryon Lisp's idiom.

Every :data:`kryon_core.API` method is bound under its kebab-case name
(``get-element-by-id``, ``set-property!``, ``kryon-call``, ``log``...) as a
plain function a script calls without importing anything: the names are put
in each script's builtins under their Hy-mangled spelling (``hy.mangle``), so
``(set-property! el "text" "hi")`` resolves whatever Hy mangles ``!`` to. The
same functions are attributes of a ``kryon`` object: ``(kryon.log "hi")``.
A script's own definition of a name shadows the API name within that script.

Arguments cross from Lisp to the host through :func:`values.to_host`, so a
Lisp function handed to ``add-event-listener!`` or ``set-timeout!`` arrives
as a FunctionRef owned by the script that defined it; results come back
unchanged (host values are Lisp values).
"""

from __future__ import annotations

import types
from typing import Any, Callable

import hy

from kryon_core import ApiMethod, FunctionRef, ScriptBridge, ScriptRuntimeError, UserData

from .plugin import LANGUAGE

__all__ = ["build_kryon_api"]

_PLAIN = (type(None), bool, int, float, str, bytes, FunctionRef, UserData)


def build_kryon_api(bridge: ScriptBridge, convert: Callable[[Any], Any]) -> dict[str, Any]:
    """Mangled name -> function for every API method (and plugin-added
    function) of ``bridge``, plus ``kryon``: an object holding them all.
    ``convert`` turns one Lisp value into a host value."""
    table: dict[str, Any] = {}
    for method, function in bridge.methods():
        table[hy.mangle(method.kebab)] = _binding(method, function, convert)
    table["kryon"] = types.SimpleNamespace(**table)
    return table


def _binding(method: ApiMethod, function: Callable[..., Any], convert: Callable[[Any], Any]) -> Callable[..., Any]:
    lo, hi = method.arity
    name = method.kebab

    def api_function(*args: Any) -> Any:
        n = len(args)
        if n < lo or (hi >= 0 and n > hi):
            raise ScriptRuntimeError(f"({name} ...) takes {_arity(lo, hi)}, got {n}", language=LANGUAGE)
        for a in args:
            if not isinstance(a, _PLAIN):
                return function(*[convert(v) for v in args])
        return function(*args)

    api_function.__name__ = hy.mangle(name)
    api_function.__qualname__ = name
    api_function.__doc__ = f"({name} ...): {method.doc}"
    return api_function


def _arity(lo: int, hi: int) -> str:
    if hi < 0:
        return f"at least {lo} argument{'s' if lo != 1 else ''}"
    if lo == hi:
        return f"{lo} argument{'s' if lo != 1 else ''}"
    return f"{lo} to {hi} arguments"
