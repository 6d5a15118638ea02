"""An exception raised while serving a request, as the error reply the host
gets (worker side, standard library only, loaded by path like every sibling
of ``worker.py``): its kind (``access``, ``timeout``, ``memory``,
``recursion``, ``compile``, ``runtime``, or a ``KryonError``'s own), its
text, the script's line and column, and the script frames it went through,
followed by the host's frames when it came back from a host call.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import guard, protocol, scriptenv, worker_channel
else:  # loaded by worker.py (``_load_sibling``) before this module
    guard = sys.modules["kryon_isolation_guard"]
    protocol = sys.modules["kryon_isolation_protocol"]
    scriptenv = sys.modules["kryon_isolation_scriptenv"]
    worker_channel = sys.modules["kryon_isolation_worker_channel"]

AccessDenied = scriptenv.AccessDenied
KryonError = scriptenv.KryonError
ScriptTimeout = worker_channel.ScriptTimeout

_KINDS: tuple[tuple[Any, str], ...] = (
    (AccessDenied, "access"), (guard.GuardViolation, "access"), (ScriptTimeout, "timeout"),
    (MemoryError, "memory"), (RecursionError, "recursion"), (SyntaxError, "compile"),
    (PermissionError, "access"),
)


def _error_kind(exc: BaseException) -> str:
    if isinstance(exc, (KryonError, protocol.ValueRefused)):
        return exc.kind
    for cls, kind in _KINDS:
        if isinstance(exc, cls):
            return kind
    return "runtime"


def keep_stack(exc: BaseException) -> None:
    """Take a failed top level's stack now: once the script leaves
    ``S.loading`` its frames no longer count as script frames, and the error
    would reach the host with no line."""
    try:
        exc._kryon_stack = worker_channel.traceback_stack(exc.__traceback__)  # type: ignore[attr-defined]
    except Exception:  # an exception class that refuses attributes keeps no stack
        pass


def error_reply(rid: Any, exc: BaseException) -> dict[str, Any]:
    kind = _error_kind(exc)
    stack = getattr(exc, "_kryon_stack", None)
    if stack is None:
        stack = worker_channel.traceback_stack(exc.__traceback__)
    if isinstance(exc, (KryonError, ScriptTimeout, MemoryError, AccessDenied, RecursionError, protocol.ValueRefused,
                        guard.GuardViolation)):
        text = str(exc) or type(exc).__name__
    else:
        text = f"{type(exc).__name__}: {exc}"
    msg: dict[str, Any] = {"t": "e", "i": rid, "k": kind, "m": text, "s": stack}
    if isinstance(exc, SyntaxError):
        msg["m"] = exc.msg or "invalid syntax"
        msg["l"] = exc.lineno
        msg["c"] = exc.offset
    elif isinstance(exc, guard.GuardViolation):
        msg["l"] = exc.line
        msg["c"] = exc.column
    elif stack:
        msg["l"] = stack[0][2]
    if isinstance(exc, KryonError) and exc.host_stack:
        msg["s"] = stack + [list(f) for f in exc.host_stack]
    return msg
