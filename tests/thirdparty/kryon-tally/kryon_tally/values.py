"""Value conversion between the host and Tally (the rules of Kryon's value model).

Tally's values are Python's own: nil is None, booleans, ints and floats
(kept apart: 1 and 1.0 are different types), strings, lists and dicts. So
scalars cross as they are, and lists and dicts are copied (a script cannot
mutate the host's structure), with dict keys following
``kryon_core.values.dict_key``. A Tally function leaves as a FunctionRef
owned by the script that defined it; FunctionRefs, host callables and
UserData (element handles too) enter as themselves. Structures nested
deeper than MAX_DEPTH (so every cycle) are a ConversionError.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kryon_core import ConversionError, FunctionRef, UserData
from kryon_core.values import dict_key, value_too_large

from .interpreter import Builtin, Closure

if TYPE_CHECKING:
    from .engine import TallyEngine

MAX_DEPTH = 100
SCALARS = frozenset((type(None), bool, int, float, str, bytes))
SIZED = frozenset((str, bytes, list, tuple, dict))


class Converter:
    def __init__(self, engine: "TallyEngine") -> None:
        self.engine = engine

    def _check_size(self, value: Any, kind: type) -> None:
        """Strings, lists and dicts crossing either way obey the running
        call's ``max_value_size``."""
        limit = self.engine.limits.policy.max_value_size
        if limit is not None and kind in SIZED and len(value) > limit:
            what = "string" if kind in (str, bytes) else "map" if kind is dict else "list"
            raise value_too_large(len(value), limit, kind=what, language="tally")

    def to_tally(self, value: Any, depth: int = 0) -> Any:
        kind = type(value)
        if kind in SIZED:
            self._check_size(value, kind)
        if kind in SCALARS:
            return value
        if depth >= MAX_DEPTH:
            raise ConversionError(f"value nested deeper than {MAX_DEPTH} levels (or cyclic)", language="tally")
        if kind is list or kind is tuple:
            return [self.to_tally(v, depth + 1) for v in value]
        if kind is dict:
            return {dict_key(k, "tally"): self.to_tally(v, depth + 1) for k, v in value.items()}
        if isinstance(value, (FunctionRef, UserData, Closure, Builtin)) or callable(value):
            return value
        return self.to_tally(self.engine.bridge_convert_unknown(value), depth)

    def to_host(self, value: Any, depth: int = 0) -> Any:
        kind = type(value)
        if kind in SIZED:
            self._check_size(value, kind)
        if kind in SCALARS:
            return value
        if depth >= MAX_DEPTH:
            raise ConversionError(f"value nested deeper than {MAX_DEPTH} levels (or cyclic)", language="tally")
        if kind is list:
            return [self.to_host(v, depth + 1) for v in value]
        if kind is dict:
            return {dict_key(k, "tally"): self.to_host(v, depth + 1) for k, v in value.items()}
        if kind is Closure:
            return self.engine.function_ref(value)
        if kind is Builtin:
            return FunctionRef(lambda *args: self.to_host(value.fn(*map(self.to_tally, args))), name=value.name,
                               language="tally")
        return value  # FunctionRef, UserData, host callables
