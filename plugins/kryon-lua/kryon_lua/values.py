"""Value conversion between Python and Lua (the rules of docs/values.md).

Lua to host: nil, booleans, integers, floats and strings map directly (a
string must be valid UTF-8); a table whose keys are exactly 1..n is a list,
any other table a dict (integer keys become their decimal text; other key
types are a ConversionError); an empty table is an empty list unless it was
made from a host dict; several results are a list; a Lua function is a
FunctionRef owned by the script that defined it. Tables nested deeper than
MAX_DEPTH levels, which includes every cycle, are a ConversionError.

Host to Lua: the reverse, with ints outside the number range of the runtime
(64-bit for Lua 5.4, 2**53 for LuaJIT's doubles) a ConversionError; UserData
(element handles too) crosses as itself, opaque to the script; a FunctionRef
or host callable becomes a Lua-callable function that converts both ways.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kryon_core import ConversionError, FunctionRef, MemoryLimitError, ScriptTimeoutError, UserData
from kryon_core.values import INT64_MAX, INT64_MIN, MAX_EXPANDED_ELEMENTS, MAX_SAFE_DOUBLE_INT, dict_key, int_text, value_too_large

from .plugin import LANGUAGE

if TYPE_CHECKING:
    from .runtime import Runtime

MAX_DEPTH = 100
SCALARS = frozenset((type(None), bool, int, float, str))
#: host bytes charged for a converted table and for each of its entries (a list's or dict's own
#: size and slot, about what ``kryon_core.values.approximate_size`` counts)
TABLE_COST, ENTRY_COST = 64, 24
#: tables converted between two looks at the clock
CLOCK_EVERY = 64


def lua_size(value: Any, budget: int) -> int:
    """An upper bound on the bytes ``value`` takes once converted into Lua
    (each reference to a string is a string of its own there), counted only
    until it passes ``budget``. A value nested deeper than MAX_DEPTH (a cycle
    among them) counts as 0: its conversion refuses it with a ConversionError."""
    total = 0
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is str:
            total += 48 + len(item) * (1 if item.isascii() else 4)
        elif kind is bytes:
            total += 48 + len(item)
        elif kind is list or kind is tuple or kind is dict:
            if depth >= MAX_DEPTH:
                return 0
            if kind is dict:
                total += 64 + 64 * len(item)
                stack.extend((k, depth + 1) for k in item.keys())
                stack.extend((v, depth + 1) for v in item.values())
            else:
                total += 64 + 24 * len(item)
                stack.extend((v, depth + 1) for v in item)
        else:
            total += 32
        if total > budget:
            return total
    return total


class Converter:
    """Conversions for one runtime (tables belong to one Lua state)."""

    def __init__(self, runtime: "Runtime", lua_type: Callable[[Any], Any], jit: bool) -> None:
        self.rt = runtime
        self.lua_type = lua_type
        self.jit = jit
        self.int_min, self.int_max = (-MAX_SAFE_DOUBLE_INT, MAX_SAFE_DOUBLE_INT) if jit else (INT64_MIN, INT64_MAX)
        #: the policy's max_value_size for strings, lists and maps crossing either way (None: no limit)
        self.limit = runtime.key.max_value_size
        #: host bytes one table may take once converted (the memory cap; None: no limit)
        self.budget = runtime.key.memory_limit
        #: seconds a conversion outside a call may take (a result read after its call returned, a
        #: global): half the script's time_limit, so a call and its result stay within 1.5 times
        #: it; inside a call the call's own deadline bounds it. None: no bound (set per script)
        self.grace: float | None = None

    def too_large(self, size: int, kind: str) -> Exception:
        return value_too_large(size, self.limit or 0, kind=kind, language=LANGUAGE)

    # -- Lua -> host ---------------------------------------------------------
    def from_lua(self, value: Any, depth: int = 0, spent: "list[float] | None" = None) -> Any:
        if type(value) in SCALARS:
            if type(value) is str and self.limit is not None and len(value) > self.limit:
                raise self.too_large(len(value), "string")
            return value
        kind = self.lua_type(value)
        if kind is None:  # a Python object that went into Lua and came back
            if isinstance(value, tuple):  # several results: one charge for all of them
                shared = self._spent() if spent is None else spent
                return [self.from_lua(v, depth, shared) for v in value]
            if isinstance(value, bytes):
                return value
            return value
        if kind == "table":
            return self._table(value, depth, spent)
        if kind == "function":
            return self.rt.function_ref(value)
        raise ConversionError(f"a Lua {kind} cannot cross to the host", language=LANGUAGE)

    def _spent(self) -> "list[float]":
        """The running charge of one conversion: [host bytes, elements, tables, deadline (0: none)].

        A table converts once per reference to it (the host value model has no
        shared references), so a small table of shared references (a DAG: 22
        levels of ``t = {t, t}``) expands exponentially here: every copy is
        charged, to the memory cap (bytes), to the expansion bound every value
        crossing between languages has (elements), and to the clock."""
        return [0, 0, 0, self.rt.deadline]  # outside a call (0.0), the grace starts at the first look

    def _charge(self, spent: "list[float]", entries: int) -> None:
        """Charge one more converted table of ``entries`` entries (see ``_spent``)."""
        spent[0] += TABLE_COST + ENTRY_COST * entries
        spent[1] += entries
        spent[2] += 1
        if spent[1] > MAX_EXPANDED_ELEMENTS:
            raise ConversionError(
                f"the value would have more than {MAX_EXPANDED_ELEMENTS} elements once its shared references are copied",
                language=LANGUAGE)
        if spent[2] % CLOCK_EVERY:
            return
        if not spent[3]:
            if self.grace is None:
                return
            spent[3] = time.monotonic() + self.grace
        elif time.monotonic() > spent[3]:
            raise ScriptTimeoutError(
                "converting a table for the host ran past the policy's time_limit (its shared references "
                "are copied once per reference)", language=LANGUAGE)

    def _table(self, table: Any, depth: int, spent: "list[float] | None" = None) -> Any:
        if spent is None:
            # Host memory a table takes once converted: each reference to a Lua
            # string becomes a host string of its own, so a table of many
            # references to one big string is charged to the script (its memory
            # cap, else the value size limit) before it can blow up the host.
            spent = self._spent()
        if depth >= MAX_DEPTH:
            raise ConversionError(
                f"table nested deeper than {MAX_DEPTH} levels (or cyclic) cannot cross to the host", language=LANGUAGE
            )
        n = len(table)
        budget = self.budget
        items = []
        for item in table.items():  # one host string at a time, each charged as it appears
            items.append(item)
            if self.limit is not None and len(items) > self.limit:
                raise self.too_large(len(items), "table")
            if budget is not None:
                for part in item:
                    if type(part) is str:
                        spent[0] += 48 + len(part)
                if spent[0] > budget:
                    raise self._over_budget(budget)
        self._charge(spent, len(items))
        if budget is not None and spent[0] > budget:
            raise self._over_budget(budget)
        convert = self._convert
        if len(items) == n and not (n == 0 and self.rt.is_object(table)):
            # keys are exactly 1..n: a list (Lua's # is only a border, so check)
            out = [None] * n
            for k, v in items:
                if type(k) is not int or not 1 <= k <= n:
                    break
                out[k - 1] = convert(v, depth + 1, spent)
            else:
                return out
        result = {}
        for k, v in items:
            if type(k) is float and k.is_integer():
                k = int(k)
            if type(k) is int:
                key = str(k)
            elif type(k) is str:
                key = k
            else:
                raise ConversionError(
                    f"table key {k!r} ({self.lua_type(k) or type(k).__name__}) cannot be a dict key; "
                    "only string and integer keys cross",
                    language=LANGUAGE,
                )
            result[key] = convert(v, depth + 1, spent)
        return result

    @staticmethod
    def _over_budget(budget: int) -> MemoryLimitError:
        return MemoryLimitError(
            f"a table of more than {budget} bytes (as host values) cannot cross to the host: "
            "the script's memory limit", language=LANGUAGE)

    def _convert(self, value: Any, depth: int, spent: "list[float]") -> Any:
        """A value inside a table: nested tables share the table's charge."""
        if type(value) in SCALARS:
            return self.from_lua(value, depth)
        if self.lua_type(value) == "table":
            return self._table(value, depth, spent)
        return self.from_lua(value, depth)

    # -- host -> Lua -----------------------------------------------------------
    def to_lua(self, value: Any, depth: int = 0) -> Any:
        kind = type(value)
        if kind is int:
            if not self.int_min <= value <= self.int_max:
                what = "beyond 2**53 (LuaJIT numbers are doubles)" if self.jit else "outside the 64-bit integer range"
                raise ConversionError(f"integer {int_text(value)} is {what}", language=LANGUAGE)
            return value
        if kind in SCALARS or kind is bytes:
            if self.limit is not None and (kind is str or kind is bytes) and len(value) > self.limit:
                raise self.too_large(len(value), "string")
            if kind is str and not value.isascii():
                _check_encodable(value)
            return value
        if self.limit is not None and kind in (list, tuple, dict) and len(value) > self.limit:
            raise self.too_large(len(value), "list" if kind is not dict else "map")
        if depth >= MAX_DEPTH:
            raise ConversionError(f"value nested deeper than {MAX_DEPTH} levels (or cyclic)", language=LANGUAGE)
        if kind is list or kind is tuple:
            if set(map(type, value)) <= self.rt.passthrough:  # flat scalars: one C-level copy
                try:
                    return self.rt.lua.table_from(value)
                except OverflowError:
                    raise ConversionError("an integer is outside the 64-bit integer range", language=LANGUAGE) from None
                except UnicodeEncodeError as exc:  # lupa encodes each str itself
                    raise _unencodable(exc) from None
            return self.rt.lua.table_from([self.to_lua(v, depth + 1) for v in value])
        if kind is dict:
            items = {dict_key(k, LANGUAGE): self.to_lua(v, depth + 1) for k, v in value.items()}
            for key in items:
                if not key.isascii():
                    _check_encodable(key)
            table = self.rt.lua.table_from(items)
            if not value:
                self.rt.helpers.mark_object(table)
            return table
        if isinstance(value, FunctionRef):
            return self.rt.lua_callable(value)
        if isinstance(value, UserData):
            return value
        if isinstance(value, bool) or value is None:
            return value
        if self.lua_type(value) is not None:  # already a Lua object of this runtime
            return value
        if callable(value):
            if getattr(value, "lua_ready", False):  # already made for Lua (a bound kryon method)
                return value
            return self.rt.lua_callable(value)
        if isinstance(value, (list, tuple, dict)):  # subclasses
            return self.to_lua(list(value) if not isinstance(value, dict) else dict(value), depth)
        converted = self.rt.engine.convert_unknown(value)
        return self.to_lua(converted, depth)

    def args_to_lua(self, args: Any) -> list[Any]:
        return [self.to_lua(a) for a in args]


def _unencodable(exc: UnicodeEncodeError) -> ConversionError:
    return ConversionError(
        f"a string holding a lone surrogate (U+{ord(exc.object[exc.start]):04X}) cannot cross to Lua: "
        "Lua strings are UTF-8", language=LANGUAGE)


def _check_encodable(text: str) -> None:
    """Lua strings are bytes, made from a str as UTF-8: a lone surrogate has no UTF-8 form."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _unencodable(exc) from None
