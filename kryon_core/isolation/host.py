"""The runtime an engine composes to run untrusted scripts in workers.

:class:`IsolatedRuntime` gives each loaded script its own worker process (the
strongest boundary there is between scripts: one script's crash, memory or
CPU exhaustion never touches another's state) with its own
:class:`~kryon_core.SecurityPolicy` turned into kernel confinement, limits and
grants (see ``confine.py`` and ``docs/security.md``). It loads, calls,
restarts a worker that died (reloading its script), and binds the ``kryon``
API. One worker process and its channel are :class:`.process.WorkerProcess`.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ..engine import BreakpointHit, FunctionInfo, GarbageCollectionStats, MemoryUsage
from ..errors import AccessDeniedError, ConversionError, ScriptError, ScriptRuntimeError, SizeLimitError, StackFrame
from ..policy import SecurityPolicy
from ..threads import EngineGate
from ..values import FunctionRef
from . import forkserver, protocol
from .process import ERROR_CLASSES, SPAWNER, WORKER_PATH, WorkerDied, WorkerProcess
from .testing import SWITCHES

if TYPE_CHECKING:
    from ..bridge import ScriptBridge

T = TypeVar("T")

__all__ = ["CompilerSpec", "IsolatedRuntime", "WORKER_PATH", "limits_for", "ERROR_CLASSES"]

#: the libraries the worker confines itself with (found on the host, handed to the worker)
CONFINEMENT_MODULES = ("landlock", "pyseccomp")


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
    scripts are then allowed to import; ``module_aliases`` and
    ``api_in_namespace`` let code compiled outside the worker (the host's
    cache) run as the worker's own compile would. ``columns``: the compiled code's
    column positions are the source's own, as errors should name them (Hy's
    1-based .kl columns), so stack frames carry them; Python's 0-based AST
    offsets are not reported.
    """

    name: str = "python"
    site: bool = False
    preload: tuple[str, ...] = ()
    runtime_imports: tuple[str, ...] = ()
    columns: bool = False
    #: imports scripts spell one way and get another module for (Hy's compiled ``import hy``: its curated runtime)
    module_aliases: tuple[tuple[str, str], ...] = ()
    #: a script's namespace starts with the ``kryon`` API bound (what Hy's compiled code expects)
    api_in_namespace: bool = False
    #: ``"module:function"`` showing a value for the debugger in the language's notation (text); "": ``repr``
    debug_show: str = ""


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
        "accept_weaker": sorted(policy.accept_weaker_isolation),
    }


_CONFINEMENT_PATHS: list[str] | None = None


def confinement_paths() -> list[str]:
    """The directories that hold the confinement libraries: the worker runs
    with ``-I -S`` (no site-packages) and is told where to import them from."""
    global _CONFINEMENT_PATHS
    if _CONFINEMENT_PATHS is None:
        paths: list[str] = []
        for name in CONFINEMENT_MODULES:
            spec = importlib.util.find_spec(name)
            origin = spec.origin if spec is not None else None
            if origin:
                top = os.path.dirname(origin)
                if spec is not None and spec.submodule_search_locations:  # a package: its parent
                    top = os.path.dirname(top)
                if top not in paths:
                    paths.append(top)
        _CONFINEMENT_PATHS = paths
    return list(_CONFINEMENT_PATHS)


