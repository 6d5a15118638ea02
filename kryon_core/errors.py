"""The error hierarchy every engine reports through.

No engine lets its library's own exception type reach the caller: lupa's
``LuaError``, quickjs's ``JSException``, wasmtime's ``Trap`` and the rest are
translated into one of these, each naming the language, the script and, where
the engine knows it, the line, column and the script-level stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "StackFrame",
    "ScriptError",
    "CompileError",
    "ScriptRuntimeError",
    "LimitExceededError",
    "ScriptTimeoutError",
    "MemoryLimitError",
    "RecursionLimitError",
    "SizeLimitError",
    "AccessDeniedError",
    "FunctionNotFoundError",
    "AmbiguousFunctionError",
    "EngineNotFoundError",
    "ScriptNotFoundError",
    "ConversionError",
    "DOMError",
    "UnsupportedPolicyError",
]


@dataclass(frozen=True)
class StackFrame:
    """One frame of a script-level stack trace, innermost first."""

    function: str
    script: str | None = None
    line: int | None = None
    column: int | None = None
    language: str | None = None
    locals: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __str__(self) -> str:
        where = self.script or "?"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        lang = f" [{self.language}]" if self.language else ""
        return f"{where} in {self.function}{lang}"


class ScriptError(Exception):
    """Base of every error a script or engine reports.

    ``message`` is the engine's own text without location prefixes; ``str()``
    adds language, script and line so a log line alone says where it happened.
    """

    def __init__(
        self,
        message: str,
        *,
        language: str | None = None,
        script: str | None = None,
        line: int | None = None,
        column: int | None = None,
        stack: Sequence[StackFrame] = (),
        value: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.language = language
        self.script = script
        self.line = line
        self.column = column
        self.stack: list[StackFrame] = list(stack)
        #: the value thrown by the script, where it threw something other than an error object
        self.value = value

    def location(self) -> str:
        parts = []
        if self.language:
            parts.append(self.language)
        if self.script:
            where = self.script
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            parts.append(where)
        return " ".join(parts)

    def __str__(self) -> str:
        loc = self.location()
        return f"{loc}: {self.message}" if loc else self.message

    def format_stack(self) -> str:
        """The script-level stack as text, innermost frame first."""
        return "\n".join(f"  at {frame}" for frame in self.stack)


class CompileError(ScriptError):
    """The source could not be compiled: syntax, reader or encoding errors."""


class ScriptRuntimeError(ScriptError):
    """The script raised or hit an error while running."""


class LimitExceededError(ScriptRuntimeError):
    """A limit of the script's :class:`~kryon_core.SecurityPolicy` was hit."""


class ScriptTimeoutError(LimitExceededError):
    """The call ran longer than the policy's ``time_limit``."""


class MemoryLimitError(LimitExceededError):
    """The engine's memory use went over the policy's ``memory_limit``."""


class RecursionLimitError(LimitExceededError):
    """Calls nested deeper than the policy's ``max_recursion``."""


class SizeLimitError(LimitExceededError):
    """A value or source was larger than the policy allows."""


class AccessDeniedError(ScriptError):
    """The policy does not grant what the script tried (files, network, imports, shared data)."""


class FunctionNotFoundError(ScriptError, LookupError):
    """No loaded script defines the function asked for."""


class AmbiguousFunctionError(FunctionNotFoundError):
    """A bare function name matches functions in several scripts; ``candidates`` lists them."""

    def __init__(self, message: str, *, candidates: Sequence[str] = (), **kw: Any) -> None:
        super().__init__(message, **kw)
        self.candidates = list(candidates)


class EngineNotFoundError(ScriptError, LookupError):
    """No installed engine handles the language asked for."""


class ScriptNotFoundError(ScriptError, LookupError):
    """No script is loaded under that id."""


class ConversionError(ScriptError, TypeError):
    """A value cannot cross between the host and a language without loss."""


class DOMError(ScriptError):
    """A DOM bridge operation failed: unknown element, listener, timer or bad argument."""


class UnsupportedPolicyError(ScriptError, ValueError):
    """A policy asks for a limit the engine cannot keep. Raised when the policy
    is applied to that engine (never silently ignored); ``limit`` names the
    policy field, and the message says what to use instead."""

    def __init__(self, message: str, *, limit: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.limit = limit

