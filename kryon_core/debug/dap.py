"""``kryon debug``: the debugger over the Debug Adapter Protocol.

An editor (VS Code, or any DAP client) starts ``kryon debug`` and speaks DAP
on its stdin/stdout, or connects to ``kryon debug --listen HOST:PORT``.
Messages are parsed and built with the ``dap-types`` models (install
``kryon-core[debug]``). The program runs on its own thread; this module's
thread reads requests and answers them, asking the :class:`Debugger` (which
hands questions about a stopped thread to that thread).

``launch`` arguments: ``program`` (a script file, or an app directory with
``app.json``), ``call`` (a function to call after loading), ``args`` (JSON
values for it), ``stopOnEntry``, ``sandbox`` (run under the default sandboxed
policy), ``noDebug`` (run without the debugger).
"""

from __future__ import annotations

import io
import json
import os
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, TextIO, cast

from ..errors import ScriptError
from .session import BreakpointSpec, DebugError, Debugger, Stop

__all__ = ["DapServer", "serve_stdio", "serve_tcp"]

FILTERS = [
    {"filter": "uncaught", "label": "Uncaught errors", "default": True},
    {"filter": "raised", "label": "All script errors", "default": False},
]


def _models() -> Any:
    try:
        import dap_types
        from pydantic import TypeAdapter
    except ImportError:  # the optional dependency: say how to get it
        raise SystemExit(
            "kryon debug needs the Debug Adapter Protocol types: pip install 'kryon-core[debug]'"
        ) from None
    return dap_types, TypeAdapter(dap_types.DiscriminatedProtocolMessage)


class _Channel:
    """Content-Length framed JSON messages over a pair of byte streams."""

    def __init__(self, reader: BinaryIO, writer: BinaryIO) -> None:
        self.reader, self.writer = reader, writer
        self.lock = threading.Lock()
        self.seq = 0

    def read(self) -> dict[str, Any] | None:
        length = None
        while True:
            line = self.reader.readline()
            if not line:
                return None
            line = line.strip()
            if not line:
                break
            name, _, value = line.decode("ascii", "replace").partition(":")
            if name.lower() == "content-length":
                length = int(value.strip())
        if length is None:
            return None
        body = self.reader.read(length)
        return json.loads(body.decode("utf-8")) if len(body) == length else None

    def write(self, message: dict[str, Any]) -> None:
        with self.lock:
            self.seq += 1
            message["seq"] = self.seq
            data = json.dumps(message).encode("utf-8")
            self.writer.write(b"Content-Length: %d\r\n\r\n" % len(data) + data)
            self.writer.flush()


