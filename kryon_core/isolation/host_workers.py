"""The side of the isolated runtime that faces its workers (host side).

:class:`WorkerSide` is the part of :class:`~.host.IsolatedRuntime` a worker
process talks to (``process.WorkerHost``: printed output, ``kryon`` API
calls, breakpoint hits, module sources, function handles, the stacks of
scripts calling the host) and the part that starts workers: the init
message, a script's start (its top level), the standby worker started while
a call runs long, and the restart of a worker that died. ``host.py`` adds
what the engines use (load, call, evaluate, globals, memory, close).
:class:`HostedScript` is the runtime's record of one script and its workers.
"""

from __future__ import annotations

import base64
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ..engine import BreakpointHit, FunctionInfo
from ..errors import AccessDeniedError, ConversionError, ScriptError, ScriptRuntimeError, SizeLimitError, StackFrame
from ..policy import SecurityPolicy
from ..threads import EngineGate
from ..values import FunctionRef
from . import protocol
from .host_config import CompilerSpec, confinement_paths, limits_for
from .process import ERROR_CLASSES, SPAWNER, WaitingStack, WorkerDied, WorkerProcess

if TYPE_CHECKING:
    from ..bridge import ScriptBridge

T = TypeVar("T")

__all__ = ["WorkerSide", "HostedScript", "enter", "close_proc", "function_infos", "refused"]


@dataclass
class HostedScript:
    """The runtime's record of one script: its source, its policy, its workers."""

    id: str
    source: str
    filename: str | None
    policy: SecurityPolicy
    uses_async: bool
    #: the host's cached code object (marshalled), sent so the worker compiles nothing; None: compile the source
    bytecode: bytes | None = None
    #: what the worker ran: "bytecode" or "source"
    compiled_from: str = ""
    #: test switches in force when the script was loaded (its restarts keep them)
    python_layers: bool = True
    unavailable: frozenset[str] = frozenset()
    functions: dict[str, FunctionInfo] = field(default_factory=dict)
    proc: WorkerProcess | None = None
    #: the worker whose start (top level) is running, before it becomes ``proc``
    starting: WorkerProcess | None = None
    #: a started, sealed worker waiting to replace ``proc`` if it must be killed
    standby: WorkerProcess | None = None
    standby_lock: threading.Lock = field(default_factory=threading.Lock)
    #: the one way into the script's worker (see kryon_core.threads): a thread
    #: that waits for it while holding another runtime helps instead of deadlocking
    gate: EngineGate | None = None
    #: the gate's uncontended ``(acquire, unlock)`` (EngineGate.uncontended_inline), for host_calls' hot path
    acquire: Callable[[bool], bool] = field(default=lambda blocking: False)
    unlock: Callable[[], None] = field(default=lambda: None)
    restarts: int = 0
    #: the script's own ``kryon`` API (its view of the bridge), made on first use
    api: dict[str, Callable[..., Any]] | None = None


