"""Values between the host and in-process scripts.

Host values go into a script unchanged (they already are Python values;
nothing is copied). What comes out of a script is made a value-model value
(``docs/values.md``): tuples (and, where the dialect says so, sets) become
lists, dict keys must be strings (an int key becomes its decimal text),
cycles are a ConversionError, subclasses of the scalar types cross as the base
type, a script's function (or any callable it hands out) becomes a
:class:`~kryon_core.FunctionRef` owned by its script, and other objects go to
the ``kryon_convert_value`` hooks or are a ConversionError. A policy's
``max_value_size`` bounds the strings, lists and maps crossing either way.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from ..errors import ConversionError
from ..values import FunctionRef, UserData, dict_key, value_too_large
from .dialect import NOT_MINE, Dialect

__all__ = ["PLAIN", "PASSING", "passes", "Converter", "check_size"]

#: types that cross as they are, without a copy or a check
PLAIN = frozenset((type(None), bool, int, float, str, bytes))
_BASES = (bool, int, float, str, bytes)
_HANDLES = (FunctionRef, UserData)

#: the classes seen to pass into the host as they are: the plain types, and
#: each FunctionRef and UserData class (element handles...) once seen
PASSING: set[type] = set(PLAIN)


def passes(value: Any) -> bool:
    """Whether ``value`` goes to the host as it is (a plain value or a handle);
    a handle's class joins :data:`PASSING`, so the next one costs a set look-up."""
    if isinstance(value, _HANDLES):
        PASSING.add(value.__class__)
        return True
    return value.__class__ in PLAIN


class Converter:
    """Script values to host values for one engine.

    ``wrap(fn, owner)`` makes the FunctionRef for a callable (``owner``: the
    script id it is handed out by, or None); ``unknown(value)`` asks the
    ``kryon_convert_value`` hooks (raising ConversionError when none converts)."""

    def __init__(
        self,
        dialect: Dialect,
        wrap: Callable[[Callable[..., Any], "str | None"], FunctionRef],
        unknown: Callable[[Any], Any],
    ) -> None:
        self.dialect = dialect
        self.language = dialect.language
        self.wrap = wrap
        self.unknown = unknown

    def out(self, value: Any, owner: str | None = None, limit: int | None = None) -> Any:
        """``value`` as a host value (see the module docstring)."""
        t = type(value)
        if t in PLAIN and (limit is None or not (t is str or t is bytes)):
            return value
        try:
            return self._out(value, owner, limit, set())
        except RecursionError:
            raise ConversionError("a value nested too deeply cannot cross between languages", language=self.language) from None

    def _out(self, value: Any, owner: str | None, limit: int | None, seen: set[int]) -> Any:
        t = type(value)
        if t in PLAIN:
            if limit is not None and (t is str or t is bytes) and len(value) > limit:
                raise value_too_large(len(value), limit, kind="string", language=self.language, script=owner)
            return value
        if t is list or t is tuple:
            return self._sequence(value, owner, limit, seen)
        if t is dict:
            return self._map(value, owner, limit, seen)
        if isinstance(value, (FunctionRef, UserData)):
            return value
        other = self.dialect.convert_other(value, lambda v: self._out(v, owner, limit, seen))
        if other is not NOT_MINE:
            return other
        return self._unusual(value, owner, limit, seen)

    def _unusual(self, value: Any, owner: str | None, limit: int | None, seen: set[int]) -> Any:
        t = type(value)
        if isinstance(value, _BASES):  # subclasses (IntEnum, str enums) cross as the base type
            base: Any = next(b for b in _BASES if isinstance(value, b))
            return self._out(base(value), owner, limit, seen)
        if t is bytearray:
            return self._out(bytes(value), owner, limit, seen)
        if t is types.GeneratorType:
            return self._sequence(list(value), owner, limit, seen)
        if isinstance(value, (list, tuple)):
            return self._sequence(value, owner, limit, seen)
        if isinstance(value, dict):
            return self._map(value, owner, limit, seen)
        if isinstance(value, (set, frozenset)):
            if self.dialect.sets_as_lists:
                return self._sequence(list(value), owner, limit, seen)
            raise ConversionError(f"a {t.__name__} cannot cross between languages; use a list", language=self.language)
        if callable(value) and not isinstance(value, type):
            return self.wrap(value, owner)
        return self._out(self.unknown(value), owner, limit, seen)

    def _sequence(self, value: Any, owner: str | None, limit: int | None, seen: set[int]) -> list[Any]:
        key = self._open(value, "list", owner, limit, seen)
        try:
            return [v if v.__class__ in PLAIN and limit is None else self._out(v, owner, limit, seen) for v in value]
        finally:
            seen.discard(key)

    def _map(self, value: Any, owner: str | None, limit: int | None, seen: set[int]) -> dict[str, Any]:
        key = self._open(value, "map", owner, limit, seen)
        try:
            return {self._key(k): self._out(v, owner, limit, seen) for k, v in value.items()}
        finally:
            seen.discard(key)

    def _open(self, value: Any, kind: str, owner: str | None, limit: int | None, seen: set[int]) -> int:
        """Enter a container: its size checked, a cycle refused; returns its key in ``seen``."""
        if limit is not None and len(value) > limit:
            raise value_too_large(len(value), limit, kind=kind, language=self.language, script=owner)
        key = id(value)
        if key in seen:
            what = "list" if kind == "list" else "dict"
            raise ConversionError(f"a cyclic {what} cannot cross between languages", language=self.language)
        seen.add(key)
        return key

    def _key(self, key: Any) -> str:
        if type(key) is str:
            return key
        other = self.dialect.convert_other(key, lambda v: v)
        if isinstance(other, str):
            return other
        return dict_key(str(key) if isinstance(key, str) else key, self.language)


def check_size(value: Any, limit: int, language: str, script: str | None) -> Any:
    """Raise SizeLimitError when a host value going into a script holds a
    string, list or map larger than ``limit``; returns the value."""
    stack = [value]
    seen: set[int] = set()
    while stack:
        v = stack.pop()
        t = type(v)
        if t is str or t is bytes:
            if len(v) > limit:
                raise value_too_large(len(v), limit, kind="string", language=language, script=script)
        elif t is list or t is tuple or t is dict:
            if len(v) > limit:
                raise value_too_large(len(v), limit, kind="map" if t is dict else "list", language=language, script=script)
            if id(v) not in seen:
                seen.add(id(v))
                stack.extend(v.values() if t is dict else v)
    return value
