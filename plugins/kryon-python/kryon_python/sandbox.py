"""What a policy means for Python scripts.

- **sandboxed** (``policy.sandboxed``, the default of a bare ``ScriptManager()``):
  the script runs in a worker process of its own (``kryon_core.isolation``),
  compiled there with ``ast.parse`` and checked by the worker's AST guard
  (:data:`PYTHON_COMPILER`); its ``kryon`` module has the snake_case names.
- **trusted**: the script runs in the host interpreter; the limits in-process
  code can keep are kept as conveniences and the rest are refused
  (``kryon_core.pyhost.policy``; see README.md).
"""

from __future__ import annotations

from kryon_core.isolation import CompilerSpec

__all__ = ["PYTHON_COMPILER"]

#: how a worker compiles Python
PYTHON_COMPILER = CompilerSpec(name="python")
