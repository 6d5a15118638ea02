"""The JavaScript engine: Kryon's ScriptEngine over QuickJS (quickjs-ng).

Thin by design: each script's context lives in a :class:`~kryon_js.state.ScriptState`,
the plumbing every context shares in :class:`~kryon_js.runtime.Host`, calls
in :mod:`kryon_js.calls`, values in :mod:`kryon_js.values`, errors in
:mod:`kryon_js.errors`, limits in :mod:`kryon_js.sandbox`.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any, Callable, Sequence

from kryon_core import (
    CompiledScript,
    CompileError,
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

from . import capi, sandbox
from .bridge import build_kryon_api
from .calls import call_name_async, make_caller, unloaded
from .errors import from_info, parse_stack
from .plugin import LANGUAGE
from .runtime import BINDING_ERRORS, Host, JSObject
from .scan import IDENT, declared_names, parse_params, scan_functions
from .state import ScriptState


def binding_version() -> str:
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
        self._version = f"QuickJS-ng (quickjs-ng binding {binding_version()})"

    def _output(self, text: str) -> None:
        self.config.output(text)

    def _report(self, err: ScriptError) -> None:
        dom = self.bridge.dom if self.bridge is not None else None
        if dom is not None and hasattr(dom, "errors"):
            dom.errors.append(err)
            try:
                dom.on_error(err)
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
        return ScriptState(self.host, script, policy, self.convert_unknown)

    # -- compile and load -----------------------------------------------------------------
    def compile(self, source: "str | bytes", name: str, *, policy: SecurityPolicy | None = None) -> CompiledScript:
        text = source.decode("utf-8") if isinstance(source, bytes) else source
        bytecode = b""
        if self.host.capi:
            with self.host.lock:
                if self.compiler is None:
                    self.compiler = self._new_state("<compiler>", SecurityPolicy.trusted())
                bytecode = self._compile_in(self.compiler, text, name)
        return CompiledScript(
            id=name, language=LANGUAGE, source=text, bytecode=bytecode, functions=scan_functions(text),
            engine_version=self.version,
        )

    def _compile_in(self, state: ScriptState, text: str, name: str) -> bytes:
        try:
            return capi.compile_only(state.ctx, text, name, state.holder)
        except capi.CompileFailed:
            state.take_held()
            stash, self.host.stash = self.host.stash, None
            info = json.loads(stash[1]) if stash else {"isError": True, "name": "SyntaxError", "message": "?"}
            err = from_info(info, name, input_is_script=False, host_errors={}, compiling=True)
            raise CompileError(err.message, language=LANGUAGE, script=name, line=err.line, column=err.column,
                               stack=err.stack) from None

    def load_script(self, compiled: CompiledScript, *, policy: SecurityPolicy | None = None) -> str:
        state = self._run(compiled, policy or self.config.policy)
        with self.host.lock:
            old = self.states.get(compiled.id)
            self.states[compiled.id] = state
            if old is not None:
                old.close()
        return compiled.id

    def _run(self, compiled: CompiledScript, policy: SecurityPolicy) -> ScriptState:
        """A fresh context with the script's top level run in it; nothing is
        registered unless it succeeds."""
        host = self.host
        with host.lock:
            state = self._new_state(compiled.id, policy)
            ok = False
            try:
                prev = host.enter(state)
                try:
                    self._run_top_level(state, compiled, policy)
                    host.pump(state)
                finally:
                    host.leave(state, prev)
                state.functions = self._describe(state, compiled.source)
                ok = True
            finally:
                if not ok:
                    state.close()
        return state

    def _run_top_level(self, state: ScriptState, compiled: CompiledScript, policy: SecurityPolicy) -> None:
        host = self.host
        if host.capi:
            code = compiled.bytecode
            if (capi.bytecode_name(code) != compiled.id  # foreign, or compiled under another name
                    or (compiled.from_cache and policy.sandboxed)):  # disk bytecode is not verified
                code = self._compile_in(state, compiled.source, compiled.id)
            if not capi.run_bytecode(state.ctx, code, state.holder):
                state.take_held()
                host.unbox(state)
            return
        try:
            state.ctx.eval(compiled.source)
        except BINDING_ERRORS as exc:
            err = host.binding_error(state, exc)
            if "SyntaxError" in str(exc.args[0] if exc.args else ""):
                raise CompileError(err.message, language=LANGUAGE, script=compiled.id, line=err.line,
                                   column=err.column, stack=err.stack) from None
            raise err from None

    def _describe(self, state: ScriptState, source: str) -> dict[str, FunctionInfo]:
        listing = json.loads(state.describe(json.dumps(declared_names(source))))
        lines = scan_functions(source)
        out: dict[str, FunctionInfo] = {}
        for name, src, kind, length in listing:
            names, variadic = parse_params(src)
            out[name] = FunctionInfo(
                name=name, parameter_count=len(names), parameter_names=tuple(names),
                is_async=kind in ("async", "asyncgenerator"), is_generator=kind in ("generator", "asyncgenerator"),
                is_variadic=variadic, line=lines[name].line if name in lines else None,
            )
        return out

    def reload_script(
        self, script_id: str, compiled: CompiledScript, *, policy: SecurityPolicy | None, previous: CompiledScript
    ) -> None:
        """Run the new version in a new context and swap only when its top
        level succeeded: a failing version leaves the old one running."""
        old = self._state(script_id)
        state = self._run(compiled, policy or old.policy)
        with self.host.lock:
            self.states[script_id] = state
            old.close()

    def unload_script(self, script_id: str) -> None:
        with self.host.lock:
            state = self.states.pop(script_id, None)
            if state is None:
                raise ScriptNotFoundError(f"no JavaScript script '{script_id}' is loaded", language=LANGUAGE,
                                          script=script_id)
            state.close()

    def list_functions(self, script_id: str) -> dict[str, FunctionInfo]:
        return dict(self._state(script_id).functions)

    # -- calls ------------------------------------------------------------------------------
    def call_function(self, function: str, args: Sequence[Any], *, script: str) -> Any:
        state = self.states.get(script) or self._state(script)
        caller = state.callers.get((function, len(args))) or self._caller(state, function, len(args))
        return caller(*args)

    def get_function(self, function: str, *, script: str) -> FunctionRef:
        """A handle straight to the (function, declared arity) caller; a call
        with another number of arguments takes the general path."""
        state = self._state(script)
        info = state.functions.get(function)
        n = info.parameter_count if info is not None else 0
        return self._function_ref(self._caller(state, function, n), function, script)

    def _caller(self, state: ScriptState, function: str, n: int) -> Callable[..., Any]:
        key = (function, n)
        caller = state.callers.get(key)
        if caller is None:
            with self.host.lock:
                if state.closed:
                    raise unloaded(state)
                wrapper = state.make_caller(function, n) if IDENT.match(function) else None
                if wrapper is None or type(wrapper) is not JSObject:
                    raise FunctionNotFoundError(f"script '{state.script}' defines no function '{function}'",
                                                language=LANGUAGE, script=state.script)
                caller = state.callers[key] = make_caller(self.host, state, wrapper, function, n, self.call_function)
        return caller

    async def call_function_async(self, function: str, args: Sequence[Any], *, script: str) -> Any:
        """Call the function; when it returns a Promise (an async function),
        pump QuickJS's job queue and yield to the running asyncio loop until
        the promise settles. A rejection is a ScriptRuntimeError with the JS stack."""
        return await call_name_async(self.host, self._state(script), function, args)

    # -- globals ------------------------------------------------------------------------------
    def set_global(self, name: str, value: Any) -> None:
        if not isinstance(name, str) or not name:
            raise ScriptError("a global needs a non-empty name", language=LANGUAGE)
        with self.host.lock:
            for state in list(self.states.values()):
                state.set_global(name, state.to_js(value))
            self.host.globals[name] = copy.deepcopy(value)

    def get_global(self, name: str) -> Any:
        host = self.host
        if name in host.globals:
            return copy.deepcopy(host.globals[name])
        with host.lock:
            for state in reversed(list(self.states.values())):
                try:
                    r = state.get_global(name)
                    boxed, r = type(r) is JSObject, (None if type(r) is JSObject else r)
                    value = host.unbox(state) if boxed else host.scalar(r)
                except BINDING_ERRORS as exc:
                    raise host.binding_error(state, exc) from None
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
        return sum(int(s.ctx.memory()["memory_used_size"]) for s in self._all_states())

    def collect_garbage(self) -> GarbageCollectionStats:
        start = time.perf_counter()
        host = self.host
        with host.lock:
            before = self._used()
            host.flush_releases()
            if not host.capi:
                import gc

                gc.collect()
            for s in self._all_states():
                if host.capi:
                    capi.run_gc(s.ctx)
                else:
                    s.ctx.gc()
                if not s.closed:
                    s.handles.sweep()
            after = self._used()
        return GarbageCollectionStats(before, after, None, (time.perf_counter() - start) * 1000)

    def get_memory_usage(self) -> MemoryUsage:
        with self.host.lock:
            used = self._used()
            limits = [sandbox.memory_limit(s.policy) for s in self.states.values()]
        limit = None if not limits or None in limits else sum(l for l in limits if l)
        return MemoryUsage(used_bytes=used, limit=limit, scripts=len(self.states))

    # -- debugging -------------------------------------------------------------------------------
    def get_stack_trace(self) -> list[StackFrame]:
        """The JS stack of the innermost running script (inside a host
        callback), innermost first; empty when no script is running."""
        with self.host.lock:
            state = self.host.in_callback
            if state is None or state.closed:
                return []
            try:
                text = state.stack_now()
            except BINDING_ERRORS:
                return []
            return parse_stack(str(text), state.script, input_is_script=state.input_is_script)

    def close(self) -> None:
        with self.host.lock:
            for state in list(self.states.values()):
                state.close()
            self.states.clear()
            if self.compiler is not None:
                self.compiler.close()
                self.compiler = None
