"""Limits from the SecurityPolicy, applied to one script's QuickJS runtime.

- ``memory_limit`` -> ``JS_SetMemoryLimit`` on the script's own runtime
  (each script has one, so the limit is per script).
- ``time_limit`` -> a deadline checked by a QuickJS interrupt handler
  (installed through the C API, see ``_capi``); the interrupt cannot be
  caught by the script.
- ``max_recursion`` -> the runtime's stack size. QuickJS bounds native stack
  bytes, not frames: the size is set so that at least ``max_recursion``
  frames of a simple function fit (about 1.7 KiB each in quickjs-ng 0.17),
  so the limit is hit somewhere between ``max_recursion`` and about 1.4x it.
"""

from __future__ import annotations

from kryon_core import SecurityPolicy

#: bytes of native stack one simple JS frame takes in quickjs-ng 0.17 (measured), with headroom
BYTES_PER_FRAME = 2048
BASE_STACK = 48 * 1024
#: QuickJS's own default (JS_DEFAULT_STACK_SIZE); used when the policy sets no recursion limit
DEFAULT_STACK = 1024 * 1024
#: JS entries nested through host callbacks (JS -> host -> JS ...) allowed before a RecursionLimitError;
#: nested entry k gets 1/(k+1) of the script's stack (at least MIN_NESTED_STACK), so the native stack all
#: levels together may use stays bounded (about 4.5 MiB for 1 MiB scripts) whatever the nesting
MAX_NESTING = 60
MIN_NESTED_STACK = 48 * 1024
#: memory the prelude and runtime need before a script's limit applies
MIN_MEMORY = 2 * 1024 * 1024


def stack_size(policy: SecurityPolicy) -> int:
    if policy.max_recursion is None:
        return DEFAULT_STACK
    return min(DEFAULT_STACK * 8, BASE_STACK + int(policy.max_recursion) * BYTES_PER_FRAME)


def memory_limit(policy: SecurityPolicy) -> int | None:
    if policy.memory_limit is None:
        return None
    return max(MIN_MEMORY, int(policy.memory_limit))


def time_limit(policy: SecurityPolicy) -> float | None:
    return float(policy.time_limit) if policy.time_limit else None
