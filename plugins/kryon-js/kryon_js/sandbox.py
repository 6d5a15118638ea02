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

from kryon_core import SecurityPolicy, UnsupportedPolicyError

from .plugin import LANGUAGE

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
#: the deepest native stack a script may get (QuickJS's default times eight)
MAX_STACK = DEFAULT_STACK * 8
#: the largest max_recursion whose frames fit in MAX_STACK
MAX_RECURSION = (MAX_STACK - BASE_STACK) // BYTES_PER_FRAME


def check_policy(policy: SecurityPolicy) -> None:
    """Refuse a limit kryon-js cannot keep as asked (never round it silently)."""
    if policy.memory_limit is not None and int(policy.memory_limit) < MIN_MEMORY:
        raise UnsupportedPolicyError(
            f"memory_limit {policy.memory_limit} is below what a JavaScript context needs to start "
            f"({MIN_MEMORY} bytes): use memory_limit >= {MIN_MEMORY}",
            limit="memory_limit", language=LANGUAGE)
    if policy.max_recursion is not None and int(policy.max_recursion) > MAX_RECURSION:
        raise UnsupportedPolicyError(
            f"max_recursion {policy.max_recursion} needs more native stack than kryon-js gives a script "
            f"({MAX_STACK // 1024} KiB): use max_recursion <= {MAX_RECURSION}, or None for QuickJS's default stack",
            limit="max_recursion", language=LANGUAGE)
    if policy.time_limit is not None and not float(policy.time_limit) > 0:
        raise UnsupportedPolicyError(
            f"time_limit {policy.time_limit} is not a positive number of seconds: use None for no limit",
            limit="time_limit", language=LANGUAGE)


def stack_size(policy: SecurityPolicy) -> int:
    if policy.max_recursion is None:
        return DEFAULT_STACK
    return min(MAX_STACK, BASE_STACK + int(policy.max_recursion) * BYTES_PER_FRAME)


def memory_limit(policy: SecurityPolicy) -> int | None:
    if policy.memory_limit is None:
        return None
    return max(MIN_MEMORY, int(policy.memory_limit))


def compile_guarded(policy: SecurityPolicy) -> bool:
    """Whether every source the script compiles at run time passes the compile guards
    (compile_guards.js): under a time limit with a ``max_source_size`` (the source is bounded),
    and under any memory limit (the compile needs room first: QuickJS's compiler crashes the
    process when an allocation is refused midway, tests/js/test_compile_near_cap.py)."""
    return (time_limit(policy) is not None and policy.max_source_size is not None) or memory_limit(policy) is not None


def time_limit(policy: SecurityPolicy) -> float | None:
    return float(policy.time_limit) if policy.time_limit else None
