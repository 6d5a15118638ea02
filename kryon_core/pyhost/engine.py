"""The base of every engine whose scripts run as Python bytecode.

:class:`PyHostedEngine` is a whole :class:`~kryon_core.ScriptEngine` for a
language compiled to Python bytecode (kryon-python, kryon-lisp): a script
runs in the host interpreter when its policy is trusted (:mod:`.inprocess`)
and in a worker process of its own when it is sandboxed (:mod:`.sandboxed`);
both kinds can be loaded side by side. A plugin subclasses it with its
:class:`~kryon_core.pyhost.Dialect` and its version and capabilities.

Options (``EngineConfig.options``): ``"main"``, a script id: that script runs
as the program (its module's ``__name__`` is ``"__main__"``), as
``kryon run FILE`` wants for a trusted script.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..bridge import ScriptBridge
from ..engine import (
    BreakpointHit,
    CompiledScript,
    EngineCapabilities,
    EngineConfig,
    FunctionInfo,
    GarbageCollectionStats,
    MemoryUsage,
    ScriptEngine,
)
from ..errors import CompileError, ScriptError, ScriptNotFoundError, StackFrame
from ..policy import SecurityPolicy
from ..values import FunctionRef
from ..watchdog import Watchdog
from .dialect import Dialect
from .errors import ErrorTranslator
from .inprocess import InProcess
from .memory import collect
from .policy import refuse_unkeepable
from .sandboxed import Sandboxed
from .tracing import Breakpoints, names_for

if TYPE_CHECKING:
    from ..isolation import IsolatedRuntime

__all__ = ["PyHostedEngine"]


class PyHostedEngine(ScriptEngine):
    """Scripts compiled to Python bytecode, trusted ones in-process and
    sandboxed ones isolated (see the module docstring)."""

    #: whether coroutines and modules (``EngineCapabilities``) are claimed; the rest is the same for every dialect
    supports_coroutines = False
    supports_modules = False

    def __init__(self, dialect: Dialect) -> None:
        super().__init__()
        self.dialect = dialect
        errors = ErrorTranslator(dialect)
        self.breakpoints = Breakpoints(dialect.language, self._names_of, errors)
        self.local = InProcess(dialect, self.gate, self._get_config, self._get_bridge, self.breakpoints, errors)
        self.sandboxed = Sandboxed(dialect, self._output, self.breakpoints, lambda: self.config.module_loader)
        self._debug_target: Any = None  # made by debug_target()

    def _get_config(self) -> EngineConfig:
        return self.config

    def _get_bridge(self) -> ScriptBridge | None:
        return self.bridge

    def _output(self, text: str) -> None:
        self.config.output(text)

    def _names_of(self, script_id: str) -> set[str]:
        script = self.local.table.get(script_id)
        compiled = script.compiled if script is not None else self.sandboxed.scripts.get(script_id)
        return names_for(script_id, compiled.filename if compiled else None, self.extensions)

    @property
    def capabilities(self) -> EngineCapabilities:
        return EngineCapabilities(
            supports_async=True,
            supports_generators=True,
            supports_coroutines=self.supports_coroutines,
            supports_modules=self.supports_modules,
            supports_debugging=True,
            supports_jit=False,
            supports_bytecode=True,
            supports_sandbox=True,
        )

    # -- where a script runs --------------------------------------------------------------
    @property
    def runtime(self) -> IsolatedRuntime:
        """The isolated runtime sandboxed scripts run in (made on first use)."""
        return self.sandboxed.runtime

    def is_sandboxed(self, script_id: str) -> bool:
        return script_id in self.sandboxed

    @property
    def watchdog(self) -> Watchdog | None:
        """The watchdog keeping trusted time limits (None until one is needed)."""
        return self.local.entry.watchdog

    @property
    def tracing(self) -> bool:
        """Whether script calls install the trace hook (breakpoints exist)."""
        return self.local.tracer.active

    def _known(self, script_id: str) -> None:
        if script_id not in self.sandboxed and script_id not in self.local.table:
            raise ScriptNotFoundError(f"no {self.language} script '{script_id}' is loaded", language=self.language,
                                      script=script_id)

    # -- lifecycle ------------------------------------------------------------------------
    def initialize(self, config: EngineConfig) -> None:
        super().initialize(config)
        if config.policy.sandboxed:  # sandboxed scripts are expected: their fork server warms up now
            self.sandboxed.runtime.prestart()

    def check_policy(self, policy: SecurityPolicy) -> None:
        refuse_unkeepable(policy, self.language)

    def compile(self, source: "str | bytes", name: str, *, policy: SecurityPolicy | None = None) -> CompiledScript:
        """Compile without running (the worker compiles sandboxed scripts again, and checks them)."""
        if isinstance(source, (bytes, bytearray)):
            try:
                source = bytes(source).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise CompileError(f"source is not valid UTF-8 (byte {exc.start})", language=self.language,
                                   script=name) from None
        return self.dialect.compile(source, name, sandboxed=(policy or self.config.policy).sandboxed)

    def load_script(self, compiled: CompiledScript, *, policy: SecurityPolicy | None = None) -> str:
        policy = policy or self.config.policy
        if compiled.id in self.local.table or compiled.id in self.sandboxed:
            raise ScriptError(f"a script named '{compiled.id}' is already loaded", language=self.language,
                              script=compiled.id)
        self.breakpoints.forget(compiled.id)
        if policy.sandboxed:
            self.sandboxed.load(compiled, policy)
        else:
            self.local.load(compiled, policy)
        return compiled.id

    def reload_script(
        self, script_id: str, compiled: CompiledScript, *, policy: SecurityPolicy | None, previous: CompiledScript
    ) -> None:
        """The new version runs beside the old one and replaces it only when
        its top level (and its reload hook) succeeded; a failing version leaves
        the old one running with its state. Trusted scripts keep their state
        across the reload (see :mod:`.reload`); a sandboxed one starts over in
        a new worker. A script moving between a worker and this process starts over."""
        policy = policy or self.config.policy
        self.breakpoints.forget(script_id)
        in_worker = script_id in self.sandboxed
        if in_worker == policy.sandboxed:
            if policy.sandboxed:
                self.sandboxed.load(compiled, policy, reload=True)
            else:
                self.local.reload(compiled, policy)
            return
        ScriptEngine.reload_script(self, script_id, compiled, policy=policy, previous=previous)

    def unload_script(self, script_id: str) -> None:
        self._known(script_id)
        self.breakpoints.forget(script_id)
        if script_id in self.sandboxed:
            self.sandboxed.unload(script_id)
        else:
            self.gate.run(self.local.unload, script_id)

    def list_functions(self, script_id: str) -> dict[str, FunctionInfo]:
        self._known(script_id)
        if script_id in self.sandboxed:
            return self.sandboxed.functions(script_id)
        return self.local.functions(script_id)

    def current_functions(self, script_id: str) -> dict[str, FunctionInfo]:
        """A trusted script's namespace is read as it is; a sandboxed one's
        worker is asked (its listing is otherwise the one made at load)."""
        self._known(script_id)
        if script_id in self.sandboxed:
            return self.sandboxed.functions(script_id, fresh=True)
        return self.local.functions(script_id)

    def close(self) -> None:
        self.gate.run(self.local.close)
        self.sandboxed.close()

    # -- calls -------------------------------------------------------------------------------
    def call_function(self, function: str, args: Sequence[Any], *, script: str) -> Any:
        if script in self.sandboxed:
            return self.sandboxed.call(script, function, args)
        return self.local.call(function, args, script)

    async def call_function_async(self, function: str, args: Sequence[Any], *, script: str) -> Any:
        if script in self.sandboxed:
            return await self.sandboxed.call_async(script, function, args)
        return await self.local.call_async(function, args, script)

    def get_function(self, function: str, *, script: str) -> FunctionRef:
        if script in self.sandboxed:
            return self.sandboxed.function_ref(script, function)
        return self.local.function_ref(function, script)

    def evaluate(self, script_id: str, code: str) -> Any:
        self._known(script_id)
        if script_id in self.sandboxed:
            return self.sandboxed.evaluate(script_id, code)
        return self.local.evaluate(script_id, code)

    # -- globals and memory -------------------------------------------------------------------
    def set_global(self, name: str, value: Any) -> None:
        """A global every script sees (a builtin: a script's own definition of
        the name shadows it in that script only), live."""
        self.gate.run(self.local.set_global, name, value)
        self.sandboxed.set_global(self.dialect.identifier(name), value)

    def get_global(self, name: str) -> Any:
        return self.local.get_global(name)

    def get_memory_usage(self) -> MemoryUsage:
        """In-process scripts: an estimate of what their namespaces hold;
        sandboxed ones: their workers' resident memory (each worker's limit is
        its script's policy)."""
        used = self.gate.run(self.local.estimate)
        iso = self.sandboxed.memory()
        if iso is None:
            return MemoryUsage(used_bytes=used, scripts=len(self.local.table))
        limit = iso.limit if not len(self.local.table) else None
        return MemoryUsage(used_bytes=used + iso.used_bytes, limit=limit, peak_bytes=iso.peak_bytes,
                           scripts=len(self.local.table) + iso.scripts)

    def collect_garbage(self) -> GarbageCollectionStats:
        stats = self.gate.run(collect, self.local.estimate)
        iso = self.sandboxed.collect()
        if iso is None:
            return stats
        return GarbageCollectionStats(stats.bytes_before + iso.bytes_before, stats.bytes_after + iso.bytes_after,
                                      (stats.objects_freed or 0) + (iso.objects_freed or 0),
                                      stats.duration_ms + iso.duration_ms)

    # -- debugging ---------------------------------------------------------------------------
    def get_stack_trace(self) -> list[StackFrame]:
        """The script frames on this thread's stack, innermost first; inside a
        callback from a sandboxed script, that script's stack."""
        frames = self.local.errors.from_frame(sys._getframe(1))
        return frames or self.sandboxed.current_stack()

    def set_breakpoint(self, file: str, line: int) -> int:
        """Break at ``line`` of the script ``file`` (its id, id with an
        extension, its file name or path)."""
        bid = self.breakpoints.add(file, line)
        self.sandboxed.push_breakpoints()
        return bid

    def remove_breakpoint(self, breakpoint_id: int) -> None:
        self.breakpoints.remove(breakpoint_id)
        self.sandboxed.push_breakpoints()

    def debug_target(self) -> Any:
        """The debugger's view of this engine's trusted scripts (see :mod:`.debugging`)."""
        if self._debug_target is None:
            from .debugging import PyHostDebugTarget

            self._debug_target = PyHostDebugTarget(self)
        return self._debug_target

    def set_breakpoint_handler(self, handler: Callable[[BreakpointHit], None] | None) -> None:
        super().set_breakpoint_handler(handler)
        self.breakpoints.handler = handler

    # -- the bridge --------------------------------------------------------------------------
    def setup_bridge(self, bridge: ScriptBridge) -> None:
        super().setup_bridge(bridge)
        self.sandboxed.setup_bridge(bridge)
