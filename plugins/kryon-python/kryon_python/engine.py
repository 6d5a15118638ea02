"""The Python engine: trusted scripts in-process, untrusted ones isolated.

A script's policy decides where it runs:

- trusted (``policy.sandboxed`` false, e.g. ``SecurityPolicy.trusted()``):
  in the host interpreter, in its own module namespace. ``import kryon`` is
  answered by the script's own ``__import__`` (its ``__builtins__`` is a
  per-script copy), so the host's ``sys.modules`` never holds a ``kryon``.
  Calls go straight to the function object; breakpoints use ``sys.settrace``
  only while a script runs and only while breakpoints exist. A trusted
  policy's ``time_limit`` is kept by :class:`kryon_core.watchdog.Watchdog`
  (a convenience against mistakes: it interrupts Python code, not a blocking
  C call); recursion stops at Python's own limit (a RecursionLimitError).
- untrusted (``policy.sandboxed``, the default of a bare ``ScriptManager()``):
  in a sandboxed worker process of its own (``kryon_core.isolation``).

Both kinds can be loaded into one engine side by side.
"""

from __future__ import annotations

import asyncio
import builtins
import gc
import importlib.util
import inspect
import itertools
import linecache
import platform
import sys
import threading
import time
import types
from typing import Any, Callable, Sequence

from kryon_core import (
    BreakpointHit,
    CompiledScript,
    EngineCapabilities,
    FunctionInfo,
    FunctionNotFoundError,
    FunctionRef,
    GarbageCollectionStats,
    MemoryUsage,
    ScriptEngine,
    ScriptError,
    ScriptNotFoundError,
    ScriptRuntimeError,
    SecurityPolicy,
    StackFrame,
    UserData,
)
from kryon_core.isolation import IsolatedRuntime
from kryon_core.watchdog import TimeLimitExceeded, Watchdog

from .bridge import build_kryon_api
from .compiler import code_of, compile_source, namespace_functions, source_text
from .errors import translate
from .plugin import LANGUAGE
from .sandbox import make_runtime, script_builtins
from .state import TrustedScript
from .values import SCALARS, Converter

__all__ = ["PythonEngine"]



