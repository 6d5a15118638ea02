"""Values crossing the worker's channel (worker side, standard library only,
loaded by path like every sibling of ``worker.py``).

Outgoing, :func:`encode` turns a script's value into the protocol's JSON
(``protocol.encode_value``): a script's function becomes a handle the host
can call back (``S.handles``), a set is refused, a generator is listed.
Incoming, :func:`decode_tag` turns tagged objects back: bytes, dicts with
non-text keys, the worker's own function handles, and host values, which a
script holds as :class:`HostObject` / :class:`HostFunction` proxies. A
proxy the script drops is reported to the host with the next message
(``S.released_host``) so the host can drop what it kept for it.
"""

from __future__ import annotations

import sys
import types
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import protocol, worker_channel
else:  # loaded by worker.py (``_load_sibling``) before this module
    protocol = sys.modules["kryon_isolation_protocol"]
    worker_channel = sys.modules["kryon_isolation_worker_channel"]

TAG = protocol.TAG
S = worker_channel.S
host_request = worker_channel.host_request


class HostObject:
    """An opaque host value (UserData, an element handle) held by a script."""

    __slots__ = ("_kryon_id", "__weakref__")

    def __init__(self, hid: int) -> None:
        self._kryon_id = hid

    def __repr__(self) -> str:
        return f"<host object {self._kryon_id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HostObject) and other._kryon_id == self._kryon_id

    def __hash__(self) -> int:
        return hash(("host", self._kryon_id))


class HostFunction(HostObject):
    """A host callable (a FunctionRef into any language, a host function)."""

    __slots__ = ()

    def __call__(self, *args: Any) -> Any:
        return host_request("callh", {"h": self._kryon_id, "a": encode_args(args)})

    def __repr__(self) -> str:
        return f"<host function {self._kryon_id}>"


def _release_host(hid: int) -> None:
    S.proxies.pop(hid, None)
    S.released_host.append(hid)


def release(ids: Any) -> None:
    """The host dropped these handles of the worker's functions."""
    for hid in ids:
        fn = S.handles.pop(hid, None)
        if fn is not None:
            S.handle_ids.pop(id(fn), None)


def decode_tag(d: dict[str, Any]) -> Any:
    if TAG not in d:
        return d
    tag = d[TAG]
    if tag == "b":
        return protocol.decode_bytes(d)
    if tag == "h":
        hid = d["v"]
        ref = S.proxies.get(hid)
        obj = ref() if ref is not None else None
        if obj is None:
            obj = HostFunction(hid) if d.get("c") else HostObject(hid)
            S.proxies[hid] = weakref.ref(obj)
            weakref.finalize(obj, _release_host, hid)
        return obj
    if tag == "f":
        fn = S.handles.get(d["v"])
        if fn is None:
            raise protocol.ProtocolError(f"unknown function handle {d['v']}")
        return fn
    if tag == "d":
        return {k: v for k, v in d["v"]}
    raise protocol.ProtocolError(f"unknown tag {tag!r}")


def _export(obj: Any) -> Any:
    if isinstance(obj, HostObject):
        return {TAG: "h", "v": obj._kryon_id}
    if isinstance(obj, types.GeneratorType):
        return [encode(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        raise protocol.ValueRefused(f"a {type(obj).__name__} cannot cross between languages; use a list")
    if callable(obj) and not isinstance(obj, type):
        key = id(obj)
        hid = S.handle_ids.get(key)
        if hid is None or S.handles.get(hid) is not obj:
            hid = S.next_id
            S.next_id += 1
            S.handles[hid] = obj
            S.handle_ids[key] = hid
        name = getattr(obj, "__name__", None) or "function"
        code = getattr(obj, "__code__", None)
        script = code.co_filename if code is not None and code.co_filename in S.scripts else None
        return {TAG: "f", "v": hid, "n": str(name), "s": script}
    raise protocol.ValueRefused(f"cannot convert a {type(obj).__name__} to a host value")


def encode(value: Any) -> Any:
    t = type(value)
    if t is int or t is float or t is bool or value is None:  # a call's usual result, without the encoder's calls
        return value
    return protocol.encode_value(value, _export, max_size=S.max_value, room=True)


def encode_args(args: Any) -> list[Any]:
    """Arguments of a host request, encoded; plain scalars and host objects
    (what DOM calls pass, once each per write) without the encoder's walk."""
    out = []
    limit = S.max_value
    for a in args:
        t = type(a)
        if t is int or t is float or t is bool or a is None or (t is str and (limit is None or len(a) <= limit)):
            out.append(a)
        elif t is HostObject or t is HostFunction:
            out.append({TAG: "h", "v": a._kryon_id})
        else:
            out.append(encode(a))
    return out
