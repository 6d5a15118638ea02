"""The Lua engine: Kryon's ScriptEngine over lupa.

Every sandboxed script runs in a Lua state of its own (its own memory cap,
gate, hooks and libraries: one script filling its cap or failing leaves the
others alone); trusted scripts share a state per kind of policy, each in its
own environment table, so no script sees another's globals. ``compile`` produces real Lua bytecode (``string.dump``)
plus the functions a static scan finds; after loading, the functions are
read from the script's environment with their parameter names.
"""

from __future__ import annotations

import gc
import itertools
import threading
from collections.abc import Callable, Sequence
from typing import Any

from kryon_core import (
    BreakpointHit,
    CachedCallsEngine,
    CompiledScript,
    ConversionError,
    EngineCapabilities,
    FunctionInfo,
    FunctionNotFoundError,
    GarbageCollectionStats,
    MemoryUsage,
    ScriptBridge,
    ScriptError,
    ScriptNotFoundError,
    ScriptRuntimeError,
    ScriptTimeoutError,
    SecurityPolicy,
    StackFrame,
)

from .bridge import script_binder
from .calls import make_caller
from .errors import translate
from .plugin import LANGUAGE
from .runtime import Runtime, RuntimeKey, lupa_module
from .sandbox import module_resolver
from .scan import scan_functions, script_id_of
from .state import ScriptState, assign, module_data

#: the reload hook a new version may define: on_reload(old) gets the old version's
#: module-level data and returns a table of names to set (or nothing)
RELOAD_HOOK = "on_reload"


