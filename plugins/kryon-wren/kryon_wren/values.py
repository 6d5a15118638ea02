"""Value conversion between host values and Wren values.

Rules (see the README):

- Wren numbers are doubles. An integral number within 2**53 comes back as a
  Python ``int``, any other number (fractions, -0.0, NaN, infinities, and
  integral values beyond 2**53) as ``float``. A Python int beyond 2**53 is a
  :class:`~kryon_core.ConversionError`, never a rounding.
- str <-> String, list/tuple <-> List, dict <-> Map. Wren has one string
  type, read back as text, so bytes (which would come back changed) and a
  str holding a lone surrogate (not UTF-8) are a ConversionError. Map keys coming back must be strings or integral numbers
  (numbers become their decimal text, the core rule); other keys are a
  ConversionError. Host dict keys follow the core rule (str, or int as text).
- A Wren ``Fn`` becomes a :class:`FunctionRef` (language "wren", ``script``
  the owning script); handed back into the same script it is that very Fn.
- A host callable (a FunctionRef of any language, a Python function) becomes
  a Wren object with ``call(...)`` methods of arity 0..8.
- :class:`UserData` (ElementHandle too) and any other host object cross as an
  opaque Wren object and come back as the same Python object.
- Any other Wren object (an instance, a class, a range) comes back as a
  :class:`WrenObject` (a UserData) that goes back into its script as the
  same Wren object.

Conversion runs in two passes so the VM's slots are never clobbered:
``prepare`` turns a host value into plain values plus VM handles (making the
handles may call into Wren), then the VM writes it to slots; reading goes the
other way (``resolve`` after the VM read the slots).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kryon_core import ConversionError, FunctionRef, ScriptError, UserData
from kryon_core.values import int_text, value_too_large

from .plugin import LANGUAGE
from .slot_codec import HostId, decode, decode_value

if TYPE_CHECKING:
    from .state import ScriptState

MAX_SAFE = 2**53
MAX_DEPTH = 200
#: calls of a host function from Wren take at most this many arguments
MAX_HOST_ARITY = 8


class WrenObject(UserData):
    """A Wren object with no host equivalent (an instance, a class, a range),
    held for the host; passed back into its script it is the same object."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<WrenObject {self.value!r}>"


def number(d: float) -> "int | float":
    """A Wren number as a host value: integral doubles within 2**53 as int."""
    if d == d and -MAX_SAFE <= d <= MAX_SAFE and d == int(d) and (d != 0.0 or math.copysign(1.0, d) > 0):
        return int(d)
    return d


def check_number(value: int, script: str | None = None) -> float:
    if -MAX_SAFE <= value <= MAX_SAFE:
        return float(value)
    raise ConversionError(
        f"integer {int_text(value)} cannot be represented exactly in wren (beyond 2**53)", language=LANGUAGE, script=script
    )


def _needs_prepare(value: Any) -> bool:
    t = type(value)
    return not (t is str or t is float or t is bool or value is None)


def _too_large(state: "ScriptState", size: int, kind: str) -> Exception:
    return value_too_large(size, state.policy.max_value_size or 0, kind=kind, language=LANGUAGE, script=state.script_id)


def prepare(state: "ScriptState", value: Any, _seen: set[int] | None = None, _depth: int = 0) -> Any:
    """A host value as something ``WrenVM.set_slot`` can write (handles made now);
    strings, lists and maps beyond the policy's max_value_size are a SizeLimitError."""
    t = type(value)
    if value is None or t is bool or t is float:
        return value
    if t is str:
        limit = state.policy.max_value_size
        if limit is not None and len(value) > limit:
            raise _too_large(state, len(value), "string")
        return value
    if t is int:
        return check_number(value, state.script_id)
    if isinstance(value, (bytes, bytearray)):
        # Wren has one string type, read back as text: bytes would come back
        # changed (as str, invalid UTF-8 replaced), so they are refused
        raise ConversionError(f"a {t.__name__} cannot cross into wren, whose strings are text: decode it first",
                              language=LANGUAGE, script=state.script_id)
    if isinstance(value, str):
        limit = state.policy.max_value_size
        if limit is not None and len(value) > limit:
            raise _too_large(state, len(value), "string")
        return str(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return check_number(int(value), state.script_id)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (list, tuple, dict)):
        limit = state.policy.max_value_size
        if limit is not None and len(value) > limit:
            raise _too_large(state, len(value), "map" if isinstance(value, dict) else "list")
        if _depth > MAX_DEPTH:
            raise ConversionError("value nested too deeply to cross into wren", language=LANGUAGE)
        seen = _seen if _seen is not None else set()
        key = id(value)
        if key in seen:
            raise ConversionError(f"cyclic {t.__name__} cannot cross into wren", language=LANGUAGE)
        seen.add(key)
        try:
            if isinstance(value, dict):
                return {_dict_key(k): prepare(state, v, seen, _depth + 1) for k, v in value.items()}
            return [prepare(state, v, seen, _depth + 1) for v in value]
        finally:
            seen.discard(key)
    return state.host_handle(value)


def _dict_key(key: Any) -> str:
    from kryon_core.values import dict_key

    return dict_key(key, LANGUAGE)


