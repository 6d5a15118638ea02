"""``kryon serve APP``: the app's document as a live web page on localhost.

Standard library only: a threaded HTTP server gives the page, the document
as JSON (``/state``), a Server-Sent Events stream that pushes the document
after every change (``/events``), and ``POST /event`` through which clicks
and input reach the scripts. A clock thread advances the document in real
time, so timers and animations run while the page is open. Every touch of
the app happens under one lock: scripts never run on two threads at once.
"""

from __future__ import annotations

import json
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .app import App
from .errors import DOMError, ScriptError
from .policy import SecurityPolicy

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Kryon</title>
<style>
 body { font-family: sans-serif; margin: 2em; }
 .k-panel, .k-app { display: block; } .k-row { display: flex; gap: .5em; margin: .5em 0; }
 .k-list { list-style: none; padding: 0; } .k-item { padding: .2em; cursor: pointer; }
 .k-item.done { text-decoration: line-through; color: #888; }
 .k-bar { height: .6em; background: #4a8; transition: width .1s; }
 #k-errors { color: #b00; white-space: pre-wrap; }
</style></head>
<body><div id="k-root"></div><div id="k-errors"></div>
<script>
const TAGS = {button: "button", input: "input", list: "ul", item: "li", header: "h1", label: "div",
              text: "span", checkbox: "input", link: "a", image: "img"};
function tagFor(node) { return (TAGS[node.type] || "div").toUpperCase(); }
// Patch the page in place, element by element (keyed by element number):
// replacing the tree on every push would swallow a click whose mousedown and
// mouseup land on two different copies of the same button.
function update(el, node) {
  el.className = "k-" + node.type + " " + (node["class"] || []).join(" ");
  el.dataset.number = node.number;
  if (node.id) el.id = node.id; else el.removeAttribute("id");
  const props = node.properties || {};
  if (node.type === "input") {
    if (document.activeElement !== el) el.value = props.value ?? "";  // never under the user's caret
    if (props.placeholder) el.placeholder = props.placeholder;
  } else if (node.type === "checkbox") {
    el.type = "checkbox"; el.checked = !!props.checked;
  } else if (props.text !== undefined && !(node.children || []).length) {
    if (el.textContent !== String(props.text)) el.textContent = props.text;
  }
  if (node.type === "bar") el.style.width = (props.width || 0) + "%";
  if (typeof node.style === "object" && node.style) Object.assign(el.style, node.style);
  sync(el, node.children || []);
  return el;
}
function sync(parent, nodes) {
  const byNumber = new Map();
  for (const child of parent.children) byNumber.set(+child.dataset.number, child);
  nodes.forEach((node, i) => {
    let el = byNumber.get(node.number);
    if (!el || el.tagName !== tagFor(node)) el = document.createElement(TAGS[node.type] || "div");
    update(el, node);
    if (parent.children[i] !== el) parent.insertBefore(el, parent.children[i] || null);
  });
  while (parent.children.length > nodes.length) parent.lastElementChild.remove();
}
// Events go one after another, so the server sees them in the order the user made them
// (an input change before the click that reads it).
let queue = Promise.resolve();
function send(event) {
  queue = queue.then(() => fetch("/event", {method: "POST", headers: {"content-type": "application/json"},
                                            body: JSON.stringify(event)})).catch(() => {});
  return queue;
}
document.addEventListener("click", (e) => {
  const target = e.target.closest("[data-number]");
  if (target && target.tagName !== "INPUT") send({type: "click", number: +target.dataset.number});
});
document.addEventListener("change", (e) => {
  const target = e.target.closest("[data-number]");
  if (target) send({type: "input", number: +target.dataset.number, value: e.target.value});
});
function show(state) {
  sync(document.getElementById("k-root"), [state.tree]);
  document.getElementById("k-errors").textContent = (state.errors || []).join("\\n");
  document.body.dataset.version = state.version;
}
fetch("/state").then((r) => r.json()).then(show);
new EventSource("/events").onmessage = (m) => show(JSON.parse(m.data));
</script></body></html>
"""


class LiveApp:
    """An app shared by the HTTP threads, the clock thread and the pushers."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.version = 0
        self.stopped = False
        app.document.observe(self._on_change)

    def _on_change(self, kind: str, details: dict[str, Any]) -> None:
        with self.changed:
            self.version += 1
            self.changed.notify_all()

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {"tree": _numbered(self.app.document), "version": self.version, "errors": self.app.errors[-5:]}

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
            except (KeyError, TypeError, ValueError, DOMError, ScriptError) as exc:
                self.app.errors.append(f"event {event!r}: {exc}")
                self._on_change("error", {})

    def run_clock(self, tick: float = 0.016) -> None:
        last = time.monotonic()
        while not self.stopped:
            time.sleep(tick)
            now = time.monotonic()
            with self.lock:
                self.app.document.advance((now - last) * 1000.0)
            last = now

    def wait_change(self, seen: int, timeout: float) -> int:
        with self.changed:
            self.changed.wait_for(lambda: self.version != seen or self.stopped, timeout=timeout)
            return self.version


def _numbered(doc: Any) -> dict[str, Any]:
    """The document tree with each element's number (the page sends it back)."""

    def walk(number: int) -> dict[str, Any]:
        node = doc.to_dict(number)
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
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/":
                self._send(HTTPStatus.OK, PAGE.encode(), "text/html; charset=utf-8")
            elif self.path == "/state":
                self._send(HTTPStatus.OK, json.dumps(live.state(), default=repr).encode(), "application/json")
            elif self.path == "/events":
                self._stream()
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")

        def _stream(self) -> None:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            seen = -1
            try:
                while not live.stopped:
                    version = live.wait_change(seen, timeout=15.0)
                    if version == seen:
                        self.wfile.write(b": keep-alive\n\n")
                    else:
                        seen = version
                        time.sleep(0.01)  # coalesce a burst of changes into one push
                        payload = json.dumps(live.state(), default=repr)
                        self.wfile.write(f"data: {payload}\n\n".encode())
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return

        def do_POST(self) -> None:
            if self.path != "/event":
                self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                event = json.loads(self.rfile.read(min(length, 1 << 20)) or b"{}")
            except ValueError:
                self._send(HTTPStatus.BAD_REQUEST, b"bad json", "text/plain")
                return
            live.handle(event if isinstance(event, dict) else {})
            self._send(HTTPStatus.NO_CONTENT, b"", "text/plain")

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def serve(
    directory: Path, *, host: str = "127.0.0.1", port: int = 8765, play: bool = False,
    policy: SecurityPolicy | None = None,
) -> int:
    """Serve the app until Ctrl-C. The port is taken before the app loads,
    so a busy port fails at once (an ``OSError``)."""
    holder: dict[str, LiveApp] = {}
    server = make_server(_Deferred(holder), host, port)
    try:
        app = App.load(directory, policy=policy)
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
