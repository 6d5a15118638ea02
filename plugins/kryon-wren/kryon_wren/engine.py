"""The Wren engine: Kryon's ScriptEngine over the project's own Wren VM.

Every loaded script has its own Wren VM, named module = script id, inside a
wasm instance of its own (sandbox.py). In each VM the module "kryon"
(bridge.py) is defined first, so a script writes ``import "kryon" for
Kryon``. ``import "other" for X`` asks the manager's module loader for the
source of another loaded Wren script (or a file beside the importing one)
and runs it inside the importing script's VM (a copy with its own state, as
in every Wren host).

Callable functions are static methods of top-level classes
(``"Counter.increment"``, getters too) and top-level variables holding a Fn
(``"greet"``); ``compile`` finds both by scanning the source (scan.py),
``load_script`` keeps the variables that really hold a Fn, with its arity.

Limits and debugging: the policy's ``max_recursion`` bounds the call frames
of each Wren fiber (the VM's ``wren_set_max_frames``). Breakpoints are
(script, line) pairs applied to every script's VM (the VM patches the first
instruction of each run of the line, so code without breakpoints runs
untouched); ``get_stack_trace`` inside a host function called from Wren, or
inside the breakpoint handler, reads the paused VMs' frames.

Thin by design: one script's VM and what the engine keeps for it live in
:class:`~kryon_wren.state.ScriptState` (in its :class:`~kryon_wren.state.Pool`,
its wasm instance and gate); compile checks, top levels, reload and
evaluation in :mod:`kryon_wren.loader`; calls in :mod:`kryon_wren.calls`;
values in :mod:`kryon_wren.values`; errors in :mod:`kryon_wren.errors`;
limits in :mod:`kryon_wren.sandbox`; source scans in :mod:`kryon_wren.scan`.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from kryon_core import (
    BreakpointHit,
    CachedCallsEngine,
    CompiledScript,
    EngineCapabilities,
    EngineConfig,
    FunctionInfo,
    FunctionRef,
    GarbageCollectionStats,
    MemoryUsage,
    ScriptBridge,
    ScriptError,
    ScriptNotFoundError,
    SecurityPolicy,
    StackFrame,
)

from . import calls, loader, sandbox
from .plugin import LANGUAGE
from .scan import imports, scan_functions
from .state import Pool, ScriptState


@functools.lru_cache(maxsize=1)
def _vm_build() -> str:
    """A short digest of the wasm build the engine runs."""
    from .instance import WASM_PATH

    try:
        return hashlib.sha256(WASM_PATH.read_bytes()).hexdigest()[:12]
    except OSError:
        return "unbuilt"


def _on_live_vm(state: ScriptState, method: str, *args: Any) -> None:
    vm = state.vm
    if vm is not None and state.pool.instance.dead is None:
        getattr(vm, method)(*args)


def _script_id_of(file: str) -> str:
    """A breakpoint's script: the script id, or a file path naming it."""
    name = file.replace("\\", "/").rsplit("/", 1)[-1]
    return name.removesuffix(".wren")


