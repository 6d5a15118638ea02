"""One Lua script's state in the engine: the Lua state it runs in, its
environment table, what its top level returned, and the functions (and
their cached callers) it defines."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kryon_core import CompiledScript, FunctionInfo, SecurityPolicy

from .runtime import Runtime

__all__ = ["ScriptState"]


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
    callers: dict[str, Callable[..., Any]] = field(default_factory=dict)
    #: names the environment held before the top level ran (the libraries, _G, load, ...)
    given_names: frozenset[str] = frozenset()
