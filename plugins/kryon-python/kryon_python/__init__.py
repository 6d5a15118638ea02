"""Kryon engine for Python scripts.

Trusted scripts (``SecurityPolicy.trusted()``) run in the host interpreter,
each in its own module namespace; untrusted ones (``policy.sandboxed``) run
in a sandboxed worker process per script (``kryon_core.isolation``).
"""

from .engine import PythonEngine

__all__ = ["PythonEngine"]
__version__ = "0.1.0"
