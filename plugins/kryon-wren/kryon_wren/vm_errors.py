"""The exceptions the low-level VM wrapper raises (``vm.py``, ``instance.py``).

Standard library only: the wrapper runs without kryon_core (and its
dependencies) installed; ``errors.py`` translates these into
:mod:`kryon_core.errors` for the engine.
"""

from __future__ import annotations

from typing import Any


class WrenError(Exception):
    """Base class of every error raised by the Wren VM wrapper. ``frames``:
    for a trap, the Wren frames running when it happened (WrenVM.stack)."""

    frames: list[Any] = []


class WrenCompileError(WrenError):
    def __init__(self, message: str, module: str = "", line: int = 0, column: int = 0):
        super().__init__(message)
        self.message = message
        self.module = module
        self.line = line
        self.column = column  # 1-based, in characters; 0 when unknown


class WrenRuntimeError(WrenError):
    def __init__(self, message: str, module: str = "", line: int = 0, trace: str = "", column: int = 0):
        super().__init__(message)
        self.message = message
        self.module = module
        self.line = line
        self.trace = trace
        self.column = column  # of the failing call in the first frame shown; 0 when unknown


class WrenTimeoutError(WrenError):
    """The script ran out of fuel or past its time limit."""


class WrenMemoryError(WrenError):
    """The VM hit the memory cap of its store."""


class WrenTrapError(WrenError):
    """The wasm instance trapped for another reason (a VM bug)."""


class WrenVMClosedError(WrenError):
    """The VM was closed, or its instance died in an earlier trap."""
