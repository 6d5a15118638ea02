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

import ast
import asyncio
import builtins
import gc
import importlib.util
import inspect
import itertools
import linecache
import marshal
import platform
import sys
import threading
import time
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from kryon_core import (
    AccessDeniedError,
    BreakpointHit,
    CompiledScript,
    CompileError,
    EngineCapabilities,
    FunctionInfo,
    FunctionNotFoundError,
    FunctionRef,
    GarbageCollectionStats,
    MemoryLimitError,
    MemoryUsage,
    RecursionLimitError,
    ScriptEngine,
    ScriptError,
    ScriptNotFoundError,
    ScriptRuntimeError,
    ScriptTimeoutError,
    SecurityPolicy,
    StackFrame,
    UserData,
)
from kryon_core.isolation import IsolatedRuntime
from kryon_core.watchdog import TimeLimitExceeded, Watchdog

from .bridge import make_kryon_module
from .sandbox import make_runtime
from .values import SCALARS, Converter

__all__ = ["PythonEngine"]

_REAL_IMPORT = builtins.__import__
_LANG = "python"


@dataclass
class _Trusted:
    id: str
    ns: dict[str, Any]
    builtins: dict[str, Any]
    policy: SecurityPolicy
    source: str
    functions: dict[str, FunctionInfo] = field(default_factory=dict)