class WrenEngine(CachedCallsEngine):
    language = LANGUAGE
    extensions = (".wren",)

    def __init__(self) -> None:
        super().__init__()
        self._scripts: dict[str, ScriptState] = {}
        #: engine globals (``set_global``), read by ``Kryon.global(name)``
        self.globals: dict[str, Any] = {}
        #: the Fns scripts handed out, by their FunctionRef (passed back in, the same Fn)
        self.wren_fns: "weakref.WeakKeyDictionary[FunctionRef, tuple[ScriptState, Any]]" = \
            weakref.WeakKeyDictionary()
        #: guards the engine's tables only; never held while script code runs
        #: (each script's runtime is entered through its pool's gate)
        self._lock = threading.RLock()
        #: numbers of the glue modules made in a VM (``<script>#call1``, ``#async2``, ``#check3``)
        self.module_ids = itertools.count(1)
        self.checker = loader.Checker(self.module_ids)
        #: scripts running a host function or a breakpoint handler, innermost last
        self._threads = threading.local()
        self._breakpoints: dict[int, tuple[str, int]] = {}
        self._breakpoint_ids = itertools.count(1)
        self._peak = 0
        #: the debugger's target, once asked for (debugging.py)
        self.debugger: Any = None

    @property
    def _checker(self) -> Any:
        """The compile checker's scratch VM (None until a compile needs one)."""
        return self.checker.vm

    # -- identification ------------------------------------------------------------------
    @property
    def version(self) -> str:
        # The VM build is part of the version, so the compile cache keys its
        # bytecode entries on the build that wrote them.
        return f"Wren 0.4 (kryon-wren VM {_vm_build()} on wasmtime)"

    @property
    def capabilities(self) -> EngineCapabilities:
        return EngineCapabilities(
            supports_async=True,
            supports_generators=False,
            supports_coroutines=True,
            supports_modules=True,
            supports_debugging=True,
            supports_jit=False,
            supports_bytecode=True,
            supports_sandbox=True,
        )

    def initialize(self, config: EngineConfig) -> None:
        super().initialize(config)

    # -- scripts -----------------------------------------------------------------------------
    def _pools(self) -> list[Pool]:
        with self._lock:
            return [s.pool for s in self._scripts.values()]

    def current(self, script_id: str) -> ScriptState | None:
        """The state a script id names now (None once unloaded)."""
        return self._scripts.get(script_id)

    def script_state(self, script_id: str) -> ScriptState:
        state = self._scripts.get(script_id)
        if state is None:
            raise ScriptNotFoundError(f"no Wren script '{script_id}' is loaded", language=LANGUAGE, script=script_id)
        return state

    # -- compile and load ------------------------------------------------------------------
    def compile(self, source: "str | bytes", name: str, *, policy: SecurityPolicy | None = None) -> CompiledScript:
        text = source.decode("utf-8") if isinstance(source, bytes) else source
        bytecode = self.checker.compile_bytecode(text, name)
        return CompiledScript(
            id=name,
            language=LANGUAGE,
            source=text,
            bytecode=bytecode,
            functions=scan_functions(text),
            dependencies=imports(text),
            engine_version=self.version,
        )

    def load_script(self, compiled: CompiledScript, *, policy: SecurityPolicy | None = None) -> str:
        state = loader.start(self, compiled, policy or self.config.policy)
        with self._lock:
            old = self._scripts.get(compiled.id)
            self._scripts[compiled.id] = state
        if old is not None:
            self._drop(old)
        return compiled.id

    def reload_script(
        self, script_id: str, compiled: CompiledScript, *, policy: SecurityPolicy | None, previous: CompiledScript
    ) -> None:
        """The new version starts in a VM (and wasm instance) of its own and
        gets the old one's state (reload.py: its ``onReload(old)`` hook, else
        the module variables it leaves null); the old one is closed only once
        both succeeded (else it keeps running, state and all)."""
        old = self.script_state(script_id)
        state = loader.start(self, compiled, policy or old.policy)
        try:
            data = loader.read_old(old)
            state.pool.gate.run(loader.carry_over, state, data)
        except BaseException:
            self._drop(state)
            raise
        with self._lock:
            self._scripts[script_id] = state
        self._drop(old)

    def unload_script(self, script_id: str) -> None:
        with self._lock:
            state = self._scripts.pop(script_id, None)
        if state is None:
            raise ScriptNotFoundError(f"no Wren script '{script_id}' is loaded", language=LANGUAGE, script=script_id)
        self._drop(state)

    def _drop(self, state: ScriptState) -> None:
        pool = state.pool

        def drop() -> None:
            if state in pool.states:
                pool.states.remove(state)
            state.flush()
            state.close()
            if not pool.states:  # the script's instance goes with it: its memory is freed whole
                sandbox.dispose(pool.instance)

        pool.gate.run(drop)

    def evaluate(self, script_id: str, code: str) -> Any:
        """Run ``code`` in the script's module. An expression is evaluated
        (``KryonHost.evalResult = (code)``, tried first: a compile error there
        runs nothing) and its value returned; anything else runs as module
        statements (its ``var`` and ``class`` definitions stay in the module)
        and gives None. Line numbers of errors count from the code's first
        line. Functions the code defines become callable."""
        if not isinstance(code, str):
            raise ScriptError(f"code must be a str, not {type(code).__name__}", language=LANGUAGE, script=script_id)
        state = self.script_state(script_id)
        return state.pool.gate.run(loader.evaluate, state, code)

    def list_functions(self, script_id: str) -> dict[str, FunctionInfo]:
        return dict(self.script_state(script_id).functions)

    # -- calls -------------------------------------------------------------------------------
    def cached_caller(self, state: ScriptState, function: str) -> Callable[..., Any]:
        return calls.caller(state, function)

    async def call_function_async(self, function: str, args: Sequence[Any], *, script: str) -> Any:
        """Run the function in a new fiber. ``Fiber.yield()`` gives the loop a
        turn; ``Fiber.yield(ms)`` with a number sleeps that long; the fiber's
        return value is the result."""
        return await calls.call_async(self.script_state(script), function, args)

    # -- debugging -----------------------------------------------------------------------------------
    @property
    def active(self) -> list[ScriptState]:
        """The calling thread's scripts running a host function or a
        breakpoint handler, innermost last."""
        try:
            return self._threads.active  # type: ignore[no-any-return]
        except AttributeError:
            active = self._threads.active = []
            return active

    def debug_target(self) -> Any:
        """Breakpoints, stepping, pausing and inspection for the debugger
        (see debugging.py); every policy's scripts can be debugged, since
        evaluation runs inside the script's own VM."""
        with self._lock:
            if self.debugger is None:
                from .debugging import WrenDebugTarget

                self.debugger = WrenDebugTarget(self)
            return self.debugger

    def get_stack_trace(self) -> list[StackFrame]:
        """The Wren frames paused under the running host function (or
        breakpoint handler), innermost first, across scripts."""
        frames: list[StackFrame] = []
        seen: set[int] = set()
        for state in reversed(self.active):
            if id(state) not in seen:
                seen.add(id(state))
                frames.extend(state.pool.gate.run(state.frames))
        return frames

    def set_breakpoint(self, file: str, line: int) -> int:
        script = file if file in self._scripts else _script_id_of(file)
        if isinstance(line, bool) or not isinstance(line, int) or line < 1:
            raise ScriptError(f"a breakpoint needs a line number >= 1, not {line!r}", language=LANGUAGE, script=script)
        with self._lock:
            bid = next(self._breakpoint_ids)
            self._breakpoints[bid] = (script, line)
        for state in self.live_states():
            state.pool.gate.run(_on_live_vm, state, "add_breakpoint", script, line)
        return bid

    def remove_breakpoint(self, breakpoint_id: int) -> None:
        with self._lock:
            where = self._breakpoints.pop(breakpoint_id, None)
            if where is None:
                raise ScriptError(f"no breakpoint {breakpoint_id}", language=LANGUAGE)
            still_set = where in self._breakpoints.values()
        if not still_set:
            for state in self.live_states():
                state.pool.gate.run(_on_live_vm, state, "remove_breakpoint", *where)

    def breakpoint_lines(self) -> set[tuple[str, int]]:
        return set(self._breakpoints.values())

    def live_states(self) -> list[ScriptState]:
        with self._lock:
            return [s for s in self._scripts.values() if s.vm is not None and s.pool.instance.dead is None]

    def breakpoint_hit(self, state: ScriptState, module: str, line: int) -> None:
        handler = self.breakpoint_handler
        ids = [bid for bid, where in self._breakpoints.items() if where == (module, line)]
        if handler is None or not ids:
            return
        self.active.append(state)
        try:
            handler(BreakpointHit(min(ids), LANGUAGE, module, line, state.frames(with_locals=True)))
        finally:
            self.active.pop()

    # -- globals -----------------------------------------------------------------------------------
    def set_global(self, name: str, value: Any) -> None:
        from kryon_core.values import MAX_SAFE_DOUBLE_INT, check_int, to_host

        value = to_host(value, language=LANGUAGE)
        # scripts read it later (Kryon.global): an int Wren cannot hold is refused now, as every
        # other engine's set_global refuses it
        stack = [value]
        while stack:
            v = stack.pop()
            if type(v) is int:
                check_int(v, exact_limit=MAX_SAFE_DOUBLE_INT, language=LANGUAGE)
            elif isinstance(v, list):
                stack.extend(v)
            elif isinstance(v, dict):
                stack.extend(v.values())
        self.globals[name] = value

    def get_global(self, name: str) -> Any:
        return self.globals.get(name)

    # -- memory ------------------------------------------------------------------------------------
    def collect_garbage(self) -> GarbageCollectionStats:
        """A full collection in every script's VM; the figures are the bytes
        the VMs' collectors account for (live objects)."""
        start = time.perf_counter()

        def collect(state: ScriptState) -> tuple[int, int]:
            vm = state.vm
            if vm is None or state.pool.instance.dead is not None:
                return 0, 0
            vm.instance.enter()  # under the script's own time limit, like a call
            try:
                before = vm.bytes_allocated()
                vm.collect_garbage()
                return before, vm.bytes_allocated()
            finally:
                vm.instance.leave()

        before = after = 0
        for state in self.live_states():
            b, a = state.pool.gate.run(collect, state)
            before, after = before + b, after + a
        return GarbageCollectionStats(before, after, None, (time.perf_counter() - start) * 1000)

    def get_memory_usage(self) -> MemoryUsage:
        """``used_bytes``: the linear memory of every script's wasm instance,
        which is what the VMs hold from the process (a wasm memory grows and
        never shrinks; it is freed whole when its script unloads).
        ``peak_bytes``: the largest ``used_bytes`` seen. ``limit``: the sum of
        the scripts' memory caps, None when a script is unlimited."""
        pools = self._pools()
        used = sum(p.instance.memory_size() for p in pools if p.instance.dead is None)
        limits = [p.key.memory_limit for p in pools]
        limited = [m for m in limits if m < sandbox.UNLIMITED_MEMORY]
        limit = sum(limits) if limits and len(limited) == len(limits) else None
        self._peak = max(self._peak, used)
        return MemoryUsage(used_bytes=used, limit=limit, peak_bytes=self._peak, scripts=len(pools))

    # -- bridge ------------------------------------------------------------------------------------
    def setup_bridge(self, bridge: ScriptBridge) -> None:
        super().setup_bridge(bridge)

    def convert_unknown(self, value: Any) -> Any:
        if self.bridge is not None:
            return self.bridge.convert_unknown(value)
        from kryon_core import ConversionError

        raise ConversionError(f"cannot pass a {type(value).__name__} to Wren", language=LANGUAGE)

    def close(self) -> None:
        with self._lock:
            states = list(self._scripts.values())
            self._scripts.clear()
        for state in states:
            self._drop(state)
        self.checker.close()

