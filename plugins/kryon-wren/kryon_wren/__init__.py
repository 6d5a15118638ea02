"""Kryon's Wren engine: a Wren VM written in C, run as wasm inside wasmtime.

The low-level API lives in :mod:`kryon_wren.vm`; the Kryon engine in
:mod:`kryon_wren.engine`. Importing this package stays cheap (engine
discovery imports ``kryon_wren.plugin``): wasmtime and the VM wrapper are
imported on first use of one of the names below.
"""
from __future__ import annotations

from typing import Any

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


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import vm

        return getattr(vm, name)
    raise AttributeError(f"module 'kryon_wren' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
