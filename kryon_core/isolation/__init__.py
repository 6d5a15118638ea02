"""Running untrusted script code in isolated worker processes.

In-process Python cannot be sandboxed, so untrusted Python (kryon-python)
and Hy (kryon-lisp) run in a separate worker process per script, confined by
the kernel and watched by the host (``docs/security.md``). The package
follows the trust boundary:

- host side: :class:`IsolatedRuntime` (``host.py``), what an engine composes
  (load, call, function handles, globals, memory, restart after a crash or a
  timeout), with its worker-facing half in ``host_workers.py`` (what workers
  ask of the host; starting, standby and restarting workers) and what a
  worker is told in ``host_config.py`` (:class:`CompilerSpec`, limits);
  ``process.py``, one worker process, its request loop, the
  watchdog and the spawner thread; ``forkserver.py``, the fork servers
  workers are forked from; ``testing.py``, test-only switches;
- both sides: ``protocol.py``, length-prefixed JSON frames and the value
  encoding (never pickle: the host only ever parses JSON the worker wrote);
  ``dombatch.py``, a script's DOM writes kept in the worker and sent in
  batches, and the host's strict check of them;
- worker side (standard library only, loaded by path): ``worker.py``, the
  entry point, start-up and request loop, and its ``worker_*.py`` siblings,
  each one part of the worker: ``worker_channel`` (its state and its channel
  to the host), ``worker_values`` (values crossing it), ``worker_timer`` (a
  call's time limit), ``worker_compile`` (the compiler hook and the guard's
  check), ``worker_calls`` (load, call, eval), ``worker_breakpoints``,
  ``worker_debug`` (the debugger's agent), ``worker_errors`` (error replies),
  ``worker_seal`` (the warm-up, the granted imports, the seal);
  ``relative_imports.py``, files beside a script imported relatively;
  ``confine.py``, the kernel confinement (Landlock, seccomp, namespaces,
  rlimits, never root) and the audit hook;
  ``scriptenv.py``, a script's builtins, imports and ``kryon`` module;
  ``guard.py``, the AST check applied to every script before it runs;
  ``zygote.py``, the fork server's program (imports what workers need,
  forks them; not confined itself).

:class:`CompilerSpec` says how the worker compiles source ("python", or a
``"module:function"`` another language supplies, e.g. Hy's AST compiler).

The names below are imported on first use (PEP 562 module ``__getattr__``):
a plugin that only names its :class:`CompilerSpec` (every Python-hosted
engine does, trusted scripts included) loads ``host_config.py``, not the
host, its processes and asyncio.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .host import IsolatedRuntime
    from .host_config import CompilerSpec, limits_for
    from .process import ERROR_CLASSES, WORKER_PATH
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

_WHERE = {
    "CompilerSpec": "host_config",
    "ERROR_CLASSES": "process",
    "IsolatedRuntime": "host",
    "ProtocolError": "protocol",
    "ValueRefused": "protocol",
    "WORKER_PATH": "process",
    "limits_for": "host_config",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
