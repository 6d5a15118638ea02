"""Kryon: one API to embed Lua, JavaScript, Python, Wren and Kryon Lisp.

>>> from kryon_core import ScriptManager, SecurityPolicy
>>> m = ScriptManager(policy=SecurityPolicy.trusted())
>>> m.load_script_from_source("counter", "lua", "function add(a, b) return a + b end")
'counter'
>>> m.call_function("add", [2, 3])
5

Every public name is imported on first use (PEP 562 module ``__getattr__``):
``import kryon_core`` alone loads none of the submodules, so a program that
needs only part of the library (``kryon_core.errors``, a plugin's
``SecurityPolicy``) does not pay for the manager, the DOM, pluggy and the
compilation cache.
"""

from __future__ import annotations

#: ``typing.TYPE_CHECKING`` without importing typing (type checkers read this name the same way)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .bridge import API, ApiMethod, ScriptBridge
    from .cache import CacheStatistics, CompilationCache
    from .dom import AnimationConfig, Document, DOMBridge, ElementHandle
    from .engine import (
        BreakpointHit,
        CachedCallsEngine,
        CallerCache,
        CompiledScript,
        EngineCapabilities,
        EngineConfig,
        FunctionInfo,
        GarbageCollectionStats,
        MemoryUsage,
        ScriptEngine,
    )
    from .errors import (
        AccessDeniedError,
        AmbiguousFunctionError,
        CompileError,
        ConversionError,
        DOMError,
        EngineNotFoundError,
        FunctionNotFoundError,
        LimitExceededError,
        MemoryLimitError,
        RecursionLimitError,
        ScriptError,
        ScriptNotFoundError,
        ScriptRuntimeError,
        ScriptTimeoutError,
        SizeLimitError,
        StackFrame,
        UnsupportedPolicyError,
    )
    from .hookspecs import hookimpl
    from .interop import AccessPolicy, CrossLanguageRegistry, SharedDataManager
    from .manager import LoadedScript, ScriptManager
    from .plugins import EngineSpec
    from .policy import SecurityPolicy
    from .profiling import HotFunctionInfo, Profiler
    from .threads import EngineGate
    from .values import FunctionRef, ScriptLanguage, UserData

__version__ = "0.2.0"

__all__ = [
    "API",
    "AccessDeniedError",
    "AccessPolicy",
    "AmbiguousFunctionError",
    "AnimationConfig",
    "ApiMethod",
    "BreakpointHit",
    "CacheStatistics",
    "CachedCallsEngine",
    "CallerCache",
    "CompilationCache",
    "CompileError",
    "CompiledScript",
    "ConversionError",
    "CrossLanguageRegistry",
    "DOMBridge",
    "DOMError",
    "Document",
    "ElementHandle",
    "EngineCapabilities",
    "EngineConfig",
    "EngineGate",
    "EngineNotFoundError",
    "EngineSpec",
    "FunctionInfo",
    "FunctionNotFoundError",
    "FunctionRef",
    "GarbageCollectionStats",
    "HotFunctionInfo",
    "LimitExceededError",
    "LoadedScript",
    "MemoryLimitError",
    "MemoryUsage",
    "Profiler",
    "RecursionLimitError",
    "ScriptBridge",
    "ScriptEngine",
    "ScriptError",
    "ScriptLanguage",
    "ScriptManager",
    "ScriptNotFoundError",
    "ScriptRuntimeError",
    "ScriptTimeoutError",
    "SecurityPolicy",
    "SharedDataManager",
    "SizeLimitError",
    "StackFrame",
    "UnsupportedPolicyError",
    "UserData",
    "hookimpl",
]

#: public name -> the submodule that defines it
_WHERE = {
    "API": "bridge",
    "ApiMethod": "bridge",
    "ScriptBridge": "bridge",
    "CacheStatistics": "cache",
    "CompilationCache": "cache",
    "AnimationConfig": "dom",
    "Document": "dom",
    "DOMBridge": "dom",
    "ElementHandle": "dom",
    "BreakpointHit": "engine",
    "CachedCallsEngine": "engine",
    "CallerCache": "engine",
    "CompiledScript": "engine",
    "EngineCapabilities": "engine",
    "EngineConfig": "engine",
    "FunctionInfo": "engine",
    "GarbageCollectionStats": "engine",
    "MemoryUsage": "engine",
    "ScriptEngine": "engine",
    "AccessDeniedError": "errors",
    "AmbiguousFunctionError": "errors",
    "CompileError": "errors",
    "ConversionError": "errors",
    "DOMError": "errors",
    "EngineNotFoundError": "errors",
    "FunctionNotFoundError": "errors",
    "LimitExceededError": "errors",
    "MemoryLimitError": "errors",
    "RecursionLimitError": "errors",
    "ScriptError": "errors",
    "ScriptNotFoundError": "errors",
    "ScriptRuntimeError": "errors",
    "ScriptTimeoutError": "errors",
    "SizeLimitError": "errors",
    "StackFrame": "errors",
    "UnsupportedPolicyError": "errors",
    "hookimpl": "hookspecs",
    "AccessPolicy": "interop",
    "CrossLanguageRegistry": "interop",
    "SharedDataManager": "interop",
    "LoadedScript": "manager",
    "ScriptManager": "manager",
    "EngineSpec": "plugins",
    "SecurityPolicy": "policy",
    "HotFunctionInfo": "profiling",
    "Profiler": "profiling",
    "EngineGate": "threads",
    "FunctionRef": "values",
    "ScriptLanguage": "values",
    "UserData": "values",
}
#: the submodules ``import kryon_core`` made attributes before the names were lazy
_SUBMODULES = frozenset(_WHERE.values())


def __getattr__(name: str) -> Any:
    import importlib

    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | _SUBMODULES)
