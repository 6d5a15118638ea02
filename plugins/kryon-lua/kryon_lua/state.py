"""One Lua script's state in the engine: the Lua state it runs in, its
environment table, what its top level returned, and the functions (and
their cached callers) it defines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kryon_core import CallerCache, CompiledScript, FunctionInfo, ScriptError, SecurityPolicy

from .runtime import Runtime

__all__ = ["ScriptState", "assign", "module_data"]


@dataclass
class ScriptState:
    """A loaded script (the engine's ``_scripts`` holds one per script id)."""

    id: str
    runtime: Runtime
    env: Any
    returned: Any
    compiled: CompiledScript
    policy: SecurityPolicy
    functions: dict[str, FunctionInfo] = field(default_factory=dict)
    lua_functions: dict[str, Any] = field(default_factory=dict)
    callers: CallerCache = field(default_factory=CallerCache)
    #: names the environment held before the top level ran (the libraries, _G, load, ...)
    given_names: frozenset[str] = frozenset()


# -- what a hot reload carries over (the engine's _carry_over; run inside the state's gate) --
def module_data(state: ScriptState) -> dict[str, Any]:
    """The script's own globals as host values; functions (they belong to
    the old version) and what cannot cross are left behind."""
    rt = state.runtime
    data = {}
    for name, value in list(state.env.items()):
        if not isinstance(name, str) or name in state.given_names:
            continue
        if rt.module.lua_type(value) in ("function", "userdata", "thread"):
            continue
        try:
            data[name] = rt.conv.from_lua(value)
        except ScriptError:
            continue
    return data


def assign(state: ScriptState, values: dict[str, Any], only_unset: bool) -> None:
    """Set the script's globals from host values (only those it left nil, when
    ``only_unset``)."""
    env, to_lua = state.env, state.runtime.conv.to_lua
    present = {k for k, v in env.items() if v is not None} if only_unset else set()
    for name, value in values.items():
        if isinstance(name, str) and name not in present:
            env[name] = to_lua(value)
