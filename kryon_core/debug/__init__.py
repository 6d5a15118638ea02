"""One debugger for every language: breakpoints, stepping, inspection.

``ScriptManager.debugger()`` gives the :class:`Debugger`; ``kryon debug``
serves it over the Debug Adapter Protocol (``kryon_core.debug.dap``). Engines
take part through a :class:`DebugTarget` (``ScriptEngine.debug_target()``).
"""

from .session import Breakpoint, BreakpointSpec, DebugError, Debugger, Frame, Scope, Stop, Variable
from .target import DebugEvents, DebugTarget, FrameInfo, PolledDebugTarget, ScopeInfo, TraceMode, ValueInfo

__all__ = [
    "Breakpoint",
    "BreakpointSpec",
    "DebugError",
    "DebugEvents",
    "DebugTarget",
    "PolledDebugTarget",
    "Debugger",
    "Frame",
    "FrameInfo",
    "Scope",
    "ScopeInfo",
    "Stop",
    "TraceMode",
    "ValueInfo",
    "Variable",
]
