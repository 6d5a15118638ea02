"""The wire protocol between a host and an isolated worker process.

This module uses the standard library only: the worker loads it by file path
(it runs with ``python -I -S`` and cannot import ``kryon_core``), and the host
imports it as ``kryon_core.isolation.protocol``.

Framing: every message is a 4-byte big-endian length followed by that many
bytes of UTF-8 JSON (an object). JSON, never pickle: the host decodes what an
untrusted worker wrote, and JSON can only produce plain data.

Values (the Kryon value model) map onto JSON directly where they can:
None, bool, int, float (NaN and the infinities as JSON's NaN/Infinity
tokens, which Python's json reads back), str, list, dict with str keys.
Everything else is an object with the reserved key ``"\\u0000"`` (the tag):

- ``{"\\0": "b", "v": "<base64>"}``               bytes
- ``{"\\0": "f", "v": id, "n": name, "s": script}`` a worker-side function (handle id in the worker)
- ``{"\\0": "h", "v": id, "c": 0|1}``              a host-side object (UserData, FunctionRef, callable)
- ``{"\\0": "d", "v": [[key, value], ...]}``       a dict whose keys include the tag key itself

Messages are objects with ``"t"`` (type) and, for requests and replies,
``"i"`` (a request id, unique per sender). Either side may send a request
while it waits for a reply (a call into the worker can call back into the
host, which can call into the worker again): whoever waits reads messages,
serves requests that arrive, and returns when its own reply comes.
"""

from __future__ import annotations

import base64
import json
import math
import os
import struct
import sys
from collections.abc import Callable
from typing import Any

__all__ = [
    "TAG",
    "HEADER",
    "ProtocolError",
    "ValueRefused",
    "encode_value",
    "encode_args",
    "dumps",
    "call_prefix",
    "call_frame",
    "reply_frame",
    "loads",
    "write_frame",
    "read_exact",
    "ERROR_KINDS",
]

TAG = "\x00"
HEADER = struct.Struct(">I")
#: frames larger than this are a protocol violation unless a limit raises it
DEFAULT_MAX_FRAME = 256 * 1024 * 1024
#: lists and maps nested deeper than this are refused (ConversionError) before
#: they are written: deeper values would run the encoder, JSON's parser or the
#: other side's converter out of stack
MAX_DEPTH = 256
_ENCODE_ROOM = 2 * MAX_DEPTH + 64

#: the error kinds a reply can carry, mapped to kryon_core error classes on the host
ERROR_KINDS = (
    "runtime",  # ScriptRuntimeError
    "compile",  # CompileError
    "access",  # AccessDeniedError
    "timeout",  # ScriptTimeoutError
    "memory",  # MemoryLimitError
    "recursion",  # RecursionLimitError
    "size",  # SizeLimitError
    "conversion",  # ConversionError
    "notfound",  # FunctionNotFoundError
    "dom",  # DOMError
    "script",  # ScriptError
)

_SCALARS = (str, int, float, bool, type(None))


class ProtocolError(Exception):
    """The other side sent something that is not a valid message."""


class ValueRefused(Exception):
    """A value cannot cross (cycle, bad key, unknown type). ``kind`` is an ERROR_KINDS entry."""

    def __init__(self, message: str, kind: str = "conversion") -> None:
        super().__init__(message)
        self.kind = kind


def encode_value(value: Any, export: Callable[[Any], Any], *, max_size: int | None = None, room: bool = False) -> Any:
    """``value`` as JSON-ready data. ``export(obj)`` turns an object outside
    the plain model (a function, a handle) into a tag dict or raises
    :class:`ValueRefused`. Tuples become lists; int dict keys become their
    decimal text; other non-str keys, cycles, values nested deeper than
    :data:`MAX_DEPTH` and over-size strings are refused.

    The encoder recurses (two frames a level). With ``room`` (a worker, whose
    recursion limit is its script's), a value that ran out of stack is
    encoded again with room for :data:`MAX_DEPTH` levels; without it, or if
    that fails too, it is refused."""
    try:
        return _encode(value, export, max_size, None)
    except RecursionError:
        if room:
            limit = sys.getrecursionlimit()
            sys.setrecursionlimit(limit + _ENCODE_ROOM)
            try:
                return _encode(value, export, max_size, None)
            except RecursionError:
                pass
            finally:
                sys.setrecursionlimit(limit)
    raise ValueRefused("a value nested too deeply cannot cross between languages")


def encode_args(values: Any, export: Callable[[Any], Any], *, max_size: int | None = None) -> list[Any]:
    """Each of ``values`` (a call's arguments) as :func:`encode_value` makes
    it; plain scalars, most arguments, are taken as they are without the
    encoder's calls."""
    out = []
    for v in values:
        t = type(v)
        if t is int or t is float or t is bool or v is None or (t is str and (max_size is None or len(v) <= max_size)):
            out.append(v)
        else:
            out.append(encode_value(v, export, max_size=max_size))
    return out