class WorkerSide:
    """See the module docstring. Its state is made by ``IsolatedRuntime.__init__``."""

    language: str
    compiler: CompilerSpec
    output: Callable[[str], None]
    bridge: "ScriptBridge | None"
    on_breakpoint: Callable[[Any], None] | None
    module_loader: Callable[[str, str], str | None] | None
    debug: Any
    _api: dict[str, Callable[..., Any]]
    _api_names: dict[str, str]
    _scripts: dict[str, HostedScript]
    _globals: dict[str, Any]
    _stacks: threading.local
    _breakpoints: dict[str, dict[str, int]]
    _closed: bool

    # -- what a worker process asks of its runtime (process.WorkerHost) --------------------------
    def deliver_output(self, text: str) -> None:
        try:
            self.output(text)
        except Exception:  # the host's output sink must not break a call
            pass

    def serve_api(self, proc: WorkerProcess, name: Any, args: list[Any]) -> Any:
        return self._api_call(proc.owner, name, args)

    def serve_breakpoint(self, msg: dict[str, Any], stack: list[StackFrame]) -> None:
        self._breakpoint(msg, stack)

    def serve_module(self, proc: WorkerProcess, name: Any) -> str | None:
        """The source of a file beside the worker's script (``helpers``,
        ``sub/helpers``), for a compiler's relative imports: found by the
        module loader, which keeps it inside the script's root. Only dotted
        module paths are asked for: each part an identifier."""
        script: HostedScript = proc.owner
        parts = name.split("/") if isinstance(name, str) and len(name) <= 512 else []
        if not parts or not all(p.isidentifier() for p in parts):
            raise AccessDeniedError(f"{name!r} is not a module beside the script", language=self.language,
                                    script=script.id)
        if self.module_loader is None:
            return None
        # "./name": a file beside the script only (the manager's loader takes a bare
        # name for a loaded script's id first, and another script's source is not this one's)
        source = self.module_loader(script.id, f"./{name}")
        limit = script.policy.max_source_size
        if source is not None and limit is not None and len(source.encode("utf-8", "surrogatepass")) > limit:
            # the worker's parser runs in C, out of its timer's reach: bounded as the script's own source is
            raise SizeLimitError(f"the module '{name.replace('/', '.')}' beside the script is larger than the "
                                 f"policy's max_source_size ({limit} bytes)", language=self.language, script=script.id)
        return source

    def worker_function(self, proc: WorkerProcess, hid: int, name: str, script_id: str) -> FunctionRef:
        return self._worker_function(proc, hid, name, script_id)

    def convert_unknown(self, obj: Any) -> Any:
        bridge = self.bridge
        if bridge is None:
            raise protocol.ValueRefused(f"cannot pass a {type(obj).__name__} to {self.language}")
        try:
            return bridge.convert_unknown(obj)
        except ScriptError as exc:
            raise protocol.ValueRefused(exc.message) from None

    def push_stack(self, frames: "list[StackFrame] | WaitingStack", proc: WorkerProcess | None = None) -> None:
        items = getattr(self._stacks, "items", None)
        if items is None:
            items = self._stacks.items = []
            self._stacks.procs = []
        items.append(frames)
        self._stacks.procs.append(proc)

    def pop_stack(self) -> None:
        self._stacks.items.pop()
        self._stacks.procs.pop()

    def serving(self) -> list[WorkerProcess]:
        """The workers waiting on this thread for the host to answer them (a
        ``kryon`` call, a callback, a debugger event), outermost first: they
        answer requests meanwhile."""
        procs = getattr(self._stacks, "procs", None)
        return [p for p in procs if p is not None] if procs else []

    def current_stack(self) -> list[StackFrame]:
        """The stack of the worker script that is calling the host on this
        thread right now (inside a callback or a ``kryon`` call), innermost first."""
        items = getattr(self._stacks, "items", None)
        if not items:
            return []
        top = items[-1]
        return top.fetch() if type(top) is WaitingStack else list(top)

    def _api_call(self, script: HostedScript, name: Any, args: list[Any]) -> Any:
        api = script.api
        if api is None:
            view = self.bridge.for_script(script.id, script.policy) if self.bridge is not None else None
            api = script.api = {m.name: fn for m, fn in view.methods()} if view is not None else dict(self._api)
        fn = api.get(name) if isinstance(name, str) else None
        if fn is None:
            raise ScriptRuntimeError(f"kryon has no function {name!r}", language=self.language, script=script.id)
        return fn(*args)

    def _breakpoint(self, msg: dict[str, Any], stack: list[StackFrame]) -> None:
        handler = self.on_breakpoint
        if handler is None:
            return None
        raw_locals = msg.get("v")
        local_vars: dict[str, Any] = raw_locals if isinstance(raw_locals, dict) else {}
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

    def _call_handle(self, proc: WorkerProcess, hid: int, name: str, args: Sequence[Any]) -> Any:
        script: HostedScript = proc.owner
        return enter(script, self._call_handle_inside, script, proc, hid, name, args)

    def _call_handle_inside(self, script: HostedScript, proc: WorkerProcess, hid: int, name: str, args: Sequence[Any]) -> Any:
        if (script.proc is not proc and script.starting is not proc) or proc.dead is not None:
            raise ScriptRuntimeError(
                f"function '{name}' belongs to a worker that was restarted or closed",
                language=self.language,
                script=script.id,
            )
        try:
            encoded = proc.encode_args(args)
        except protocol.ValueRefused as exc:
            raise refused(exc, self.language, script.id) from None
        try:
            return proc.request({"t": "callh", "h": hid, "a": encoded}, limit=script.policy.time_limit)
        except WorkerDied as dead:
            raise self._after_death(script, proc, dead) from None

    def _worker_function(self, proc: WorkerProcess, hid: int, name: str, script_id: str) -> FunctionRef:
        def release() -> None:
            proc.pending_release.append(hid)

        def call(*args: Any) -> Any:
            return self._call_handle(proc, hid, name, args)

        return FunctionRef(call, name=name, language=self.language, script=script_id, release=release)

    # -- starting a worker -----------------------------------------------------------------------
    def _warm_message(self) -> dict[str, Any]:
        """The part of every init message no policy changes (a fork server's warm-up)."""
        return {
            "compiler": self.compiler.name,
            "site": self.compiler.site,
            "preload": list(self.compiler.preload),
            "sys_path": [p for p in sys.path if isinstance(p, str) and p],
            "confine_paths": confinement_paths(),
        }

    def _init_message(self, script: HostedScript) -> dict[str, Any]:
        policy = script.policy
        return {
            **limits_for(policy),
            **self._warm_message(),
            "columns": self.compiler.columns,
            "module_aliases": dict(self.compiler.module_aliases),
            "api_in_namespace": self.compiler.api_in_namespace,
            "allowed_imports": sorted(set(policy.allowed_modules) | set(self.compiler.runtime_imports)),
            "host_pid": os.getpid(),
            "api": self._api_names,
            "asyncio": script.uses_async,
            "globals": {},
            "breakpoints": self._breakpoints,
            "debug_show": self.compiler.debug_show,
            "python_layers": script.python_layers,
            "test_unavailable": sorted(script.unavailable),
        }

    def _start(self, script: HostedScript) -> None:
        """Start a worker and run the script's top level in it (with the
        script's gate held). While the top level runs the worker is the
        script's ``starting`` one, so callbacks it registers and fires at
        once (a listener, then an event) reach it."""
        try:
            proc = self._ready_worker(script)
            if proc.init.get("breakpoints") != self._breakpoints:
                proc.request({"t": "bps", "b": self._breakpoints}, limit=None, control=True)
            for name, value in self._globals.items():
                proc.request({"t": "setg", "n": name, "v": proc.encode(value)}, limit=None, control=True)
            load: dict[str, Any] = {"t": "load", "script": script.id, "source": script.source}
            if script.bytecode:
                load["code"] = {protocol.TAG: "b", "v": base64.b64encode(script.bytecode).decode("ascii")}
            reply = proc.request(load, limit=script.policy.time_limit)
        except WorkerDied as dead:
            if script.starting is not None:
                script.starting.kill(dead.kind, str(dead))
            raise self._dead_error(script, dead, during="loading") from None
        except BaseException:
            if script.starting is not None:
                script.starting.kill("runtime", "load failed")
            raise
        finally:
            script.starting = None
        if isinstance(reply, dict):
            script.functions = function_infos(reply.get("f"))
            script.compiled_from = str(reply.get("from") or "")
        else:
            script.functions = function_infos(reply)
        script.proc = proc

    def _ready_worker(self, script: HostedScript) -> WorkerProcess:
        """A worker that answered its init message: the script's standby when
        it is restarting and has one (started while the failed call ran past
        its limit), else a new one. It is the script's ``starting`` worker."""
        standby = self._take_standby(script) if script.restarts else None
        if standby is not None:
            script.starting = standby
            try:
                standby.finish_start()
                standby.from_standby = True
                return standby
            except WorkerDied:
                standby.kill("runtime", "the standby worker failed to start")
        proc = WorkerProcess(self, script.id, script.policy, owner=script)
        script.starting = proc
        proc.start(self._init_message(script))
        return proc

    # -- the standby worker ----------------------------------------------------------------------
    def prepare_standby(self, proc: WorkerProcess) -> None:
        """A call of ``proc`` has run half its time limit (the watchdog thread
        asks): start a replacement on the spawner thread now, so that if the
        worker must be killed, the restart only reruns the script's top level."""
        script: HostedScript = proc.owner
        if script is not None and script.standby is None and not self._closed:
            SPAWNER.submit(lambda: self._spawn_standby(script))

    def _spawn_standby(self, script: HostedScript) -> None:
        proc = WorkerProcess(self, script.id, script.policy, owner=script)
        try:
            proc.send_init(self._init_message(script))
        except WorkerDied:
            return
        with script.standby_lock:
            if script.standby is None and self._scripts.get(script.id) is script and not self._closed:
                script.standby = proc
                return
        proc.kill("runtime", "not needed")

    def _take_standby(self, script: HostedScript) -> WorkerProcess | None:
        """The script's standby worker, if it was started with what a new
        worker would be told now (else it is ended)."""
        with script.standby_lock:
            proc, script.standby = script.standby, None
        if proc is None:
            return None
        fresh = self._init_message(script)
        if proc.dead is None and all(proc.init.get(k) == fresh[k] for k in ("api", "sys_path", "python_layers")):
            return proc
        proc.kill("runtime", "out of date")
        return None

    def _end_standby(self, script: HostedScript) -> None:
        with script.standby_lock:
            proc, script.standby = script.standby, None
        if proc is not None:
            proc.close()

    # -- death and restart -----------------------------------------------------------------------
    def _live(self, script: HostedScript) -> WorkerProcess:
        proc = script.proc
        if proc is None or proc.dead is not None:
            self._restart(script)
            proc = script.proc
            if proc is None:
                raise ScriptRuntimeError(
                    "the script's worker could not be restarted", language=self.language, script=script.id
                )
        return proc

    def _after_death(self, script: HostedScript, proc: WorkerProcess, dead: WorkerDied) -> ScriptError:
        """The worker died during a call: restart it (reloading the script)
        and return the error the caller gets."""
        if script.proc is proc and self._scripts.get(script.id) is script and proc.depth == 0:
            try:
                self._restart(script)
            except ScriptError:
                script.proc = None  # retried on the next call
        return self._dead_error(script, dead)

    def _restart(self, script: HostedScript) -> None:
        old = script.proc
        if old is not None and old.dead is None:
            old.kill("runtime", "restarted")
        script.proc = None
        self._drop_callbacks(script)
        script.restarts += 1
        self._start(script)

    def _drop_callbacks(self, script: HostedScript) -> None:
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

    def _dead_error(self, script: HostedScript, dead: WorkerDied, during: str = "") -> ScriptError:
        cls = ERROR_CLASSES.get(dead.kind, ScriptRuntimeError)
        text = str(dead)
        if during != "loading" and dead.kind not in ("timeout",):
            text += "; it was restarted and the script reloaded"
        elif during != "loading":
            text = text.replace("the worker was stopped", "the worker was restarted and the script reloaded")
        return cls(text, language=self.language, script=script.id)


def enter(script: HostedScript, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` inside the script's gate (the only way into its worker)."""
    gate = script.gate
    assert gate is not None
    return gate.run(fn, *args)


def close_proc(script: HostedScript) -> None:
    if script.proc is not None:
        script.proc.close()
        script.proc = None


def function_infos(infos: Any) -> dict[str, FunctionInfo]:
    """The function list a worker sent (anything malformed is skipped)."""
    functions = {}
    for info in infos if isinstance(infos, list) else ():
        if isinstance(info, dict) and isinstance(info.get("name"), str):
            try:
                functions[info["name"]] = FunctionInfo.from_dict(info)
            except TypeError:
                continue
    return functions


def refused(exc: protocol.ValueRefused, language: str, script: str) -> ScriptError:
    cls = ERROR_CLASSES.get(exc.kind, ConversionError)
    return cls(str(exc), language=language, script=script)
