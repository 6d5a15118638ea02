"""The host side of isolation: worker processes, the re-entrant protocol,
limits, restarts, and the value handles that cross.

:class:`IsolatedRuntime` is what an engine uses. Each loaded script gets its
own worker process (the strongest boundary there is between scripts: one
script's crash, memory or CPU exhaustion never touches another's state) with
its own :class:`~kryon_core.SecurityPolicy` turned into OS limits and grants.

The host never trusts a byte the worker writes: messages are JSON
(:mod:`.protocol`), handle ids are looked up in tables the host owns, frames
past the size limit or malformed ones end the worker, and every wait has a
deadline when the policy has a time limit.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from ..engine import FunctionInfo, GarbageCollectionStats, MemoryUsage
from ..errors import (
    AccessDeniedError,
    CompileError,
    ConversionError,
    DOMError,
    FunctionNotFoundError,
    MemoryLimitError,
    RecursionLimitError,
    ScriptError,
    ScriptRuntimeError,
    ScriptTimeoutError,
    SizeLimitError,
    StackFrame,
)
from ..policy import SecurityPolicy
from ..values import FunctionRef, UserData
from . import protocol

if TYPE_CHECKING:
    from ..bridge import ScriptBridge

__all__ = ["CompilerSpec", "IsolatedRuntime", "WORKER_PATH", "limits_for", "ERROR_CLASSES"]

#: the worker program, run as ``python -I -S WORKER_PATH``
WORKER_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.py")

ERROR_CLASSES: dict[str, type[ScriptError]] = {
    "runtime": ScriptRuntimeError,
    "compile": CompileError,
    "access": AccessDeniedError,
    "timeout": ScriptTimeoutError,
    "memory": MemoryLimitError,
    "recursion": RecursionLimitError,
    "size": SizeLimitError,
    "conversion": ConversionError,
    "notfound": FunctionNotFoundError,
    "dom": DOMError,
    "script": ScriptError,
}
_KIND_OF = [(cls, kind) for kind, cls in ERROR_CLASSES.items()]

#: how long control requests (unload, gc, globals) may take when nothing else limits them
CONTROL_TIMEOUT = 10.0
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class CompilerSpec:
    """How the worker turns source into code.

    ``name`` is ``"python"`` (``ast.parse``) or ``"module:function"``: a
    function ``(source, filename) -> ast.Module | code`` imported inside the
    worker before the sandbox is armed. An AST goes through the sandbox's
    guard, a code object must be checked by the compiler itself.
    ``site`` runs ``site.main()`` first (for compilers installed in editable
    mode); ``preload`` names modules to import before arming; ``runtime_imports``
    names modules the compiled code imports at run time (Hy's ``hy``), which
    scripts are then allowed to import. ``columns``: the compiled code's
    column positions are the source's own, as errors should name them (Hy's
    1-based .kl columns), so stack frames carry them; Python's 0-based AST
    offsets are not reported.
    """

    name: str = "python"
    site: bool = False
    preload: tuple[str, ...] = ()
    runtime_imports: tuple[str, ...] = ()
    columns: bool = False


def limits_for(policy: SecurityPolicy) -> dict[str, Any]:
    """The init message's limits and grants for a policy."""
    return {
        "limits": {
            "memory": policy.memory_limit,
            "time": policy.time_limit,
            "value_size": policy.max_value_size,
        },
        "grants": {
            "file_system": policy.allow_file_system,
            "network": policy.allow_network,
            "processes": policy.allow_processes,
            "imports": policy.allow_imports,
        },
        "recursion": policy.max_recursion,
    }


