"""Python's own errors, worded for Kryon.

Runtime errors of trusted scripts are translated by the shared in-process
hosting (``kryon_core.pyhost.errors``: the script stack, limits, errors
crossing scripts); what is Python's own is how a source that does not
compile is reported.
"""

from __future__ import annotations

from kryon_core import CompileError

from .plugin import LANGUAGE

__all__ = ["compile_error"]


def compile_error(exc: BaseException, script: str) -> CompileError:
    """A CompileError for a failure to compile ``script``: a SyntaxError names
    its line and column (1-based, as Python counts them)."""
    if isinstance(exc, SyntaxError):
        return CompileError(exc.msg or "invalid syntax", language=LANGUAGE, script=script, line=exc.lineno,
                            column=exc.offset)
    if isinstance(exc, (RecursionError, MemoryError)):
        return CompileError(f"the script is nested too deeply to compile ({type(exc).__name__})", language=LANGUAGE,
                            script=script)
    return CompileError(f"cannot compile: {exc}", language=LANGUAGE, script=script)
