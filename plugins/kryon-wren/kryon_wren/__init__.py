"""Kryon's Wren engine: a Wren VM written in C, run as wasm inside wasmtime.

The low-level API lives in :mod:`kryon_wren.vm`.
"""
from .vm import (
    CallHandle,
    Handle,
    WasmInstance,
    WrenCompileError,
    WrenError,
    WrenMemoryError,
    WrenRuntimeError,
    WrenTimeoutError,
    WrenTrapError,
    WrenVM,
    WrenVMClosedError,
    WASM_PATH,
)

__all__ = [
    "CallHandle",
    "Handle",
    "WasmInstance",
    "WrenCompileError",
    "WrenError",
    "WrenMemoryError",
    "WrenRuntimeError",
    "WrenTimeoutError",
    "WrenTrapError",
    "WrenVM",
    "WrenVMClosedError",
    "WASM_PATH",
]
