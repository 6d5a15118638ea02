"""Telling QuickJS's out-of-memory ``null`` from a script's own ``throw null``.

When QuickJS cannot allocate even its "out of memory" error it throws ``null``
instead, which is exactly what a script's ``throw null`` (or a promise
rejected with ``null``) delivers. Nothing in the engine marks the difference,
and by the time the host sees the exception the frames that held the memory
may have been unwound and freed, so the memory in use afterwards alone is not
evidence either way (measured: a local array of objects that filled the cap
leaves the heap nearly empty once its function has returned).

Two pieces of evidence, either of which makes the ``null`` an out-of-memory:

- **the heap is still full**: the runtime's allocations are within
  ``FULL_MARGIN`` of its limit when the failure reaches the host (data the
  script keeps in its globals);
- **a collection found the heap (nearly) full**: before allocating an object
  past the runtime's GC threshold, QuickJS runs its cycle collector and sets
  the threshold to 1.5 times what is left. The threshold of a memory-limited
  runtime is kept at or under ``limit - GC_MARGIN`` ("parked": at every entry
  through ``ScriptState.run``, and by the interrupt handler every 10000 ticks,
  as a collection may have raised it past the limit); QuickJS's own, lower,
  schedule is kept while less than a third of the limit is allocated, so
  garbage is collected as often as without a limit. A heap that fills up
  therefore meets a collection within ``GC_MARGIN`` of the limit (at the
  latest when QuickJS allocates the error object it then fails to finish),
  and the threshold it leaves says how full the live heap was: at least 1.5
  times ``limit - 2 * GC_MARGIN`` (``near_full``) is the evidence. The
  prelude keeps an empty object of each native error prototype alive, so
  making an error needs no new shape and always reaches that allocation. The
  interrupt handler, which may run while the error unwinds, notes such a
  threshold (``TRIPPED``) before it parks it again. The evidence is cleared at
  every entry through ``ScriptState.run`` and after every error read.

Measured (6 fills, objects to 64 KiB strings, each kept in a global or in a
local array freed as the frames unwind, 97 caps from 3 to 6 MiB, with and
without a time limit): 2327 of 2328 runs are a MemoryLimitError (the one
other was not a ``null``, and did not repeat); about half of the ``null``s
are known only from the threshold.

A ``null`` with neither is the script's own: ``ScriptRuntimeError``. A script
that throws ``null`` itself after a collection found its live heap within
``2 * GC_MARGIN`` of its limit (since the evidence was last cleared: hot-path
calls do not clear it) is reported as out of memory.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from . import capi

if TYPE_CHECKING:
    from .state import ScriptState

#: the GC threshold of a memory-limited runtime stays this far under its limit at most
GC_MARGIN = 64 << 10
#: allocations this close to the limit when the failure reaches the host: the heap is full
FULL_MARGIN = 256 << 10
#: memory-limited runtimes (pointer) -> the highest GC threshold they keep, and a reader of their allocated
#: byte count (capi.malloc_size_reader; None if unknown)
PARKED: dict[int, tuple[int, Any]] = {}
#: runtimes whose collector found the live heap near the limit since their evidence was cleared
TRIPPED: set[int] = set()


def _rt(state: "ScriptState") -> int:
    if not state.host.capi or state.ctx is None:
        return 0
    return state.rt or capi.pointers(state.ctx)[0]


def register(state: "ScriptState") -> None:
    """A memory-limited runtime made (after its prelude ran): its threshold is parked from now on."""
    rt = _rt(state)
    if rt and state.memory_limit is not None:
        state.oom_rt = rt
        PARKED[rt] = (max(0, int(state.memory_limit) - GC_MARGIN), capi.malloc_size_reader(state.ctx))
        clear(rt)
        weakref.finalize(state, _forget, rt)  # a state dropped without close()


def _forget(rt: int) -> None:
    PARKED.pop(rt, None)
    TRIPPED.discard(rt)


def unregister(state: "ScriptState") -> None:
    _forget(state.oom_rt)


def park(rt: int) -> None:
    """Note a collection that found the heap near the limit, then keep the threshold under the limit
    (the interrupt handler calls this for every runtime in ``PARKED``). Once a third of the limit is
    allocated the threshold goes to the parked one at once: a collection of QuickJS's own schedule from
    there could raise it past the limit between two interrupts, and the error made on running out
    would then collect nothing (no evidence). Below a third, its next collection leaves it under
    half the limit, and QuickJS's schedule is kept."""
    parked = PARKED.get(rt)
    if parked is None:
        return
    limit, size = parked
    threshold = capi.gc_threshold(rt)
    if threshold > limit:
        if threshold >= near_full(limit):
            TRIPPED.add(rt)
        capi.set_gc_threshold(rt, limit)
    elif size is not None and threshold < limit and size.value * 3 > limit:
        capi.set_gc_threshold(rt, limit)


def near_full(parked: int) -> int:
    """The threshold a collection leaves when it finds the live heap within ``GC_MARGIN`` of the parked
    threshold (QuickJS sets 1.5 times what is left; one parked collection fires a few bytes under it)."""
    live = max(0, parked - GC_MARGIN)
    return live + (live >> 1)


def clear(rt: int) -> None:
    """Start a new window of evidence (an entry, or an error read)."""
    park(rt)
    TRIPPED.discard(rt)


def was_out_of_memory(state: "ScriptState") -> bool:
    """Whether the runtime ran out of memory since its evidence was cleared (or is out of it now);
    clears the evidence for the next calls."""
    if state.memory_limit is None or state.ctx is None:
        return False
    usage = state.ctx.memory()
    full = int(usage["malloc_limit"]) - int(usage["malloc_size"]) < FULL_MARGIN
    rt = state.oom_rt
    if not rt:  # no C API: only the heap as it is now
        return full
    park(rt)
    tripped = rt in TRIPPED
    TRIPPED.discard(rt)
    return full or tripped
