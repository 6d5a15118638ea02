"""Breakpoints set before a script runs, without a debugger attached
(worker side, standard library only, loaded by path like every sibling of
``worker.py``).

The host sends breakpoint lines by script (``bps``, or ``breakpoints`` in
the init message). While any are set, a call runs under :func:`traced`:
``sys.settrace`` sees calls into the scripts that have breakpoints and
reports a hit line to the host (a ``bp`` request with the frame's locals),
which answers when the script may go on. A debugger's own stepping and
pausing is ``worker_debug``'s, not this module's.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import worker_channel, worker_timer, worker_values
else:  # loaded by worker.py (``_load_sibling``) before this module
    worker_channel = sys.modules["kryon_isolation_worker_channel"]
    worker_values = sys.modules["kryon_isolation_worker_values"]
    worker_timer = sys.modules["kryon_isolation_worker_timer"]

S = worker_channel.S
ScriptTimeout = worker_channel.ScriptTimeout


def set_breakpoints(bps: Any) -> None:
    S.breakpoints = {f: dict(lines) for f, lines in (bps or {}).items() if lines}


def traced(fn: Callable[..., Any], args: Any) -> Any:
    """``fn(*args)`` with the breakpoint tracer on."""
    _settrace(_trace_call)
    try:
        return fn(*args)
    finally:
        _settrace(None)


def _trace_call(frame: types.FrameType, event: str, arg: Any) -> Any:
    try:
        lines = S.breakpoints.get(frame.f_code.co_filename)
        return _line_tracer(lines) if lines else None
    except ScriptTimeout:  # never out of a trace function (see worker_timer.fire_soon)
        worker_timer.fire_soon()
        return None
    except Exception:  # nor anything else (worker_debug's _ROBUST): the script goes on
        return None


def _line_tracer(lines: dict[str, int]) -> Callable[[types.FrameType, str, Any], Any]:
    def trace_line(frame: types.FrameType, event: str, arg: Any) -> Any:
        try:
            if event == "line":
                bid = lines.get(str(frame.f_lineno))
                if bid is not None:
                    _hit(bid, frame)
        except ScriptTimeout:
            worker_timer.fire_soon()
        except Exception:  # a local's __repr__ the script wrote, a breakpoint handler that failed
            pass
        return trace_line

    return trace_line


S.trace_codes = S.trace_codes | {_trace_call.__code__} | {
    c for c in _line_tracer.__code__.co_consts if isinstance(c, types.CodeType) and c.co_name == "trace_line"}


def _hit(bid: int, frame: types.FrameType) -> None:
    local_vars = {}
    for k, v in frame.f_locals.items():
        if k.startswith("__"):
            continue
        try:
            local_vars[k] = worker_values.encode(v)
        except Exception:
            try:
                local_vars[k] = repr(v)[:200]
            except Exception:  # the script's own __repr__ failed
                local_vars[k] = "<unprintable>"
    _settrace(None)
    try:
        worker_channel.host_request("bp", {"b": bid, "l": frame.f_lineno, "s": frame.f_code.co_filename, "v": local_vars})
    finally:
        _settrace(_trace_call)


def _settrace(fn: Any) -> None:
    S.internal += 1
    try:
        sys.settrace(fn)
    finally:
        S.internal -= 1
