"""The hot path of a call into a sandboxed script's worker (host side).

A bound handle (``ScriptManager.function``, and ``call_function``, which
uses the same handle) calls :func:`plain_caller`'s result for every call.
The usual call is plain: its script's worker is running and idle (no other
request of it is open on this stack), no debugger is attached, no handle
releases wait to be sent, the gate is free and every argument is a scalar.
Such a call goes in one frame to :meth:`.process.WorkerProcess.call_plain`
instead of through the engine, the runtime, the gate and the generic
request (about 20 Python calls). Anything else takes the full path, which
keeps every check: restarts of a dead worker, value encoding and its limits,
re-entrant calls, debugger hooks, releases, gate waits that help other threads.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence
from typing import TYPE_CHECKING, Any

from .. import threads
from ..errors import ScriptError
from . import protocol
from .process import WorkerDied

if TYPE_CHECKING:
    from .host import IsolatedRuntime

__all__ = ["plain_caller"]


def plain_caller(
    runtime: "IsolatedRuntime",
    script_id: str,
    function: str,
    *,
    known: Container[str],
    general: Callable[[Sequence[Any]], Any],
    rename: Callable[[ScriptError], ScriptError],
) -> Callable[..., Any]:
    """A caller of ``function`` (the worker's identifier) of ``script_id``.
    ``general(args)`` is the engine's full path, taken whenever the call is
    not plain (and while ``script_id`` is not in ``known``, the engine's
    loaded scripts, so an unloaded script fails as it does there);
    ``rename`` gives an error the engine's names, as the full path does."""
    scripts = runtime._scripts
    call_inside = runtime._call
    after_death = runtime._after_death
    tracking = threads.tracking
    prefix = protocol.call_prefix(script_id, function)
    wake_waiters = threads.wake_waiters

    def call(*args: Any) -> Any:
        script = scripts.get(script_id)
        # a debugger that records gate entries needs the gate's own run (threads.track_entries)
        if script is None or tracking or script_id not in known or not script.acquire(False):
            return general(args)
        try:
            proc = script.proc
            if proc is None or proc.dead is not None or proc.depth or proc.pending_release or runtime.debug is not None:
                return call_inside(script, function, args)  # the gate is held: _call is what enter runs
            max_size = script.policy.max_value_size
            for v in args:  # protocol.encode_args's scalar case; anything else is encoded on the full path
                t = v.__class__
                if not (t is int or t is float or t is bool or v is None
                        or (t is str and (max_size is None or len(v) <= max_size))):
                    return call_inside(script, function, args)
            try:
                return proc.call_plain(prefix, list(args), script.policy.time_limit)
            except WorkerDied as dead:
                raise after_death(script, proc, dead) from None
        except ScriptError as exc:
            raise rename(exc) from None
        finally:
            script.unlock()  # EngineGate.uncontended_inline: the gate's release written out
            gate = script.gate
            if gate is not None and gate._waiting:
                wake_waiters()

    return call
