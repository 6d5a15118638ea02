"""Untrusted Python: one sandboxed worker process per script.

The isolation itself lives in ``kryon_core.isolation`` (shared with
kryon-lisp); this module only chooses the compiler (``ast.parse``, then the
sandbox's AST guard) and the ``kryon`` names scripts see (snake_case). See
README.md for what the sandbox does and why a process rather than WebAssembly.
Trusted scripts get their own builtins (``script_builtins``), where the
policy's import grants are checked.
"""

from __future__ import annotations

import builtins
import types
from typing import Any, Callable

from kryon_core import AccessDeniedError, SecurityPolicy
from kryon_core.isolation import CompilerSpec, IsolatedRuntime

from .plugin import LANGUAGE

_REAL_IMPORT = builtins.__import__

PYTHON_COMPILER = CompilerSpec(name="python")


def make_runtime(output: Callable[[str], None]) -> IsolatedRuntime:
    return IsolatedRuntime(LANGUAGE, compiler=PYTHON_COMPILER, output=output)


def script_builtins(
    policy: SecurityPolicy, kryon: types.ModuleType, print_: Callable[..., None], engine_globals: dict[str, Any]
) -> dict[str, Any]:
    """A trusted script's own builtins: Python's, with an ``__import__`` that
    answers ``import kryon`` and checks the policy's imports, ``print`` going
    to the host's output, and the engine's globals."""
    b = dict(vars(builtins))

    def __import__(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
        if level == 0:
            if name == "kryon":
                return kryon
            if not policy.may_import(name):
                raise AccessDeniedError(f"importing '{name}' is not allowed by the script's policy", language=LANGUAGE)
        return _REAL_IMPORT(name, globals, locals, fromlist, level)

    b["__import__"] = __import__
    b["print"] = print_
    b.update(engine_globals)
    return b
