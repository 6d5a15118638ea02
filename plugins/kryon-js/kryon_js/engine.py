"""The JavaScript engine: Kryon's ScriptEngine over QuickJS (quickjs-ng).

Thin by design: each script's context lives in a :class:`~kryon_js.state.ScriptState`
(with its own gate), the plumbing every context shares in
:class:`~kryon_js.runtime.Host`, top levels, evaluation and reload state in
:mod:`kryon_js.loader`, calls in :mod:`kryon_js.calls`, values in
:mod:`kryon_js.values`, errors in :mod:`kryon_js.errors`, limits in
:mod:`kryon_js.sandbox`.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from kryon_core import (
    CompiledScript,
    ConversionError,
    EngineCapabilities,
    EngineConfig,
    FunctionInfo,
    FunctionNotFoundError,
    FunctionRef,
    GarbageCollectionStats,
    MemoryUsage,
    ScriptBridge,
    ScriptEngine,
    ScriptError,
    ScriptNotFoundError,
    SecurityPolicy,
    StackFrame,
)
from kryon_core.plugins import distribution_version

from . import capi, sandbox
from .bridge import build_kryon_api
from .calls import call_name_async, make_caller, unloaded
from .errors import parse_stack
from .loader import carry_over, compile_limited, data_of, evaluate_in, run_top_level
from .plugin import LANGUAGE
from .runtime import BINDING_ERRORS, Host, JSObject
from .scan import IDENT, scan_functions
from .state import ScriptState


def binding_version() -> str:
    found = distribution_version("quickjs-ng")  # from the metadata folder's name: importlib.metadata costs more
    if found is not None:
        return found
    try:
        from importlib.metadata import version

        return version("quickjs-ng")
    except Exception:  # pragma: no cover
        return "?"


class JSEngine(ScriptEngine):
    """JavaScript through QuickJS (quickjs-ng)."""

    language = LANGUAGE
    extensions = (".js", ".mjs")

    def __init__(self) -> None:
        super().__init__()
        self.host = Host(self._output, self._report)
        self.host.api = build_kryon_api(None)
        self.states: dict[str, ScriptState] = {}
        self.compiler: ScriptState | None = None
        self._states_lock = threading.Lock()  # the table of states, never held while a runtime runs
        self._version = f"QuickJS-ng (quickjs-ng binding {binding_version()})"
        self._debug: Any = None  # made by debug_target()

    def _output(self, text: str) -> None:
        self.config.output(text)

    def _report(self, err: ScriptError) -> None:
        dom = self.bridge.dom if self.bridge is not None else None
        if dom is not None and hasattr(dom, "errors"):
            dom.errors.append(err)
            on_error = getattr(dom, "on_error", None)
            try:
                if on_error is not None:
                    on_error(err)
            except Exception:  # noqa: BLE001
                pass

    # -- identification ----------------------------------------------------------------
    @property
    def version(self) -> str:
        return self._version

    @property
    def capabilities(self) -> EngineCapabilities:
        return EngineCapabilities(
            supports_async=True, supports_generators=True, supports_coroutines=False, supports_modules=False,
            supports_debugging=False, supports_jit=False, supports_bytecode=self.host.capi,
            supports_sandbox=self.host.capi,
        )

    def initialize(self, config: EngineConfig) -> None:
        super().initialize(config)

    def check_policy(self, policy: SecurityPolicy) -> None:
        sandbox.check_policy(policy)

    def setup_bridge(self, bridge: ScriptBridge) -> None:
        super().setup_bridge(bridge)
        self.host.api = build_kryon_api(bridge)

    def convert_unknown(self, value: Any, script: str | None = None) -> Any:
        if self.bridge is not None:
            return self.bridge.convert_unknown(value)
        raise ConversionError(f"cannot pass a {type(value).__name__} to javascript", language=LANGUAGE, script=script)

    def _state(self, script: str) -> ScriptState:
        state = self.states.get(script)
        if state is None:
            raise ScriptNotFoundError(f"no JavaScript script '{script}' is loaded", language=LANGUAGE, script=script)
        return state

    def _new_state(self, script: str, policy: SecurityPolicy) -> ScriptState:
        view = self.bridge.for_script(script, policy) if self.bridge is not None else None
        return ScriptState(self.host, script, policy, view, self.convert_unknown, self.make_gate(script))

    # -- compile and load -----------------------------------------------------------------
    def compile(self, source: "str | bytes", name: str, *, policy: SecurityPolicy | None = None) -> CompiledScript:
        text = source.decode("utf-8") if isinstance(source, bytes) else source
        bytecode = b""
        if self.host.capi:
            with self._states_lock:
                if self.compiler is None:
                    self.compiler = self._new_state("<compiler>", SecurityPolicy.trusted())
            # under the script's time limit: regex literals compile here, and some take QuickJS seconds
            limit = sandbox.time_limit(policy) if policy is not None else None
            # (and its regex literals measured first: regexcost.py)
            bytecode = self.compiler.run_limited(limit, compile_limited, self.compiler, text, name)
        return CompiledScript(
            id=name, language=LANGUAGE, source=text, bytecode=bytecode, functions=scan_functions(text),
            engine_version=self.version,
        )

    def _run(self, compiled: CompiledScript, policy: SecurityPolicy) -> ScriptState:
        """A fresh context with the script's top level run in it; nothing is
        registered unless it succeeds."""
        state = self._new_state(compiled.id, policy)
        try:
            if self._debug is not None:
                self._debug.prepare(state, compiled.source)  # probes, while a debugger is attached
            state.run(run_top_level, state, compiled)
        except BaseException:
            state.close()
            raise
        return state

    def load_script(self, compiled: CompiledScript, *, policy: SecurityPolicy | None = None) -> str:
        state = self._run(compiled, policy or self.config.policy)
        with self._states_lock:
            old, self.states[compiled.id] = self.states.get(compiled.id), state
        if old is not None:
            old.close()
        return compiled.id

    def reload_script(
        self, script_id: str, compiled: CompiledScript, *, policy: SecurityPolicy | None, previous: CompiledScript
    ) -> None:
        """Run the new version in a new context beside the old one, hand it the
        old version's state (its ``onReload`` hook, or the data it leaves
        unset), and swap only when all of that succeeded: a failing version
        leaves the old one running with its state."""
        old = self._state(script_id)
        old_data = old.run(data_of, old)
        state = self._run(compiled, policy or old.policy)
        try:
            state.run(carry_over, state, old_data)
        except BaseException:
            state.close()
            raise
        with self._states_lock:
            self.states[script_id] = state
        old.close()

    def unload_script(self, script_id: str) -> None:
        with self._states_lock:
            state = self.states.pop(script_id, None)
        if state is None:
            raise ScriptNotFoundError(f"no JavaScript script '{script_id}' is loaded", language=LANGUAGE,
                                      script=script_id)
        state.close()

    def list_functions(self, script_id: str) -> dict[str, FunctionInfo]:
        return dict(self._state(script_id).functions)

    def evaluate(self, script_id: str, code: str) -> Any:
        """Run ``code`` as global code of the script (its top-level ``var`` and
        function declarations stay); the value of its last expression."""
        state = self._state(script_id)
        state.callers.clear()  # a definition may replace a function the callers wrap
        return state.run(evaluate_in, state, code)

    # -- calls ------------------------------------------------------------------------------
    def call_function(self, function: str, args: Sequence[Any], *, script: str) -> Any:
        state = self.states.get(script) or self._state(script)
        caller = state.callers.peek((function, len(args))) or self._caller(state, function, len(args))
        return caller(*args)

    def get_function(self, function: str, *, script: str) -> FunctionRef:
        """A handle straight to the (function, declared arity) caller; a call
        with another number of arguments takes the general path."""
        state = self._state(script)
        info = state.functions.get(function)
        n = info.parameter_count if info is not None else 0
        return self._function_ref(self._caller(state, function, n), function, script)

    def _caller(self, state: ScriptState, function: str, n: int) -> Callable[..., Any]:
        def make() -> Callable[..., Any]:
            wrapper = state.run(state.make_caller, function, n) if IDENT.match(function) else None
            if wrapper is None or type(wrapper) is not JSObject:
                raise FunctionNotFoundError(f"script '{state.script}' defines no function '{function}'",
                                            language=LANGUAGE, script=state.script)
            return make_caller(state, wrapper, function, n, self.call_function)

        if state.closed:
            raise unloaded(state)
        return state.callers.get((function, n), make)

    async def call_function_async(self, function: str, args: Sequence[Any], *, script: str) -> Any:
        """Call the function; when it returns a Promise (an async function),
        pump QuickJS's job queue and yield to the running asyncio loop until
        the promise settles. A rejection is a ScriptRuntimeError with the JS stack."""
        return await call_name_async(self._state(script), function, args)

    # -- globals ------------------------------------------------------------------------------
    def set_global(self, name: str, value: Any) -> None:
        if not isinstance(name, str) or not name:
            raise ScriptError("a global needs a non-empty name", language=LANGUAGE)
        for state in list(self.states.values()):
            state.run(lambda s=state: s.set_global(name, s.to_js(value)))
        self.host.globals[name] = copy.deepcopy(value)

    def get_global(self, name: str) -> Any:
        if name in self.host.globals:
            return copy.deepcopy(self.host.globals[name])
        for state in reversed(list(self.states.values())):
            value = state.run(lambda s=state: s.result(s.get_global(name)))
            if value is not None:
                return value
        return None

    # -- memory ---------------------------------------------------------------------------------
    def _all_states(self) -> list[ScriptState]:
        out = list(self.states.values())
        if self.compiler is not None:
            out.append(self.compiler)
        return out

    def _used(self) -> int:
        return sum(int(s.run(lambda s=s: s.ctx.memory()["memory_used_size"])) for s in self._all_states())

    def collect_garbage(self) -> GarbageCollectionStats:
        start = time.perf_counter()
        before = self._used()
        if not self.host.capi:
            import gc

            gc.collect()
        for state in self._all_states():
            state.run(self._collect, state)
        after = self._used()
        return GarbageCollectionStats(before, after, None, (time.perf_counter() - start) * 1000)

    def _collect(self, state: ScriptState) -> None:
        """One context's cycle collection, then the finalizers it queued, then
        a sweep of the handles it dropped: all inside its runtime and deadline."""
        if self.host.capi:
            capi.run_gc(state.ctx)
        else:
            state.ctx.gc()
        state.pump()
        state.handles.sweep()

    def get_memory_usage(self) -> MemoryUsage:
        used = self._used()
        limits = [sandbox.memory_limit(s.policy) for s in self.states.values()]
        limit = None if not limits or None in limits else sum(limit for limit in limits if limit)
        return MemoryUsage(used_bytes=used, limit=limit, scripts=len(self.states))

    # -- debugging -------------------------------------------------------------------------------
    def debug_target(self) -> Any:
        """Breakpoints, stepping, pausing and inspection for the debugger
        (see debugging.py): scripts loaded while it is attached run with
        statement probes; every policy's scripts can be debugged, since
        evaluation runs inside the script's own context."""
        if self._debug is None:
            from .debugging import JSDebugTarget, available

            if not available():  # pragma: no cover - tree-sitter is a dependency
                return None
            with self._states_lock:
                if self._debug is None:
                    self._debug = JSDebugTarget(self)
        return self._debug

    def get_stack_trace(self) -> list[StackFrame]:
        """The JS stack of the innermost running script (inside a host
        callback on this thread), innermost first; empty when none runs."""
        state = self.host.chain.inside
        if state is None or state.closed:
            return []
        try:
            text = state.run(state.stack_now)
        except (ScriptError, *BINDING_ERRORS):
            return []
        return parse_stack(str(text), state.script, input_is_script=state.input_is_script)

    def close(self) -> None:
        with self._states_lock:
            states, self.states = list(self.states.values()), {}
            compiler, self.compiler = self.compiler, None
        for state in states + ([compiler] if compiler is not None else []):
            state.close()
