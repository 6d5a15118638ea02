"""The wire protocol's fast paths (kryon_core/isolation/protocol.py) give what the long ways give:
a message without tags parsed without the hook, frames read whole or in pieces, a frame larger
than a pipe written in several writes, scalar arguments taken as they are."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest

from kryon_core.isolation import protocol


def _hooked() -> tuple[Any, list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    def hook(d: dict[str, Any]) -> Any:
        seen.append(d)
        return ("tagged", d["v"]) if protocol.TAG in d else d

    return protocol.decoder(hook), seen


def test_the_hook_runs_only_for_messages_that_hold_a_tag() -> None:
    decoder, seen = _hooked()
    plain = protocol.dumps({"t": "r", "i": 1, "v": {"a": [1, "text"], "b": {}}})
    assert protocol.loads(plain[4:], decoder) == {"t": "r", "i": 1, "v": {"a": [1, "text"], "b": {}}}
    assert seen == [], "no tag in the message: no hook call"
    lookalike = protocol.dumps({"t": "r", "i": 1, "v": {"a": [1, "\\u0000 is text here"]}})
    assert protocol.loads(lookalike[4:], decoder) == {"t": "r", "i": 1, "v": {"a": [1, "\\u0000 is text here"]}}
    tagged = protocol.dumps({"t": "r", "i": 2, "v": [{protocol.TAG: "b", "v": "eA=="}]})
    assert protocol.loads(tagged[4:], decoder)["v"] == [("tagged", "eA==")]
    assert seen and all(d is not None for d in seen)
    # a NUL character in text is escaped by dumps (and raw control characters are refused by the parser),
    # so a message with one goes through the hook, which leaves plain dicts alone
    seen.clear()
    nul = protocol.dumps({"t": "r", "i": 3, "v": "a\x00b"})
    assert b"\\u0000" in nul and protocol.loads(nul[4:], decoder)["v"] == "a\x00b" and seen
    with pytest.raises(protocol.ProtocolError):
        protocol.loads(b'{"t":"r","v":{"\x00":"b","v":"eA=="}}', decoder)


def test_the_reader_takes_frames_whole_split_and_packed() -> None:
    r, w = os.pipe()
    try:
        reader = protocol.Reader(r)
        frames = [protocol.dumps({"t": "r", "i": i, "v": "x" * i}) for i in (0, 5, 300)]
        os.write(w, frames[0])
        assert protocol.loads(reader.frame()) == {"t": "r", "i": 0, "v": ""}
        os.write(w, frames[1] + frames[2])  # two frames in one read
        assert protocol.loads(reader.frame())["i"] == 5
        assert protocol.loads(reader.frame())["i"] == 300
        big = protocol.dumps({"t": "r", "i": 9, "v": "y" * 200_000})
        os.write(w, big[:3])  # a header split across reads
        threading.Thread(target=protocol.write_frame, args=(w, big[3:])).start()
        assert protocol.loads(reader.frame())["v"] == "y" * 200_000
        os.close(w)
        w = -1
        with pytest.raises(EOFError):
            reader.frame()
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_write_frame_writes_a_frame_larger_than_the_pipe() -> None:
    r, w = os.pipe()
    frame = protocol.dumps({"t": "r", "i": 1, "v": "z" * (1 << 20)})
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(protocol.read_exact(r, len(frame))))
    reader.start()
    try:
        protocol.write_frame(w, frame)
        reader.join(30)
        assert got == [frame]
    finally:
        os.close(r)
        os.close(w)


def test_encode_args_matches_encode_value() -> None:
    def export(obj: Any) -> Any:
        raise protocol.ValueRefused("no")

    args = [1, 2.5, True, None, "text", [1, (2, 3)], {"k": b"x"}, float("nan")]
    fast = protocol.encode_args(args, export, max_size=100)
    slow = [protocol.encode_value(a, export, max_size=100) for a in args]
    assert repr(fast) == repr(slow)
    with pytest.raises(protocol.ValueRefused) as info:
        protocol.encode_args(["x" * 101], export, max_size=100)
    assert info.value.kind == "size"
    with pytest.raises(protocol.ValueRefused):
        protocol.encode_args([object()], export)