class LuaEngine(CachedCallsEngine):
    language = LANGUAGE
    extensions = (".lua",)

    def __init__(self) -> None:
        super().__init__()
        import lupa

        self._lupa_version = getattr(lupa, "__version__", "?")
        #: states shared by the trusted scripts of one kind of policy (and get_global's)
        self._runtimes: dict[RuntimeKey, Runtime] = {}
        #: every live state, shared or a sandboxed script's own, by id()
        self._live: dict[int, Runtime] = {}
        self._compilers: dict[bool, Any] = {}
        self._scripts: dict[str, ScriptState] = {}
        self._globals: dict[str, Any] = {}
        self._breakpoints: dict[int, tuple[str, int]] = {}
        self._breakpoint_ids = itertools.count(1)
        self._lock = threading.RLock()
        self._debug_target: Any = None  # made by debug_target()

    # -- identification ----------------------------------------------------------
    @property
    def version(self) -> str:
        return f"Lua 5.4 (lupa {self._lupa_version})"

    @property
    def capabilities(self) -> EngineCapabilities:
        return EngineCapabilities(supports_async=True, supports_coroutines=True, supports_modules=True,
                                  supports_debugging=True, supports_jit=_has_luajit(), supports_bytecode=True,
                                  supports_sandbox=True)

    # -- runtimes -------------------------------------------------------------------
    def _runtime(self, policy: SecurityPolicy, script: str) -> Runtime:
        """The state ``script`` runs in: a new one of its own when sandboxed
        (released by ``_release`` when the script, or this version of it,
        goes). Trusted scripts share one per kind of policy: they could reach
        each other through ``debug`` anyway, have no cap of their own to
        protect by default, and a state costs about 150 KiB of Lua memory and
        2-3 ms to make (benchmarks/lua_states.py)."""
        if policy.sandboxed:
            rt = self._new_runtime(RuntimeKey.for_policy(policy), script)
            if policy.time_limit:  # its values read outside a call convert under a deadline too
                rt.conv.grace = policy.time_limit / 2
            return rt
        return self._shared_runtime(policy)

    def _shared_runtime(self, policy: SecurityPolicy) -> Runtime:
        key = RuntimeKey.for_policy(policy)
        rt = self._runtimes.get(key)
        if rt is None:
            with self._lock:
                rt = self._runtimes.get(key)
                if rt is None:
                    rt = self._runtimes[key] = self._new_runtime(key, None)
        return rt

    def _new_runtime(self, key: RuntimeKey, owner: str | None) -> Runtime:
        with self._lock:
            rt = Runtime(self, key, owner)
            for name, value in self._globals.items():
                rt.helpers.base[name] = rt.conv.to_lua(value)
            rt.helpers.sethooks(bool(self._breakpoints))
            self._apply_breakpoints(rt)
            self._live[id(rt)] = rt
            if self._debug_target is not None:
                self._debug_target.runtime_created(rt)
        return rt

    def _release(self, rt: Runtime) -> None:
        """Let a sandboxed script's own state go (a shared one stays)."""
        if rt.owner is None:
            return
        with self._lock:
            if self._live.pop(id(rt), None) is None:
                return
            if self._debug_target is not None:
                self._debug_target.runtime_released(rt)
        rt.release()

    def _states(self) -> list[Runtime]:
        """Every live state (a copy: no engine lock is held while entering one)."""
        with self._lock:
            return list(self._live.values())

    def _policy_of(self, script: str | None) -> SecurityPolicy:
        st = self._scripts.get(script) if script else None
        return st.policy if st is not None else self.config.policy

    def convert_unknown(self, value: Any) -> Any:
        if self.bridge is not None:
            return self.bridge.convert_unknown(value)
        from kryon_core import ConversionError

        raise ConversionError(f"cannot pass a {type(value).__name__} to Lua", language=LANGUAGE)

    # -- compile and load ----------------------------------------------------------------
    def _compiler(self, jit: bool) -> Any:
        dump = self._compilers.get(jit)
        if dump is None:
            module = lupa_module(jit)
            lua = module.LuaRuntime(encoding=None, register_eval=False, register_builtins=False)
            dump = lua.eval(
                "function(src, name) local f, err = load(src, name, 't') "
                "if not f then return nil, err end return string.dump(f) end"
            )
            self._compilers[jit] = dump
        return dump

    def compile(self, source: "str | bytes", name: str, *, policy: SecurityPolicy | None = None) -> CompiledScript:
        text = source.decode("utf-8") if isinstance(source, bytes) else source
        policy = policy or self.config.policy
        with self._lock:
            result = self._compiler(policy.use_jit)(text.encode("utf-8"), ("=" + name).encode("utf-8"))
        bytecode, err = (result if isinstance(result, tuple) else (result, None))
        if bytecode is None:
            message = err.decode("utf-8", "replace") if isinstance(err, bytes) else str(err)
            raise self._compile_error(message, name, text)
        return CompiledScript(
            id=name,
            language=self.language,
            source=text,
            bytecode=bytes(bytecode),
            functions=scan_functions(text),
            engine_version=self.version,
        )

    def _compile_error(self, message: str, name: str, text: str) -> ScriptError:
        exc = Exception(message)
        exc._kryon_source = text  # type: ignore[attr-defined]
        return translate(exc, name, compiling=True)

    def load_script(self, compiled: CompiledScript, *, policy: SecurityPolicy | None = None) -> str:
        state = self._run_chunk(compiled, policy or self.config.policy)
        previous = self._scripts.get(compiled.id)
        self._scripts[compiled.id] = state
        if previous is not None and previous.runtime is not state.runtime:
            self._release(previous.runtime)
        return compiled.id

    def _run_chunk(self, compiled: CompiledScript, policy: SecurityPolicy) -> ScriptState:
        """Run a script's top level in a fresh environment; nothing is
        registered unless it succeeds (and a state made for it is released)."""
        rt = self._runtime(policy, compiled.id)
        try:
            return self._run_in(rt, compiled, policy)
        except BaseException:
            self._release(rt)
            raise

    def _run_in(self, rt: Runtime, compiled: CompiledScript, policy: SecurityPolicy) -> ScriptState:
        header = b"\x1bLJ" if rt.key.jit else b"\x1bLua"
        code: Any = compiled.bytecode if compiled.bytecode.startswith(header) else compiled.source
        def prepare() -> Any:
            resolver = None
            if policy.sandboxed and not policy.allow_imports:
                resolver = rt.lua_callable(module_resolver(self, compiled.id, policy), label="require")
            env = rt.helpers.newenv(script_binder(rt, self.bridge, compiled.id, policy), resolver,
                                    policy.max_source_size)
            given = frozenset(k for k in env.keys() if isinstance(k, str))
            return env, given, rt.helpers.load(code, "=" + compiled.id, env)

        try:
            env, given, chunk = rt.gate.run(prepare)
        except rt.LuaError as exc:
            exc._kryon_source = compiled.source
            raise translate(exc, compiled.id, compiling=True) from None
        returned = rt.call(chunk, [], policy, compiled.id)
        if isinstance(returned, tuple):
            returned = returned[0] if returned else None
        state = ScriptState(compiled.id, rt, env, returned, compiled, policy, given_names=given)
        self._describe(state)
        return state

    def _describe(self, state: ScriptState) -> None:
        state.runtime.gate.run(self._describe_inside, state)

    def _describe_inside(self, state: ScriptState) -> None:
        found = state.runtime.helpers.functions(state.env, state.returned)
        functions = {}
        for name, info in found.items():
            params = info["params"]
            names = tuple(str(params[i]) for i in range(1, int(info["nparams"]) + 1))
            functions[str(name)] = FunctionInfo(
                name=str(name),
                parameter_count=int(info["nparams"]),
                parameter_names=names,
                is_variadic=bool(info["vararg"]),
                line=int(info["line"]) if info["line"] else None,
            )
        state.functions = functions
        state.lua_functions = {}

    def reload_script(
        self, script_id: str, compiled: CompiledScript, *, policy: SecurityPolicy | None, previous: CompiledScript
    ) -> None:
        """Run the new version beside the old one and swap only if its top
        level succeeds: the old version keeps its state on failure. A
        sandboxed new version runs in a new Lua state; the old version's data
        crosses as host values (``_carry_over``), and the old state is
        released once the new one is in place."""
        old = self.script_state(script_id)
        state = self._run_chunk(compiled, policy or old.policy)
        try:
            self._carry_over(old, state)
        except BaseException:
            self._release(state.runtime)
            raise
        self._scripts[script_id] = state
        if old.runtime is not state.runtime:
            self._release(old.runtime)

    # -- state across a reload ----------------------------------------------------------
    def _carry_over(self, old: ScriptState, new: ScriptState) -> None:
        """Give the new version the old one's module-level data: through its
        ``on_reload(old)`` hook when it defines one (a table it returns is set
        name by name), else every datum the new version leaves nil. A failing
        hook raises, and the manager rolls the reload back."""
        data = old.runtime.gate.run(module_data, old)
        if RELOAD_HOOK in new.functions:
            returned = self.cached_caller(new, RELOAD_HOOK)(data)
            if returned is None or returned == []:  # nothing, or an empty table
                return
            if not isinstance(returned, dict):
                raise ScriptRuntimeError(f"{RELOAD_HOOK} must return a table of module-level names to set, or nothing",
                                         language=LANGUAGE, script=new.id)
            new.runtime.gate.run(assign, new, returned, False)
            return
        new.runtime.gate.run(assign, new, data, True)

    def unload_script(self, script_id: str) -> None:
        state = self._scripts.pop(script_id, None)
        if state is None:
            raise ScriptNotFoundError(f"no Lua script '{script_id}' is loaded", language=LANGUAGE, script=script_id)
        rt = state.runtime
        if rt.owner is not None:
            del state
            self._release(rt)
        elif rt.key.memory_limit:
            # Give its memory back to the scripts sharing the capped state now
            # (a Python reference cycle, such as a caught exception's
            # traceback, can still pin its functions: collect those too).
            del state
            rt.collect()
            if rt.lua.get_memory_used() > rt.key.memory_limit // 2:
                gc.collect()
                rt.collect()

    def list_functions(self, script_id: str) -> dict[str, FunctionInfo]:
        return dict(self.script_state(script_id).functions)

    def script_state(self, script_id: str) -> ScriptState:
        state = self._scripts.get(script_id)
        if state is None:
            raise ScriptNotFoundError(f"no Lua script '{script_id}' is loaded", language=LANGUAGE, script=script_id)
        return state

    def _lua_function(self, state: ScriptState, function: str) -> Any:
        f = state.lua_functions.get(function)
        if f is None:
            rt = state.runtime

            def lookup() -> Any:  # every touch of a Lua object (even reading a table field) inside the gate
                found = rt.lookup(state.env, state.returned, function)
                return found if found is not None and rt.module.lua_type(found) == "function" else None

            f = rt.gate.run(lookup)
            if f is None:
                raise FunctionNotFoundError(
                    f"script '{state.id}' defines no function '{function}'", language=LANGUAGE, script=state.id
                )
            state.lua_functions[function] = f
        return f

    # -- calls ---------------------------------------------------------------------------
    def cached_caller(self, state: ScriptState, function: str) -> Callable[..., Any]:
        """The callable that runs one function with host values, made once
        per (script version, function): the manager's and bound handles' path."""
        return state.callers.get(function, lambda: self._make_caller(state, function))

    def _make_caller(self, state: ScriptState, function: str) -> Callable[..., Any]:
        f = self._lua_function(state, function)
        info = state.functions.get(function)
        nparams = info.parameter_count if info is not None and not info.is_variadic else None
        # inside the gate: making the caller reads the prelude's functions (Lua table fields), and a
        # thread that touches a Lua object outside the gate can block on lupa's lock while holding
        # another runtime's gate (a deadlock across engines, seen in the threads test)
        rt = state.runtime
        return rt.gate.run(make_caller, rt, f, state.policy, state.id, nparams)

    async def call_function_async(self, function: str, args: Sequence[Any], *, script: str) -> Any:
        """Run the function as a coroutine; ``kryon.sleep(ms)`` and
        ``kryon.callAsync(name, ...)`` inside it await on the caller's loop,
        any other yield gives the loop one turn. The whole call (every step
        and every wait) has one deadline, the policy's ``time_limit`` from its
        start (``kryon_core.awaited``): past it the coroutine is closed (its
        ``<close>`` variables run under the limits) and the call raises
        ScriptTimeoutError with the line where it was suspended."""
        from kryon_core.awaited import AwaitDeadline, bounded  # here, not at import: it loads asyncio

        state = self.script_state(script)
        f = self._lua_function(state, function)
        rt, conv = state.runtime, state.runtime.conv
        deadline = AwaitDeadline(state.policy.time_limit)
        step, abandon = rt.gate.run(lambda: rt.helpers.stepper(f))
        suspended_at: list[int | None] = [None]

        def until(at: float | None, fn: Callable[..., Any], *args: Any) -> Any:
            """``fn(*args)`` with the state's deadline no later than ``at`` (``Runtime._call``,
            which ``fn`` goes through, keeps the earlier of it and a fresh time_limit)."""
            previous = rt.deadline
            if at is not None:
                rt.deadline = min(previous, at) if previous else at
            try:
                return fn(*args)
            finally:
                rt.deadline = previous

        def resume(send: list[Any]) -> Any:  # one step, conversions included, inside the gate
            result = until(deadline.at, rt._call, step, [conv.to_lua(a) for a in send], state.policy, script)
            ok, status, *values = result if isinstance(result, tuple) else (result,)
            if not ok:
                raise translate(rt.LuaError(status), script)
            if status == "dead":
                return True, (conv.from_lua(values[0]) if len(values) == 1 else ([conv.from_lua(v) for v in values] or None))
            return False, conv.from_lua(values[0]) if values else None

        def close() -> None:
            try:
                line = until(deadline.cleanup_at(), rt._call, abandon, ["=" + script], state.policy, script)
            except ScriptError:  # its unwinding overran the limits: abandoned all the same
                return
            suspended_at[0] = line if isinstance(line, int) else None

        async def drive() -> Any:
            send = list(args)
            finished = False
            try:
                while True:
                    finished, value = rt.gate.run(resume, send)
                    if finished:
                        return value
                    send = await self._answer(value)
            finally:
                if not finished:  # timed out, cancelled, or failed while suspended
                    rt.gate.run(close)

        def timed_out() -> ScriptTimeoutError:
            return ScriptTimeoutError(
                f"the awaited call ran longer than the policy's time_limit ({state.policy.time_limit:g} s)",
                language=LANGUAGE, script=script, line=suspended_at[0])

        return await bounded(deadline, drive(), timed_out)

    async def _answer(self, request: Any) -> list[Any]:
        import asyncio  # already loaded: an awaited call runs on its loop

        if isinstance(request, dict) and request.get("op") == "sleep":
            await asyncio.sleep(max(0.0, float(request.get("ms") or 0)) / 1000.0)
            return []
        if isinstance(request, dict) and request.get("op") == "call":
            manager = self.bridge.manager if self.bridge is not None else None
            if manager is None:
                raise ScriptRuntimeError("kryon.callAsync needs a ScriptManager", language=LANGUAGE)
            packed = request.get("args") or {}
            count = int(packed.pop("n", 0)) if isinstance(packed, dict) else len(packed)
            if isinstance(packed, dict):
                call_args = [packed.get(str(i)) for i in range(1, count + 1)]
            else:
                call_args = list(packed)
            value = await manager.call_function_async(str(request.get("name")), call_args)
            return [value]
        await asyncio.sleep(0)
        return []

    # -- evaluate ----------------------------------------------------------------------------
    def evaluate(self, script_id: str, code: str) -> Any:
        """Run ``code`` in the script's environment under its policy: as an
        expression when it is one (``return <code>`` compiles), else as
        statements. Definitions stay in the script's namespace."""
        if not isinstance(code, str):
            raise ScriptError(f"code must be a str, not {type(code).__name__}", language=LANGUAGE, script=script_id)
        state = self.script_state(script_id)
        rt = state.runtime
        def compile_code() -> Any:
            try:
                return rt.helpers.load(("return " + code).encode("utf-8"), "=" + script_id, state.env)
            except rt.LuaError:
                return rt.helpers.load(code.encode("utf-8"), "=" + script_id, state.env)

        try:
            chunk = rt.gate.run(compile_code)
        except rt.LuaError as exc:
            exc._kryon_source = code
            raise translate(exc, script_id, compiling=True) from None
        result = rt.gate.run(self._evaluated, rt, chunk, state, script_id)
        self._describe(state)
        state.callers.clear()
        return result

    def _evaluated(self, rt: Runtime, chunk: Any, state: ScriptState, script_id: str) -> Any:
        result = rt._call(chunk, [], state.policy, script_id)
        # what the code defined or redefined is callable now (see evaluate);
        # callers made before hold the old functions
        try:
            if isinstance(result, tuple):
                values = [rt.conv.from_lua(v) for v in result]
                return values[0] if len(values) == 1 else (values or None)
            return rt.conv.from_lua(result)
        except UnicodeDecodeError as exc:
            raise _not_utf8(exc, script_id) from None

    # -- globals ---------------------------------------------------------------------------
    def set_global(self, name: str, value: Any) -> None:
        with self._lock:
            self._globals[name] = value
        for rt in self._states():  # a state made meanwhile gets it from _globals
            rt.gate.run(lambda rt=rt: rt.helpers.base.__setitem__(name, rt.conv.to_lua(value)))

    def get_global(self, name: str) -> Any:
        rt = self._shared_runtime(self.config.policy)
        try:
            return rt.gate.run(lambda: rt.conv.from_lua(rt.helpers.base[name]))
        except UnicodeDecodeError as exc:
            raise _not_utf8(exc, None) from None

    # -- memory -------------------------------------------------------------------------------
    def collect_garbage(self) -> GarbageCollectionStats:
        import time

        start = time.perf_counter()
        before = after = 0
        for rt in self._states():  # no engine lock held while waiting on a gate
            b, a = rt.gate.run(lambda rt=rt: rt.helpers.collect())
            before += int(b)
            after += int(a)
        return GarbageCollectionStats(before, after, None, (time.perf_counter() - start) * 1000)

    def get_memory_usage(self) -> MemoryUsage:
        states = self._states()  # the shared ones and every sandboxed script's own: each has its own cap
        used = sum(int(rt.gate.run(lambda rt=rt: rt.helpers.memory())) for rt in states)
        limits = [rt.key.memory_limit for rt in states]
        limit = None if not limits or None in limits else sum(cap for cap in limits if cap)
        return MemoryUsage(used_bytes=used, limit=limit, scripts=len(self._scripts))

    # -- debugging ------------------------------------------------------------------------------
    def get_stack_trace(self) -> list[StackFrame]:
        frames: list[StackFrame] = []
        for rt in self._states():
            if rt.gate.held():  # only states this thread is inside: another thread may be running in the rest
                frames.extend(rt.script_frames())
        return frames

    def debug_target(self) -> Any:
        """The debugger's view of this engine (see ``kryon_lua.debugging``)."""
        if self._debug_target is None:
            from .debugging import LuaDebugTarget

            self._debug_target = LuaDebugTarget(self)
        return self._debug_target

    def set_breakpoint(self, file: str, line: int) -> int:
        script = script_id_of(file)
        bid = next(self._breakpoint_ids)
        with self._lock:
            self._breakpoints[bid] = (script, int(line))
        for rt in self._states():
            rt.gate.run(self._apply_breakpoints, rt)
            rt.gate.run(lambda rt=rt: rt.helpers.sethooks(True))
        return bid

    def remove_breakpoint(self, breakpoint_id: int) -> None:
        with self._lock:
            if self._breakpoints.pop(breakpoint_id, None) is None:
                raise ScriptError(f"no breakpoint {breakpoint_id}", language=LANGUAGE)
        for rt in self._states():
            rt.gate.run(self._apply_breakpoints, rt)
            rt.gate.run(lambda rt=rt: rt.helpers.sethooks(bool(self._breakpoints)))

    def _apply_breakpoints(self, rt: Runtime) -> None:
        table: dict[str, dict[int, int]] = {}
        for bid, (script, line) in self._breakpoints.items():
            table.setdefault("=" + script, {})[line] = bid
        rt.state.breakpoints = rt.lua.table_from({src: rt.lua.table_from(lines) for src, lines in table.items()})

    def _breakpoint_hit(self, rt: Runtime, breakpoint_id: int, source: str, line: int) -> None:
        handler = self.breakpoint_handler
        if handler is None:
            return
        stack = rt.script_frames(with_locals=True)
        handler(BreakpointHit(breakpoint_id, LANGUAGE, source[1:], line, stack))

    def on_hot_function(self, script: str, function: str) -> None:
        """LuaJIT compiles hot traces itself; plain Lua has nothing to do."""

    # -- bridge ------------------------------------------------------------------------------------
    def setup_bridge(self, bridge: ScriptBridge) -> None:
        super().setup_bridge(bridge)

    def close(self) -> None:
        with self._lock:
            self._scripts.clear()
            self._runtimes.clear()
            self._live.clear()
            self._compilers.clear()


def _has_luajit() -> bool:
    try:
        import lupa.luajit21  # noqa: F401
    except ImportError:
        return False
    return True


def _not_utf8(exc: UnicodeDecodeError, script: str | None) -> ScriptError:
    return ConversionError(
        "a Lua string that is not valid UTF-8 cannot cross to the host", language=LANGUAGE, script=script
    )
