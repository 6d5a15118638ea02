"""Values between the host and trusted (in-process) Python scripts.

Host values go into a script as they are: they already are Python values, and
nothing is copied. What comes out of a script is checked against the value
model (``kryon_core.values``): tuples become lists, dict keys must be ``str``
(an ``int`` key becomes its decimal text), cycles and objects outside the
model are a :class:`~kryon_core.ConversionError` (unless a
``kryon_convert_value`` hook converts them), a generator becomes the list it
yields, and a function defined by a script becomes a
:class:`~kryon_core.FunctionRef` that knows its script (so the manager can
release a script's DOM callbacks when it is reloaded or unloaded).
"""

from __future__ import annotations

import types
from typing import Any, Callable

from kryon_core import ConversionError, FunctionRef, UserData
from kryon_core.values import dict_key

SCALARS = frozenset({type(None), bool, int, float, str, bytes})


class Converter:
    """Converts script results for one engine.

    ``make_ref(fn, name, owner)`` makes the FunctionRef for a script callable,
    ``owner_of(filename)`` names the script a code file belongs to (None for
    host code) and ``unknown(value)`` asks the ``kryon_convert_value`` hooks."""

    def __init__(
        self,
        make_ref: Callable[[Callable[..., Any], str, "str | None"], FunctionRef],
        owner_of: Callable[[str], "str | None"],
        unknown: Callable[[Any], Any] | None = None,
    ) -> None:
        self.make_ref = make_ref
        self.owner_of = owner_of
        self.unknown = unknown
        self._refs: dict[int, tuple[Any, FunctionRef]] = {}

    def out(self, value: Any, script: str | None) -> Any:
        if type(value) in SCALARS:
            return value
        return self._out(value, script, set())

    def _out(self, value: Any, script: str | None, seen: set[int]) -> Any:
        t = type(value)
        if t in SCALARS or isinstance(value, (FunctionRef, UserData)):
            return value
        if t is bytearray:
            return bytes(value)
        if t is list or t is tuple:
            key = id(value)
            if key in seen:
                raise ConversionError("a cyclic list cannot cross between languages", language="python", script=script)
            seen.add(key)
            try:
                return [self._out(v, script, seen) for v in value]
            finally:
                seen.discard(key)
        if t is dict:
            key = id(value)
            if key in seen:
                raise ConversionError("a cyclic dict cannot cross between languages", language="python", script=script)
            seen.add(key)
            try:
                return {dict_key(k, "python"): self._out(v, script, seen) for k, v in value.items()}
            finally:
                seen.discard(key)
        if t is types.GeneratorType:
            return [self._out(v, script, seen) for v in value]
        for base in (bool, int, float, str):  # subclasses (IntEnum, str enums) cross as the base type
            if isinstance(value, base):
                return base(value)
        if callable(value) and not isinstance(value, type):
            return self.function_ref(value, script)
        if isinstance(value, (set, frozenset)):
            raise ConversionError(
                f"a {t.__name__} cannot cross between languages; use a list", language="python", script=script
            )
        if self.unknown is not None:
            try:
                return self._out(self.unknown(value), script, seen)
            except ConversionError:
                pass
        raise ConversionError(f"cannot convert a {t.__name__} to a host value", language="python", script=script)

    def function_ref(self, fn: Callable[..., Any], script: str | None = None) -> FunctionRef:
        """A FunctionRef for a script's callable (one per callable while it lives)."""
        cached = self._refs.get(id(fn))
        if cached is not None and cached[0] is fn:
            return cached[1]
        code = getattr(fn, "__code__", None)
        owner = (self.owner_of(code.co_filename) if code is not None else None) or script
        ref = self.make_ref(fn, getattr(fn, "__name__", "function"), owner)
        if owner is not None:
            self._refs[id(fn)] = (fn, ref)
        return ref

    def forget_script(self, script: str) -> None:
        for key, (fn, ref) in list(self._refs.items()):
            if ref.script == script:
                del self._refs[key]

    def arg(self, value: Any) -> Any:
        """A value a script hands to the ``kryon`` API: script callables
        become FunctionRefs (the DOM keeps them), the rest passes as is."""
        t = type(value)
        if t in SCALARS or isinstance(value, (FunctionRef, UserData)):
            return value
        if t is types.FunctionType or t is types.MethodType or (callable(value) and not isinstance(value, type)):
            return self.function_ref(value)
        if t is dict:
            return {k: self.arg(v) for k, v in value.items()}
        if t is list or t is tuple:
            return [self.arg(v) for v in value]
        return value
