"""Policy limits, enforced by the interpreter itself (pure Python, no hooks).

- time: a deadline set when the outermost call starts, checked every few
  hundred evaluation steps -> ScriptTimeoutError;
- recursion: the depth of Tally calls, against ``max_recursion`` (Python's
  own stack limit, if reached first, is reported the same way)
  -> RecursionLimitError;
- memory: an allocation budget for one outermost call: every list, dict and
  string a builtin makes is charged its approximate size, and going over
  ``memory_limit`` -> MemoryLimitError (a budget, not a live-heap measure:
  garbage is charged too);
- files, network, processes: Tally has no such builtins at all; the names
  scripts might reach for (``read-file``...) exist only to raise
  AccessDeniedError with a clear message.
"""

from __future__ import annotations

import time
from typing import Any

from kryon_core import (
    AccessDeniedError,
    MemoryLimitError,
    RecursionLimitError,
    ScriptError,
    ScriptRuntimeError,
    ScriptTimeoutError,
    SecurityPolicy,
)

__all__ = ["Limits", "TallyError", "FORBIDDEN"]

#: builtins that exist only to be refused
FORBIDDEN = ("read-file", "write-file", "open", "exec", "http-get")
CHECK_EVERY = 256  # evaluation steps between clock reads


class TallyError(Exception):
    """An error inside the interpreter; the engine turns it into the kryon
    error ``kind`` at the host boundary. ``line`` and ``stack`` are filled in
    by the form where it surfaced."""

    def __init__(self, message: str, kind: type[ScriptError] = ScriptRuntimeError, *, value: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.value = value
        self.line: int | None = None
        self.col: int | None = None
        self.script: str | None = None
        self.stack: list[Any] = []


class Limits:
    """The limits of the call running now (set by the outermost entry)."""

    def __init__(self) -> None:
        self.policy = SecurityPolicy.trusted()
        self.deadline: float | None = None
        self.max_depth: int | None = None
        self.memory_limit: int | None = None
        self.allocated = 0
        self.steps = 0

    def start(self, policy: SecurityPolicy) -> None:
        self.policy = policy
        self.deadline = time.monotonic() + policy.time_limit if policy.time_limit else None
        self.max_depth = policy.max_recursion
        self.memory_limit = policy.memory_limit
        self.allocated = 0
        self.steps = 0

    def step(self) -> None:
        self.steps += 1
        if self.deadline is not None and not self.steps % CHECK_EVERY and time.monotonic() > self.deadline:
            raise TallyError(f"call ran longer than the time limit ({self.policy.time_limit:g} s)", ScriptTimeoutError)

    def depth(self, depth: int) -> None:
        if self.max_depth is not None and depth > self.max_depth:
            raise TallyError(f"calls nested deeper than the recursion limit ({self.max_depth})", RecursionLimitError)

    def alloc(self, nbytes: int) -> None:
        self.allocated += nbytes
        if self.memory_limit is not None and self.allocated > self.memory_limit:
            raise TallyError(
                f"allocated more than the memory limit ({self.memory_limit} bytes) in one call", MemoryLimitError
            )

    def forbidden(self, name: str) -> None:
        why = "the sandboxed policy grants no file system" if self.policy.sandboxed else "Tally has no file access"
        raise TallyError(
            f"'{name}' is not available: {why}; a host may expose one through kryon_setup_bridge",
            AccessDeniedError,
        )