class DapServer:
    """One debugging session: a launch, its program thread, and the requests."""

    def __init__(self, channel: _Channel, *, plugins: tuple[Any, ...] = ()) -> None:
        self.dap, self.parser = _models()
        self.channel = channel
        self.plugins = plugins  # in-process plugins for the session's manager (tests use this)
        self.manager: Any = None
        self.debugger: Debugger | None = None
        self.launch: dict[str, Any] = {}
        self.program_thread: threading.Thread | None = None
        self.done = threading.Event()

    # -- the loop ----------------------------------------------------------------------
    def serve(self) -> None:
        while not self.done.is_set():
            raw = self.channel.read()
            if raw is None:
                break
            self.handle(raw)

    def handle(self, raw: dict[str, Any]) -> None:
        command = raw.get("command", "?")
        try:
            request = self.parser.validate_python(raw)
        except Exception as exc:  # a malformed request: answer it, keep serving
            self._respond(raw, False, message=f"malformed {command} request: {exc}")
            return
        method = getattr(self, "on_" + command, None)
        if method is None:
            self._respond(raw, False, message=f"kryon debug does not support '{command}'")
            return
        try:
            body = method(request.arguments, raw.get("arguments") or {})
        except (ScriptError, DebugError) as exc:
            self._respond(raw, False, message=str(exc))
            return
        self._respond(raw, True, body)
        follow = getattr(self, "after_" + command, None)
        if follow is not None:
            follow()

    def _respond(self, raw: dict[str, Any], success: bool, body: Any = None, message: str | None = None) -> None:
        msg: dict[str, Any] = {
            "type": "response", "request_seq": raw.get("seq", 0), "success": success, "command": raw.get("command", "?"),
        }
        if message is not None:
            msg["message"] = message
        if body is not None:
            msg["body"] = body
        self.channel.write(msg)

    def event(self, name: str, body: dict[str, Any] | None = None) -> None:
        msg: dict[str, Any] = {"type": "event", "event": name}
        if body is not None:
            msg["body"] = body
        self.channel.write(msg)

    @staticmethod
    def _dump(model: Any) -> Any:
        return model.model_dump(mode="json", exclude_none=True, by_alias=True)

    # -- set-up ------------------------------------------------------------------------
    def on_initialize(self, args: Any, raw: dict[str, Any]) -> Any:
        caps = self.dap.Capabilities(
            supportsConfigurationDoneRequest=True,
            supportsConditionalBreakpoints=True,
            supportsHitConditionalBreakpoints=True,
            supportsEvaluateForHovers=True,
            supportsTerminateRequest=True,
            exceptionBreakpointFilters=[self.dap.ExceptionBreakpointsFilter(**f) for f in FILTERS],
        )
        return self._dump(caps)

    def on_launch(self, args: Any, raw: dict[str, Any]) -> Any:
        from ..manager import ScriptManager
        from ..policy import SecurityPolicy

        program = raw.get("program")
        if not isinstance(program, str) or not program:
            raise DebugError("launch needs a 'program': a script file or an app directory")
        if not os.path.exists(program):
            raise DebugError(f"no such file or directory: {program}")
        self.launch = raw
        policy = SecurityPolicy.sandboxed() if raw.get("sandbox") else SecurityPolicy.trusted()
        output = lambda language, text: self.event("output", {"category": "stdout", "output": text + "\n"})
        if os.path.isdir(program):
            self.manager = None  # the app makes its own, see _run_app
            self._app_policy = policy
        else:
            self.manager = ScriptManager(policy=policy, output=output, plugins=self.plugins)
            if not raw.get("noDebug"):
                self._attach(self.manager)
        return None

    def after_launch(self) -> None:
        self.event("initialized")

    def _attach(self, manager: Any) -> None:
        dbg = manager.debugger()
        dbg.on_stop = self._stopped
        dbg.on_breakpoint_changed = lambda bp: self.event(
            "breakpoint", {"reason": "changed", "breakpoint": self._breakpoint(bp)}
        )
        self.debugger = dbg
        for source, specs in getattr(self, "_pending", {}).items():
            dbg.set_breakpoints(source, specs)
        if getattr(self, "_filters", None) is not None:
            dbg.set_exception_breakpoints(**self._filters)

    def on_setBreakpoints(self, args: Any, raw: dict[str, Any]) -> Any:
        source = raw.get("source") or {}
        path = source.get("path") or source.get("name")
        if not path:
            raise DebugError("setBreakpoints needs source.path")
        specs = [
            BreakpointSpec(int(b["line"]), b.get("condition") or None, b.get("hitCondition") or None)
            for b in raw.get("breakpoints") or []
        ]
        if self.debugger is None:  # an app: its manager is made when it runs
            self._pending = getattr(self, "_pending", {})
            self._pending[path] = specs
            return {"breakpoints": [{"verified": False, "line": s.line, "message": "set when the app starts"} for s in specs]}
        return {"breakpoints": [self._breakpoint(bp) for bp in self.debugger.set_breakpoints(path, specs)]}

    def _breakpoint(self, bp: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"id": bp.id, "verified": bp.verified, "line": bp.line or bp.requested_line}
        if bp.message:
            out["message"] = bp.message
        if os.path.exists(bp.source):
            out["source"] = {"name": os.path.basename(bp.source), "path": os.path.abspath(bp.source)}
        return out

    def on_setExceptionBreakpoints(self, args: Any, raw: dict[str, Any]) -> Any:
        filters = set(raw.get("filters") or [])
        self._filters = {"uncaught": "uncaught" in filters, "raised": "raised" in filters}
        if self.debugger is not None:
            self.debugger.set_exception_breakpoints(**self._filters)
        return {}

    def on_configurationDone(self, args: Any, raw: dict[str, Any]) -> Any:
        self.program_thread = threading.Thread(target=self._run, name="program", daemon=True)
        self.program_thread.start()
        return None

    # -- the program ------------------------------------------------------------------------
    def _run(self) -> None:
        code = 0
        try:
            program = Path(self.launch["program"])
            if self.launch.get("stopOnEntry") and self.debugger is not None:
                self.debugger.stop_on_entry()
            if program.is_dir():
                code = self._run_app(program)
            else:
                script = self.manager.load_script_file(program)
                call = self.launch.get("call")
                if call:
                    name = call if "." in call else f"{script}.{call}"
                    result = self.manager.call_function(name, list(self.launch.get("args") or []))
                    if result is not None:
                        self.event("output", {"category": "console", "output": f"{json.dumps(result, default=repr)}\n"})
        except ScriptError as exc:
            code = 70
            self.event("output", {"category": "stderr", "output": f"error: {exc}\n"})
        finally:
            self.event("exited", {"exitCode": code})
            self.event("terminated")

    def _run_app(self, directory: Path) -> int:
        from ..app import App

        def prepare(manager: Any) -> None:
            self.manager = manager
            if not self.launch.get("noDebug"):
                self._attach(manager)
                if self.launch.get("stopOnEntry") and self.debugger is not None:
                    self.debugger.stop_on_entry()

        out = _OutputStream(lambda text: self.event("output", {"category": "stdout", "output": text}))
        app = App.load(directory, policy=self._app_policy, out=cast(TextIO, out), on_manager=prepare)
        app.play()
        for problem in app.errors:
            self.event("output", {"category": "stderr", "output": f"error: {problem}\n"})
        return 70 if app.errors else 0

    # -- threads and stops ------------------------------------------------------------------
    def _stopped(self, stop: Stop) -> None:
        body: dict[str, Any] = {"reason": stop.reason, "threadId": stop.thread, "allThreadsStopped": False}
        if stop.breakpoints:
            body["hitBreakpointIds"] = list(stop.breakpoints)
        if stop.description:
            body["description"] = stop.description
        if stop.error is not None:
            body["text"] = str(stop.error)
        self.event("stopped", body)

    def on_threads(self, args: Any, raw: dict[str, Any]) -> Any:
        threads = dict(self.debugger.threads()) if self.debugger is not None else {}
        if self.program_thread is not None and self.program_thread.ident is not None:
            threads.setdefault(self.program_thread.ident, "program")
        return {"threads": [{"id": ident, "name": name} for ident, name in sorted(threads.items())]}

    def on_stackTrace(self, args: Any, raw: dict[str, Any]) -> Any:
        frames = self._dbg().stack(int(raw["threadId"]))
        start = int(raw.get("startFrame") or 0)
        levels = int(raw.get("levels") or 0) or len(frames)
        out = []
        for f in frames[start:start + levels]:
            item: dict[str, Any] = {"id": f.id, "name": f"{f.name} [{f.language}]", "line": f.line or 0, "column": f.column or 1}
            if f.file:
                item["source"] = {"name": os.path.basename(f.file), "path": os.path.abspath(f.file)}
            elif f.script:
                item["source"] = {"name": f.script}
            out.append(item)
        return {"stackFrames": out, "totalFrames": len(frames)}

    def on_scopes(self, args: Any, raw: dict[str, Any]) -> Any:
        return {"scopes": [
            {"name": s.name, "variablesReference": s.reference, "expensive": s.expensive}
            for s in self._dbg().scopes(int(raw["frameId"]))
        ]}

    def on_variables(self, args: Any, raw: dict[str, Any]) -> Any:
        return {"variables": [self._variable(v) for v in self._dbg().variables(int(raw["variablesReference"]))]}

    def on_evaluate(self, args: Any, raw: dict[str, Any]) -> Any:
        frame = raw.get("frameId")
        v = self._dbg().evaluate(str(raw["expression"]), int(frame) if frame is not None else None)
        body: dict[str, Any] = {"result": v.value, "type": v.type, "variablesReference": v.reference}
        if v.count is not None:
            body["indexedVariables" if v.type in ("table", "list", "Array", "List") else "namedVariables"] = v.count
        return body

    @staticmethod
    def _variable(v: Any) -> dict[str, Any]:
        return {"name": v.name, "value": v.value, "type": v.type, "variablesReference": v.reference}

    def on_continue(self, args: Any, raw: dict[str, Any]) -> Any:
        self._dbg().resume(int(raw["threadId"]), "continue")
        return {"allThreadsContinued": False}

    def on_next(self, args: Any, raw: dict[str, Any]) -> Any:
        self._dbg().resume(int(raw["threadId"]), "next")
        return None

    def on_stepIn(self, args: Any, raw: dict[str, Any]) -> Any:
        self._dbg().resume(int(raw["threadId"]), "stepIn")
        return None

    def on_stepOut(self, args: Any, raw: dict[str, Any]) -> Any:
        self._dbg().resume(int(raw["threadId"]), "stepOut")
        return None

    def on_pause(self, args: Any, raw: dict[str, Any]) -> Any:
        thread = raw.get("threadId")
        self._dbg().pause(int(thread) if thread else None)
        return None

    def on_disconnect(self, args: Any, raw: dict[str, Any]) -> Any:
        self._end()
        return None

    def on_terminate(self, args: Any, raw: dict[str, Any]) -> Any:
        self._end()
        return None

    def after_disconnect(self) -> None:
        self.done.set()

    def after_terminate(self) -> None:
        self.event("terminated")
        self.done.set()

    def _end(self) -> None:
        if self.debugger is not None:
            self.debugger.detach()

    def _dbg(self) -> Debugger:
        if self.debugger is None:
            raise DebugError("no program is being debugged (launch it first, without noDebug)")
        return self.debugger


class _OutputStream(io.TextIOBase):
    """A text stream that sends what is written as output events (apps print to one)."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        super().__init__()
        self.emit = emit

    def write(self, text: str) -> int:
        if text:
            self.emit(text)
        return len(text)


def serve_stdio() -> int:
    """Serve one session on this process's stdin and stdout."""
    server = DapServer(_Channel(sys.stdin.buffer, sys.stdout.buffer))
    sys.stdout = sys.stderr  # nothing else may write to the protocol stream
    server.serve()
    return 0


def serve_tcp(host: str, port: int, *, ready: Callable[[int], None] | None = None) -> int:
    """Accept one client on ``host:port`` and serve its session."""
    with socket.create_server((host, port)) as listener:
        actual = listener.getsockname()[1]
        print(f"kryon debug: listening on {host}:{actual}", file=sys.stderr, flush=True)
        if ready is not None:
            ready(actual)
        conn, _ = listener.accept()
        with conn:
            stream = conn.makefile("rwb")
            DapServer(_Channel(stream, stream)).serve()  # type: ignore[arg-type]
    return 0