def _encode(value: Any, export: Callable[[Any], Any], max_size: int | None, _seen: set[int] | None) -> Any:
    # ``_seen`` holds the lists and maps on the path to ``value``: a cycle
    # check, and its size is the depth
    t = type(value)
    if t is str:
        if max_size is not None and len(value) > max_size:
            raise ValueRefused(f"string of {len(value)} characters is larger than the limit ({max_size})", "size")
        return value
    if t is int or t is float or t is bool or value is None:
        return value
    if t is bytes or t is bytearray:
        if max_size is not None and len(value) > max_size:
            raise ValueRefused(f"bytes of length {len(value)} larger than the limit ({max_size})", "size")
        return {TAG: "b", "v": base64.b64encode(bytes(value)).decode("ascii")}
    if t is list or t is tuple:
        if max_size is not None and len(value) > max_size:
            raise ValueRefused(f"list of {len(value)} elements is larger than the limit ({max_size})", "size")
        if _seen is not None and len(_seen) >= MAX_DEPTH:
            _check_depth(_seen)
        for v in value:  # fast path: a list of plain scalars goes to JSON as it is
            tv = type(v)
            if tv is str:
                if max_size is not None and len(v) > max_size:
                    break
            elif tv is not int and tv is not float and tv is not bool and v is not None:
                break
        else:
            return value if t is list else list(value)
        seen = _seen if _seen is not None else set()
        key = id(value)
        if key in seen:
            raise ValueRefused("a cyclic list cannot cross between languages")
        _check_depth(seen)
        seen.add(key)
        try:
            return [_encode(v, export, max_size, seen) for v in value]
        finally:
            seen.discard(key)
    if t is dict:
        if max_size is not None and len(value) > max_size:
            raise ValueRefused(f"map of {len(value)} entries is larger than the limit ({max_size})", "size")
        seen = _seen if _seen is not None else set()
        key = id(value)
        if key in seen:
            raise ValueRefused("a cyclic dict cannot cross between languages")
        _check_depth(seen)
        seen.add(key)
        try:
            out = {}
            for k, v in value.items():
                out[_key(k)] = _encode(v, export, max_size, seen)
            if TAG in out:
                return {TAG: "d", "v": [[k, v] for k, v in out.items()]}
            return out
        finally:
            seen.discard(key)
    if isinstance(value, bool):  # subclasses of the scalars are refused below unless plain
        return bool(value)
    if isinstance(value, int) and t.__module__ == "builtins":
        return int(value)
    return export(value)


def _check_depth(path: set[int]) -> None:
    if len(path) >= MAX_DEPTH:
        raise ValueRefused(f"a value nested deeper than {MAX_DEPTH} levels cannot cross between languages")


def _key(k: Any) -> str:
    if type(k) is str:
        return k
    if type(k) is int:
        return str(k)
    if type(k) is float and k.is_integer() and not math.isinf(k):
        return str(int(k))
    raise ValueRefused(f"dict key {k!r} ({type(k).__name__}) is not a string")


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False)
_pack = HEADER.pack
# The C encoder JSONEncoder.encode would build for every message, built once
# (it keeps no state between messages: no circular-check markers): a
# trivial call's round trip encodes two messages on each side.
_c_encode: Callable[[Any, int], Any] | None = None
if json.encoder.c_make_encoder is not None:  # type: ignore[attr-defined]
    _c_encode = json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )


def _encode_text(message: Any) -> str:
    if _c_encode is None or type(message) is not dict:
        return _ENCODER.encode(message)
    return "".join(_c_encode(message, 0))


def dumps(message: Any) -> bytes:
    """A message as one frame (header + JSON). JSON's encoder recurses once a
    level, against the caller's recursion limit: a message that ran out of
    stack is encoded again with room for what :func:`encode_value` allows."""
    try:
        if _c_encode is not None and type(message) is dict:  # _encode_text inlined: every message passes here
            text = "".join(_c_encode(message, 0))
        else:
            text = _ENCODER.encode(message)
    except RecursionError:
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(limit + _PARSE_ROOM)
        try:
            text = _encode_text(message)
        finally:
            sys.setrecursionlimit(limit)
    data = text.encode("utf-8", "surrogatepass")
    return _pack(len(data)) + data


def call_prefix(script: str, function: str) -> bytes:
    """The start of a ``call`` message's body, up to its arguments: a bound
    handle's caller encodes it once (see :func:`call_frame`)."""
    return dumps({"t": "call", "script": script, "fn": function})[4:-1] + b',"a":'


