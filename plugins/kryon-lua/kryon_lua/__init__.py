"""Kryon's Lua engine: Lua 5.4 through lupa, LuaJIT when the policy asks."""

from .engine import LuaEngine

__all__ = ["LuaEngine"]
