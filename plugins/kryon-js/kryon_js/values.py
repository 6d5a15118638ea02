"""Values between Python and JavaScript (the rules are in the README).

Scalars cross through the binding directly; lists, dicts and the special
values cross as JSON text with tagged objects (key ``"\\u0001k"``) for what
JSON cannot say: functions, handles, bytes, NaN/Infinity/-0, BigInt and
integral numbers beyond 2**53. The JS side of the protocol is in
``prelude.js`` (``enc``/``revive``).
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kryon_core import ConversionError, FunctionRef, SizeLimitError, UserData
from kryon_core.values import MAX_SAFE_DOUBLE_INT, dict_key, int_text

from .plugin import LANGUAGE

if TYPE_CHECKING:
    from .state import ScriptState

TAG = "\x01k"
_TAG_TEXT = "\\u0001k"
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_DEPTH = 200
_PLAIN = frozenset({int, float, str, bool, type(None)})


def number_from_js(value: float) -> "int | float":
    """The rule for JS numbers: an integral value within 2**53 is an int,
    anything else (fractions, -0, NaN, infinities, beyond 2**53) a float."""
    if value.is_integer() and -MAX_SAFE_DOUBLE_INT <= value <= MAX_SAFE_DOUBLE_INT:
        if value == 0 and math.copysign(1.0, value) < 0:
            return value
        return int(value)
    return value


def plain_str(s: str) -> bool:
    """A str the binding passes into JS exactly (no lone surrogate; the
    quickjs-ng binding keeps NUL going in, not coming out)."""
    return s.isascii() or _SURROGATE.search(s) is None


class Encoder:
    """Python value -> JSON-able tree for one script context."""

    __slots__ = ("ctx", "special", "budget")

    def __init__(self, ctx: "ScriptState") -> None:
        self.ctx = ctx
        self.special = False
        #: bytes the value may still take once built in the script (its JSON text is about that): shared
        #: sub-values are copied, so a small DAG can stand for a huge tree; it is refused before it is built
        self.budget = ctx.value_budget

    def _charge(self, size: int) -> None:
        self.budget -= size
        if self.budget < 0:
            too_big(self.ctx, "a value")

    def tree(self, value: Any, depth: int = 0, seen: "set[int] | None" = None) -> Any:
        t = type(value)
        if value is None or t is bool:
            return value
        if t is str:
            self._charge(len(value) + 2)
            return value
        if t is int:
            if -MAX_SAFE_DOUBLE_INT <= value <= MAX_SAFE_DOUBLE_INT:
                return value
            raise ConversionError(
                f"integer {int_text(value)} cannot be represented exactly in javascript (beyond 2**53)",
                language=LANGUAGE, script=self.ctx.script,
            )
        if t is float:
            if math.isfinite(value):
                return value
            self.special = True
            return {TAG: "n", "v": "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")}
        if isinstance(value, bool):
            return bool(value)
        if isinstance(value, int):
            return self.tree(int(value), depth, seen)
        if isinstance(value, float):
            return self.tree(float(value), depth, seen)
        if isinstance(value, str):
            return str(value)
        if depth > _MAX_DEPTH:
            raise ConversionError(f"a value nested deeper than {_MAX_DEPTH} levels cannot cross to javascript",
                                  language=LANGUAGE, script=self.ctx.script)
        if t is list or t is tuple or t is dict:
            self._charge(16 + 8 * len(value))
        if t is list or t is tuple:
            types = set(map(type, value))
            if types <= _PLAIN:  # a flat list of scalars: checked at C speed, dumped as is
                if int in types:
                    ints = value if len(types) == 1 else [x for x in value if type(x) is int]
                    if ints and (min(ints) < -MAX_SAFE_DOUBLE_INT or max(ints) > MAX_SAFE_DOUBLE_INT):
                        return [self.tree(x, depth + 1) for x in value]  # raises for the culprit
                if float in types:
                    floats = value if len(types) == 1 else [x for x in value if type(x) is float]
                    if not all(map(math.isfinite, floats)):
                        return [self.tree(x, depth + 1) for x in value]
                if str in types:
                    self._charge(sum(len(x) for x in value if type(x) is str))
                return value
        if isinstance(value, (list, tuple, dict)):
            seen = seen if seen is not None else set()
            key = id(value)
            if key in seen:
                raise ConversionError("a cyclic value cannot cross to javascript", language=LANGUAGE,
                                      script=self.ctx.script)
            seen.add(key)
            try:
                if isinstance(value, dict):
                    return {dict_key(k, LANGUAGE, self.ctx.script): self.tree(v, depth + 1, seen) for k, v in value.items()}
                return [self.tree(v, depth + 1, seen) for v in value]
            finally:
                seen.discard(key)
        if isinstance(value, (bytes, bytearray, memoryview)):
            self._charge(2 * len(value) + 16)
            self.special = True
            return {TAG: "y", "v": bytes(value).hex()}
        if isinstance(value, UserData):
            self.special = True
            return {TAG: "h", "i": self.ctx.userdata_id(value), "t": handle_label(value)}
        if isinstance(value, FunctionRef) or callable(value):
            self.special = True
            fid = self.ctx.own_function_id(value)
            if fid is not None:
                return {TAG: "f", "i": fid}
            return {TAG: "p", "i": self.ctx.callable_id(value), "n": getattr(value, "name", None) or getattr(value, "__name__", "")}
        converted = self.ctx.convert_unknown(value)
        return self.tree(converted, depth + 1, seen)


def handle_label(value: UserData) -> str:
    if type(value).__name__ == "ElementHandle":
        return f"ElementHandle {value.value}"
    return type(value).__name__


def decode(text: str, ctx: "ScriptState") -> Any:
    """JSON text from the prelude's ``encode`` -> Python value."""
    if _TAG_TEXT not in text:
        return json.loads(text)
    return json.loads(text, object_hook=_hook(ctx))


