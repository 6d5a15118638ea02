"""Memory figures for in-process scripts.

In-process scripts share the host's heap, so what an engine reports is an
estimate: the bytes (``sys.getsizeof``) of the objects reachable from the
scripts' namespaces, not following into modules, classes, host handles or
builtins, at most :data:`CAP` objects.
"""

from __future__ import annotations

import gc
import sys
import time
import types
from collections.abc import Callable
from typing import Any

from ..engine import GarbageCollectionStats
from ..values import FunctionRef, UserData

__all__ = ["CAP", "reachable_size", "collect"]

#: the most objects one estimate visits
CAP = 1_000_000

_DESCEND = (dict, list, tuple, set, frozenset, types.FunctionType, types.CodeType, types.CellType, types.MethodType)
_STOP = (type, types.ModuleType, types.BuiltinFunctionType, types.FrameType, FunctionRef, UserData)


def reachable_size(roots: list[Any], skip: set[int]) -> int:
    """Bytes of the objects reachable from ``roots``, ``skip`` (ids) excluded."""
    seen: set[int] = set(skip)
    todo = list(roots)
    total = 0
    while todo and len(seen) < CAP:
        obj = todo.pop()
        key = id(obj)
        if key in seen:
            continue
        seen.add(key)
        if isinstance(obj, _STOP):
            continue
        total += sys.getsizeof(obj, 64)
        if isinstance(obj, types.FunctionType):
            todo.extend((obj.__code__, obj.__closure__ or (), obj.__defaults__ or (), obj.__kwdefaults__ or {}))
        elif isinstance(obj, _DESCEND) or gc.is_tracked(obj):
            todo.extend(gc.get_referents(obj))
    return total


def collect(estimate: Callable[[], int]) -> GarbageCollectionStats:
    """``gc.collect()`` with the estimate before and after."""
    start = time.perf_counter()
    before = estimate()
    freed = gc.collect()
    after = estimate()
    return GarbageCollectionStats(before, after, freed, (time.perf_counter() - start) * 1000.0)