class _Dead(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class _Process:
    """One worker process and its channel. Used with its script's lock held."""

    def __init__(self, runtime: "IsolatedRuntime", script: "_Script") -> None:
        self.runtime = runtime
        self.script = script
        self.ids = itertools.count(1)
        self.handles: dict[int, Any] = {}  # host handle id -> host object the worker holds
        self.handle_ids: dict[int, int] = {}  # id(obj) -> host handle id
        self.refs: "weakref.WeakValueDictionary[int, FunctionRef]" = weakref.WeakValueDictionary()
        self.exported: "weakref.WeakKeyDictionary[FunctionRef, int]" = weakref.WeakKeyDictionary()
        self.pending_release: list[int] = []
        self.dead: _Dead | None = None
        self.deadline: float | None = None
        self.control = False
        self.depth = 0
        self.hardening: dict[str, Any] = {}
        policy = script.policy
        self.max_frame = max(protocol.DEFAULT_MAX_FRAME, 4 * (policy.max_value_size or 0))
        env = {"LC_ALL": "C.UTF-8"}
        self.popen = subprocess.Popen(
            [sys.executable, "-I", "-S", WORKER_PATH],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,  # only start-up failures and fatal errors land here
            env=env,
            close_fds=True,
            start_new_session=True,
        )
        self.pid = self.popen.pid
        self.wfd = self.popen.stdin.fileno()  # type: ignore[union-attr]
        self.rfd = self.popen.stdout.fileno()  # type: ignore[union-attr]
        self.buf = b""
        self.decoder = protocol.decoder(self._decode_tag)

    # -- lifecycle -----------------------------------------------------------
    def start(self, init: dict[str, Any]) -> None:
        init = dict(init, t="init", i=0)
        self._send(init)
        self.deadline = time.monotonic() + START_TIMEOUT
        self.control = True
        _WATCHDOG.watch(self)
        try:
            reply = self._wait(0)
        finally:
            self.deadline = None
        self.hardening = reply.get("hardening", {}) if isinstance(reply, dict) else {}

    def kill(self, kind: str, message: str) -> None:
        if self.dead is None:
            self.dead = _Dead(kind, message)
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:
            try:
                self.popen.kill()
            except OSError:
                pass
        self._reap()

    def _stderr_tail(self) -> str:
        """The last line the worker wrote to its stderr (a start-up failure
        or a fatal error), read without blocking."""
        stream = self.popen.stderr
        if stream is None:
            return ""
        try:
            os.set_blocking(stream.fileno(), False)
            data = os.read(stream.fileno(), 65536)
        except (OSError, ValueError):
            return ""
        lines = [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
        return lines[-1].strip()[:300] if lines else ""

    def _reap(self) -> None:
        for stream in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            try:
                stream.close()  # type: ignore[union-attr]
            except OSError:
                pass
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a zombie we cannot reap
            pass
        self.handles.clear()
        self.handle_ids.clear()

    def close(self) -> None:
        if self.dead is not None:
            return
        self.dead = _Dead("runtime", "the worker was closed")
        try:
            protocol.write_frame(self.wfd, protocol.dumps({"t": "exit", "i": next(self.ids)}))
            self.popen.wait(timeout=0.5)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            pass
        self.kill("runtime", "the worker was closed")

    @property
    def rss(self) -> int:
        try:
            with open(f"/proc/{self.pid}/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return 0

    @property
    def peak(self) -> int | None:
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError):
            pass
        return None

    # -- requests --------------------------------------------------------------
    def request(self, msg: dict[str, Any], *, limit: float | None, control: bool = False) -> Any:
        """Send a request and wait for its reply, serving the worker's own
        requests meanwhile. ``limit`` is the policy's time limit for calls."""
        if self.dead is not None:
            raise self.dead
        rid = next(self.ids)
        msg["i"] = rid
        outer = self.depth == 0
        if outer:
            self.control = control
            if control:
                self.deadline = time.monotonic() + CONTROL_TIMEOUT + (limit or 0)
            elif limit is not None:
                self.deadline = time.monotonic() + limit + _grace(limit)
            else:
                self.deadline = None
            if self.deadline is not None:
                _WATCHDOG.watch(self)
        self.depth += 1
        try:
            self._send(msg)
            return self._wait(rid)
        finally:
            self.depth -= 1
            if outer:
                self.deadline = None

    def _send(self, msg: dict[str, Any]) -> None:
        if self.pending_release:
            released, self.pending_release = self.pending_release, []
            msg["rel"] = released
        try:
            protocol.write_frame(self.wfd, protocol.dumps(msg))
        except (OSError, ValueError):
            self._died()
            raise self.dead  # type: ignore[misc]

    def _wait(self, rid: int) -> Any:
        while True:
            msg = self._receive()
            rel = msg.get("rel")
            if rel:
                self._drop_handles(rel)
            t = msg.get("t")
            if t == "r":
                if msg.get("i") == rid:
                    return msg.get("v")
                self._violation(f"reply to an unknown request {msg.get('i')!r}")
            elif t == "e":
                if msg.get("i") == rid:
                    raise self._error(msg)
                self._violation(f"error for an unknown request {msg.get('i')!r}")
            elif t == "out":
                text = msg.get("x")
                if isinstance(text, str):
                    self.runtime._output(text)
            elif t in ("api", "callh", "bp"):
                self._serve(msg)
            else:
                self._violation(f"unknown message type {t!r}")

    def _serve(self, msg: dict[str, Any]) -> None:
        rid = msg.get("i")
        stacks = self.runtime._stacks
        if not hasattr(stacks, "items"):
            stacks.items = []
        stacks.items.append(self._frames(msg.get("st")))
        try:
            self._serve_one(rid, msg)
        finally:
            stacks.items.pop()

    def _serve_one(self, rid: Any, msg: dict[str, Any]) -> None:
        try:
            args = msg.get("a", [])
            if not isinstance(args, list):
                raise ScriptRuntimeError("arguments must be a list", language=self.runtime.language)
            if msg["t"] == "bp":
                result = self.runtime._breakpoint(msg, self.runtime._stacks.items[-1])
            elif msg["t"] == "api":
                result = self.runtime._api_call(self.script, msg.get("n"), args)
            else:
                target = self.handles.get(msg.get("h"))  # type: ignore[arg-type]
                if target is None or not callable(target):
                    raise ScriptRuntimeError("unknown host function handle", language=self.runtime.language)
                result = target(*args)
            reply = {"t": "r", "i": rid, "v": self.encode(result)}
        except _Dead:
            raise
        except ScriptError as exc:
            reply = _error_message(rid, exc)
        except protocol.ValueRefused as exc:
            reply = {"t": "e", "i": rid, "k": exc.kind, "m": str(exc), "s": []}
        except Exception as exc:  # a host function failed: the script sees it as an error
            reply = {"t": "e", "i": rid, "k": "runtime", "m": f"{type(exc).__name__}: {exc}", "s": []}
        if self.dead is not None:
            raise self.dead
        self._send(reply)

    def _receive(self) -> dict[str, Any]:
        buf = self.buf
        if len(buf) < 4:
            buf = self._fill(buf, 4)
        (n,) = protocol.HEADER.unpack_from(buf)
        if n > self.max_frame:
            self._violation(f"a message of {n} bytes is larger than allowed")
        end = 4 + n
        if len(buf) < end:
            buf = self._fill(buf, end)
        self.buf = buf[end:]
        try:
            return protocol.loads(buf[4:end], self.decoder)
        except protocol.ProtocolError as exc:
            self._violation(str(exc))
            raise  # unreachable

    def _fill(self, buf: bytes, need: int) -> bytes:
        parts = [buf]
        have = len(buf)
        while have < need:
            chunk = self._read(max(1 << 16, min(need - have, 1 << 24)))
            parts.append(chunk)
            have += len(chunk)
        return b"".join(parts)

    def _read(self, n: int) -> bytes:
        """One blocking read of at most ``n`` bytes. Deadlines are kept by the
        watchdog thread, which kills a worker past its deadline: the read then
        ends with EOF and the death's reason says "timeout"."""
        if self.dead is not None:
            raise self.dead
        try:
            chunk = os.read(self.rfd, n)
        except OSError:
            chunk = b""
        if not chunk:
            self._died()
        return chunk

    def expire(self) -> None:
        """Called by the watchdog (another thread) once the deadline passed:
        mark the death and kill the process; the waiting thread reaps it."""
        if self.dead is not None:
            return
        limit = self.script.policy.time_limit
        if self.control:
            self.dead = _Dead("runtime", "the worker stopped answering and was stopped")
        else:
            self.dead = _Dead(
                "timeout", f"the call ran longer than the time limit ({limit:g} s); the worker was stopped"
            )
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:
            pass

    def _died(self) -> None:
        if self.dead is not None:
            self._reap()
        else:
            try:
                code = self.popen.wait(timeout=2)
            except subprocess.TimeoutExpired:
                code = None
            if code is not None and code < 0 and -code == signal.SIGXCPU:
                self.kill("timeout", "the call used more CPU time than the time limit allows; the worker was stopped")
            elif code is not None and code < 0:
                name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
                tail = self._stderr_tail()
                self.kill("runtime", f"the worker running the script was killed by {name}" + (f" ({tail})" if tail else ""))
            else:
                tail = self._stderr_tail()
                self.kill("runtime", f"the worker running the script exited (status {code})" + (f": {tail}" if tail else ""))
        raise self.dead  # type: ignore[misc]

    def _violation(self, what: str) -> None:
        self.kill("runtime", f"the worker broke the protocol ({what}) and was stopped")
        raise self.dead  # type: ignore[misc]

    def _frames(self, raw: Any) -> list[StackFrame]:
        stack = []
        for frame in raw if isinstance(raw, list) else ():
            if isinstance(frame, list) and len(frame) >= 3:
                fn, script, line = frame[0], frame[1], frame[2]
                lang = frame[3] if len(frame) > 3 and isinstance(frame[3], str) else self.runtime.language
                col = frame[4] if len(frame) > 4 else None
                stack.append(
                    StackFrame(
                        str(fn),
                        script=str(script) if script is not None else None,
                        line=line if isinstance(line, int) else None,
                        column=col if isinstance(col, int) else None,
                        language=lang,
                    )
                )
        return stack

    def _error(self, msg: dict[str, Any]) -> ScriptError:
        kind = msg.get("k")
        cls = ERROR_CLASSES.get(kind if isinstance(kind, str) else "runtime", ScriptRuntimeError)
        stack = self._frames(msg.get("s"))
        line = msg.get("l")
        line = line if isinstance(line, int) else (stack[0].line if stack else None)
        col = msg.get("c")
        if not isinstance(col, int):  # a runtime error: the innermost frame's column, if the worker sends columns
            col = stack[0].column if stack and stack[0].line == line else None
        text = msg.get("m")
        script_id = self.script.id
        if stack and stack[0].script:
            script_id = stack[0].script
        return cls(
            str(text) if text is not None else "error",
            language=self.runtime.language if not stack else (stack[0].language or self.runtime.language),
            script=script_id,
            line=line,
            column=col,
            stack=stack,
        )

    # -- values --------------------------------------------------------------------
    def _decode_tag(self, d: dict[str, Any]) -> Any:
        if protocol.TAG not in d:
            return d
        tag = d[protocol.TAG]
        if tag == "b":
            return protocol.decode_bytes(d)
        if tag == "h":
            hid = d.get("v")
            if not isinstance(hid, int) or hid not in self.handles:
                raise protocol.ProtocolError(f"unknown host handle {hid!r}")
            return self.handles[hid]
        if tag == "f":
            hid = d.get("v")
            if not isinstance(hid, int):
                raise protocol.ProtocolError("bad function handle")
            ref = self.refs.get(hid)
            if ref is None:
                name = d.get("n") if isinstance(d.get("n"), str) else "function"
                script = d.get("s") if isinstance(d.get("s"), str) else None
                ref = self.runtime._worker_function(self, hid, name, script or self.script.id)
                self.refs[hid] = ref
                self.exported[ref] = hid
            return ref
        if tag == "d":
            items = d.get("v")
            if not isinstance(items, list):
                raise protocol.ProtocolError("bad escaped dict")
            out = {}
            for item in items:
                if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
                    raise protocol.ProtocolError("bad escaped dict item")
                out[item[0]] = item[1]
            return out
        raise protocol.ProtocolError(f"unknown tag {tag!r}")

    def encode(self, value: Any) -> Any:
        return protocol.encode_value(value, self._export, max_size=self.script.policy.max_value_size)

    def _export(self, obj: Any) -> Any:
        if isinstance(obj, FunctionRef):
            hid = self.exported.get(obj)
            if hid is not None:
                return {protocol.TAG: "f", "v": hid}
        if isinstance(obj, (FunctionRef, UserData)) or callable(obj):
            key = id(obj)
            hid = self.handle_ids.get(key)
            if hid is None or self.handles.get(hid) is not obj:
                hid = next(self.ids)
                self.handles[hid] = obj
                self.handle_ids[key] = hid
            return {protocol.TAG: "h", "v": hid, "c": 1 if callable(obj) else 0}
        bridge = self.runtime.bridge
        if bridge is not None:
            try:
                converted = bridge.convert_unknown(obj)
            except ScriptError as exc:
                raise protocol.ValueRefused(exc.message) from None
            return self.encode(converted)
        raise protocol.ValueRefused(f"cannot pass a {type(obj).__name__} to {self.runtime.language}")

    def _drop_handles(self, ids: Any) -> None:
        if not isinstance(ids, list):
            return
        for hid in ids:
            if isinstance(hid, int):
                obj = self.handles.pop(hid, None)
                if obj is not None and self.handle_ids.get(id(obj)) == hid:
                    del self.handle_ids[id(obj)]


class _Watchdog:
    """One daemon thread that kills workers whose call ran past its deadline
    (time limit plus grace). It wakes every ``TICK`` seconds while some
    worker is watched, so the hot path pays no timer syscall on the host."""

    TICK = 0.05

    def __init__(self) -> None:
        self._procs: "weakref.WeakSet[_Process]" = weakref.WeakSet()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, proc: _Process) -> None:
        if proc in self._procs:
            return
        with self._lock:
            self._procs.add(proc)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="kryon-isolation-watchdog", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self.TICK)
            now = time.monotonic()
            with self._lock:
                procs = list(self._procs)
            for proc in procs:
                if proc.dead is not None:
                    with self._lock:
                        self._procs.discard(proc)
                    continue
                deadline = proc.deadline
                if deadline is not None and now > deadline:
                    proc.expire()