def call_frame(prefix: bytes, args: list[Any], rid: int) -> bytes:
    """The frame :func:`dumps` makes of ``{"t": "call", "script": ..., "fn":
    ..., "a": args, "i": rid}``, from the :func:`call_prefix` of its script
    and function: only the arguments (already encoded scalars, so no
    recursion) and the request id are encoded per call."""
    if _c_encode is None:
        text = _ENCODER.encode(args)
    else:
        text = "".join(_c_encode(args, 0))
    body = prefix + text.encode("utf-8", "surrogatepass") + b',"i":%d}' % rid
    return _pack(len(body)) + body


def reply_frame(rid: Any, value: Any) -> bytes:
    """The frame :func:`dumps` makes of ``{"t": "r", "i": rid, "v": value}``
    for a scalar ``value`` (no recursion): the usual answer to a request."""
    if _c_encode is None:
        text = _ENCODER.encode(value)
    else:
        text = "".join(_c_encode(value, 0))
    body = b'{"t":"r","i":%d,"v":' % rid + text.encode("utf-8", "surrogatepass") + b"}"
    return _pack(len(body)) + body


def decoder(object_hook: Callable[[dict[str, Any]], Any] | None = None) -> json.JSONDecoder:
    """A JSON decoder to hand to :func:`loads` (one per channel). Its
    ``object_hook`` resolves tagged values; :func:`loads` uses it only for a
    message that holds one."""
    return json.JSONDecoder(object_hook=object_hook)


_PLAIN = json.JSONDecoder()
#: how the tag key appears in a frame's bytes (dumps escapes control characters)
_TAG_TEXT = b"\\u0000"
#: the parser's levels for a message of MAX_DEPTH: a tagged map adds two per level, plus the envelope
_PARSE_ROOM = 3 * MAX_DEPTH + 64


def loads(data: bytes, decoder: json.JSONDecoder | None = None) -> dict[str, Any]:
    """Parse one frame's body. Any malformed input is a :class:`ProtocolError`.

    JSON's parser recurses once per level and counts against the caller's
    recursion limit, which may be nearly used (a worker runs under its
    script's limit, deep inside a script's own recursion). A message within
    the depth :func:`encode_value` allows is parsed again with room for it;
    anything deeper is malformed."""
    if decoder is None or _TAG_TEXT not in data:
        # no tagged value in the message: a tag key can only be written as this
        # escape (the parser refuses a raw control character in a string), so
        # the plain parser gives the same result without a hook call per object
        decoder = _PLAIN
    try:
        text = data.decode("utf-8", "surrogatepass")
        try:
            # _decode inlined (every message of a round trip passes here): the
            # scanner reads the one value dumps wrote; anything else goes the long way
            try:
                msg, end = decoder.scan_once(text, 0)  # type: ignore[attr-defined]
            except StopIteration:
                msg = end = None
            if end != len(text):
                msg = decoder.decode(text)
        except RecursionError:
            limit = sys.getrecursionlimit()
            sys.setrecursionlimit(limit + _PARSE_ROOM)
            try:
                msg = decoder.decode(text)
            finally:
                sys.setrecursionlimit(limit)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"malformed message: {exc}") from None
    if type(msg) is not dict:
        raise ProtocolError("a message must be a JSON object")
    return msg


def write_frame(fd: int, frame: bytes) -> None:
    """One write for the whole frame (a pipe takes a small one at once); the
    rest of a large one in more."""
    n = os.write(fd, frame)
    if n == len(frame):
        return
    view = memoryview(frame)[n:]
    while view:
        n = os.write(fd, view)
        view = view[n:]


class Reader:
    """Buffered frame reader on a file descriptor (blocking)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = b""

    def frame(self) -> bytes:
        buf = self.buf
        if not buf:  # the usual case: nothing left over, one read brings the whole frame
            buf = os.read(self.fd, 1 << 16)
            if not buf:
                raise EOFError("the other side closed the channel")
            if len(buf) >= 4:
                end = 4 + HEADER.unpack_from(buf)[0]
                if len(buf) == end:
                    self.buf = b""
                    return buf[4:]
        while len(buf) < 4:
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                raise EOFError("the other side closed the channel")
            buf += chunk
        (n,) = HEADER.unpack_from(buf)
        end = 4 + n
        if len(buf) < end:
            parts = [buf]
            have = len(buf)
            while have < end:
                chunk = os.read(self.fd, max(1 << 16, min(end - have, 1 << 24)))
                if not chunk:
                    raise EOFError("the other side closed the channel")
                parts.append(chunk)
                have += len(chunk)
            buf = b"".join(parts)
        self.buf = buf[end:]
        return buf[4:end]


def read_exact(fd: int, n: int) -> bytes:
    """Read exactly ``n`` bytes; EOFError when the other side closed."""
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the channel")
        chunks.append(chunk)
        n -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def decode_bytes(tag_dict: dict[str, Any]) -> bytes:
    try:
        return base64.b64decode(tag_dict["v"], validate=True)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"bad bytes value: {exc}") from None
