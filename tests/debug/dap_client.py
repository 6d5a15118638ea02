"""A small Debug Adapter Protocol client for the tests: it speaks to a
``kryon debug`` subprocess (or an in-process server over pipes), sends
requests, and waits for responses and events."""

from __future__ import annotations

import json
import queue
import threading
from typing import Any, BinaryIO


class DapClient:
    def __init__(self, reader: BinaryIO, writer: BinaryIO) -> None:
        self.reader, self.writer = reader, writer
        self.seq = 0
        self.responses: dict[int, dict[str, Any]] = {}
        self.events: "queue.Queue[dict[str, Any]]" = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            length = None
            while True:
                line = self.reader.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    break
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            assert length is not None
            msg = json.loads(self.reader.read(length))
            if msg["type"] == "response":
                with self._cond:
                    self.responses[msg["request_seq"]] = msg
                    self._cond.notify_all()
            else:
                self.seen.append(msg)
                self.events.put(msg)

    def request(self, command: str, timeout: float = 20, **arguments: Any) -> dict[str, Any]:
        """Send a request and return its response (success or not)."""
        self.seq += 1
        seq = self.seq
        data = json.dumps({"seq": seq, "type": "request", "command": command, "arguments": arguments}).encode()
        self.writer.write(b"Content-Length: %d\r\n\r\n" % len(data) + data)
        self.writer.flush()
        with self._cond:
            if not self._cond.wait_for(lambda: seq in self.responses, timeout):
                raise TimeoutError(f"no response to {command}")
            return self.responses.pop(seq)

    def ok(self, command: str, **arguments: Any) -> Any:
        response = self.request(command, **arguments)
        assert response["success"], f"{command} failed: {response.get('message')}"
        return response.get("body")

    def event(self, name: str, timeout: float = 20) -> dict[str, Any]:
        """The next event called ``name`` (earlier other events are skipped)."""
        while True:
            msg = self.events.get(timeout=timeout)
            if msg["event"] == name:
                return msg.get("body") or {}
