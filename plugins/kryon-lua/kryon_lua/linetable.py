"""Which lines of Lua source hold code, without running any of it.

The source is compiled (``load``, never called) in a private Lua 5.4 state
and dumped with ``string.dump``; the dump holds every function's line table,
nested functions included, which Lua's own ``debug.getinfo(f, "L")`` cannot
reach without running the chunk. The reader follows the Lua 5.4 dump format
(lundump.c): sizes as base-128 varints, most significant group first, the
last byte marked with 0x80; per function its source, line range, code,
constants, upvalues, nested functions and debug information, whose
``lineinfo`` holds per-instruction line deltas and ``abslineinfo`` the
absolute lines where a delta would not fit. The lines of a function are
those of its instructions (as Lua's ``activelines``: the first instruction
of a vararg function, which sets up its arguments, is left out).
"""

from __future__ import annotations

import struct
import threading
from typing import Any

from kryon_core import CompileError

from .plugin import LANGUAGE

__all__ = ["code_lines"]

_SIGNATURE = b"\x1bLua\x54\x00\x19\x93\r\n\x1a\n"
_ABSLINEINFO = -0x80
# constant tags (lobject.h): nil, false, true carry no data; integers and floats 8 bytes; strings a string
_NO_DATA, _NUMBERS, _STRINGS = {0x00, 0x01, 0x11}, {0x03, 0x13}, {0x04, 0x14}

_compiler: Any = None
_compiler_lock = threading.Lock()


def code_lines(source: str, name: str) -> set[int]:
    """Every line some function of ``source`` has an instruction on."""
    global _compiler
    with _compiler_lock:
        if _compiler is None:
            import lupa.lua54

            lua = lupa.lua54.LuaRuntime(encoding=None, register_eval=False, register_builtins=False)
            _compiler = lua.eval(
                "function(src, name) local f, err = load(src, name, 't') "
                "if not f then return nil, err end return string.dump(f) end"
            )
        result = _compiler(source.encode("utf-8"), ("=" + name).encode("utf-8"))
    dumped, err = result if isinstance(result, tuple) else (result, None)
    if dumped is None:
        message = err.decode("utf-8", "replace") if isinstance(err, bytes) else str(err)
        raise CompileError(message, language=LANGUAGE, script=name)
    return _Reader(bytes(dumped)).chunk()


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise ValueError("truncated Lua dump")
        out = self.data[self.at:self.at + n]
        self.at += n
        return out

    def byte(self) -> int:
        return self.take(1)[0]

    def size(self) -> int:
        value = 0
        while True:
            b = self.byte()
            value = (value << 7) | (b & 0x7F)
            if b & 0x80:
                return value

    def string(self) -> None:
        n = self.size()
        if n:
            self.take(n - 1)

    def chunk(self) -> set[int]:
        if self.take(len(_SIGNATURE)) != _SIGNATURE:
            raise ValueError("not a Lua 5.4 dump")
        sizes = self.take(3)  # Instruction, lua_Integer, lua_Number
        if sizes != b"\x04\x08\x08":
            raise ValueError("unexpected sizes in the Lua dump")
        self.take(16)  # a test integer and a test float
        self.byte()  # the main function's upvalue count
        lines: set[int] = set()
        self.function(lines)
        return lines

    def function(self, lines: set[int]) -> None:
        self.string()  # source
        first = self.size()  # linedefined
        self.size()  # lastlinedefined
        self.byte()  # numparams
        vararg = self.byte()
        self.byte()  # maxstacksize
        self.take(4 * self.size())  # code
        for _ in range(self.size()):  # constants
            tag = self.byte()
            if tag in _NUMBERS:
                self.take(8)
            elif tag in _STRINGS:
                self.string()
            elif tag not in _NO_DATA:
                raise ValueError(f"unknown constant tag {tag} in the Lua dump")
        self.take(3 * self.size())  # upvalues: in stack, index, kind
        for _ in range(self.size()):  # nested functions
            self.function(lines)
        count = self.size()
        deltas = struct.unpack(f"{count}b", self.take(count))
        absolute = [(self.size(), self.size()) for _ in range(self.size())]
        line, absolute_at = first, iter(absolute)
        for pc, delta in enumerate(deltas):
            if delta == _ABSLINEINFO:
                line = next(absolute_at)[1]
            else:
                line += delta
            if not (vararg and pc == 0):
                lines.add(line)
        for _ in range(self.size()):  # local variables: name, start, end
            self.string()
            self.size()
            self.size()
        for _ in range(self.size()):  # upvalue names
            self.string()
