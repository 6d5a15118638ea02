"""Values between Kryon Lisp and the host.

Hy is Python underneath, so most values need no conversion at all: numbers,
strings, bytes, lists, dicts, ``None`` and booleans are the same objects on
both sides, and host values go into Lisp unchanged (no copies). The shared
value rules (``kryon_core.pyhost.values``) normalise what a Lisp function
hands back; what is Lisp's own:

- Hy models become plain values: a keyword ``:name`` becomes the string
  ``"name"`` (as a value and as a dict key), a symbol its name, a
  string/number model its plain value, a quoted form a list;
- sets and frozensets become lists (in iteration order).

The rest is shared: ``int`` and ``float`` stay distinct and big integers
exact, tuples become lists, dict keys are strings (an int key its decimal
text), a Lisp function becomes a FunctionRef owned by its script, cycles
and objects outside the model (unless a ``kryon_convert_value`` hook takes
them) are a ConversionError.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import hy
from hy.models import Keyword
from hy.models import Object as HyObject

from kryon_core import ConversionError
from kryon_core.pyhost import NOT_MINE

from .plugin import LANGUAGE

__all__ = ["SETS_AS_LISTS", "convert_other", "show"]

#: the debugger shows at most this many characters of a value
_SHOWN = 200

#: sets leave Lisp as lists
SETS_AS_LISTS = True

_BASES = (bool, int, float, str, bytes)


def convert_other(value: Any, convert: Callable[[Any], Any]) -> Any:
    """A Hy model as a host value (``convert`` converts its parts), else NOT_MINE."""
    if not isinstance(value, HyObject):
        return NOT_MINE
    if isinstance(value, Keyword):
        return value.name
    for base in _BASES:
        if isinstance(value, base):
            return base(value)  # type: ignore[arg-type]
    if isinstance(value, tuple):  # List, Expression, Tuple, Set, Dict models are tuples
        return [convert(v) for v in value]
    raise ConversionError(f"cannot convert the Hy model {value!r} to a host value", language=LANGUAGE)


def show(value: Any) -> str:
    """A value in Lisp notation (``hy.repr``: ``[1 2 3]``, ``{"a" 1}``,
    ``True``), cut short for the debugger's display."""
    try:
        text = str(hy.repr(value))
    except Exception:  # an object whose own repr fails still shows as something
        text = f"<{type(value).__name__}>"
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."
