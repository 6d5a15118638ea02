"""The ``kryon`` table Lua scripts see: each script's own, bound to its view
of the engine's ScriptBridge (``ScriptBridge.for_script``), so every call
carries the script's identity and policy (trust checks on ``kryon.call``,
ownership of the listeners and timers it registers, shared-data quotas).

Binding is lazy: a script's table starts with only the async helpers, and a
name is bound the first time the script reads it, so a script that never
touches ``kryon`` costs nothing. Every API method appears under its
camelCase name; arguments convert from Lua and results back. Errors raised
by the host (DOMError, an error from a script in another language) become Lua
errors a script can ``pcall``, and carry the Lua position where the call was
made. ``kryon.sleep`` and ``kryon.callAsync`` are Lua functions that yield to
the host's event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kryon_core import ScriptBridge, SecurityPolicy

if TYPE_CHECKING:
    from .runtime import Runtime


def script_binder(rt: "Runtime", bridge: ScriptBridge | None, script: str, policy: SecurityPolicy) -> Any:
    """The function ``K.newenv`` calls to bind one name of ``script``'s
    ``kryon`` table (None when there is no bridge: no ``kryon`` at all)."""
    if bridge is None:
        return None
    view = bridge.for_script(script, policy)
    methods: dict[str, Callable[..., Any]] = {}

    def bind(name: Any) -> Any:
        if not methods:
            methods.update((m.camel, f) for m, f in view.methods())
            if methods.get("call") == view.call and view.manager is not None and view.policy is not None:
                methods["call"] = _direct_call(view)
        function = methods.get(name) if isinstance(name, str) else None
        if function is None:
            return None
        return rt.lua_callable(function, label=f"kryon.{name}")

    return rt.lua_callable(bind, label="kryon")


def _direct_call(view: ScriptBridge) -> Callable[..., Any]:
    """``kryon.call`` of one script: the view's router
    (``CrossLanguageRegistry.router``) as it is, no Python frame between the
    script and the route (a non-str name is refused there, as the view's own
    method refuses it; an error without a language gets Lua's)."""
    router = view.router()
    assert router is not None  # the caller checked view.manager
    return router
