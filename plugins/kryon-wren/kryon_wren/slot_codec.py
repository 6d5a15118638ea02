"""The host side of ``wren_encode_slots`` (csrc/slot_codec.c describes the format).

A host function called from Wren gets all its arguments from one wasm call
and one read of linear memory, decoded here in one pass: the C side has
already bounded the nesting, so the recursion below is bounded too.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

_DOUBLE = struct.Struct("<d")
_U32 = struct.Struct("<I")


class HostId(int):
    """An 'r' value: the registry number of a host object the script holds
    (a HostRef or HostFn it was given), which ``values.resolve`` turns into
    the object itself as the general path (a handle, ``WrenVM.kind_of``) would."""

    __slots__ = ()


def decode(data: bytes, count: int, adopt_handle: Callable[[int], Any]) -> list[Any]:
    """The ``count`` values encoded in ``data``; objects other than lists,
    maps and strings come back as ``adopt_handle(address)``, host objects
    named by their registry number as :class:`HostId`."""
    values: list[Any] = []
    position = 0
    for _ in range(count):
        # numbers, strings and lists of numbers (Kryon.call's usual
        # arguments) decoded inline: a call of _value costs more than they do
        tag = data[position]
        if tag == 0x64:  # 'd'
            values.append(_DOUBLE.unpack_from(data, position + 1)[0])
            position += 9
        elif tag == 0x73:  # 's'
            (length,) = _U32.unpack_from(data, position + 1)
            start = position + 5
            position = start + length
            values.append(data[start:position].decode("utf-8", "replace"))
        elif tag == 0x72:  # 'r': the DOM element of Kryon.setProperty(el, ...)
            values.append(HostId(_U32.unpack_from(data, position + 1)[0]))
            position += 5
        elif tag == 0x6C and data[position + 5:position + 6] == b"d":  # a list starting with a number
            (length,) = _U32.unpack_from(data, position + 1)
            position += 5
            items = []
            for _ in range(length):
                if data[position] == 0x64:
                    items.append(_DOUBLE.unpack_from(data, position + 1)[0])
                    position += 9
                else:
                    item, position = decode_value(data, position, adopt_handle)
                    items.append(item)
            values.append(items)
        else:
            value, position = decode_value(data, position, adopt_handle)
            values.append(value)
    return values


def decode_value(data: bytes, position: int, adopt_handle: Callable[[int], Any]) -> tuple[Any, int]:
    """The value encoded at ``position`` in ``data`` (as :func:`decode`
    gives it) and the position after it."""
    tag = data[position]
    position += 1
    if tag == 0x64:  # 'd'
        return _DOUBLE.unpack_from(data, position)[0], position + 8
    if tag == 0x73:  # 's'
        (length,) = _U32.unpack_from(data, position)
        start = position + 4
        return data[start:start + length].decode("utf-8", "replace"), start + length
    if tag == 0x6E:  # 'n'
        return None, position
    if tag == 0x74:  # 't'
        return True, position
    if tag == 0x66:  # 'f'
        return False, position
    if tag == 0x6C:  # 'l'
        (count,) = _U32.unpack_from(data, position)
        position += 4
        items = []
        for _ in range(count):
            item, position = decode_value(data, position, adopt_handle)
            items.append(item)
        return items, position
    if tag == 0x6D:  # 'm'
        (count,) = _U32.unpack_from(data, position)
        position += 4
        entries: dict[Any, Any] = {}
        for _ in range(count):
            key, position = decode_value(data, position, adopt_handle)
            value, position = decode_value(data, position, adopt_handle)
            entries[tuple(key) if isinstance(key, list) else key] = value
        return entries, position
    if tag == 0x68:  # 'h'
        (address,) = _U32.unpack_from(data, position)
        return adopt_handle(address), position + 4
    if tag == 0x72:  # 'r'
        return HostId(_U32.unpack_from(data, position)[0]), position + 4
    raise ValueError(f"unknown tag {tag!r} in encoded Wren slots")
