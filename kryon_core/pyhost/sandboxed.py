"""Scripts under a sandboxed policy: each in a worker process of its own.

In-process Python cannot contain untrusted code, so a sandboxed script of a
Python-hosted language runs in a worker (:mod:`kryon_core.isolation`), which
compiles it with the dialect's :class:`~kryon_core.isolation.CompilerSpec`
and binds its ``kryon`` API under the dialect's names. This side forwards
loads, calls, globals and breakpoints, and names the worker's functions and
frames the way the language spells them.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..bridge import ScriptBridge
from ..engine import BreakpointHit, CompiledScript, FunctionInfo, GarbageCollectionStats, MemoryUsage
from ..errors import ScriptError, ScriptNotFoundError, StackFrame
from ..policy import SecurityPolicy
from ..values import FunctionRef
from .dialect import Dialect
from .tracing import Breakpoints

if TYPE_CHECKING:  # the isolation host (asyncio, processes) loads with the first sandboxed script
    from ..isolation import IsolatedRuntime
    from ..isolation.debugging import WorkerDebugHost

__all__ = ["Sandboxed"]


class Sandboxed:
    """The sandboxed scripts of one engine (see the module docstring)."""

    def __init__(self, dialect: Dialect, output: Callable[[str], None], breakpoints: Breakpoints,
                 module_loader: Callable[[], Callable[[str, str], str | None] | None] = lambda: None) -> None:
        self.dialect = dialect
        #: the manager's module loader, for files a script imports beside it (read when the runtime is made)
        self.module_loader = module_loader
        self.language = dialect.language
        self.output = output
        self.breakpoints = breakpoints
        self.bridge: ScriptBridge | None = None
        self.globals: dict[str, Any] = {}
        self.scripts: dict[str, CompiledScript] = {}
        self._runtime: IsolatedRuntime | None = None
        self._lock = threading.Lock()
        #: the debugger's side of the workers, while a debugger is attached (see isolation.debugging)
        self.debug: WorkerDebugHost | None = None

    @property
    def runtime(self) -> IsolatedRuntime:
        """The isolated runtime (made on first use)."""
        rt = self._runtime
        if rt is None:
            with self._lock:
                rt = self._runtime
                if rt is None:
                    from ..isolation.host import IsolatedRuntime

                    rt = IsolatedRuntime(self.language, compiler=self.dialect.compiler_spec, output=self.output)
                    if self.bridge is not None:
                        rt.setup_bridge(self.bridge, self.dialect.api_names(self.bridge.methods()))
                    for name, value in self.globals.items():
                        rt.set_global(name, value)
                    rt.on_breakpoint = self._hit
                    rt.module_loader = self.module_loader()
                    if self.debug is not None:
                        self.debug.bind(rt)
                    self._runtime = rt
        return rt

    def __contains__(self, script_id: object) -> bool:
        return script_id in self.scripts

    def set_debug(self, debug: WorkerDebugHost) -> None:
        """Debug the workers through ``debug`` (it stays bound after a detach
        until every worker was told to stop tracing)."""
        self.debug = debug
        if self._runtime is not None:
            debug.bind(self._runtime)

    def setup_bridge(self, bridge: ScriptBridge) -> None:
        self.bridge = bridge
        if self._runtime is not None:
            self._runtime.setup_bridge(bridge, self.dialect.api_names(bridge.methods()))

    # -- scripts ----------------------------------------------------------------------------
    def load(self, compiled: CompiledScript, policy: SecurityPolicy, *, reload: bool = False) -> None:
        rt = self.runtime
        load = rt.reload if reload else rt.load
        try:
            load(compiled.id, compiled.source, policy=policy, filename=compiled.filename,
                 bytecode=self.dialect.worker_bytecode(compiled))
        except ScriptError as exc:
            raise self.renamed(exc) from None
        self.scripts[compiled.id] = compiled
        self.breakpoints.forget(compiled.id)
        self.push_breakpoints()

    def unload(self, script_id: str) -> None:
        if self.scripts.pop(script_id, None) is not None and self._runtime is not None:
            self._runtime.unload(script_id)

    def functions(self, script_id: str, *, fresh: bool = False) -> dict[str, FunctionInfo]:
        """The script's functions as the worker listed them at load (or after
        an evaluation); ``fresh``: as its namespace holds them now."""
        compiled = self._compiled(script_id)
        spelling = self.dialect.spelling
        out = {}
        listed = self.runtime.current_functions(script_id) if fresh else self.runtime.functions(script_id)
        for info in listed.values():
            params = tuple(spelling(p) for p in info.parameter_names)
            out[info.name] = dataclasses.replace(info, parameter_names=params)
        return self.dialect.listing(out, compiled)

    def _compiled(self, script_id: str) -> CompiledScript:
        compiled = self.scripts.get(script_id)
        if compiled is None:
            raise ScriptNotFoundError(f"no script '{script_id}' is loaded", language=self.language, script=script_id)
        return compiled

    # -- calls ------------------------------------------------------------------------------
    def call(self, script_id: str, function: str, args: Sequence[Any]) -> Any:
        self._compiled(script_id)
        try:
            return self.runtime.call(script_id, self.dialect.identifier(function), args)
        except ScriptError as exc:
            raise self.renamed(exc) from None

    async def call_async(self, script_id: str, function: str, args: Sequence[Any]) -> Any:
        self._compiled(script_id)
        try:
            return await self.runtime.call_async(script_id, self.dialect.identifier(function), args)
        except ScriptError as exc:
            raise self.renamed(exc) from None

    def function_ref(self, script_id: str, function: str) -> FunctionRef:
        self._compiled(script_id)
        call = self.call

        def general(args: Any) -> Any:
            return call(script_id, function, args)

        # the worker's plain calls skip the engine and the runtime (isolation.host_calls)
        bound = self.runtime.caller(script_id, self.dialect.identifier(function), known=self.scripts,
                                    general=general, rename=self.renamed)

        async def bound_async(*args: Any) -> Any:
            return await self.call_async(script_id, function, args)

        return FunctionRef(bound, name=function, language=self.language, script=script_id, call_async=bound_async)

    def evaluate(self, script_id: str, code: str) -> Any:
        """``code`` run in the script's namespace inside its worker (compiled
        there, checked and limited as the script's own code is)."""
        self._compiled(script_id)
        try:
            return self.runtime.evaluate(script_id, code)
        except ScriptError as exc:
            raise self.renamed(exc) from None

    # -- the rest -----------------------------------------------------------------------------
    def set_global(self, name: str, value: Any) -> None:
        self.globals[name] = value
        if self._runtime is not None:
            self._runtime.set_global(name, value)

    def push_breakpoints(self) -> None:
        if self._runtime is not None:
            self._runtime.set_breakpoints(self.breakpoints.for_scripts(self.scripts))

    def _hit(self, hit: BreakpointHit) -> None:
        handler = self.breakpoints.handler
        if handler is not None:
            handler(dataclasses.replace(hit, stack=self.stack(hit.stack)))

    def current_stack(self) -> list[StackFrame]:
        return self.stack(self._runtime.current_stack()) if self._runtime is not None else []

    def stack(self, frames: list[StackFrame]) -> list[StackFrame]:
        """A worker's frames named the language's way (functions and locals)."""
        dialect = self.dialect
        return [
            dataclasses.replace(
                f, function=dialect.frame_name(f.function), locals={dialect.spelling(k): v for k, v in f.locals.items()}
            )
            if f.language == self.language
            else f
            for f in frames
        ]

    def renamed(self, error: ScriptError) -> ScriptError:
        error.stack = self.stack(error.stack)
        return error

    def memory(self) -> MemoryUsage | None:
        return self._runtime.memory_usage() if self._runtime is not None and self.scripts else None

    def collect(self) -> GarbageCollectionStats | None:
        return self._runtime.collect_garbage() if self._runtime is not None and self.scripts else None

    def close(self) -> None:
        self.scripts.clear()
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None
