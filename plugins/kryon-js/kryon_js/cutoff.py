"""Stopping work QuickJS never interrupts: its parser and its regular-expression
compiler do not poll the interrupt handler, and some inputs take them seconds
(arrays nested a thousand deep, ``[\\p{L}\\p{N}]`` under the ``iu`` flags), in
``eval``, ``Function``, ``new RegExp`` and in a load (regex literals compile
with the script).

Two limits QuickJS reads all the time stop them instead: the regex compiler
allocates as it goes (every allocation is compared with the runtime's malloc
limit, one word), and the parser checks the native stack against the
runtime's stack limit at every nesting level (an allocation failure in the
parser only flags its bytecode buffer, checked at the end: a nested literal
parses on regardless). So when a thread is still running a tick after its
chain's deadline (the interrupt handler would have pushed the deadline back by
``GRACE`` had it been asked), the watchdog lowers both limits of every runtime
whose gate that thread holds (malloc to one byte, stack to one byte): the
work fails at its next allocation or nesting through QuickJS's ordinary
out-of-memory or stack-overflow path, and the state is marked ``cut``, so the
host reports the error as the ScriptTimeoutError it is. The limits go back:

- when the interrupt handler fires for that runtime (so the uncatchable
  "interrupted" error can be allocated), and
- when the thread's outermost entry into the script ends, and before the next
  one starts (a race with the watchdog can leave a limit lowered between two
  entries; no code runs in the runtime then).
"""

from __future__ import annotations

import re
import threading
import weakref
from typing import TYPE_CHECKING, Any

from . import capi

if TYPE_CHECKING:
    from .runtime import Chain
    from .state import ScriptState

#: every thread's call chain (``runtime.Chains``; one per engine and thread), by id: the watchdog reads
#: their deadlines; weak, so a chain goes with its thread or engine
CHAINS: dict[int, "weakref.ref[Chain]"] = {}
#: runtimes whose limit is lowered now (runtime pointer -> state); the hot-path callers test it
LOWERED: dict[int, "ScriptState"] = {}
#: orders lowering (watchdog) against restoring (the thread leaving the script)
_lock = threading.Lock()
#: the malloc limit that makes the next allocation fail (0 means "no limit" to QuickJS), and the stack
#: size that makes the next stack check fail (0 would mean "no check")
CUT_LIMIT = 1
CUT_STACK = 1
_OWNER = re.compile(r"owner=(\d+)")


def gate_owner(gate: Any) -> int:
    """The thread holding ``gate`` (an EngineGate over an RLock), 0 if none.
    The C RLock shows its owner only in its repr; read only while a chain is late."""
    m = _OWNER.search(repr(gate._lock))
    return int(m.group(1)) if m else 0


def watch_chain(chain: "Chain") -> None:
    key = id(chain)
    CHAINS[key] = weakref.ref(chain, lambda _: CHAINS.pop(key, None))


def late_threads(now: float, slack: float) -> set[int]:
    """Threads whose chain is past its deadline by more than ``slack``."""
    late = set()
    for ref in CHAINS.copy().values():  # one C-level step: threads may add chains meanwhile
        chain = ref()
        if chain is not None and chain.deadline + slack < now:
            late.add(chain.thread)
    return late


def cut(state: "ScriptState", late: set[int]) -> None:
    """Lower the limit of ``state``'s runtime if a late thread is inside it."""
    if state.cut or state.closed or state.rt == 0 or gate_owner(state.gate) not in late:
        return
    with _lock:
        if state.cut or state.closed or gate_owner(state.gate) not in late:
            return
        state.cut = True  # before the limit: an allocation failing now must find the mark
        LOWERED[state.rt] = state
        capi.set_memory_limit(state.rt, CUT_LIMIT)
        capi.set_stack_size(state.rt, CUT_STACK)


def restore(rt: int) -> None:
    """Put back the limits of runtime ``rt`` (the interrupt handler fired for it);
    the state stays marked until its entry ends, so its error is a timeout."""
    state = LOWERED.get(rt)
    if state is not None:
        _put_back(rt, state)


def _put_back(rt: int, state: "ScriptState") -> None:
    capi.set_memory_limit(rt, state.normal_limit)
    capi.set_stack_size(rt, state.current_stack)


def uncut(state: "ScriptState") -> None:
    """The thread's outermost entry into ``state`` ends or starts: its limits as the policy says."""
    with _lock:
        if LOWERED.pop(state.rt, None) is not None:
            _put_back(state.rt, state)
        state.cut = False
