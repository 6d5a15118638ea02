"""Values between the host and trusted Python scripts.

The value rules are the shared in-process ones (``kryon_core.pyhost.values``):
host values go into a script unchanged; what comes out is checked against the
value model (tuples become lists, dict keys must be strings, cycles and
objects outside the model are a ConversionError, a generator becomes the list
it yields, a script's function becomes a FunctionRef owned by its script).
Python's own: a ``set`` or ``frozenset`` is a ConversionError (its order is
not the script's to give), and a ``range`` or ``memoryview`` crosses as the
list or bytes it stands for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kryon_core.pyhost import NOT_MINE

__all__ = ["SETS_AS_LISTS", "convert_other"]

#: sets are refused rather than given an order
SETS_AS_LISTS = False


def convert_other(value: Any, convert: Callable[[Any], Any]) -> Any:
    """A value only Python has, as a host value (``convert`` converts its parts)."""
    if type(value) is range:
        return convert(list(value))
    if type(value) is memoryview:
        return convert(value.tobytes())
    return NOT_MINE
