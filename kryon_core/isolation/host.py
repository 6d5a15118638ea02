"""The runtime an engine composes to run untrusted scripts in workers.

:class:`IsolatedRuntime` gives each loaded script its own worker process (the
strongest boundary there is between scripts: one script's crash, memory or
CPU exhaustion never touches another's state) with its own
:class:`~kryon_core.SecurityPolicy` turned into kernel confinement, limits and
grants (see ``confine.py`` and ``docs/security.md``). It loads, calls,
restarts a worker that died (reloading its script), and binds the ``kryon``
API. This file holds what the engines use; what the workers talk to, and
starting and restarting them, is ``host_workers.py``; what a worker is told
about its compiler and limits is ``host_config.py``. One worker process and
its channel are :class:`.process.WorkerProcess`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Container, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..engine import FunctionInfo, GarbageCollectionStats, MemoryUsage
from ..errors import ScriptError, ScriptRuntimeError
from ..policy import SecurityPolicy
from ..threads import EngineGate
from . import forkserver, protocol
from .host_calls import plain_caller
from .host_config import CompilerSpec, limits_for
from .host_workers import HostedScript, WorkerSide, close_proc, enter, function_infos, refused
from .process import ERROR_CLASSES, WORKER_PATH, Flight, WorkerDied, WorkerProcess
from .testing import SWITCHES

if TYPE_CHECKING:
    from ..bridge import ScriptBridge

__all__ = ["CompilerSpec", "IsolatedRuntime", "WORKER_PATH", "limits_for", "ERROR_CLASSES"]


class IsolatedRuntime(WorkerSide):
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
        self._scripts: dict[str, HostedScript] = {}
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

    # -- setup -----------------------------------------------------------------------------------
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

    # -- scripts ---------------------------------------------------------------------------------
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
        script = HostedScript(script_id, source, filename, policy, "async" in source, python_layers=layers,
                         unavailable=unavailable, bytecode=bytecode)
        script.gate = EngineGate(f"{self.language}/worker {script_id}", language=self.language)
        script.acquire, script.unlock = script.gate.uncontended_inline()
        enter(script, self._start, script)
        with self._lock:
            old = self._scripts.get(script_id)
            self._scripts[script_id] = script
        if old is not None:
            self._end_standby(old)
            enter(old, close_proc, old)
        return dict(script.functions)

    def reload(
        self, script_id: str, source: str, *, policy: SecurityPolicy, filename: str | None = None,
        bytecode: bytes | None = None,
    ) -> dict[str, FunctionInfo]:
        """Start the new version in a new worker; only when its top level
        succeeded does it replace the old one (which otherwise keeps running)."""
        return self.load(script_id, source, policy=policy, filename=filename, bytecode=bytecode)

    def prestart(self, wait: float = 0.0) -> None:
        """Start the fork server of this runtime's workers ahead of the first
        worker (waiting up to ``wait`` seconds until it is ready)."""
        forkserver.prestart(self._warm_message(), wait=wait)

    def unload(self, script_id: str) -> None:
        with self._lock:
            script = self._scripts.pop(script_id, None)
        if script is not None:
            self._end_standby(script)
            enter(script, close_proc, script)

    def functions(self, script_id: str) -> dict[str, FunctionInfo]:
        return dict(self._script(script_id).functions)

    def current_functions(self, script_id: str) -> dict[str, FunctionInfo]:
        """The functions the script's namespace holds now, asked of its worker
        (a call may have defined some since the load: Lisp's ``hy.eval``);
        the load's listing when the worker is not running."""
        script = self._script(script_id)
        listed = enter(script, self._list_in, script)
        if listed is not None:
            script.functions = function_infos(listed)
        return dict(script.functions)

    def _list_in(self, script: HostedScript) -> Any:
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

    def _script(self, script_id: str) -> HostedScript:
        script = self._scripts.get(script_id)
        if script is None:
            raise ScriptError(f"no script '{script_id}' is loaded", language=self.language, script=script_id)
        return script

    # -- calls -----------------------------------------------------------------------------------
    def call(self, script_id: str, function: str, args: Sequence[Any], flight: Flight | None = None) -> Any:
        script = self._script(script_id)
        return enter(script, self._call, script, function, args, flight)

    def caller(
        self, script_id: str, function: str, *, known: Container[str], general: Callable[[Sequence[Any]], Any],
        rename: Callable[[ScriptError], ScriptError],
    ) -> Callable[..., Any]:
        """A bound handle's caller of ``function`` (see ``host_calls.plain_caller``)."""
        return plain_caller(self, script_id, function, known=known, general=general, rename=rename)

    def _call(self, script: HostedScript, function: str, args: Sequence[Any], flight: Flight | None = None) -> Any:
        proc = self._live(script)
        try:
            encoded = proc.encode_args(args)
        except protocol.ValueRefused as exc:
            raise refused(exc, self.language, script.id) from None
        try:
            return proc.request(
                {"t": "call", "script": script.id, "fn": function, "a": encoded}, limit=script.policy.time_limit,
                flight=flight,
            )
        except WorkerDied as dead:
            raise self._after_death(script, proc, dead) from None

    def _evaluate(self, script: HostedScript, code: str) -> Any:
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
        reply = enter(script, self._evaluate, script, code)
        if not isinstance(reply, dict):
            raise ScriptRuntimeError("the worker sent a malformed evaluation reply", language=self.language,
                                     script=script_id)
        script.functions = function_infos(reply.get("f"))
        return reply.get("v")

    async def call_async(self, script_id: str, function: str, args: Sequence[Any]) -> Any:
        """Await a call without blocking the caller's loop: the worker call
        runs in the loop's executor (async functions are driven inside the
        worker). Cancelling the awaiting task stops the call in the worker
        (:meth:`_stop_cancelled`) before ``CancelledError`` reaches the caller."""
        loop = asyncio.get_running_loop()
        flight = Flight()
        done = loop.run_in_executor(None, flight.run, self.call, script_id, function, list(args))
        try:
            return await asyncio.shield(done)
        except asyncio.CancelledError:
            await self._stop_cancelled(script_id, flight, done)
            raise

    async def _stop_cancelled(self, script_id: str, flight: Flight, done: "asyncio.Future[Any]") -> None:
        """The task awaiting ``flight`` was cancelled: interrupt the worker's
        call (again every ``CANCEL_RESEND`` seconds, as one landing outside
        script code does nothing) and, if it runs on past ``CANCEL_GRACE``,
        kill the worker as the time limit's watchdog does (the script
        restarts, other scripts' workers are not touched). Returns once the
        executor's call is over, so the script is free for the next call; a
        second cancellation meanwhile does not cut that short."""
        give_up = time.monotonic() + CANCEL_GRACE
        while not done.done():
            target = flight.target  # (worker, request id) while the flight's request runs
            if target is not None:
                proc, rid = target
                hook = SWITCHES.before_interrupt
                if hook is not None:
                    hook()
                if time.monotonic() < give_up:
                    proc.interrupt(rid)
                elif flight.target is target:
                    proc.stop_cancelled()
            try:
                await asyncio.wait([done], timeout=CANCEL_RESEND)
            except asyncio.CancelledError:
                pass  # cancelled again: the call is being stopped (within the grace), CancelledError follows
        if not done.cancelled():
            done.exception()  # what the stopped call raised: nobody awaits it

    # -- breakpoints -----------------------------------------------------------------------------
    def set_breakpoints(self, breakpoints: Mapping[str, Mapping[int, int]]) -> None:
        """Replace every breakpoint: script id -> {line: breakpoint id}."""
        self._breakpoints = {f: {str(line): b for line, b in lines.items()} for f, lines in breakpoints.items() if lines}
        for script in list(self._scripts.values()):
            enter(script, self._push_breakpoints, script)

    def _push_breakpoints(self, script: HostedScript) -> None:
        proc = script.proc
        if proc is None or proc.dead is not None:
            return
        try:
            proc.request({"t": "bps", "b": self._breakpoints}, limit=None, control=True)
        except WorkerDied as dead:
            self._after_death(script, proc, dead)

    # -- globals, memory -------------------------------------------------------------------------
    def set_global(self, name: str, value: Any) -> None:
        self._globals[name] = value
        for script in list(self._scripts.values()):
            enter(script, self._set_global_in, script, name, value)

    def _set_global_in(self, script: HostedScript, name: str, value: Any) -> None:
        proc = script.proc
        if proc is None or proc.dead is not None:
            return
        try:
            proc.request({"t": "setg", "n": name, "v": proc.encode(value)}, limit=None, control=True)
        except protocol.ValueRefused as exc:
            raise refused(exc, self.language, script.id) from None
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
            b, a, f = enter(script, self._collect_in, script, proc)
            before, after, freed = before + b, after + a, freed + f
        return GarbageCollectionStats(
            bytes_before=before, bytes_after=after, objects_freed=freed, duration_ms=(time.perf_counter() - start) * 1000
        )

    def _collect_in(self, script: HostedScript, proc: WorkerProcess) -> tuple[int, int, int]:
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

    def _procs(self) -> list[tuple[HostedScript, WorkerProcess]]:
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


#: how often a cancelled awaited call's worker is asked again to stop, and how long before it is killed
CANCEL_RESEND = 0.02
CANCEL_GRACE = 2.0
