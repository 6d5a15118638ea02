"""What is Lisp's own in errors and stacks.

Errors of in-process scripts are translated by the shared hosting
(``kryon_core.pyhost.errors``: script stacks, limits, errors crossing
scripts); this module gives it the Lisp words: frames named as Lisp names
them (``<top level>``, ``fn`` for anonymous functions, unmangled names) and
``NameError`` naming the Lisp spelling. Lines and columns are the .kl file's
own: Hy keeps source positions on the AST (1-based columns).
"""

from __future__ import annotations

import hy

from .scan import top_level_name

__all__ = ["lisp_name", "describe"]


def lisp_name(co_name: str) -> str:
    """A Python function name as Lisp shows it: the top level, ``fn`` for
    anonymous functions, else the unmangled name."""
    if co_name == "<module>":
        return top_level_name
    if co_name == "<lambda>" or co_name.startswith("_hy_anon"):
        return "fn"
    return str(hy.unmangle(co_name))


def describe(exc: BaseException) -> str:
    """A ScriptRuntimeError's message for a Python exception raised by Lisp code."""
    if isinstance(exc, NameError) and getattr(exc, "name", None):
        return f"NameError: name '{hy.unmangle(exc.name)}' is not defined"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