class PythonEngine(ScriptEngine):
    """CPython scripts. See the module docstring for where each script runs."""

    language = LANGUAGE
    extensions = (".py",)

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()
        self._trusted: dict[str, TrustedScript] = {}
        self._loading: set[str] = set()
        self._runtime: IsolatedRuntime | None = None
        self._globals: dict[str, Any] = {}
        self._convert = Converter(self._make_ref, self._owner_of, self._convert_unknown)
        self._kryon = build_kryon_api(None, self._convert.arg, self._output)
        self._breakpoints: dict[int, tuple[str, int]] = {}
        self._bp_lines: dict[str, dict[int, int]] = {}
        self._bp_ids = itertools.count(1)
        self._tracing = False
        self._watchdog: Watchdog | None = None
        self._depth = threading.local()  # trusted calls of this thread in progress (the outermost arms the watchdog)
        self._out_buf = ""

    # -- identification --------------------------------------------------------
    @property
    def version(self) -> str:
        magic = importlib.util.MAGIC_NUMBER.hex()
        return f"CPython {platform.python_version()} (bytecode magic {magic})"

    @property
    def capabilities(self) -> EngineCapabilities:
        return EngineCapabilities(
            supports_async=True,
            supports_generators=True,
            supports_coroutines=True,
            supports_modules=True,
            supports_debugging=True,
            supports_jit=False,
            supports_bytecode=True,
            supports_sandbox=True,
        )

    # -- compiling -------------------------------------------------------------
    def compile(self, source: "str | bytes", name: str, *, policy: SecurityPolicy | None = None) -> CompiledScript:
        """Compile to a code object (``bytecode`` is its marshal form) and
        list the top-level functions. Nothing runs. The result does not
        depend on the policy (the cache shares it): sandboxed scripts are
        compiled again, and checked, inside their worker."""
        return compile_source(source_text(source, name), name, self.version)

    # -- loading -----------------------------------------------------------------
    def load_script(self, compiled: CompiledScript, *, policy: SecurityPolicy | None = None) -> str:
        policy = policy or self.config.policy
        sid = compiled.id
        if policy.sandboxed:
            self.runtime.load(sid, compiled.source, policy=policy, filename=compiled.filename)
            return sid
        entry = self._run_trusted(compiled, policy)
        with self._lock:
            self._trusted[sid] = entry
        return sid

    def _run_trusted(self, compiled: CompiledScript, policy: SecurityPolicy) -> TrustedScript:
        sid = compiled.id
        code = self._code(compiled)
        b = self._script_builtins(policy)
        ns: dict[str, Any] = {"__name__": sid, "__builtins__": b, "__file__": compiled.filename or sid, "__doc__": None}
        linecache.cache[sid] = (len(compiled.source), None, compiled.source.splitlines(True), sid)
        self._loading.add(sid)
        try:
            self._run(policy.time_limit, exec, (code, ns))
        except (Exception, SystemExit, TimeLimitExceeded) as exc:
            if sid not in self._trusted:
                linecache.cache.pop(sid, None)
            raise self._translate(exc, sid, policy.time_limit) from None
        finally:
            self._loading.discard(sid)
        entry = TrustedScript(sid, ns, b, policy, compiled.source)
        entry.functions = namespace_functions(sid, ns)
        return entry

    def _code(self, compiled: CompiledScript) -> types.CodeType:
        return code_of(compiled, self.version)

    def _script_builtins(self, policy: SecurityPolicy) -> dict[str, Any]:
        return script_builtins(policy, self._kryon, self._print, self._globals)

    def _print(self, *args: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False) -> None:
        """``print`` for scripts: lines go to the host's output (``EngineConfig.output``)."""
        if file is not None:
            builtins.print(*args, sep=sep, end=end, file=file, flush=flush)
            return
        text = (" " if sep is None else sep).join(map(str, args)) + ("\n" if end is None else end)
        with self._lock:
            self._out_buf += text
            if "\n" not in self._out_buf:
                return
            *lines, self._out_buf = self._out_buf.split("\n")
        for line in lines:
            self.config.output(line)

    def reload_script(
        self, script_id: str, compiled: CompiledScript, *, policy: SecurityPolicy | None, previous: CompiledScript
    ) -> None:
        """Run the new version beside the old one and swap only when its top
        level succeeded: a failing version leaves the old one running with
        its state (trusted) or its worker (sandboxed)."""
        policy = policy or self.config.policy
        if policy.sandboxed:
            self.runtime.reload(script_id, compiled.source, policy=policy, filename=compiled.filename)
            with self._lock:
                old = self._trusted.pop(script_id, None)
            if old is not None:
                self._convert.forget_script(script_id)
            return
        entry = self._run_trusted(compiled, policy)
        with self._lock:
            self._trusted[script_id] = entry
        self._convert.forget_script(script_id)
        if self._runtime is not None and self._runtime.has_script(script_id):
            self._runtime.unload(script_id)

    def unload_script(self, script_id: str) -> None:
        with self._lock:
            entry = self._trusted.pop(script_id, None)
        if entry is not None:
            self._convert.forget_script(script_id)
            linecache.cache.pop(script_id, None)
            entry.ns.clear()
            return
        if self._runtime is not None and self._runtime.has_script(script_id):
            self._runtime.unload(script_id)
            return
        raise ScriptNotFoundError(f"no script '{script_id}' is loaded", language=LANGUAGE, script=script_id)

    def list_functions(self, script_id: str) -> dict[str, FunctionInfo]:
        entry = self._trusted.get(script_id)
        if entry is not None:
            return dict(entry.functions)
        if self._runtime is not None and self._runtime.has_script(script_id):
            return self._runtime.functions(script_id)
        raise ScriptNotFoundError(f"no script '{script_id}' is loaded", language=LANGUAGE, script=script_id)

    @property
    def runtime(self) -> IsolatedRuntime:
        """The isolated runtime for sandboxed scripts (created on first use)."""
        rt = self._runtime
        if rt is None:
            with self._lock:
                rt = self._runtime
                if rt is None:
                    rt = make_runtime(self.config.output)
                    if self.bridge is not None:
                        rt.setup_bridge(self.bridge)
                    for name, value in self._globals.items():
                        rt.set_global(name, value)
                    rt.on_breakpoint = self._isolated_hit
                    if self._bp_lines:
                        rt.set_breakpoints(self._bp_lines)
                    self._runtime = rt
        return rt

    def is_sandboxed(self, script_id: str) -> bool:
        return script_id not in self._trusted and self._runtime is not None and self._runtime.has_script(script_id)

    # -- calls ---------------------------------------------------------------------
    def call_function(self, function: str, args: Sequence[Any], *, script: str) -> Any:
        entry = self._trusted.get(script)
        if entry is None:
            return self._call_isolated(function, args, script)
        fn = entry.ns.get(function)
        if fn is None or not callable(fn):
            raise FunctionNotFoundError(
                f"script '{script}' defines no function '{function}'", language=LANGUAGE, script=script
            )
        limit = entry.policy.time_limit
        try:
            if limit is None and not self._tracing:
                result = fn(*args)
            else:
                result = self._run(limit, fn, args)
        except (Exception, SystemExit, TimeLimitExceeded) as exc:
            raise self._translate(exc, script, limit) from None
        if type(result) in SCALARS:
            return result
        return self._result(result, script, limit)

    def _run(self, limit: float | None, fn: Callable[..., Any], args: Sequence[Any]) -> Any:
        """``fn(*args)`` traced when breakpoints exist, and under ``limit``
        seconds when this is the thread's outermost trusted call."""
        depth = getattr(self._depth, "n", 0)
        token = None
        if limit is not None and depth == 0:
            if self._watchdog is None:
                with self._lock:
                    if self._watchdog is None:
                        self._watchdog = Watchdog()
            token = self._watchdog.arm(limit)
        self._depth.n = depth + 1
        try:
            return self._traced(fn, args) if self._tracing else fn(*args)
        finally:
            # Disarm first, retrying inline: an interrupt may land on any
            # statement here (even on entry to a helper function), and an armed
            # token left behind would keep interrupting host code.
            while token is not None:
                try:
                    self._watchdog.disarm(token)  # type: ignore[union-attr]
                    token = None
                except TimeLimitExceeded:
                    pass
            self._depth.n = depth

    def _call_isolated(self, function: str, args: Sequence[Any], script: str) -> Any:
        rt = self._runtime
        if rt is None or not rt.has_script(script):
            raise ScriptNotFoundError(f"no script '{script}' is loaded", language=LANGUAGE, script=script)
        return rt.call(script, function, args)

    def _result(self, result: Any, script: str | None, limit: float | None = None) -> Any:
        """A call's result as a host value: a coroutine run to completion (when
        no loop runs here), a generator drained, both under ``limit``."""
        if inspect.iscoroutine(result):
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                try:
                    result = self._run(limit, asyncio.run, (result,))
                except (Exception, SystemExit, TimeLimitExceeded) as exc:
                    raise self._translate(exc, script, limit) from None
            else:
                result.close()
                raise ScriptRuntimeError(
                    "this function is async and a loop is running here: use call_function_async",
                    language=LANGUAGE,
                    script=script,
                )
        if isinstance(result, types.GeneratorType):
            try:
                result = self._run(limit, list, (result,))
            except (Exception, SystemExit, TimeLimitExceeded) as exc:
                raise self._translate(exc, script, limit) from None
        return self._convert.out(result, script)

    async def call_function_async(self, function: str, args: Sequence[Any], *, script: str) -> Any:
        """Async functions run as coroutines on the caller's loop; async
        generators are collected; sandboxed calls run off the loop."""
        entry = self._trusted.get(script)
        if entry is None:
            rt = self._runtime
            if rt is None or not rt.has_script(script):
                raise ScriptNotFoundError(f"no script '{script}' is loaded", language=LANGUAGE, script=script)
            return await rt.call_async(script, function, args)
        fn = entry.ns.get(function)
        if fn is None or not callable(fn):
            raise FunctionNotFoundError(
                f"script '{script}' defines no function '{function}'", language=LANGUAGE, script=script
            )
        return await self._await(fn, args, script)

    async def _await(self, fn: Callable[..., Any], args: Sequence[Any], script: str | None) -> Any:
        try:
            result = fn(*args)
            if inspect.isawaitable(result):
                result = await result
            elif isinstance(result, types.AsyncGeneratorType):
                result = [item async for item in result]
        except (Exception, SystemExit) as exc:
            raise self._translate(exc, script) from None
        if type(result) in SCALARS:
            return result
        return self._result(result, script)

    def get_function(self, function: str, *, script: str) -> FunctionRef:
        entry = self._trusted.get(script)
        if entry is None:
            rt = self._runtime
            if rt is None or not rt.has_script(script):
                raise ScriptNotFoundError(f"no script '{script}' is loaded", language=LANGUAGE, script=script)

            def call(*args: Any) -> Any:
                return rt.call(script, function, args)

            async def call_async(*args: Any) -> Any:
                return await rt.call_async(script, function, args)

            return FunctionRef(call, name=function, language=LANGUAGE, script=script, call_async=call_async)
        fn = entry.ns.get(function)
        if fn is None or not callable(fn):
            raise FunctionNotFoundError(
                f"script '{script}' defines no function '{function}'", language=LANGUAGE, script=script
            )
        return self._make_ref(fn, function, script)

    def _make_ref(self, fn: Callable[..., Any], name: str, script: str | None) -> FunctionRef:
        """A FunctionRef calling a trusted script's callable directly."""
        engine = self

        entry = self._trusted.get(script or "")
        limit = entry.policy.time_limit if entry is not None else None

        def call(*args: Any) -> Any:
            try:
                if limit is None and not engine._tracing:
                    result = fn(*args)
                else:
                    result = engine._run(limit, fn, args)
            except (Exception, SystemExit, TimeLimitExceeded) as exc:
                raise engine._translate(exc, script, limit) from None
            if type(result) in SCALARS:
                return result
            return engine._result(result, script, limit)

        async def call_async(*args: Any) -> Any:
            return await engine._await(fn, args, script)

        return FunctionRef(call, name=name, language=LANGUAGE, script=script, call_async=call_async)

    # -- errors ----------------------------------------------------------------------
    def _is_script(self, filename: str) -> bool:
        return filename in self._trusted or filename in self._loading

    def _owner_of(self, filename: str) -> str | None:
        return filename if self._is_script(filename) else None

    def _convert_unknown(self, value: Any) -> Any:
        if self.bridge is None:
            from kryon_core import ConversionError

            raise ConversionError(f"cannot convert a {type(value).__name__} to a host value", language=LANGUAGE)
        return self.bridge.convert_unknown(value)

    def _output(self, text: str) -> None:
        self.config.output(text)

    def _translate(self, exc: BaseException, script: str | None, time_limit: float | None = None) -> ScriptError:
        return translate(exc, script, self._is_script, time_limit)

    # -- globals -------------------------------------------------------------------------
    def set_global(self, name: str, value: Any) -> None:
        """A global every script sees (as a builtin: a script's own
        assignment of the name shadows it in that script only)."""
        with self._lock:
            self._globals[name] = value
            for entry in self._trusted.values():
                entry.builtins[name] = value
        if self._runtime is not None:
            self._runtime.set_global(name, value)

    def get_global(self, name: str) -> Any:
        return self._globals.get(name)

    # -- memory ------------------------------------------------------------------------------
    def _trusted_bytes(self) -> tuple[int, int]:
        """Bytes and objects reachable from the trusted scripts' namespaces
        (``sys.getsizeof`` over ``gc.get_referents``), not counting modules,
        builtins, the ``kryon`` module or host handles."""
        with self._lock:
            entries = list(self._trusted.values())
        skip = {id(self._kryon), id(vars(builtins))}
        skip.update(id(e.builtins) for e in entries)
        mine = {e.id for e in entries}
        seen: set[int] = set()
        stack: list[Any] = [e.ns for e in entries]
        total = count = 0
        while stack and count < 5_000_000:
            obj = stack.pop()
            key = id(obj)
            if key in seen or key in skip:
                continue
            seen.add(key)
            if isinstance(obj, (types.ModuleType, FunctionRef, UserData, types.BuiltinFunctionType, types.FrameType)):
                continue
            if isinstance(obj, type) and getattr(obj, "__module__", None) not in mine:
                continue
            total += sys.getsizeof(obj)
            count += 1
            stack.extend(gc.get_referents(obj))
        return total, count

    def get_memory_usage(self) -> MemoryUsage:
        used, _ = self._trusted_bytes()
        limit = None
        peak = None
        scripts = len(self._trusted)
        if self._runtime is not None:
            iso = self._runtime.memory_usage()
            used += iso.used_bytes
            peak = iso.peak_bytes
            scripts += iso.scripts
            if not self._trusted:
                limit = iso.limit
        return MemoryUsage(used_bytes=used, limit=limit, peak_bytes=peak, scripts=scripts)

    def collect_garbage(self) -> GarbageCollectionStats:
        start = time.perf_counter()
        before, _ = self._trusted_bytes()
        freed = gc.collect()
        after, _ = self._trusted_bytes()
        if self._runtime is not None:
            iso = self._runtime.collect_garbage()
            before += iso.bytes_before
            after += iso.bytes_after
            freed += iso.objects_freed or 0
        return GarbageCollectionStats(
            bytes_before=before, bytes_after=after, objects_freed=freed, duration_ms=(time.perf_counter() - start) * 1000
        )

    # -- debugging ------------------------------------------------------------------------------
    def set_breakpoint(self, file: str, line: int) -> int:
        """Break at ``line`` of the trusted script ``file`` (its id). The
        handler (``set_breakpoint_handler``) gets a BreakpointHit with the
        script stack and the innermost frame's locals, then the script goes on."""
        if not isinstance(line, int) or line < 1:
            raise ScriptError(f"bad breakpoint line {line!r}", language=LANGUAGE, script=file)
        with self._lock:
            bid = next(self._bp_ids)
            self._breakpoints[bid] = (file, line)
            self._bp_lines.setdefault(file, {})[line] = bid
            self._tracing = True
        if self._runtime is not None:
            self._runtime.set_breakpoints(self._bp_lines)
        return bid

    def remove_breakpoint(self, breakpoint_id: int) -> None:
        with self._lock:
            where = self._breakpoints.pop(breakpoint_id, None)
            if where is None:
                raise ScriptError(f"no breakpoint {breakpoint_id}", language=LANGUAGE)
            lines = self._bp_lines.get(where[0], {})
            lines.pop(where[1], None)
            if not lines:
                self._bp_lines.pop(where[0], None)
            self._tracing = bool(self._breakpoints)
        if self._runtime is not None:
            self._runtime.set_breakpoints(self._bp_lines)

    def _isolated_hit(self, hit: BreakpointHit) -> None:
        if self.breakpoint_handler is not None:
            self.breakpoint_handler(hit)

    def _traced(self, fn: Callable[..., Any], args: Sequence[Any]) -> Any:
        previous = sys.gettrace()
        sys.settrace(self._trace_call)
        try:
            return fn(*args)
        finally:
            sys.settrace(previous)

    def _trace_call(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        lines = self._bp_lines.get(frame.f_code.co_filename)
        if not lines:
            return None

        def trace_line(frame: types.FrameType, event: str, arg: Any) -> Any:
            if event == "line":
                bid = lines.get(frame.f_lineno)
                if bid is not None:
                    self._hit(bid, frame)
            return trace_line

        return trace_line

    def _hit(self, bid: int, frame: types.FrameType) -> None:
        handler = self.breakpoint_handler
        if handler is None:
            return
        stack = self._stack_from(frame, with_locals=True)
        hit = BreakpointHit(bid, LANGUAGE, frame.f_code.co_filename, frame.f_lineno, stack)
        previous = sys.gettrace()
        sys.settrace(None)  # the handler itself is not traced
        try:
            handler(hit)
        finally:
            sys.settrace(previous)

    def _stack_from(self, frame: types.FrameType | None, *, with_locals: bool = False) -> list[StackFrame]:
        out = []
        first = True
        while frame is not None:
            code = frame.f_code
            if code.co_filename in self._trusted or code.co_filename in self._loading:
                local_vars = {}
                if with_locals and first:
                    local_vars = {k: v for k, v in frame.f_locals.items() if not k.startswith("__")}
                out.append(
                    StackFrame(code.co_name, script=code.co_filename, line=frame.f_lineno, language=LANGUAGE, locals=local_vars)
                )
                first = False
            frame = frame.f_back
        return out

    def get_stack_trace(self) -> list[StackFrame]:
        """The script frames on this thread's stack, innermost first: trusted
        scripts' own frames, else the stack of the sandboxed script that is
        calling the host right now."""
        frames = self._stack_from(sys._getframe(1))
        if not frames and self._runtime is not None:
            frames = self._runtime.current_stack()
        return frames

    # -- bridge --------------------------------------------------------------------------------------
    def setup_bridge(self, bridge: Any) -> None:
        super().setup_bridge(bridge)
        self._kryon = build_kryon_api(bridge, self._convert.arg, self._output)
        with self._lock:
            for entry in self._trusted.values():
                pass  # scripts imported the old module object; new imports get the new one
        if self._runtime is not None:
            self._runtime.setup_bridge(bridge)

    def close(self) -> None:
        with self._lock:
            for sid in list(self._trusted):
                linecache.cache.pop(sid, None)
            self._trusted.clear()
            if self._runtime is not None:
                self._runtime.close()
                self._runtime = None
            if self._watchdog is not None:
                self._watchdog.close()
                self._watchdog = None

