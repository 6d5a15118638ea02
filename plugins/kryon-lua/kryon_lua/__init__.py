"""Kryon's Lua engine: Lua 5.4 through lupa, LuaJIT when the policy asks.

The engine class is imported on first access, so that discovery (which
imports ``kryon_lua.plugin``) never loads lupa."""

from typing import Any

__all__ = ["LuaEngine"]


def __getattr__(name: str) -> Any:
    if name == "LuaEngine":
        from .engine import LuaEngine

        return LuaEngine
    raise AttributeError(name)
