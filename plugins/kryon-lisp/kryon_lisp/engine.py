"""The Kryon Lisp engine: Hy compiled to Python bytecode, run in-process.

Each script is a module namespace of its own (a dict with its own builtins,
in which the ``kryon`` API and the engine's globals sit under their mangled
names), so one script's definitions never reach another's except through
``kryon-call``, FunctionRefs or shared data. Functions are plain Python
function objects; calling one goes through :meth:`LispEngine._protected`,
which serialises entry, applies the script's limits and breakpoints and
turns any exception into a Kryon error with the Lisp stack.

Scripts under a sandboxed policy run in worker processes instead
(:mod:`kryon_lisp.sandbox`, ``kryon_core.isolation``); the engine forwards
their calls and names their functions and frames the Lisp way.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import itertools
import os
import sys
import threading
import time
import types
from typing import Any, Callable, Sequence

import hy

from kryon_core import (
    BreakpointHit,
    CompiledScript,
    CompileError,
    ConversionError,
    EngineCapabilities,
    FunctionInfo,
    FunctionNotFoundError,
    FunctionRef,
    GarbageCollectionStats,
    MemoryUsage,
    ScriptBridge,
    ScriptEngine,
    ScriptError,
    ScriptNotFoundError,
    ScriptRuntimeError,
    SecurityPolicy,
    StackFrame,
    UserData,
)

from . import sandbox
from .bridge import build_kryon_api
from .compiler import ENGINE_VERSION, check_sandboxable, compile_source, display_name, load_code
from .errors import lisp_name, stack_from_frame, translate
from .plugin import LANGUAGE
from .sandbox import TimeLimitExceeded, Watchdog, script_builtins
from .state import IsolatedScript, LispScript
from .values import SCRIPT_KEY, to_host

__all__ = ["LispEngine"]

_PLAIN = frozenset((type(None), bool, int, float, str, bytes))
#: exceptions that leave Lisp code untranslated: the user's Ctrl-C, task
#: cancellation and a coroutine being closed
_PASSTHROUGH = (KeyboardInterrupt, asyncio.CancelledError, GeneratorExit)

_GENERATOR, _COROUTINE, _ASYNC_GENERATOR = types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType
_CO_VARARGS, _CO_GENERATOR, _CO_COROUTINE, _CO_ASYNC_GENERATOR = 0x04, 0x20, 0x80, 0x200


def _lisp_frames(error: ScriptError) -> ScriptError:
    """Name a worker's frames the Lisp way (``<top level>``, unmangled names)."""
    error.stack = _lisp_stack(error.stack)
    return error


def _lisp_stack(stack: list[StackFrame]) -> list[StackFrame]:
    return [
        dataclasses.replace(
            f, function=lisp_name(f.function), locals={display_name(k): v for k, v in f.locals.items()}
        )
        if f.language == LANGUAGE
        else f
        for f in stack
    ]


def _step(coro: Any, value: Any, exc: BaseException | None) -> tuple[bool, Any]:
    """Run a coroutine to its next suspension: (done, yielded or result)."""
    try:
        out = coro.send(value) if exc is None else coro.throw(exc)
    except StopIteration as stop:
        return True, stop.value
    return False, out


async def _collect(agen: Any) -> list[Any]:
    return [item async for item in agen]


def _raw(value: Any, script: "LispScript") -> Any:
    return value


