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
- **the heap was full during the entry**: QuickJS runs its cycle collector
  before allocating an object when its allocations pass the runtime's GC
  threshold, and then sets the threshold anew. The threshold of a
  memory-limited runtime is parked at ``limit - GC_MARGIN`` (armed here), so
  a changed threshold means an object was allocated within ``GC_MARGIN`` of
  the limit since it was armed: failing to allocate the error object is such
  an allocation. It is armed when the runtime is made, at every entry that
  goes through ``ScriptState.run`` and after every error read, so the
  evidence covers at most the calls since then. Parking the threshold means
  a memory-limited script's cycles are collected once its heap nears its
  limit (acyclic garbage is freed at once by reference counting anyway).

A ``null`` with neither is the script's own: ``ScriptRuntimeError``. What
neither catches (a function filling a local array with strings, which
allocate no objects, then unwound) is then reported as the script's ``null``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import capi

if TYPE_CHECKING:
    from .state import ScriptState

#: an object allocated this close to the limit trips the collector (the failed error object is ~100 bytes)
GC_MARGIN = 64 << 10
#: allocations this close to the limit when the failure reaches the host: the heap is full
FULL_MARGIN = 256 << 10


def _rt(state: "ScriptState") -> int:
    if not state.host.capi or state.ctx is None:
        return 0
    return state.rt or capi.pointers(state.ctx)[0]


def arm(state: "ScriptState") -> None:
    """Park the runtime's GC threshold just under its memory limit (memory-limited runtimes only)."""
    if state.memory_limit is not None:
        rt = _rt(state)
        if rt:
            capi.set_gc_threshold(rt, armed_threshold(state))


def armed_threshold(state: "ScriptState") -> int:
    return max(0, int(state.memory_limit or 0) - GC_MARGIN)


def was_out_of_memory(state: "ScriptState") -> bool:
    """Whether the runtime ran out of memory since the threshold was armed (or is out of it now);
    rearms the threshold for the next calls."""
    if state.memory_limit is None or state.ctx is None:
        return False
    usage = state.ctx.memory()
    full = int(usage["malloc_limit"]) - int(usage["malloc_size"]) < FULL_MARGIN
    rt = _rt(state)
    if not rt:  # no C API: only the heap as it is now
        return full
    tripped = capi.gc_threshold(rt) != armed_threshold(state)
    arm(state)
    return full or tripped
