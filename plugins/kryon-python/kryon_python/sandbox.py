"""Untrusted Python: one sandboxed worker process per script.

The isolation itself lives in ``kryon_core.isolation`` (shared with
kryon-lisp); this module only chooses the compiler (``ast.parse``, then the
sandbox's AST guard) and the ``kryon`` names scripts see (snake_case). See
README.md for what the sandbox does and why a process rather than WebAssembly.
"""

from __future__ import annotations

from typing import Callable

from kryon_core.isolation import CompilerSpec, IsolatedRuntime

PYTHON_COMPILER = CompilerSpec(name="python")


def make_runtime(output: Callable[[str], None]) -> IsolatedRuntime:
    return IsolatedRuntime("python", compiler=PYTHON_COMPILER, output=output)
