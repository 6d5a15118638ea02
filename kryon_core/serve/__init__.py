"""``kryon serve APP``: the app's document as a live web page on localhost,
with an inspector panel beside it.

Standard library only, no front-end build step: a threaded HTTP server gives
the page and its static files (``static/``), the document as JSON
(``/state``), the inspector's data (``/inspector``), one Server-Sent Events
stream (``/events``) that pushes the document after every change and the
inspector's data every second, ``POST /event`` through which clicks and
input reach the scripts, and ``POST /reload`` behind the inspector's reload
buttons. A clock thread advances the document in real time (timers and
animations run while the page is open) and samples each engine's memory.
Every touch of the app happens under one lock: scripts never run on two
threads at once.

POSTs must carry ``Content-Type: application/json`` and, when the browser
sends an ``Origin``, come from the page's own origin: another web site open
in the same browser cannot drive the app (a cross-site JSON POST needs a
CORS preflight, which this server never grants).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..app import App
from ..errors import DOMError, ScriptError
from ..policy import SecurityPolicy
from .inspector import MemoryHistory, snapshot

__all__ = ["LiveApp", "make_server", "serve"]

STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8"}
#: seconds between two pushes of the inspector's data
INSPECTOR_PERIOD = 1.0


def _static(name: str) -> bytes | None:
    """A file of ``static/`` by bare name (no paths: nothing else is reachable)."""
    if "/" in name or name.startswith(".") or Path(name).suffix not in STATIC_TYPES:
        return None
    resource = resources.files(__package__).joinpath("static").joinpath(name)
    return resource.read_bytes() if resource.is_file() else None


class LiveApp:
    """An app shared by the HTTP threads, the clock thread and the pushers."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.version = 0
        self.stopped = False
        self.memory = MemoryHistory()
        app.document.observe(self._on_change)
        with self.lock:
            self.memory.sample(app)

    def _on_change(self, kind: str, details: dict[str, Any]) -> None:
        with self.changed:
            self.version += 1
            self.changed.notify_all()

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {"tree": _numbered(self.app.document), "version": self.version, "errors": self.app.errors[-5:]}

    def inspector(self) -> dict[str, Any]:
        with self.lock:
            return snapshot(self.app, self.memory)

    def handle(self, event: dict[str, Any]) -> None:
        with self.lock:
            try:
                number = int(event["number"])
                doc = self.app.document
                if event.get("type") == "click":
                    doc.click(number)
                elif event.get("type") == "input":
                    doc.set_property(number, "value", str(event.get("value", "")))
                    doc.dispatch_event(number, "input", str(event.get("value", "")))
                else:
                    raise DOMError(f"unknown event type {event.get('type')!r}")
            except ScriptError as exc:  # DOMError included
                self.app.record_failure(f"event {json.dumps(event)}", exc)
                self._on_change("error", {})
            except (KeyError, TypeError, ValueError) as exc:
                self.app.record_failure(f"event {json.dumps(event)}: {type(exc).__name__}: {exc}")
                self._on_change("error", {})

    def reload(self, script_id: str) -> dict[str, Any]:
        """Reload one script from its file (the inspector's button)."""
        with self.lock:
            path = self.app.scripts.get(script_id)
            if path is None:
                return {"ok": False, "error": f"no script '{script_id}' was loaded from a file"}
            before = len(self.app.failures)
            ok = self.app.reload(path)
            self._on_change("reload", {})
            error = self.app.failures[-1].message if len(self.app.failures) > before else None
            return {"ok": ok, "error": error}

    def run_clock(self, tick: float = 0.016) -> None:
        last = time.monotonic()
        while not self.stopped:
            time.sleep(tick)
            now = time.monotonic()
            with self.lock:
                self.app.document.advance((now - last) * 1000.0)
                if self.memory.due(time.time()):
                    self.memory.sample(self.app)
            last = now

    def wait_change(self, seen: int, timeout: float) -> int:
        with self.changed:
            self.changed.wait_for(lambda: self.version != seen or self.stopped, timeout=timeout)
            return self.version


