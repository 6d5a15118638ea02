"""Kryon: one API to embed Lua, JavaScript, Python, Wren and Kryon Lisp.

>>> from kryon_core import ScriptManager, SecurityPolicy
>>> m = ScriptManager(policy=SecurityPolicy.trusted())
>>> m.load_script_from_source("counter", "lua", "function add(a, b) return a + b end")
'counter'
>>> m.call_function("add", [2, 3])
5
"""

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