def resolve(state: "ScriptState", raw: Any, _depth: int = 0) -> Any:
    """A value read by ``WrenVM.get_slot`` as a host value (sizes checked as
    in ``prepare``). When it fails, the handles in ``raw`` are released (what
    a failed resolve made of them is garbage): none stays pinned."""
    t = type(raw)
    if t is float:
        return number(raw)
    if raw is None or t is bool:
        return raw
    if t is HostId:  # a HostRef / HostFn the C side named (slot_codec.c 'r'): as from_handle's kind >= 0
        return state.objects[raw]
    if t is str:
        limit = state.policy.max_value_size
        if limit is not None and len(raw) > limit:
            raise _too_large(state, len(raw), "string")
        return raw
    try:
        return _resolve(state, raw, _depth)
    except BaseException:
        release_handles(state, raw)
        raise


def _resolve(state: "ScriptState", raw: Any, _depth: int) -> Any:
    """:func:`resolve` without the release on failure (its entry does that once for the whole value)."""
    t = type(raw)
    if t is float:
        return number(raw)
    if raw is None or t is bool:
        return raw
    if t is HostId:
        return state.objects[raw]
    if t is str or t is list or t is dict:
        limit = state.policy.max_value_size
        if limit is not None and len(raw) > limit:
            raise _too_large(state, len(raw), "string" if t is str else "list" if t is list else "map")
    if t is str:
        return raw
    if t is list:
        if _depth > MAX_DEPTH:
            raise ConversionError("a Wren value nested too deeply (or cyclic) cannot cross to the host", language=LANGUAGE)
        return [_resolve(state, v, _depth + 1) for v in raw]
    if t is dict:
        if _depth > MAX_DEPTH:
            raise ConversionError("a Wren value nested too deeply (or cyclic) cannot cross to the host", language=LANGUAGE)
        out = {}
        for k, v in raw.items():
            out[_map_key(state, k)] = _resolve(state, v, _depth + 1)
        return out
    return state.from_handle(raw)


_UNPACK_DOUBLE = struct.Struct("<d").unpack_from
_UNPACK_U32 = struct.Struct("<I").unpack_from
_copysign = math.copysign


def resolve_encoded(state: "ScriptState", data: bytes, count: int) -> list[Any]:
    """The ``count`` values encoded in ``data`` (csrc/slot_codec.c) as host
    values: for each, what :func:`resolve` gives for what
    ``slot_codec.decode`` gives, in one pass. A foreign method's numbers,
    strings and host objects (the arguments of the DOM API) are converted
    inline; anything else is decoded and resolved as a value of its own."""
    limit = state.policy.max_value_size
    args: list[Any] = []
    append = args.append
    position = 0
    decoded: list[Any] | None = None  # values decoded whole (not inline): released if the call fails
    try:
        for _ in range(count):
            tag = data[position]
            if tag == 0x64:  # 'd', converted as number() does
                d = _UNPACK_DOUBLE(data, position + 1)[0]
                position += 9
                append(int(d) if d.is_integer() and -MAX_SAFE <= d <= MAX_SAFE and (d or _copysign(1.0, d) > 0) else d)
            elif tag == 0x72:  # 'r': a HostRef / HostFn, as from_handle's kind >= 0
                position += 5
                append(state.objects[_UNPACK_U32(data, position - 4)[0]])
            elif tag == 0x73:  # 's'
                start = position + 5
                position = start + _UNPACK_U32(data, position + 1)[0]
                text = data[start:position].decode("utf-8", "replace")
                if limit is not None and len(text) > limit:
                    raise _too_large(state, len(text), "string")
                append(text)
            else:
                value, position = decode_value(data, position, state.vm._adopt_handle)
                if decoded is None:
                    decoded = []
                decoded.append(value)
                append(resolve(state, value))
    except BaseException:
        # the values after the failing one were never read, and what the
        # failed call made of the earlier ones is garbage: release the
        # handles the C side made for them, or their objects stay pinned
        if decoded is not None:
            release_handles(state, decoded)
        _release_unread(state, data, position, count - len(args) - 1)
        raise
    return args


_ONE_NUMBER = b"l\x01\x00\x00\x00d"  # a list of one number: Kryon.call(name, [x])