@dataclass
class _Script:
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
        #: the manager's module loader (importing script, name) -> source: files beside a script
        self.module_loader: Callable[[str, str], str | None] | None = None
        #: the debugger's side of the workers (``.debugging.WorkerDebugHost``) while one is attached
        self.debug: Any = None
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

    # -- what a worker process asks of its runtime (process.WorkerHost) ---------------
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
        script: _Script = proc.owner
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

    def push_stack(self, frames: list[StackFrame], proc: WorkerProcess | None = None) -> None:
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

    def prepare_standby(self, proc: WorkerProcess) -> None:
        """A call of ``proc`` has run half its time limit (the watchdog thread
        asks): start a replacement on the spawner thread now, so that if the
        worker must be killed, the restart only reruns the script's top level."""
        script: _Script = proc.owner
        if script is not None and script.standby is None and not self._closed:
            SPAWNER.submit(lambda: self._spawn_standby(script))

    def _spawn_standby(self, script: _Script) -> None:
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

    def _take_standby(self, script: _Script) -> WorkerProcess | None:
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

    def _end_standby(self, script: _Script) -> None:
        with script.standby_lock:
            proc, script.standby = script.standby, None
        if proc is not None:
            proc.close()

    # -- scripts ------------------------------------------------------------------
    def load(
        self, script_id: str, source: str, *, policy: SecurityPolicy, filename: str | None = None,
        bytecode: bytes | None = None,
    ) -> dict[str, FunctionInfo]:
        """Start a worker for the script, compile and run its top level there.
        With ``bytecode`` (the marshalled code object of the host's cache) the
        worker checks it and runs it instead of compiling the source (it
        compiles the source when the check refuses it). Returns the functions
        it defines. Raises CompileError, AccessDeniedError, a limit error or
        ScriptRuntimeError."""
        if self._closed:
            raise ScriptError("the isolated runtime was closed", language=self.language)
        with SWITCHES.lock:
            layers, unavailable = SWITCHES.python_layers, SWITCHES.unavailable
            if not SWITCHES.worker_bytecode:
                bytecode = None
        script = _Script(script_id, source, filename, policy, "async" in source, python_layers=layers,
                         unavailable=unavailable, bytecode=bytecode)
        script.gate = EngineGate(f"{self.language}/worker {script_id}", language=self.language)
        _enter(script, self._start, script)
        with self._lock:
            old = self._scripts.get(script_id)
            self._scripts[script_id] = script
        if old is not None:
            self._end_standby(old)
            _enter(old, _close_proc, old)
        return dict(script.functions)

    def reload(
        self, script_id: str, source: str, *, policy: SecurityPolicy, filename: str | None = None,
        bytecode: bytes | None = None,
    ) -> dict[str, FunctionInfo]:
        """Start the new version in a new worker; only when its top level
        succeeded does it replace the old one (which otherwise keeps running)."""
        return self.load(script_id, source, policy=policy, filename=filename, bytecode=bytecode)

    def _warm_message(self) -> dict[str, Any]:
        """The part of every init message no policy changes (a fork server's warm-up)."""
        return {
            "compiler": self.compiler.name,
            "site": self.compiler.site,
            "preload": list(self.compiler.preload),
            "sys_path": [p for p in sys.path if isinstance(p, str) and p],
            "confine_paths": confinement_paths(),
        }

    def prestart(self, wait: float = 0.0) -> None:
        """Start the fork server of this runtime's workers ahead of the first
        worker (waiting up to ``wait`` seconds until it is ready)."""
        forkserver.prestart(self._warm_message(), wait=wait)

    def _init_message(self, script: _Script) -> dict[str, Any]:
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

    def _start(self, script: _Script) -> None:
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
            script.functions = _function_infos(reply.get("f"))
            script.compiled_from = str(reply.get("from") or "")
        else:
            script.functions = _function_infos(reply)
        script.proc = proc

    def _ready_worker(self, script: _Script) -> WorkerProcess:
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

    def unload(self, script_id: str) -> None:
        with self._lock:
            script = self._scripts.pop(script_id, None)
        if script is not None:
            self._end_standby(script)
            _enter(script, _close_proc, script)

    def functions(self, script_id: str) -> dict[str, FunctionInfo]:
        return dict(self._script(script_id).functions)

    def current_functions(self, script_id: str) -> dict[str, FunctionInfo]:
        """The functions the script's namespace holds now, asked of its worker
        (a call may have defined some since the load: Lisp's ``hy.eval``);
        the load's listing when the worker is not running."""
        script = self._script(script_id)
        listed = _enter(script, self._list_in, script)
        if listed is not None:
            script.functions = _function_infos(listed)
        return dict(script.functions)

    def _list_in(self, script: _Script) -> Any:
        proc = script.proc
        if proc is None or proc.dead is not None:
            return None
        try:
            return proc.request({"t": "fns", "script": script.id}, limit=None, control=True)
        except WorkerDied as dead:
            self._after_death(script, proc, dead)
            return None

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
        return _enter(script, self._call, script, function, args)

    def _call(self, script: _Script, function: str, args: Sequence[Any]) -> Any:
        proc = self._live(script)
        try:
            encoded = proc.encode_args(args)
        except protocol.ValueRefused as exc:
            raise _refused(exc, self.language, script.id) from None
        try:
            return proc.request(
                {"t": "call", "script": script.id, "fn": function, "a": encoded}, limit=script.policy.time_limit
            )
        except WorkerDied as dead:
            raise self._after_death(script, proc, dead) from None

    def _evaluate(self, script: _Script, code: str) -> Any:
        proc = self._live(script)
        try:
            return proc.request({"t": "eval", "script": script.id, "code": code}, limit=script.policy.time_limit)
        except WorkerDied as dead:
            raise self._after_death(script, proc, dead) from None

    def evaluate(self, script_id: str, code: str) -> Any:
        """Run ``code`` in the script's namespace inside its worker, under the
        script's limits and guards, and return the value of its last
        expression (None for statements). The script's function list is
        refreshed: the code may define functions."""
        script = self._script(script_id)
        reply = _enter(script, self._evaluate, script, code)
        if not isinstance(reply, dict):
            raise ScriptRuntimeError("the worker sent a malformed evaluation reply", language=self.language,
                                     script=script_id)
        script.functions = _function_infos(reply.get("f"))
        return reply.get("v")

    async def call_async(self, script_id: str, function: str, args: Sequence[Any]) -> Any:
        """Await a call without blocking the caller's loop: the worker call
        runs in the loop's executor (async functions are driven inside the worker)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.call, script_id, function, list(args))

    def _call_handle(self, proc: WorkerProcess, hid: int, name: str, args: Sequence[Any]) -> Any:
        script: _Script = proc.owner
        return _enter(script, self._call_handle_inside, script, proc, hid, name, args)

    def _call_handle_inside(self, script: _Script, proc: WorkerProcess, hid: int, name: str, args: Sequence[Any]) -> Any:
        if (script.proc is not proc and script.starting is not proc) or proc.dead is not None:
            raise ScriptRuntimeError(
                f"function '{name}' belongs to a worker that was restarted or closed",
                language=self.language,
                script=script.id,
            )
        try:
            encoded = proc.encode_args(args)
        except protocol.ValueRefused as exc:
            raise _refused(exc, self.language, script.id) from None
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
        self._breakpoints = {f: {str(line): b for line, b in lines.items()} for f, lines in breakpoints.items() if lines}
        for script in list(self._scripts.values()):
            _enter(script, self._push_breakpoints, script)

    def _push_breakpoints(self, script: _Script) -> None:
        proc = script.proc
        if proc is None or proc.dead is not None:
            return
        try:
            proc.request({"t": "bps", "b": self._breakpoints}, limit=None, control=True)
        except WorkerDied as dead:
            self._after_death(script, proc, dead)

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

    # -- death and restart ------------------------------------------------------------
    def _live(self, script: _Script) -> WorkerProcess:
        proc = script.proc
        if proc is None or proc.dead is not None:
            self._restart(script)
            proc = script.proc
            if proc is None:
                raise ScriptRuntimeError(
                    "the script's worker could not be restarted", language=self.language, script=script.id
                )
        return proc

    def _after_death(self, script: _Script, proc: WorkerProcess, dead: WorkerDied) -> ScriptError:
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

    def _dead_error(self, script: _Script, dead: WorkerDied, during: str = "") -> ScriptError:
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
            _enter(script, self._set_global_in, script, name, value)

    def _set_global_in(self, script: _Script, name: str, value: Any) -> None:
        proc = script.proc
        if proc is None or proc.dead is not None:
            return
        try:
            proc.request({"t": "setg", "n": name, "v": proc.encode(value)}, limit=None, control=True)
        except protocol.ValueRefused as exc:
            raise _refused(exc, self.language, script.id) from None
        except WorkerDied as dead:
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
            b, a, f = _enter(script, self._collect_in, script, proc)
            before, after, freed = before + b, after + a, freed + f
        return GarbageCollectionStats(
            bytes_before=before, bytes_after=after, objects_freed=freed, duration_ms=(time.perf_counter() - start) * 1000
        )

    def _collect_in(self, script: _Script, proc: WorkerProcess) -> tuple[int, int, int]:
        """One worker's collection: (rss before, rss after, objects freed)."""
        if proc.dead is not None:
            return 0, 0, 0
        before = proc.rss
        try:
            r = proc.request({"t": "gc"}, limit=None, control=True)
        except WorkerDied as dead:
            self._after_death(script, proc, dead)
            return 0, 0, 0
        freed = r["freed"] if isinstance(r, dict) and isinstance(r.get("freed"), int) else 0
        return before, proc.rss, freed

    def workers(self) -> list[WorkerProcess]:
        """Every live worker running a script (those still running its top level too)."""
        procs = []
        for script in list(self._scripts.values()):
            for proc in (script.proc, script.starting):
                if proc is not None and proc.dead is None:
                    procs.append(proc)
        return procs

    def _procs(self) -> list[tuple[_Script, WorkerProcess]]:
        return [(s, s.proc) for s in list(self._scripts.values()) if s.proc is not None and s.proc.dead is None]

    def worker_info(self, script_id: str) -> dict[str, Any]:
        """pid, restarts and the hardening report of a script's worker: what
        the kernel confinement applied (and, under ``weaker``, what the policy
        accepted going without), for diagnostics and tests."""
        script = self._script(script_id)
        proc = script.proc
        return {
            "pid": proc.pid if proc else None,
            "alive": proc is not None and proc.dead is None,
            "restarts": script.restarts,
            "hardening": dict(proc.hardening) if proc else {},
            "rss": proc.rss if proc else 0,
            #: the worker was the standby started while a call ran long (see process.Watchdog)
            "from_standby": bool(proc and proc.from_standby),
            "standby_pid": script.standby.pid if script.standby is not None else None,
            #: "bytecode": the worker ran the host's cached code; "source": it compiled the script
            "compiled_from": script.compiled_from,
        }

    def close(self) -> None:
        self._closed = True
        with self._lock:
            scripts = list(self._scripts.values())
            self._scripts.clear()
        for script in scripts:
            self._end_standby(script)
            if script.proc is not None:
                script.proc.close()
                script.proc = None


def _enter(script: _Script, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` inside the script's gate (the only way into its worker)."""
    gate = script.gate
    assert gate is not None
    return gate.run(fn, *args)


def _close_proc(script: _Script) -> None:
    if script.proc is not None:
        script.proc.close()
        script.proc = None


def _function_infos(infos: Any) -> dict[str, FunctionInfo]:
    """The function list a worker sent (anything malformed is skipped)."""
    functions = {}
    for info in infos if isinstance(infos, list) else ():
        if isinstance(info, dict) and isinstance(info.get("name"), str):
            try:
                functions[info["name"]] = FunctionInfo.from_dict(info)
            except TypeError:
                continue
    return functions


def _refused(exc: protocol.ValueRefused, language: str, script: str) -> ScriptError:
    cls = ERROR_CLASSES.get(exc.kind, ConversionError)
    return cls(str(exc), language=language, script=script)
