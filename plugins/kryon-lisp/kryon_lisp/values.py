"""Values between Kryon Lisp and the host.

Hy is Python underneath, so most values need no conversion at all: numbers,
strings, bytes, lists, dicts, ``None`` and booleans are the same objects on
both sides, and host values go into Lisp unchanged (no copies). What a Lisp
function hands back to the host is normalised to the value model:

- ``int`` and ``float`` stay distinct; big integers stay exact (Python ints).
- Hy models become plain values: a keyword ``:name`` becomes the string
  ``"name"``, a symbol its name, a string/number model its plain value, a
  quoted form a list.
- tuples, sets and frozensets become lists (sets in iteration order).
- dict keys: str stays, a keyword becomes its name, an int its decimal text,
  anything else is a ConversionError (the core's rule, ``values.dict_key``).
- a Lisp function (``defn``, ``fn``, a closure) becomes a
  :class:`~kryon_core.FunctionRef` with language ``"lisp"`` and ``script`` set
  to the script that defined it, so the manager can release the callbacks a
  script registered when it is unloaded or reloaded.
- FunctionRef and UserData (element handles) pass through unchanged.
- cycles are a ConversionError; NaN, inf and -0.0 cross as the floats they are.
- anything else goes to the ``kryon_convert_value`` hooks, else ConversionError.
"""

from __future__ import annotations

import types
from typing import Any, Callable

from hy.models import Keyword, Object as HyObject

from kryon_core import ConversionError, FunctionRef, UserData
from kryon_core.values import dict_key

from .plugin import LANGUAGE

__all__ = ["SCRIPT_KEY", "to_host"]

#: the key in every script namespace naming the script it belongs to
SCRIPT_KEY = "__kryon_script__"

_PLAIN = frozenset((type(None), bool, int, float, str, bytes))
_PASS = (FunctionRef, UserData)


def to_host(
    value: Any,
    wrap: Callable[[Any], FunctionRef],
    convert_unknown: Callable[[Any], Any] | None = None,
    _seen: set[int] | None = None,
) -> Any:
    """A Lisp value as a host value (see the module docstring for the rules).

    ``wrap`` turns a Lisp function into a FunctionRef; ``convert_unknown`` is
    tried for objects outside the value model."""
    t = type(value)
    if t in _PLAIN:
        return value
    if t is list or t is tuple:  # the common case: flat lists of plain values, copied once
        for v in value:
            if v.__class__ not in _PLAIN:
                break
        else:
            return list(value)
    elif t is dict:  # and flat dicts with string keys
        for k, v in value.items():
            if k.__class__ is not str or v.__class__ not in _PLAIN:
                break
        else:
            return dict(value)
    if isinstance(value, _PASS):
        return value
    if isinstance(value, HyObject):
        return _model(value, wrap, convert_unknown, _seen)
    if isinstance(value, (bool, int, float, str, bytes)):  # subclasses (IntEnum, ...)
        return _plain_base(value)
    if t is types.FunctionType and SCRIPT_KEY in value.__globals__:
        return wrap(value)
    seen = _seen if _seen is not None else set()
    if isinstance(value, (list, tuple, set, frozenset)):
        key = id(value)
        if key in seen:
            raise ConversionError("cyclic list cannot cross between languages", language=LANGUAGE)
        seen.add(key)
        try:
            return [to_host(v, wrap, convert_unknown, seen) for v in value]
        finally:
            seen.discard(key)
    if isinstance(value, dict):
        key = id(value)
        if key in seen:
            raise ConversionError("cyclic dict cannot cross between languages", language=LANGUAGE)
        seen.add(key)
        try:
            return {
                _key(k): to_host(v, wrap, convert_unknown, seen) for k, v in value.items()
            }
        finally:
            seen.discard(key)
    if callable(value):  # a host callable handed back (a builtin, a bridge function)
        return value
    if convert_unknown is not None:
        return convert_unknown(value)
    raise ConversionError(f"cannot convert a {t.__name__} to a host value", language=LANGUAGE)


def _key(key: Any) -> str:
    if isinstance(key, Keyword):
        return key.name
    if isinstance(key, str):
        return str(key)
    return dict_key(key, LANGUAGE)


def _plain_base(value: Any) -> Any:
    for base in (bool, int, float, str, bytes):
        if isinstance(value, base):
            return base(value)
    return value  # pragma: no cover - callers check the bases first


def _model(value: HyObject, wrap: Any, convert_unknown: Any, seen: set[int] | None) -> Any:
    if isinstance(value, Keyword):
        return value.name
    if isinstance(value, (bool, int, float, str, bytes)):
        return _plain_base(value)
    if isinstance(value, tuple):  # List, Expression, Tuple, Set, Dict models are tuples
        return [to_host(v, wrap, convert_unknown, seen) for v in value]
    if convert_unknown is not None:
        return convert_unknown(value)
    raise ConversionError(f"cannot convert the Hy model {value!r} to a host value", language=LANGUAGE)
