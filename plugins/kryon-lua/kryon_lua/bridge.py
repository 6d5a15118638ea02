"""The ``kryon`` table Lua scripts see, bound to the engine's ScriptBridge.

Every API method appears under its camelCase name; arguments convert from
Lua and results back. Errors raised by the host (DOMError, an error from a
script in another language) become Lua errors a script can ``pcall``, and
carry the Lua position where the call was made. ``kryon.sleep`` and
``kryon.callAsync`` are Lua functions that yield to the host's event loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kryon_core import ScriptBridge

if TYPE_CHECKING:
    from .runtime import Runtime


def build_kryon_table(rt: "Runtime", bridge: ScriptBridge) -> Any:
    entries: dict[str, Any] = {}
    for method, function in bridge.methods():
        entries[method.camel] = rt.lua_callable(function, label=f"kryon.{method.camel}")
    for name, function in rt.helpers.async_api.items():
        entries[str(name)] = function
    return rt.lua.table_from(entries)
