"""Running untrusted script code in isolated worker processes.

In-process Python cannot be sandboxed, so untrusted Python (kryon-python)
and Hy (kryon-lisp) run in a separate worker process per script, locked down
by the OS and watched by the host. This package is the reusable part:

- :class:`IsolatedRuntime`: the host side an engine composes (load, call,
  function handles, globals, memory, restart after a crash or a timeout);
- :class:`CompilerSpec`: how the worker compiles source ("python", or a
  ``"module:function"`` another language supplies, e.g. Hy's AST compiler);
- ``protocol``: length-prefixed JSON frames and the value encoding (never
  pickle: the host only ever parses JSON the worker wrote);
- ``worker``: the program the worker runs (standard library only);
- ``guard``: the AST check applied to every script before it runs.

See ``docs``/README of kryon-python for why a process and not WebAssembly.
"""

from .host import ERROR_CLASSES, WORKER_PATH, CompilerSpec, IsolatedRuntime, limits_for
from .protocol import ProtocolError, ValueRefused

__all__ = [
    "CompilerSpec",
    "ERROR_CLASSES",
    "IsolatedRuntime",
    "ProtocolError",
    "ValueRefused",
    "WORKER_PATH",
    "limits_for",
]