_WATCHDOG = _Watchdog()


def _grace(limit: float) -> float:
    """How long past the time limit the host waits for the worker's own
    interrupt before it kills the process."""
    return min(2.0, max(0.25, limit))


def _kind_of(exc: ScriptError) -> str:
    for cls, kind in _KIND_OF:
        if type(exc) is cls:
            return kind
    for cls, kind in _KIND_OF:
        if isinstance(exc, cls) and kind != "script":
            return kind
    return "script"


def _error_message(rid: Any, exc: ScriptError) -> dict[str, Any]:
    stack = [[f.function, f.script, f.line, f.language] for f in exc.stack]
    if not stack and exc.script is not None:
        stack = [["<host>", exc.script, exc.line, exc.language]]
    return {"t": "e", "i": rid, "k": _kind_of(exc), "m": exc.message, "s": stack}


@dataclass
class _Script:
    id: str
    source: str
    filename: str | None
    policy: SecurityPolicy
    uses_async: bool
    functions: dict[str, FunctionInfo] = field(default_factory=dict)
    proc: _Process | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)
    restarts: int = 0
    #: the script's own ``kryon`` API (its view of the bridge), made on first use
    api: dict[str, Callable[..., Any]] | None = None


class IsolatedRuntime:
    """Scripts of one language, each in its own sandboxed worker process.

    An engine creates one with its language id and compiler, hands it the
    bridge (``setup_bridge``) and forwards ``load``/``call``/``unload``/...
    The ``api_names`` map the names scripts see on their ``kryon`` module to
    :class:`~kryon_core.ScriptBridge` method names (snake_case for Python;
    Hy mangles kebab-case to the same identifiers).
    """

    def __init__(
        self,
        language: str,
        *,
        compiler: CompilerSpec | None = None,
        output: Callable[[str], None] | None = None,
        api_names: Mapping[str, str] | None = None,
    ) -> None:
        self.language = language
        self.compiler = compiler or CompilerSpec()
        self.output = output or (lambda text: None)
        self.bridge: "ScriptBridge | None" = None
        self._api: dict[str, Callable[..., Any]] = {}
        self._api_names: dict[str, str] = dict(api_names) if api_names is not None else {}
        self._scripts: dict[str, _Script] = {}
        self._globals: dict[str, Any] = {}
        self._stacks = threading.local()
        self._breakpoints: dict[str, dict[str, int]] = {}
        #: receives a BreakpointHit when a worker reaches a breakpoint
        self.on_breakpoint: Callable[[Any], None] | None = None
        self._lock = threading.RLock()
        self._closed = False

    # -- setup ----------------------------------------------------------------
    def setup_bridge(self, bridge: "ScriptBridge", api_names: Mapping[str, str] | None = None) -> None:
        """Route the workers' ``kryon`` calls to ``bridge``. Workers started
        from now on see ``api_names`` (script name -> bridge method); by
        default every bridge method under its snake_case name."""
        self.bridge = bridge
        self._api = {m.name: fn for m, fn in bridge.methods()}
        for script in self._scripts.values():
            script.api = None  # each script's view is made again from the new bridge
        if api_names is not None:
            self._api_names = dict(api_names)
        elif not self._api_names:
            self._api_names = {m.name: m.name for m, _ in bridge.methods()}
        else:
            for m, _ in bridge.methods():
                self._api_names.setdefault(m.name, m.name)

    def _output(self, text: str) -> None:
        try:
            self.output(text)
        except Exception:  # the host's output sink must not break a call
            pass

    # -- scripts ------------------------------------------------------------------
    def load(
        self, script_id: str, source: str, *, policy: SecurityPolicy, filename: str | None = None
    ) -> dict[str, FunctionInfo]:
        """Start a worker for the script, compile and run its top level there.
        Returns the functions it defines. Raises CompileError,
        AccessDeniedError, a limit error or ScriptRuntimeError."""
        if self._closed:
            raise ScriptError("the isolated runtime was closed", language=self.language)
        script = _Script(script_id, source, filename, policy, uses_async="async" in source)
        self._start(script)
        with self._lock:
            old = self._scripts.get(script_id)
            self._scripts[script_id] = script
        if old is not None:
            with old.lock:
                if old.proc is not None:
                    old.proc.close()
        return dict(script.functions)

    def reload(
        self, script_id: str, source: str, *, policy: SecurityPolicy, filename: str | None = None
    ) -> dict[str, FunctionInfo]:
        """Start the new version in a new worker; only when its top level
        succeeded does it replace the old one (which otherwise keeps running)."""
        return self.load(script_id, source, policy=policy, filename=filename)

    def _start(self, script: _Script) -> None:
        proc = _Process(self, script)
        try:
            init = {
                **limits_for(script.policy),
                "compiler": self.compiler.name,
                "site": self.compiler.site,
                "preload": list(self.compiler.preload),
                "columns": self.compiler.columns,
                "allowed_imports": sorted(set(script.policy.allowed_modules) | set(self.compiler.runtime_imports)),
                "sys_path": [p for p in sys.path if isinstance(p, str) and p],
                "api": self._api_names,
                "asyncio": script.uses_async,
                "globals": {},
                "breakpoints": self._breakpoints,
            }
            proc.start(init)
            for name, value in self._globals.items():
                proc.request({"t": "setg", "n": name, "v": proc.encode(value)}, limit=None, control=True)
            infos = proc.request(
                {"t": "load", "script": script.id, "source": script.source},
                limit=script.policy.time_limit,
            )
        except _Dead as dead:
            proc.kill(dead.kind, str(dead))
            raise self._dead_error(script, dead, during="loading") from None
        except BaseException:
            proc.kill("runtime", "load failed")
            raise
        functions = {}
        for info in infos if isinstance(infos, list) else ():
            if isinstance(info, dict) and isinstance(info.get("name"), str):
                try:
                    functions[info["name"]] = FunctionInfo.from_dict(info)
                except TypeError:
                    continue
        script.functions = functions
        script.proc = proc

    def unload(self, script_id: str) -> None:
        with self._lock:
            script = self._scripts.pop(script_id, None)
        if script is not None:
            with script.lock:
                if script.proc is not None:
                    script.proc.close()
                    script.proc = None

    def functions(self, script_id: str) -> dict[str, FunctionInfo]:
        return dict(self._script(script_id).functions)

    def has_script(self, script_id: str) -> bool:
        return script_id in self._scripts

    def _script(self, script_id: str) -> _Script:
        script = self._scripts.get(script_id)
        if script is None:
            raise ScriptError(f"no script '{script_id}' is loaded", language=self.language, script=script_id)
        return script

    # -- calls ----------------------------------------------------------------------
    def call(self, script_id: str, function: str, args: Sequence[Any]) -> Any:
        script = self._script(script_id)
        with script.lock:
            proc = self._live(script)
            try:
                encoded = [proc.encode(a) for a in args]
            except protocol.ValueRefused as exc:
                raise _refused(exc, self.language, script_id) from None
            try:
                return proc.request(
                    {"t": "call", "script": script_id, "fn": function, "a": encoded}, limit=script.policy.time_limit
                )
            except _Dead as dead:
                raise self._after_death(script, proc, dead) from None

    async def call_async(self, script_id: str, function: str, args: Sequence[Any]) -> Any:
        """Await a call without blocking the caller's loop: the worker call
        runs in the loop's executor (async functions are driven inside the worker)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.call, script_id, function, list(args))

    def _call_handle(self, proc: _Process, hid: int, name: str, args: Sequence[Any]) -> Any:
        script = proc.script
        with script.lock:
            if script.proc is not proc or proc.dead is not None:
                raise ScriptRuntimeError(
                    f"function '{name}' belongs to a worker that was restarted or closed",
                    language=self.language,
                    script=script.id,
                )
            try:
                encoded = [proc.encode(a) for a in args]
            except protocol.ValueRefused as exc:
                raise _refused(exc, self.language, script.id) from None
            try:
                return proc.request({"t": "callh", "h": hid, "a": encoded}, limit=script.policy.time_limit)
            except _Dead as dead:
                raise self._after_death(script, proc, dead) from None

    def _worker_function(self, proc: _Process, hid: int, name: str, script_id: str) -> FunctionRef:
        def release() -> None:
            proc.pending_release.append(hid)

        def call(*args: Any) -> Any:
            return self._call_handle(proc, hid, name, args)

        return FunctionRef(call, name=name, language=self.language, script=script_id, release=release)

    def _api_call(self, script: _Script, name: Any, args: list[Any]) -> Any:
        api = script.api
        if api is None:
            view = self.bridge.for_script(script.id, script.policy) if self.bridge is not None else None
            api = script.api = {m.name: fn for m, fn in view.methods()} if view is not None else dict(self._api)
        fn = api.get(name) if isinstance(name, str) else None
        if fn is None:
            raise ScriptRuntimeError(f"kryon has no function {name!r}", language=self.language, script=script.id)
        return fn(*args)

    # -- debugging ------------------------------------------------------------------
    def current_stack(self) -> list[StackFrame]:
        """The stack of the worker script that is calling the host on this
        thread right now (inside a callback or a ``kryon`` call), innermost first."""
        items = getattr(self._stacks, "items", None)
        return list(items[-1]) if items else []

    def set_breakpoints(self, breakpoints: Mapping[str, Mapping[int, int]]) -> None:
        """Replace every breakpoint: script id -> {line: breakpoint id}."""
        self._breakpoints = {f: {str(l): b for l, b in lines.items()} for f, lines in breakpoints.items() if lines}
        for script in list(self._scripts.values()):
            with script.lock:
                proc = script.proc
                if proc is None or proc.dead is not None:
                    continue
                try:
                    proc.request({"t": "bps", "b": self._breakpoints}, limit=None, control=True)
                except _Dead as dead:
                    self._after_death(script, proc, dead)

    def _breakpoint(self, msg: dict[str, Any], stack: list[StackFrame]) -> None:
        from ..engine import BreakpointHit

        handler = self.on_breakpoint
        if handler is None:
            return None
        local_vars = msg.get("v") if isinstance(msg.get("v"), dict) else {}
        if stack:
            top = stack[0]
            stack = [StackFrame(top.function, script=top.script, line=top.line, language=top.language,
                                locals=dict(local_vars))] + stack[1:]
        bid, line, script = msg.get("b"), msg.get("l"), msg.get("s")
        handler(
            BreakpointHit(
                bid if isinstance(bid, int) else 0,
                self.language,
                str(script),
                line if isinstance(line, int) else 0,
                stack,
            )
        )
        return None

    # -- death and restart ------------------------------------------------------------
    def _live(self, script: _Script) -> _Process:
        proc = script.proc
        if proc is None or proc.dead is not None:
            self._restart(script)
            proc = script.proc
            if proc is None:
                raise ScriptRuntimeError(
                    "the script's worker could not be restarted", language=self.language, script=script.id
                )
        return proc

    def _after_death(self, script: _Script, proc: _Process, dead: _Dead) -> ScriptError:
        """The worker died during a call: restart it (reloading the script)
        and return the error the caller gets."""
        if script.proc is proc and self._scripts.get(script.id) is script and proc.depth == 0:
            try:
                self._restart(script)
            except ScriptError:
                script.proc = None  # retried on the next call
        return self._dead_error(script, dead)

    def _restart(self, script: _Script) -> None:
        old = script.proc
        if old is not None and old.dead is None:
            old.kill("runtime", "restarted")
        script.proc = None
        self._drop_callbacks(script)
        script.restarts += 1
        self._start(script)

    def _drop_callbacks(self, script: _Script) -> None:
        """Callbacks the old worker registered in the document point at dead
        handles: drop them before the script's top level registers new ones."""
        dom = self.bridge.dom if self.bridge is not None else None
        owned = getattr(dom, "owned_callbacks", None)
        drop = getattr(dom, "drop_callbacks", None)
        if owned is None or drop is None:
            return
        lang, sid = self.language, script.id

        def owns(cb: Any) -> bool:
            return isinstance(cb, FunctionRef) and cb.language == lang and cb.script == sid

        keys = owned(owns)
        if keys:
            drop(keys)

    def _dead_error(self, script: _Script, dead: _Dead, during: str = "") -> ScriptError:
        cls = ERROR_CLASSES.get(dead.kind, ScriptRuntimeError)
        text = str(dead)
        if during != "loading" and dead.kind not in ("timeout",):
            text += "; it was restarted and the script reloaded"
        elif during != "loading":
            text = text.replace("the worker was stopped", "the worker was restarted and the script reloaded")
        return cls(text, language=self.language, script=script.id)

    # -- globals, memory -----------------------------------------------------------------
    def set_global(self, name: str, value: Any) -> None:
        self._globals[name] = value
        for script in list(self._scripts.values()):
            with script.lock:
                proc = script.proc
                if proc is None or proc.dead is not None:
                    continue
                try:
                    proc.request({"t": "setg", "n": name, "v": proc.encode(value)}, limit=None, control=True)
                except protocol.ValueRefused as exc:
                    raise _refused(exc, self.language, script.id) from None
                except _Dead as dead:
                    raise self._after_death(script, proc, dead) from None

    def get_global(self, name: str) -> Any:
        return self._globals.get(name)

    def memory_usage(self) -> MemoryUsage:
        used = 0
        peak = 0
        limit = 0
        unlimited = False
        procs = self._procs()
        for script, proc in procs:
            used += proc.rss
            peak += proc.peak or 0
            if script.policy.memory_limit is None:
                unlimited = True
            else:
                limit += script.policy.memory_limit
        return MemoryUsage(
            used_bytes=used, limit=None if unlimited or not procs else limit, peak_bytes=peak or None, scripts=len(procs)
        )

    def collect_garbage(self) -> GarbageCollectionStats:
        start = time.perf_counter()
        before = after = freed = 0
        for script, proc in self._procs():
            with script.lock:
                if proc.dead is not None:
                    continue
                before += proc.rss
                try:
                    r = proc.request({"t": "gc"}, limit=None, control=True)
                except _Dead as dead:
                    self._after_death(script, proc, dead)
                    continue
                after += proc.rss
                if isinstance(r, dict) and isinstance(r.get("freed"), int):
                    freed += r["freed"]
        return GarbageCollectionStats(
            bytes_before=before, bytes_after=after, objects_freed=freed, duration_ms=(time.perf_counter() - start) * 1000
        )

    def _procs(self) -> list[tuple[_Script, _Process]]:
        return [(s, s.proc) for s in list(self._scripts.values()) if s.proc is not None and s.proc.dead is None]

    def worker_info(self, script_id: str) -> dict[str, Any]:
        """pid, restarts and the hardening report of a script's worker (for
        diagnostics and tests)."""
        script = self._script(script_id)
        proc = script.proc
        return {
            "pid": proc.pid if proc else None,
            "alive": proc is not None and proc.dead is None,
            "restarts": script.restarts,
            "hardening": dict(proc.hardening) if proc else {},
            "rss": proc.rss if proc else 0,
        }

    def close(self) -> None:
        self._closed = True
        with self._lock:
            scripts = list(self._scripts.values())
            self._scripts.clear()
        for script in scripts:
            if script.proc is not None:
                script.proc.close()
                script.proc = None


def _refused(exc: protocol.ValueRefused, language: str, script: str) -> ScriptError:
    cls = ERROR_CLASSES.get(exc.kind, ConversionError)
    return cls(str(exc), language=language, script=script)
