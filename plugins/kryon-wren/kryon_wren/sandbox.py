"""Limits for Wren scripts, enforced by WebAssembly: a policy becomes the limits
of the wasm instance a script runs in (errors are translated in ``errors.py``).

Scripts run in wasm instances shared per kind of limits (``LimitsKey``): the
store's linear-memory cap is the policy's ``memory_limit`` (MemoryLimitError),
epoch interruption bounds each call by ``time_limit`` (ScriptTimeoutError).
The module imports no WASI functions at all, so no script can reach files,
the network or processes except through host functions the engine grants
(``File.read`` of module "io" checks ``allow_file_system``).

Recursion: the policy's ``max_recursion`` is the number of call frames each
Wren fiber may hold (``WrenVM.set_max_frames``; the host's entry call counts
as one; a fiber started by a fiber gets frames of its own); without it the
VM's own limit is 100000 frames. A deeper call is Wren's "Stack overflow."
error, reported as RecursionLimitError; with a memory cap the cap may be hit
first (MemoryLimitError). ``max_recursion`` also bounds nested
``Kryon.call`` chains (the core bridge counts them).

Every script has a wasm instance of its own (a few hundred KiB of touched
memory, about a millisecond to make; after the first, its VM and ``kryon``
module are restored from an image, ``snapshot.py``), so its memory cap is its own and a trap
kills only its instance: the engine builds a new one and runs that script's
top level again (its state restarts); every other script keeps its state.
Unloading a script frees its instance, and with it all its linear memory.

Time limits: the deadline of a call is fixed when the host enters the
instance; whatever runs inside that call (host functions such as Kryon.call,
getShared or DOM calls, conversions of arguments and results, calls back
into the same script) runs under the same deadline and never re-arms it. A
call into another script's instance runs under that script's own limits (so
that a caller's deadline never kills, and so restarts, a callee that did
nothing wrong); the caller's deadline fires as soon as control is back in
the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kryon_core import SecurityPolicy

#: linear memory for trusted scripts (wasm32 addresses at most 4 GiB)
UNLIMITED_MEMORY = (4 << 30) - (64 << 10)
#: floor for a sandboxed memory cap: the VM and its core library need this much
MIN_MEMORY = 4 << 20


@dataclass(frozen=True)
class LimitsKey:
    memory_limit: int
    time_limit: float | None

    @classmethod
    def for_policy(cls, policy: SecurityPolicy) -> "LimitsKey":
        # a trusted policy's limits are kept too (they are conveniences there, not a boundary):
        # its defaults are None, so a plain trusted policy runs unlimited
        memory = policy.memory_limit
        memory = UNLIMITED_MEMORY if memory is None else max(MIN_MEMORY, min(int(memory), UNLIMITED_MEMORY))
        return cls(memory, float(policy.time_limit) if policy.time_limit else None)


def new_instance(key: LimitsKey) -> Any:
    from .instance import WasmInstance

    return WasmInstance(memory_limit=key.memory_limit, timeout=key.time_limit)


def dispose(instance: Any) -> None:
    """Frees an instance no script lives in any more."""
    instance.close()