def _numbered(doc: Any) -> dict[str, Any]:
    """The document tree with each element's number (the page sends it back)."""

    def walk(number: int) -> dict[str, Any]:
        node: dict[str, Any] = doc.to_dict(number)
        node.pop("children", None)
        node["number"] = number
        node["children"] = [walk(c) for c in doc.element(number).children]
        return node

    return walk(doc.root.number)


def make_server(live: LiveApp, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, value: Any, status: int = HTTPStatus.OK) -> None:
            self._send(status, json.dumps(value, default=repr).encode(), "application/json")

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/":
                self._send(HTTPStatus.OK, _static("index.html") or b"", STATIC_TYPES[".html"])
            elif path == "/state":
                self._json(live.state())
            elif path == "/inspector":
                self._json(live.inspector())
            elif path == "/events":
                self._stream()
            elif path.startswith("/static/") and (body := _static(path.removeprefix("/static/"))) is not None:
                self._send(HTTPStatus.OK, body, STATIC_TYPES[Path(path).suffix])
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")

        def _push(self, kind: str, value: Any) -> None:
            self.wfile.write(f"event: {kind}\ndata: {json.dumps(value, default=repr)}\n\n".encode())

        def _stream(self) -> None:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            seen = -1
            inspected = 0.0
            try:
                while not live.stopped:
                    version = live.wait_change(seen, timeout=INSPECTOR_PERIOD)
                    if version != seen:
                        seen = version
                        time.sleep(0.01)  # coalesce a burst of changes into one push
                        self._push("document", live.state())
                    if time.monotonic() - inspected >= INSPECTOR_PERIOD:
                        inspected = time.monotonic()
                        self._push("inspector", live.inspector())
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return

        def _read_json(self) -> dict[str, Any] | None:
            """The request's JSON object, or None after answering a refused request."""
            kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            origin = self.headers.get("Origin")
            if kind != "application/json":
                self._send(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, b"send application/json", "text/plain")
                return None
            if origin is not None and urlsplit(origin).netloc != self.headers.get("Host"):
                self._send(HTTPStatus.FORBIDDEN, b"cross-origin requests are refused", "text/plain")
                return None
            length = int(self.headers.get("Content-Length") or 0)
            try:
                value = json.loads(self.rfile.read(min(length, 1 << 20)) or b"{}")
            except ValueError:
                self._send(HTTPStatus.BAD_REQUEST, b"bad json", "text/plain")
                return None
            return value if isinstance(value, dict) else {}

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            if path not in ("/event", "/reload"):
                self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")
                return
            body = self._read_json()
            if body is None:
                return
            if path == "/event":
                live.handle(body)
                self._send(HTTPStatus.NO_CONTENT, b"", "text/plain")
            else:
                self._json(live.reload(str(body.get("script", ""))))

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def serve(
    directory: Path, *, host: str = "127.0.0.1", port: int = 8765, play: bool = False,
    policy: SecurityPolicy | None = None, plugins: Iterable[Any] = (),
) -> int:
    """Serve the app until Ctrl-C. The port is taken before the app loads,
    so a busy port fails at once (an ``OSError``)."""
    holder: dict[str, LiveApp] = {}
    server = make_server(_Deferred(holder), host, port)  # type: ignore[arg-type]
    try:
        app = App.load(directory, policy=policy, plugins=plugins)
        if play:
            app.play()
        live = holder["live"] = LiveApp(app)
    except BaseException:
        server.server_close()
        raise
    clock = threading.Thread(target=live.run_clock, daemon=True)
    clock.start()
    print(f"serving {directory} at http://{host}:{server.server_address[1]}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        live.stopped = True
        server.server_close()
        app.manager.close()
    return 0


class _Deferred:
    """Stands for the LiveApp until it exists (the server is made first)."""

    def __init__(self, holder: dict[str, LiveApp]) -> None:
        self._holder = holder

    def __getattr__(self, name: str) -> Any:
        return getattr(self._holder["live"], name)
