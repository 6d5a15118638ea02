"""Kryon engine for Python scripts.

Trusted scripts (``SecurityPolicy.trusted()``) run in the host interpreter,
each in its own module namespace; untrusted ones (``policy.sandboxed``) run
in a sandboxed worker process per script (``kryon_core.isolation``).

The engine class is imported on first access, so discovery (which imports
``kryon_python.plugin``) stays cheap.
"""

from typing import Any

__all__ = ["PythonEngine"]
__version__ = "0.2.0"


def __getattr__(name: str) -> Any:
    if name == "PythonEngine":
        from .engine import PythonEngine

        return PythonEngine
    raise AttributeError(name)