class LispEngine(ScriptEngine):
    """Kryon Lisp (Hy) behind the :class:`~kryon_core.ScriptEngine` contract."""

    language = LANGUAGE
    extensions = (".kl", ".hy")

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()
        self._scripts: dict[str, LispScript] = {}
        self._live: dict[int, LispScript] = {}  # id(namespace) -> script, also while loading
        self._globals: dict[str, Any] = {}  # mangled name -> value, seen by every script
        self._api: dict[str, Any] = {}
        self._mangled: dict[str, str] = {}
        self._local = threading.local()
        self._watchdog: Watchdog | None = None
        self._breakpoints: dict[int, tuple[str, int]] = {}
        self._bp_ids = itertools.count(1)
        self._bp_lines: dict[str, dict[int, int]] = {}
        self._tracing = False
        self._pending = ""  # printed text not yet ended by a newline
        self._isolated: dict[str, IsolatedScript] = {}
        self._wrap_fn, self._unknown_fn = self._wrap, self._convert_unknown  # bound once, used per call
        self._runtime: Any = None  # kryon_core.isolation.IsolatedRuntime, made on first use

    # -- identification ----------------------------------------------------------
    @property
    def version(self) -> str:
        return ENGINE_VERSION

    @property
    def capabilities(self) -> EngineCapabilities:
        return EngineCapabilities(
            supports_async=True,
            supports_generators=True,
            supports_coroutines=False,
            supports_modules=False,
            supports_debugging=True,
            supports_jit=False,
            supports_bytecode=True,
            supports_sandbox=sandbox.IsolatedRuntime is not None,
        )

    # -- names -----------------------------------------------------------------------
    def _mangle(self, name: str) -> str:
        m = self._mangled.get(name)
        if m is None:
            m = self._mangled[name] = hy.mangle(name)
        return m

    # -- lifecycle -------------------------------------------------------------------
    def compile(self, source: "str | bytes", name: str, *, policy: SecurityPolicy | None = None) -> CompiledScript:
        """Compile to a code object (``bytecode`` is its marshal form) and list
        the functions. Sandboxed source is first checked for forms that run
        code while compiling (refused); what is left runs only Hy's own
        macros, so compiling it here is safe. The worker compiles it again."""
        sandboxed = (policy or self.config.policy).sandboxed
        if sandboxed:
            sandbox.require_isolation(name)
        if isinstance(source, (bytes, bytearray)):
            try:
                source = bytes(source).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise CompileError(f"source is not valid UTF-8 (byte {exc.start})", language=LANGUAGE, script=name) from None
        if sandboxed:
            check_sandboxable(source, name)
        return compile_source(source, name)

    def load_script(self, compiled: CompiledScript, *, policy: SecurityPolicy | None = None) -> str:
        policy = policy or self.config.policy
        if compiled.id in self._scripts or compiled.id in self._isolated:
            raise ScriptError(f"a script named '{compiled.id}' is already loaded", language=LANGUAGE, script=compiled.id)
        if policy.sandboxed:
            self._load_isolated(compiled, policy)
            return compiled.id
        with self._lock:
            if compiled.id in self._scripts:
                raise ScriptError(f"a script named '{compiled.id}' is already loaded", language=LANGUAGE, script=compiled.id)
            script = self._run_top_level(compiled, policy)
            self._scripts[script.id] = script
            self._bp_lines.clear()
        return script.id

    @property
    def runtime(self) -> Any:
        """The isolated runtime sandboxed scripts run in (made on first use)."""
        rt = self._runtime
        if rt is None:
            with self._lock:
                rt = self._runtime
                if rt is None:
                    rt = sandbox.make_runtime(self.config.output)
                    if self.bridge is not None:
                        rt.setup_bridge(self.bridge, sandbox.api_names(self.bridge))
                    for name, value in self._globals.items():
                        rt.set_global(name, value)
                    rt.on_breakpoint = self._isolated_hit
                    self._runtime = rt
        return rt

    def _load_isolated(self, compiled: CompiledScript, policy: SecurityPolicy, *, reload: bool = False) -> None:
        sandbox.require_isolation(compiled.id)
        rt = self.runtime
        load = rt.reload if reload else rt.load
        try:
            load(compiled.id, compiled.source, policy=policy, filename=compiled.filename)
        except ScriptError as exc:
            raise _lisp_frames(exc) from None
        self._isolated[compiled.id] = IsolatedScript(compiled, policy)
        if self._breakpoints:
            self._bp_lines.pop(compiled.id, None)
            self._push_isolated_breakpoints()

    def _run_top_level(self, compiled: CompiledScript, policy: SecurityPolicy) -> LispScript:
        code = load_code(compiled)
        builtins = script_builtins(policy)
        builtins["print"] = self._print
        builtins.update(self._api)
        builtins.update(self._globals)
        script = LispScript(compiled, policy, builtins)
        self._live[id(script.ns)] = script
        sys.modules[script.module.__name__] = script.module
        self._bp_lines.pop(script.id, None)
        try:
            self._protected(script, exec, (code, script.ns), _raw)
        except BaseException:
            self._retire(script)
            raise
        return script

    def reload_script(
        self, script_id: str, compiled: CompiledScript, *, policy: SecurityPolicy | None, previous: CompiledScript
    ) -> None:
        """Run the new version in a fresh namespace beside the old one and
        swap only if its top level succeeds: a failing version leaves the
        old one running with its state."""
        policy = policy or self.config.policy
        isolated = script_id in self._isolated
        if isolated and policy.sandboxed:  # the runtime swaps workers the same way
            self._load_isolated(compiled, policy, reload=True)
            return
        if isolated or policy.sandboxed:  # moving between this process and a worker
            ScriptEngine.reload_script(self, script_id, compiled, policy=policy, previous=previous)
            return
        with self._lock:
            old = self._script(script_id)
            new = self._run_top_level(compiled, policy)
            self._scripts[script_id] = new
            self._retire(old)
            self._bp_lines.clear()

    def unload_script(self, script_id: str) -> None:
        if self._isolated.pop(script_id, None) is not None:
            self.runtime.unload(script_id)
            return
        with self._lock:
            script = self._scripts.pop(script_id, None)
            if script is None:
                raise ScriptNotFoundError(f"no Lisp script '{script_id}' is loaded", language=LANGUAGE, script=script_id)
            self._retire(script)
            self._bp_lines.clear()

    def _retire(self, script: LispScript) -> None:
        self._live.pop(id(script.ns), None)
        sys.modules.pop(script.module.__name__, None)
        self._release_refs(script)

    @staticmethod
    def _release_refs(script: LispScript) -> None:
        for ref in list(script.refs):
            ref.release()

    def _script(self, script_id: str) -> LispScript:
        script = self._scripts.get(script_id)
        if script is None:
            raise ScriptNotFoundError(f"no Lisp script '{script_id}' is loaded", language=LANGUAGE, script=script_id)
        return script

    def list_functions(self, script_id: str) -> dict[str, FunctionInfo]:
        iso = self._isolated.get(script_id)
        if iso is not None:
            out = {}
            for key, info in self.runtime.functions(script_id).items():
                name = iso.spelled.get(key) or display_name(key)
                out[name] = dataclasses.replace(
                    info, name=name, parameter_names=tuple(display_name(p) for p in info.parameter_names)
                )
            return out
        script = self._script(script_id)
        out: dict[str, FunctionInfo] = {}
        for key, value in list(script.ns.items()):
            if key.startswith("_") or type(value) is not types.FunctionType or value.__globals__ is not script.ns:
                continue
            name = script.spelled.get(key) or display_name(key)
            out[name] = _function_info(name, value)
        return out

    def close(self) -> None:
        with self._lock:
            for script_id in list(self._scripts):
                self.unload_script(script_id)
            for script_id in list(self._isolated):
                self.unload_script(script_id)
            if self._runtime is not None:
                self._runtime.close()
            if self._watchdog is not None:
                self._watchdog.close()
                self._watchdog = None

    # -- calls ------------------------------------------------------------------------
    def _resolve(self, function: str, script_id: str) -> tuple[LispScript, Callable[..., Any]]:
        script = self._scripts.get(script_id)
        if script is None:
            raise ScriptNotFoundError(f"no Lisp script '{script_id}' is loaded", language=LANGUAGE, script=script_id)
        fn = script.ns.get(self._mangle(function))
        if fn is None or not callable(fn):
            raise FunctionNotFoundError(
                f"script '{script_id}' defines no function '{function}'", language=LANGUAGE, script=script_id
            )
        return script, fn

    def _call_isolated(self, function: str, args: Sequence[Any], script: str) -> Any:
        try:
            return self.runtime.call(script, self._mangle(function), args)
        except ScriptError as exc:
            raise _lisp_frames(exc) from None

    def call_function(self, function: str, args: Sequence[Any], *, script: str) -> Any:
        if script in self._isolated:
            return self._call_isolated(function, args, script)
        s, fn = self._resolve(function, script)
        return self._protected(s, fn, args, self._finish)

    async def call_function_async(self, function: str, args: Sequence[Any], *, script: str) -> Any:
        if script in self._isolated:
            try:
                return await self.runtime.call_async(script, self._mangle(function), args)
            except ScriptError as exc:
                raise _lisp_frames(exc) from None
        s, fn = self._resolve(function, script)
        return await self._await(s, fn, args)

    async def _await(self, s: LispScript, fn: Callable[..., Any], args: Sequence[Any]) -> Any:
        """Await a Lisp function on the running loop. An async function (or
        async generator, collected into a list) runs one step at a time, each
        step entering the engine like a call; anything else runs to completion."""
        code = getattr(fn, "__code__", None)
        if code is None or not code.co_flags & (_CO_COROUTINE | _CO_ASYNC_GENERATOR):
            await asyncio.sleep(0)
            return self._protected(s, fn, args, self._finish)
        coro = self._protected(s, fn, args, _raw)
        if code.co_flags & _CO_ASYNC_GENERATOR:
            coro = _collect(coro)
        return await _Steps(self, s, coro)

    def get_function(self, function: str, *, script: str) -> FunctionRef:
        if script in self._isolated:
            call_isolated, mangled = self._call_isolated, self._mangle(function)
            rt = self.runtime

            def call(*args: Any) -> Any:
                return call_isolated(function, args, script)

            async def call_async(*args: Any) -> Any:
                try:
                    return await rt.call_async(script, mangled, args)
                except ScriptError as exc:
                    raise _lisp_frames(exc) from None

            return FunctionRef(call, name=function, language=LANGUAGE, script=script, call_async=call_async)
        s, fn = self._resolve(function, script)
        return self._ref(s, fn, function)

    def _ref(self, s: LispScript, fn: Callable[..., Any], name: str) -> FunctionRef:
        protected, finish, fail, engine = self._protected, self._finish, self._fail, self
        acquire, release = self._lock.acquire, self._lock.release

        def call(*args: Any) -> Any:
            # _protected's fast path, inlined: this is the hot path of bound handles
            if s.time_limit is not None or engine._tracing:
                return protected(s, fn, args, finish)
            acquire()
            try:
                result = fn(*args)
                cls = result.__class__
                if cls in _PLAIN:
                    return result
                if cls is list:  # a flat list of plain values: one copy, no further calls
                    for item in result:
                        if item.__class__ not in _PLAIN:
                            break
                    else:
                        return result[:]
                return finish(result, s)
            except _PASSTHROUGH:
                raise
            except BaseException as exc:
                raise fail(exc, s)
            finally:
                release()

        code = getattr(fn, "__code__", None)
        call_async = None
        if code is not None and code.co_flags & (_CO_COROUTINE | _CO_ASYNC_GENERATOR):

            def call_async(*args: Any) -> Any:
                return self._await(s, fn, args)

        ref = FunctionRef(call, name=name, language=LANGUAGE, script=s.id, call_async=call_async)
        s.refs.add(ref)
        return ref

    def _wrap(self, fn: types.FunctionType) -> FunctionRef:
        """A Lisp function handed to the host: a FunctionRef owned by its script."""
        name = lisp_name(fn.__name__)
        s = self._live.get(id(fn.__globals__))
        if s is None:  # its script was unloaded meanwhile
            ref = FunctionRef(fn, name=name, language=LANGUAGE, script=fn.__globals__.get(SCRIPT_KEY))
            ref.release()
            return ref
        return self._ref(s, fn, name)

    def _protected(self, s: LispScript, fn: Callable[..., Any], args: Sequence[Any], finish: Callable[[Any, LispScript], Any]) -> Any:
        """Run ``fn(*args)`` of script ``s`` and ``finish`` its result, with
        entry serialised, the script's limits and breakpoints applied, and any
        exception turned into a Kryon error."""
        lock = self._lock
        lock.acquire()
        try:
            if s.time_limit is None and not self._tracing:
                try:
                    return finish(fn(*args), s)
                except _PASSTHROUGH:
                    raise
                except BaseException as exc:
                    raise self._fail(exc, s)
            return self._guarded(s, fn, args, finish)
        finally:
            lock.release()

    def _guarded(self, s: LispScript, fn: Callable[..., Any], args: Sequence[Any], finish: Callable[[Any, LispScript], Any]) -> Any:
        local = self._local
        depth = getattr(local, "depth", 0)
        local.depth = depth + 1
        token = None
        if s.time_limit is not None and depth == 0:
            if self._watchdog is None:
                self._watchdog = Watchdog()
            token = self._watchdog.arm(s.time_limit)
        old_trace = sys.gettrace()
        if self._tracing and old_trace is not self._trace:
            sys.settrace(self._trace)
        try:
            try:
                return finish(fn(*args), s)
            finally:
                while token is not None:  # an interrupt arriving now is retried, never leaked
                    try:
                        self._watchdog.disarm(token)  # type: ignore[union-attr]
                        token = None
                    except TimeLimitExceeded:
                        pass
                local.depth = depth
                if sys.gettrace() is not old_trace:
                    sys.settrace(old_trace)
        except _PASSTHROUGH:
            raise
        except BaseException as exc:
            raise self._fail(exc, s)

    @staticmethod
    def _fail(exc: BaseException, s: LispScript) -> ScriptError:
        return translate(exc, s.id, s.time_limit).with_traceback(None)

    def _finish(self, value: Any, s: LispScript) -> Any:
        """A Lisp result as a host value: generators are drained into a list,
        coroutines run to completion, the rest converts by the value rules."""
        t = type(value)
        if t in _PLAIN:
            return value
        if t is _GENERATOR:
            value = list(value)
        elif t is _COROUTINE or t is _ASYNC_GENERATOR:
            value = self._run_async(value, s)
        return to_host(value, self._wrap_fn, self._unknown_fn)

    def _run_async(self, coro: Any, s: LispScript) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            if type(coro) is _COROUTINE:
                coro.close()  # never started: closing it avoids the "never awaited" warning
            raise ScriptRuntimeError(
                "an async Lisp function was called synchronously inside a running event loop: "
                "await it with call_function_async (or FunctionRef.call_async)",
                language=LANGUAGE,
                script=s.id,
            )
        if type(coro) is _ASYNC_GENERATOR:
            coro = _collect(coro)
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(coro)
        finally:
            loop.close()

    def _print(self, *values: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False) -> None:
        """``print`` in scripts: complete lines go to the host's output."""
        if file is not None:
            print(*values, sep=sep, end=end, file=file, flush=flush)
            return
        text = self._pending + (" " if sep is None else sep).join(map(str, values)) + ("\n" if end is None else end)
        *lines, self._pending = text.split("\n")
        for line in lines:
            self.config.output(line)

    def _convert_unknown(self, value: Any) -> Any:
        if self.bridge is not None:
            return self.bridge.convert_unknown(value)
        raise ConversionError(f"cannot pass a {type(value).__name__} out of Lisp", language=LANGUAGE)

    # -- globals -----------------------------------------------------------------------
    def set_global(self, name: str, value: Any) -> None:
        key = self._mangle(name)
        with self._lock:
            self._globals[key] = value
            for s in self._live.values():
                s.builtins[key] = value
            if self._runtime is not None:
                self._runtime.set_global(key, value)

    def get_global(self, name: str) -> Any:
        value = self._globals.get(self._mangle(name))
        return value if type(value) in _PLAIN else to_host(value, self._wrap, self._convert_unknown)

    # -- bridge --------------------------------------------------------------------------
    def setup_bridge(self, bridge: ScriptBridge) -> None:
        super().setup_bridge(bridge)
        wrap, unknown = self._wrap, self._convert_unknown
        with self._lock:
            self._api = build_kryon_api(bridge, lambda v: to_host(v, wrap, unknown))
            for s in self._live.values():
                s.builtins.update(self._api)
                s.builtins.update(self._globals)
            if self._runtime is not None:
                self._runtime.setup_bridge(bridge, sandbox.api_names(bridge))

    # -- memory ----------------------------------------------------------------------------
    def _estimate(self) -> int:
        with self._lock:
            roots = [s.ns for s in self._live.values()] + [self._globals]
            return _reachable_size(roots, {id(s.builtins) for s in self._live.values()})

    def collect_garbage(self) -> GarbageCollectionStats:
        """In-process scripts: ``gc.collect`` with the estimate before and
        after; isolated workers add their own collection's figures."""
        start = time.perf_counter()
        before = self._estimate()
        freed = gc.collect()
        after = self._estimate()
        if self._runtime is not None and self._isolated:
            iso = self._runtime.collect_garbage()
            before, after = before + iso.bytes_before, after + iso.bytes_after
            freed += iso.objects_freed or 0
        return GarbageCollectionStats(before, after, freed, (time.perf_counter() - start) * 1000.0)

    def get_memory_usage(self) -> MemoryUsage:
        """In-process scripts: an estimate of what their namespaces hold;
        isolated workers: their resident memory (each worker's limit is its
        script's policy)."""
        used = self._estimate()
        if self._runtime is not None and self._isolated:
            used += self._runtime.memory_usage().used_bytes
        return MemoryUsage(used_bytes=used, limit=None, scripts=len(self._scripts) + len(self._isolated))

    # -- debugging -----------------------------------------------------------------------------
    def get_stack_trace(self) -> list[StackFrame]:
        frames = stack_from_frame(sys._getframe(1))
        if not frames and self._runtime is not None:  # inside a callback from a worker
            frames = _lisp_stack(self._runtime.current_stack())
        return frames

    def set_breakpoint(self, file: str, line: int) -> int:
        if not isinstance(line, int) or line < 1:
            raise ScriptError(f"a breakpoint needs a line number >= 1, not {line!r}", language=LANGUAGE)
        with self._lock:
            bp = next(self._bp_ids)
            self._breakpoints[bp] = (str(file), line)
            self._bp_lines.clear()
            self._tracing = True
            self._push_isolated_breakpoints()
            return bp

    def remove_breakpoint(self, breakpoint_id: int) -> None:
        with self._lock:
            if self._breakpoints.pop(breakpoint_id, None) is None:
                raise ScriptError(f"no breakpoint {breakpoint_id}", language=LANGUAGE)
            self._bp_lines.clear()
            self._tracing = bool(self._breakpoints)
            self._push_isolated_breakpoints()

    def _push_isolated_breakpoints(self) -> None:
        if self._runtime is not None:
            self._runtime.set_breakpoints({sid: self._lines_for(sid) for sid in self._isolated})

    def _isolated_hit(self, hit: BreakpointHit) -> None:
        handler = self.breakpoint_handler
        if handler is not None:
            handler(dataclasses.replace(hit, stack=_lisp_stack(hit.stack)))

    def _lines_for(self, script_id: str) -> dict[int, int]:
        lines = self._bp_lines.get(script_id)
        if lines is None:
            s: Any = (
                self._scripts.get(script_id)
                or self._isolated.get(script_id)
                or next((x for x in self._live.values() if x.id == script_id), None)
            )
            names = {script_id, f"{script_id}.kl", f"{script_id}.hy"}
            if s is not None and s.compiled.filename:
                names |= {s.compiled.filename, os.path.basename(s.compiled.filename)}
            lines = {ln: bp for bp, (file, ln) in sorted(self._breakpoints.items()) if file in names}
            self._bp_lines[script_id] = lines
        return lines

    def _trace(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        script_id = frame.f_globals.get(SCRIPT_KEY)
        if script_id is None or event != "call":
            return None
        lines = self._lines_for(script_id)
        if not lines:
            return None

        def local(frame: types.FrameType, event: str, arg: Any) -> Any:
            if event == "line":
                bp = lines.get(frame.f_lineno)
                if bp is not None:
                    self._hit(bp, script_id, frame)
            return local

        return local

    def _hit(self, bp: int, script_id: str, frame: types.FrameType) -> None:
        handler = self.breakpoint_handler
        if handler is None:
            return
        stack = stack_from_frame(frame, with_locals=True)
        old = sys.gettrace()
        sys.settrace(None)  # the handler itself is not traced
        try:
            handler(BreakpointHit(bp, LANGUAGE, script_id, frame.f_lineno, stack))
        finally:
            sys.settrace(old)


class _Steps:
    """Awaitable driving a Lisp coroutine on the caller's loop: each step runs
    inside the engine (lock, limits, breakpoints, error translation), and
    what the coroutine awaits is awaited by the loop between steps."""

    __slots__ = ("engine", "script", "coro")

    def __init__(self, engine: LispEngine, script: LispScript, coro: Any) -> None:
        self.engine, self.script, self.coro = engine, script, coro

    def __await__(self) -> Any:
        engine, s, coro = self.engine, self.script, self.coro
        value: Any = None
        exc: BaseException | None = None
        while True:
            done, out = engine._protected(s, _step, (coro, value, exc), _raw)
            if done:
                return engine._finish(out, s)
            try:
                value, exc = (yield out), None
            except BaseException as e:  # cancellation or an error thrown into the awaiting task
                value, exc = None, e


def _function_info(name: str, fn: types.FunctionType) -> FunctionInfo:
    code = fn.__code__
    n = code.co_argcount + code.co_kwonlyargcount
    return FunctionInfo(
        name=name,
        parameter_count=n,
        parameter_names=tuple(display_name(p) for p in code.co_varnames[:n]),
        is_async=bool(code.co_flags & (_CO_COROUTINE | _CO_ASYNC_GENERATOR)),
        is_generator=bool(code.co_flags & (_CO_GENERATOR | _CO_ASYNC_GENERATOR)),
        is_variadic=bool(code.co_flags & _CO_VARARGS),
        line=code.co_firstlineno,
    )


_DESCEND = (dict, list, tuple, set, frozenset, types.FunctionType, types.CodeType, types.CellType, types.MethodType)
_STOP = (type, types.ModuleType, types.BuiltinFunctionType, FunctionRef, UserData)


def _reachable_size(roots: list[Any], skip: set[int], cap: int = 200_000) -> int:
    """Bytes of the objects reachable from the script namespaces (by
    ``sys.getsizeof``), not following into modules, classes, host objects
    or builtins: an estimate of what the scripts hold."""
    seen: set[int] = set(skip)
    todo = list(roots)
    total = 0
    while todo and len(seen) < cap:
        obj = todo.pop()
        key = id(obj)
        if key in seen:
            continue
        seen.add(key)
        if isinstance(obj, _STOP):
            continue
        total += sys.getsizeof(obj, 64)
        if isinstance(obj, types.FunctionType):
            todo.extend((obj.__code__, obj.__closure__ or (), obj.__defaults__ or (), obj.__kwdefaults__ or {}))
        elif isinstance(obj, _DESCEND):
            todo.extend(gc.get_referents(obj))
    return total