def _bigint(text: str, ctx: "ScriptState") -> int:
    """A BigInt's decimal text as an int: CPython parses at most
    ``sys.get_int_max_str_digits()`` digits (4,300 by default; past it a ValueError)."""
    try:
        return int(text)
    except ValueError:
        raise ConversionError(
            f"a BigInt of {len(text.lstrip('-'))} digits cannot cross to the host (Python reads at most "
            f"{sys.get_int_max_str_digits()})", language=LANGUAGE, script=ctx.script) from None


def _hook(ctx: "ScriptState") -> Callable[[dict[str, Any]], Any]:
    def hook(d: dict[str, Any]) -> Any:
        tag = d.get(TAG)
        if tag is None:
            return d
        if tag == "n":
            return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf, "0": -0.0, "-0": -0.0}[d["v"]]
        if tag == "F":
            return float(d["v"])
        if tag == "b":
            return _bigint(d["v"], ctx)
        if tag == "y":
            return bytes.fromhex(d["v"])
        if tag == "h":
            return ctx.userdata(d["i"])
        if tag == "p":
            return ctx.callable(d["i"])
        if tag == "f":
            return ctx.function_ref(d["i"], d.get("n") or "anonymous")
        return d

    return hook


def to_js(state: "ScriptState", v: Any) -> Any:
    """A host value as something the binding passes into ``state``'s context:
    a scalar, or an Object built there (strings with lone surrogates come
    boxed; ``kryon`` functions unbox them). Call inside the state's runtime."""
    t = type(v)
    if t is int:
        if INT32_MIN <= v <= INT32_MAX:
            return v
        if -MAX_SAFE_DOUBLE_INT <= v <= MAX_SAFE_DOUBLE_INT:
            return float(v)
    elif t is float or t is bool or v is None:
        return v
    elif t is str and plain_str(v):
        if state.max_value is not None and len(v) > state.max_value:
            too_big(state, "a string")
        return v
    elif isinstance(v, UserData):
        return state.make_handle(state.userdata_id(v), handle_label(v))
    enc = Encoder(state)
    tree = enc.tree(v)
    if type(tree) is int:
        return to_js(state, tree)
    if type(tree) is float or type(tree) is bool or tree is None:
        return tree
    if type(tree) is str:
        return tree if plain_str(tree) else state.box_text(json.dumps(tree))
    text = json.dumps(tree)
    if state.max_value is not None and len(text) > state.max_value:
        too_big(state, "a value")
    if not enc.special:
        return state.parse_text(text)
    return state.import_text(text)


def too_big(state: "ScriptState", what: str) -> None:
    raise SizeLimitError(f"{what} crossing between the host and the script is larger than the policy's "
                         f"max_value_size ({state.max_value} bytes as JSON) or memory_limit allows",
                         language=LANGUAGE, script=state.script)


def args_obj(state: "ScriptState", args: Any) -> Any:
    """A JS array (an Object) holding ``args`` converted exactly."""
    enc = Encoder(state)
    text = json.dumps(enc.tree(list(args)))
    if state.max_value is not None and len(text) > state.max_value:
        too_big(state, "the arguments")
    if not enc.special:
        return state.parse_text(text)
    return state.import_text(text)