class PythonEngine(ScriptEngine):
    """CPython scripts. See the module docstring for where each script runs."""

    language = _LANG
    extensions = (".py",)

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()
        self._trusted: dict[str, _Trusted] = {}
        self._loading: set[str] = set()
        self._runtime: IsolatedRuntime | None = None
        self._globals: dict[str, Any] = {}
        self._convert = Converter(self)
        self._kryon = make_kryon_module(self, None)
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
        text = _text(source, name)
        try:
            tree = ast.parse(text, name, "exec")
            code = compile(tree, name, "exec", dont_inherit=True)
        except SyntaxError as exc:
            raise CompileError(
                exc.msg or "invalid syntax", language=_LANG, script=name, line=exc.lineno, column=exc.offset
            ) from None
        except (ValueError, RecursionError, MemoryError) as exc:
            raise CompileError(f"cannot compile: {exc}", language=_LANG, script=name) from None
        functions, names = _top_level(tree)
        return CompiledScript(
            id=name,
            language=_LANG,
            source=text,
            bytecode=marshal.dumps(code),
            functions=functions,
            globals=names,
            engine_version=self.version,
        )

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

    def _run_trusted(self, compiled: CompiledScript, policy: SecurityPolicy) -> _Trusted:
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
        entry = _Trusted(sid, ns, b, policy, compiled.source)
        entry.functions = _namespace_functions(sid, ns)
        return entry

    def _code(self, compiled: CompiledScript) -> types.CodeType:
        if compiled.bytecode and compiled.engine_version == self.version:
            try:
                code = marshal.loads(compiled.bytecode)
                if isinstance(code, types.CodeType) and code.co_filename == compiled.id:
                    return code
            except (ValueError, EOFError, TypeError):
                pass
        try:
            return compile(compiled.source, compiled.id, "exec", dont_inherit=True)
        except SyntaxError as exc:
            raise CompileError(
                exc.msg or "invalid syntax", language=_LANG, script=compiled.id, line=exc.lineno, column=exc.offset
            ) from None

    def _script_builtins(self, policy: SecurityPolicy) -> dict[str, Any]:
        b = dict(vars(builtins))
        kryon = self._kryon

        def __import__(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
            if level == 0:
                if name == "kryon":
                    return kryon
                if not policy.may_import(name):
                    raise AccessDeniedError(
                        f"importing '{name}' is not allowed by the script's policy", language=_LANG
                    )
            return _REAL_IMPORT(name, globals, locals, fromlist, level)

        b["__import__"] = __import__
        b["print"] = self._print
        b.update(self._globals)
        return b

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
        raise ScriptNotFoundError(f"no script '{script_id}' is loaded", language=_LANG, script=script_id)

    def list_functions(self, script_id: str) -> dict[str, FunctionInfo]:
        entry = self._trusted.get(script_id)
        if entry is not None:
            return dict(entry.functions)
        if self._runtime is not None and self._runtime.has_script(script_id):
            return self._runtime.functions(script_id)
        raise ScriptNotFoundError(f"no script '{script_id}' is loaded", language=_LANG, script=script_id)

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
                f"script '{script}' defines no function '{function}'", language=_LANG, script=script
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
            raise ScriptNotFoundError(f"no script '{script}' is loaded", language=_LANG, script=script)
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
                    language=_LANG,
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
                raise ScriptNotFoundError(f"no script '{script}' is loaded", language=_LANG, script=script)
            return await rt.call_async(script, function, args)
        fn = entry.ns.get(function)
        if fn is None or not callable(fn):
            raise FunctionNotFoundError(
                f"script '{script}' defines no function '{function}'", language=_LANG, script=script
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
                raise ScriptNotFoundError(f"no script '{script}' is loaded", language=_LANG, script=script)

            def call(*args: Any) -> Any:
                return rt.call(script, function, args)

            async def call_async(*args: Any) -> Any:
                return await rt.call_async(script, function, args)

            return FunctionRef(call, name=function, language=_LANG, script=script, call_async=call_async)
        fn = entry.ns.get(function)
        if fn is None or not callable(fn):
            raise FunctionNotFoundError(
                f"script '{script}' defines no function '{function}'", language=_LANG, script=script
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

        return FunctionRef(call, name=name, language=_LANG, script=script, call_async=call_async)

    # -- errors ----------------------------------------------------------------------
    def _frames(self, tb: types.TracebackType | None) -> list[StackFrame]:
        frames = []
        while tb is not None:
            code = tb.tb_frame.f_code
            if code.co_filename in self._trusted or code.co_filename in self._loading:
                frames.append(StackFrame(code.co_name, script=code.co_filename, line=tb.tb_lineno, language=_LANG))
            tb = tb.tb_next
        frames.reverse()
        return frames

    def _translate(self, exc: BaseException, script: str | None, time_limit: float | None = None) -> ScriptError:
        frames = self._frames(exc.__traceback__)
        if isinstance(exc, ScriptError):
            known = {(f.script, f.line, f.function) for f in exc.stack}
            exc.stack = [f for f in frames if (f.script, f.line, f.function) not in known] + list(exc.stack)
            if exc.script is None:
                exc.script = frames[0].script if frames else script
                exc.line = frames[0].line if frames else exc.line
                exc.language = exc.language or _LANG
            return exc.with_traceback(None)
        where = frames[0] if frames else None
        kw = dict(
            language=_LANG,
            script=where.script if where else script,
            line=where.line if where else None,
            stack=frames,
        )
        if isinstance(exc, TimeLimitExceeded):
            limit = f" of {time_limit:g} s" if time_limit is not None else ""
            return ScriptTimeoutError(f"time limit{limit} exceeded", **kw)
        if isinstance(exc, RecursionError):
            return RecursionLimitError(f"RecursionError: {exc}", **kw)
        if isinstance(exc, MemoryError):
            return MemoryLimitError(f"MemoryError: {exc}", **kw)
        if isinstance(exc, SyntaxError):  # exec/compile inside a script
            return CompileError(exc.msg or "invalid syntax", language=_LANG, script=script, line=exc.lineno)
        return ScriptRuntimeError(f"{type(exc).__name__}: {exc}", **kw)

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
            raise ScriptError(f"bad breakpoint line {line!r}", language=_LANG, script=file)
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
                raise ScriptError(f"no breakpoint {breakpoint_id}", language=_LANG)
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
        hit = BreakpointHit(bid, _LANG, frame.f_code.co_filename, frame.f_lineno, stack)
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
                    StackFrame(code.co_name, script=code.co_filename, line=frame.f_lineno, language=_LANG, locals=local_vars)
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
        self._kryon = make_kryon_module(self, bridge)
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


def _text(source: "str | bytes", name: str) -> str:
    if isinstance(source, (bytes, bytearray)):
        try:
            return bytes(source).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CompileError(f"source is not valid UTF-8 (byte {exc.start})", language=_LANG, script=name) from None
    return source


def _top_level(tree: ast.Module) -> tuple[dict[str, FunctionInfo], list[str]]:
    functions: dict[str, FunctionInfo] = {}
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            params = tuple(p.arg for p in (*a.posonlyargs, *a.args))
            functions[node.name] = FunctionInfo(
                name=node.name,
                parameter_count=len(params),
                parameter_names=params,
                is_async=isinstance(node, ast.AsyncFunctionDef),
                is_generator=_yields(node),
                is_variadic=a.vararg is not None,
                line=node.lineno,
            )
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name) and t.id not in names:
                    names.append(t.id)
    return functions, names


def _yields(fn: ast.AST) -> bool:
    stack = list(ast.iter_child_nodes(fn))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Yield, ast.YieldFrom)):
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        stack.extend(ast.iter_child_nodes(node))
    return False


def _namespace_functions(sid: str, ns: dict[str, Any]) -> dict[str, FunctionInfo]:
    out = {}
    for name, value in ns.items():
        if not isinstance(value, types.FunctionType) or value.__code__.co_filename != sid:
            continue
        code = value.__code__
        params = code.co_varnames[: code.co_argcount]
        out[name] = FunctionInfo(
            name=name,
            parameter_count=code.co_argcount,
            parameter_names=tuple(params),
            is_async=inspect.iscoroutinefunction(value) or inspect.isasyncgenfunction(value),
            is_generator=inspect.isgeneratorfunction(value) or inspect.isasyncgenfunction(value),
            is_variadic=bool(code.co_flags & inspect.CO_VARARGS),
            line=code.co_firstlineno,
        )
    return out