def resolve_call_args(state: "ScriptState", data: bytes, count: int) -> list[Any]:
    """Kryon.call's ``count`` encoded arguments as ``[name, *args]``, the
    arguments spread by bridge.py's rule (one List argument is the argument
    list) and resolved: the foreign method's ``decode_args`` itself
    (state._call_foreign), so a ScriptError is reported as a foreign method
    reports it (``state.pending``, a RuntimeError for Wren).

    ``Kryon.call(name, [numbers])``, the usual call, is read in one pass;
    anything else is decoded, then resolved as before (sizes checked when
    the policy sets max_value_size). When resolving fails, every handle
    made for the arguments is released."""
    # sizes: a name of at most ``limit`` UTF-8 bytes has at most ``limit``
    # characters and a list of at most ``limit`` numbers is within it too;
    # anything larger is left to the general way, which raises the error
    limit = state.policy.max_value_size
    if count == 2 and data[0] == 0x73 and (limit is None or _UNPACK_U32(data, 1)[0] <= limit):  # 's': the name
        length = _UNPACK_U32(data, 1)[0]
        position = 5 + length
        if data[position:position + 6] == _ONE_NUMBER and (limit is None or limit >= 1):
            d = _UNPACK_DOUBLE(data, position + 6)[0]
            return [data[5:position].decode("utf-8", "replace"),
                    int(d) if d.is_integer() and -MAX_SAFE <= d <= MAX_SAFE and (d or _copysign(1.0, d) > 0) else d]
        if data[position] == 0x6C and (limit is None or _UNPACK_U32(data, position + 1)[0] <= limit):  # 'l': the list
            items = _UNPACK_U32(data, position + 1)[0]
            position += 5
            out: list[Any] = [data[5:5 + length].decode("utf-8", "replace")]
            append = out.append
            for _ in range(items):
                if data[position] != 0x64:  # not a number: the general way below
                    break
                d = _UNPACK_DOUBLE(data, position + 1)[0]
                position += 9
                append(int(d) if d.is_integer() and -MAX_SAFE <= d <= MAX_SAFE and (d or _copysign(1.0, d) > 0) else d)
            else:
                return out
    try:
        return _resolve_call_args(state, decode(data, count, state.vm._adopt_handle))
    except ScriptError as exc:
        state.pending = exc  # the host caller gets the error itself back
        raise RuntimeError(str(exc)) from None


#: the most ``Kryon.call`` prefixes a script's cache keeps (:func:`call_prefix`)
CALL_PREFIXES = 64


def call_prefix(state: "ScriptState", data: bytes, prefixes: dict[bytes, str]) -> str | None:
    """The name of ``Kryon.call(name, [number])`` encoded in ``data``, the
    prefix before the number remembered in ``prefixes`` (so the next call of
    that name is one dictionary look-up of ``data[:-8]``: equal prefixes
    are the same name and a list of one number, the number in the last 8
    bytes); None for any other call (resolve_call_args then decodes it).
    A name over the policy's ``max_value_size`` is never remembered."""
    limit = state.policy.max_value_size
    if len(data) < 19 or data[0] != 0x73 or (limit is not None and limit < 1):  # 's': the name
        return None
    length = _UNPACK_U32(data, 1)[0]
    position = 5 + length
    if len(data) != position + 14 or data[position:position + 6] != _ONE_NUMBER or (
            limit is not None and length > limit):
        return None
    name = data[5:position].decode("utf-8", "replace")
    if len(prefixes) >= CALL_PREFIXES:
        prefixes.clear()
    prefixes[data[:-8]] = name
    return name


def _resolve_call_args(state: "ScriptState", raw: list[Any]) -> list[Any]:
    try:
        rest = raw[1:]
        if len(rest) == 1 and type(rest[0]) is list and state.policy.max_value_size is None:
            name = raw[0] if type(raw[0]) is str else resolve(state, raw[0])
            return [name, *[resolve(state, a, 1) for a in rest[0]]]
        name = resolve(state, raw[0])
        args = [resolve(state, a) for a in rest]
        if len(args) == 1 and isinstance(args[0], list):
            return [name, *args[0]]
        return [name, *args]
    except BaseException:
        # all arguments were decoded first: the handles of those not
        # resolved yet (and of what was made of the others) go now
        release_handles(state, raw)
        raise


def _release_unread(state: "ScriptState", data: bytes, position: int, count: int) -> None:
    values = []
    for _ in range(count):
        value, position = decode_value(data, position, state.vm._adopt_handle)
        values.append(value)
    release_handles(state, values)


def release_handles(state: "ScriptState", raw: Any) -> None:
    """Releases every handle in decoded values (lists, maps, their keys) of
    a foreign call that failed before the host function got them. Each was
    made for this one call (slot_codec.c makes a handle per value encoded),
    so what the script or the host holds is never among them. A FunctionRef
    or WrenObject the failed resolve made of one is garbage; should one be
    reached anyway, a released handle (``ptr`` 0) is never handed back into
    Wren (``ScriptState.host_handle``) and the FunctionRef refuses to run
    (``calls.fn_ref``)."""
    from .vm import Handle

    values = [raw]
    while values:
        value = values.pop()
        t = type(value)
        if t is list or t is tuple:
            values.extend(value)
        elif t is dict:
            values.extend(value.keys())  # a class or a range may be a key
            values.extend(value.values())
        elif isinstance(value, Handle):
            value.release()


def _map_key(state: "ScriptState", key: Any) -> str:
    if type(key) is str:
        return key
    if type(key) is float and key == key and not math.isinf(key) and key == int(key):
        return str(int(key))
    if hasattr(key, "release") and not isinstance(key, (tuple, bool)):
        key.release()
    raise ConversionError(f"a Wren map key {key!r} is not a string or an integral number", language=LANGUAGE)


def host_callable(value: Any) -> bool:
    return isinstance(value, FunctionRef) or (callable(value) and not isinstance(value, (type, UserData)))


Convert = Callable[[Any], Any]
