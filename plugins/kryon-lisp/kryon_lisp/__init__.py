"""Kryon Lisp for Kryon: Hy source compiled to Python bytecode.

The engine itself lives in :mod:`kryon_lisp.engine` and is created by the
manager on first use; importing this package does not import Hy.
"""

__version__ = "0.2.0"

__all__ = ["__version__"]
