"""The JavaScript engine: Kryon's ScriptEngine over QuickJS (quickjs-ng).

Every script gets its own QuickJS runtime and context (``_Context``): its
globals, its builtins (so prototype pollution stays inside it), its memory
limit and its stack. ``prelude.js`` runs first in each and gives the script
``kryon``, ``console``, ``print``, timers and ``require``. Values cross as
described in ``values.py``; errors become kryon_core errors (``errors.py``).
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import re
import threading
import time
import weakref
from importlib import resources
from typing import Any, Callable, Sequence

import quickjs

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
    RecursionLimitError,
    SizeLimitError,
    ScriptBridge,
    ScriptEngine,
    ScriptError,
    ScriptNotFoundError,
    ScriptRuntimeError,
    SecurityPolicy,
    StackFrame,
    UserData,
)
from kryon_core.values import MAX_SAFE_DOUBLE_INT

from . import _capi, sandbox
from .bridge import REQUIRE, api_table, require
from .errors import LANG, from_exception_text, from_info, parse_stack
from .values import INT32_MAX, INT32_MIN, Encoder, _label, decode, number_from_js, plain_str

JSException = quickjs.JSException
JSObject = quickjs.Object
_BINDING_ERRORS = (quickjs.JSException, quickjs.StackOverflow)
_IDENT = re.compile(r"^[A-Za-z_$][\w$]*$")
_INF = float("inf")


def _binding_version() -> str:
    try:
        from importlib.metadata import version

        return version("quickjs-ng")
    except Exception:  # pragma: no cover
        return "?"


_PRELUDE = resources.files("kryon_js").joinpath("prelude.js").read_text(encoding="utf-8")
_PRELUDE_SOURCE = "globalThis.__kryon_internal = " + _PRELUDE.strip().rstrip(";") + ";\n"


class _JSCall:
    """The call behind a FunctionRef to a JS function a script handed out."""

    __slots__ = ("engine", "ctx", "fid", "__weakref__")

    def __init__(self, engine: "JSEngine", ctx: "_Context", fid: int) -> None:
        self.engine, self.ctx, self.fid = engine, ctx, fid

    def __call__(self, *args: Any) -> Any:
        return self.engine._call_ref(self.ctx, self.fid, args)


class _Context:
    """One script: its QuickJS context, helpers and handle tables."""

    def __init__(self, engine: "JSEngine", script: str, policy: SecurityPolicy) -> None:
        self.engine = engine
        self.script = script
        self.policy = policy
        self.closed = False
        self.time_limit = sandbox.time_limit(policy)
        self.max_value = policy.max_value_size
        self.ctx = quickjs.Context()
        self.callers: dict[tuple[str, int], Any] = {}
        self.functions: dict[str, FunctionInfo] = {}
        self.ud_ids: dict[Any, int] = {}
        self.ud_objs: dict[int, Any] = {}
        self.py_ids: dict[int, int] = {}
        self.py_objs: dict[int, Any] = {}
        self.fnrefs: "weakref.WeakValueDictionary[int, FunctionRef]" = weakref.WeakValueDictionary()
        self._ids = itertools.count(1)
        self.sweep_at = 512
        self.input_is_script = not engine._capi
        self._install()

    # -- setup --------------------------------------------------------------------
    def _install(self) -> None:
        engine, ctx = self.engine, self.ctx
        ctx.add_callable("__kryon_host", self._host)
        ctx.add_callable("__kryon_invoke", self._invoke)
        ctx.add_callable("__kryon_stash", engine._stash_fn)
        ctx.add_callable("__kryon_hosterr", engine._hosterr_fn)
        ctx.add_callable("__kryon_out", engine._out_fn)
        api = [[name, i] for i, (name, _, _) in enumerate(engine._api) if i != REQUIRE]
        ctx.set("__KRYON_API__", json.dumps(api))
        source = _PRELUDE_SOURCE
        if engine._capi and engine._prelude_bytecode is None:
            engine._prelude_bytecode = _capi.compile_only(ctx, source, "<kryon>", None)  # never fails
        if engine._capi:
            if not _capi.run_bytecode(ctx, engine._prelude_bytecode, None):  # pragma: no cover
                raise ScriptError("the kryon prelude failed to run", language=LANG)
        else:
            ctx.eval(source)
        internal = ctx.get("__kryon_internal")
        ctx.eval("delete globalThis.__kryon_internal; delete globalThis.__KRYON_API__;")
        get = internal
        self.ERR = get("ERR")
        self.make_caller = get("caller")
        self.call_ref = get("callRef")
        self.call_name = get("callName")
        self.release = get("release")
        self.poll = get("poll")
        self.import_text = get("importText")
        # JSON.parse through a JS call rather than the binding's parse_json: only a JS call updates
        # QuickJS's stack top for the calling thread (parse_json from another thread fails spuriously)
        self.parse_text = get("parseText")
        self.make_handle = get("handle")
        self.box_text = get("boxText")
        self.apply_args = get("applyArgs")
        self.set_global = get("setGlobal")
        self.get_global = get("getGlobal")
        self.describe = get("describe")
        self.stack_now = get("stackNow")
        self.holder = get("holder")
        self.sweep_js = get("sweep")
        self.counts = get("counts")
        self.take_held = get("takeHeld")
        for name, value in engine._globals.items():
            self.set_global(name, self.to_js(value))
        limit = sandbox.memory_limit(self.policy)
        if limit is not None:
            ctx.set_memory_limit(limit)
        self.stack_size = self.current_stack = sandbox.stack_size(self.policy)
        self.stack_sizes: list[int] = []
        ctx.set_max_stack_size(self.stack_size)
        if self.time_limit is not None:
            if engine._capi:
                _capi.set_interrupt_handler(ctx, engine._interrupt)
            else:  # pragma: no cover - the binding's limit (host calls refused meanwhile)
                ctx.set_time_limit(self.time_limit)

    _OBJECTS = ("ERR", "make_caller", "call_ref", "call_name", "release", "poll", "import_text", "parse_text",
                "make_handle", "box_text", "apply_args", "set_global", "get_global", "describe", "stack_now",
                "holder", "sweep_js", "counts", "take_held")

    def close(self) -> None:
        """Mark the script gone and drop every reference into its runtime, so
        QuickJS frees it as soon as no handle to one of its functions is left
        (call with the engine lock held)."""
        self.closed = True
        self.callers.clear()
        self.ud_ids.clear()
        self.ud_objs.clear()
        self.py_ids.clear()
        self.py_objs.clear()
        for ref in list(self.fnrefs.values()):
            ref.release()
        for name in self._OBJECTS:
            self.__dict__.pop(name, None)
        self.ctx = None

    # -- host values -> JS ----------------------------------------------------------
    def to_js(self, v: Any) -> Any:
        """A host value as something the binding passes: a scalar, or an
        Object built in this context (strings with lone surrogates come
        boxed; ``kryon`` functions unbox them)."""
        t = type(v)
        if t is int:
            if INT32_MIN <= v <= INT32_MAX:
                return v
            if -MAX_SAFE_DOUBLE_INT <= v <= MAX_SAFE_DOUBLE_INT:
                return float(v)
        elif t is float or t is bool or v is None:
            return v
        elif t is str and plain_str(v):
            if self.max_value is not None and len(v) > self.max_value:
                self.too_big("a string")
            return v
        elif isinstance(v, UserData):
            return self.make_handle(self.userdata_id(v), _label(v))
        enc = Encoder(self)
        tree = enc.tree(v)
        if type(tree) is int:
            return self.to_js(tree)
        if type(tree) is float or type(tree) is bool or tree is None:
            return tree
        if type(tree) is str:
            return tree if plain_str(tree) else self.box_text(json.dumps(tree))
        text = json.dumps(tree)
        if self.max_value is not None and len(text) > self.max_value:
            self.too_big("a value")
        if not enc.special:
            return self.parse_text(text)
        return self.import_text(text)

    def too_big(self, what: str) -> None:
        raise SizeLimitError(f"{what} crossing between the host and the script is larger than the policy's "
                             f"max_value_size ({self.max_value} bytes as JSON)", language=LANG, script=self.script)

    def args_obj(self, args: Sequence[Any]) -> Any:
        """A JS array (an Object) holding ``args`` converted exactly."""
        enc = Encoder(self)
        text = json.dumps(enc.tree(list(args)))
        if self.max_value is not None and len(text) > self.max_value:
            self.too_big("the arguments")
        if not enc.special:
            return self.parse_text(text)
        return self.import_text(text)

    def sweep(self) -> None:
        """Forget handles and host functions the script no longer holds."""
        py_dead, ud_dead = json.loads(self.sweep_js())
        for pid in py_dead:
            fn = self.py_objs.pop(pid, None)
            if fn is not None and self.py_ids.get(id(fn)) == pid:
                del self.py_ids[id(fn)]
        for uid in ud_dead:
            obj = self.ud_objs.pop(uid, None)
            if obj is not None:
                try:
                    if self.ud_ids.get(obj) == uid:
                        del self.ud_ids[obj]
                except TypeError:
                    pass
        self.sweep_at = max(512, 2 * (len(self.py_objs) + len(self.ud_objs)))

    def userdata_id(self, value: Any) -> int:
        """The handle id of a host object: equal handles (ElementHandles of one
        element) share one id and one JS handle object; the latest instance
        passed in is the one that comes back."""
        if len(self.ud_objs) + len(self.py_objs) > self.sweep_at:
            self.sweep()
        try:
            uid = self.ud_ids.get(value)
        except TypeError:  # unhashable UserData subclass: identity only
            uid = next((k for k, obj in self.ud_objs.items() if obj is value), None)
        if uid is None:
            uid = next(self._ids)
            try:
                self.ud_ids[value] = uid
            except TypeError:
                pass
        self.ud_objs[uid] = value
        return uid

    def userdata(self, uid: int) -> Any:
        try:
            return self.ud_objs[uid]
        except KeyError:
            raise ConversionError("unknown handle", language=LANG, script=self.script) from None

    def callable_id(self, fn: Any) -> int:
        if len(self.ud_objs) + len(self.py_objs) > self.sweep_at:
            self.sweep()
        pid = self.py_ids.get(id(fn))
        if pid is None or self.py_objs.get(pid) is not fn:
            pid = next(self._ids)
            self.py_ids[id(fn)] = pid
            self.py_objs[pid] = fn
        return pid

    def callable(self, pid: int) -> Any:
        try:
            return self.py_objs[pid]
        except KeyError:
            raise ConversionError("unknown host function", language=LANG, script=self.script) from None

    def own_function_id(self, value: Any) -> int | None:
        if isinstance(value, FunctionRef) and value.alive:
            call = getattr(value._call, "__self__", None) if not isinstance(value._call, _JSCall) else value._call
            if isinstance(call, _JSCall) and call.ctx is self:
                return call.fid
        return None

    def function_ref(self, fid: int, name: str) -> FunctionRef:
        ref = self.fnrefs.get(fid)
        if ref is not None and ref.alive:
            return ref
        engine = self.engine
        call = _JSCall(engine, self, fid)
        pending = engine._pending_release
        me = weakref.ref(self)

        def release(fid: int = fid) -> None:
            pending.append((me, fid))

        async def call_async(*args: Any) -> Any:
            return await engine._call_ref_async(self, fid, args)

        ref = FunctionRef(call, name=name, language=LANG, script=self.script, release=release, call_async=call_async)
        self.fnrefs[fid] = ref
        return ref

    # -- calls from JS into the host --------------------------------------------------
    def _args(self, enc: Any, args: tuple[Any, ...]) -> list[Any]:
        """Arguments of a call from JS: as they came (scalars), with handle
        ids at the positions set in an int ``enc`` mask, or tagged JSON."""
        if type(enc) is str:
            if self.max_value is not None and len(enc) > self.max_value:
                self.too_big("the arguments of a host call")
            return decode(enc, self)
        out = list(args)
        if self.max_value is not None:
            for a in out:
                if type(a) is str and len(a) > self.max_value:
                    self.too_big("a string")
        for i, a in enumerate(out):
            if type(a) is float:
                out[i] = number_from_js(a)
        if enc:
            mask = int(enc)
            for i in range(len(out)):
                if mask >> i & 1:
                    out[i] = self.userdata(int(out[i]))
        return out

    def _host(self, idx: int, enc: Any, *args: Any) -> Any:
        engine = self.engine
        try:
            values = self._args(enc, args) if enc or args else []
            idx = int(idx)
            name, (lo, hi), fn = engine._api[idx]
            if len(values) < lo or (hi >= 0 and len(values) > hi):
                want = f"{lo}" if lo == hi else (f"at least {lo}" if hi < 0 else f"{lo} to {hi}")
                raise ScriptRuntimeError(f"kryon.{name} takes {want} argument(s), {len(values)} given",
                                         language=LANG, script=self.script)
            if idx == REQUIRE:
                return require(str(values[0]), self.policy, self.script)
            if fn is None:
                raise ScriptRuntimeError(f"kryon.{name} needs a ScriptManager bridge", language=LANG, script=self.script)
            outer, engine._in_callback = engine._in_callback, self
            engine._nesting += 1
            try:
                result = fn(*values)
            finally:
                engine._nesting -= 1
                engine._in_callback = outer
            return self.to_js(result)
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to JS as an Error
            return engine._host_failed(self, exc)

    def _invoke(self, pid: int, enc: Any, *args: Any) -> Any:
        engine = self.engine
        try:
            fn = self.py_objs[int(pid)]
            values = self._args(enc, args)
            outer, engine._in_callback = engine._in_callback, self
            engine._nesting += 1
            try:
                result = fn(*values)
            finally:
                engine._nesting -= 1
                engine._in_callback = outer
            return self.to_js(result)
        except BaseException as exc:  # noqa: BLE001
            return engine._host_failed(self, exc)


class JSEngine(ScriptEngine):
    """JavaScript through QuickJS (quickjs-ng)."""

    language = LANG
    extensions = (".js", ".mjs")

    def __init__(self) -> None:
        super().__init__()
        self._capi = _capi.available()
        self._prelude_bytecode: bytes | None = None
        self._scripts: dict[str, _Context] = {}
        self._globals: dict[str, Any] = {}
        self._lock = threading.RLock()
        self._stash: tuple[int, str] | None = None
        self._host_errors: dict[int, BaseException] = {}
        self._host_error_ids = itertools.count(1)
        self._last_host_error: tuple[str, str, int] | None = None
        self._pending_release: list[tuple[Any, int]] = []
        self._deadline = _INF
        self._in_callback: _Context | None = None
        self._nesting = 0  # host callbacks running now (JS -> host -> JS nesting)
        self._api = api_table(None)
        self._compiler: _Context | None = None
        self._version = f"QuickJS-ng (quickjs-ng binding {_binding_version()})"
        engine = self

        def stash(kind: int, text: str) -> None:
            engine._stash = (kind, text)

        def hosterr() -> str:
            info = engine._last_host_error or ("Error", "host error", 0)
            return json.dumps(list(info))

        def out(text: str) -> None:
            try:
                engine.config.output(text)
            except Exception:  # noqa: BLE001 - a broken output handler must not break the script
                pass

        self._stash_fn, self._hosterr_fn, self._out_fn = stash, hosterr, out
        monotonic = time.monotonic
        if self._capi:

            @_capi.INTERRUPT_HANDLER
            def interrupt(rt: int, opaque: int) -> int:
                return 1 if monotonic() > engine._deadline else 0

            self._interrupt = interrupt

    # -- identification ----------------------------------------------------------------
    @property
    def version(self) -> str:
        return self._version

    @property
    def capabilities(self) -> EngineCapabilities:
        return EngineCapabilities(
            supports_async=True,
            supports_generators=True,
            supports_coroutines=False,
            supports_modules=False,
            supports_debugging=False,
            supports_jit=False,
            supports_bytecode=self._capi,
            supports_sandbox=self._capi,
        )

    def initialize(self, config: EngineConfig) -> None:
        super().initialize(config)

    def setup_bridge(self, bridge: ScriptBridge) -> None:
        super().setup_bridge(bridge)
        self._api = api_table(bridge)

    def convert_unknown(self, value: Any, script: str | None = None) -> Any:
        if self.bridge is not None:
            return self.bridge.convert_unknown(value)
        raise ConversionError(f"cannot pass a {type(value).__name__} to javascript", language=LANG, script=script)

    # -- plumbing for host calls ----------------------------------------------------------
    def _host_failed(self, ctx: _Context, exc: BaseException) -> Any:
        hid = next(self._host_error_ids)
        self._host_errors[hid] = exc
        while len(self._host_errors) > 256:
            self._host_errors.pop(next(iter(self._host_errors)))
        name = type(exc).__name__
        message = str(exc) if not isinstance(exc, ScriptError) or exc.language not in (None, LANG) else exc.message
        self._last_host_error = (name, message, hid)
        return ctx.ERR

    def _flush_releases(self) -> None:
        pending = self._pending_release
        while pending:
            me, fid = pending.pop()
            ctx = me()
            if ctx is None or ctx.closed or fid in ctx.fnrefs:
                continue
            try:
                ctx.release(fid)
            except _BINDING_ERRORS:  # pragma: no cover
                pass

    def _unbox(self, ctx: _Context, *, allow_pending: bool = False) -> Any:
        stash, self._stash = self._stash, None
        if stash is None:
            raise ScriptRuntimeError("internal error: no result from the script", language=LANG, script=ctx.script)
        kind, text = stash
        if kind == 0:
            if ctx.max_value is not None and len(text) > ctx.max_value:
                ctx.too_big("a result")
            return decode(text, ctx)
        if kind == 1:
            raise self._error(ctx, json.loads(text))
        if kind == 2:
            pid = int(text)
            if allow_pending:
                return _Pending(pid)
            self._pump(ctx)
            result = ctx.poll(pid)
            if type(result) is JSObject:
                value = self._unbox(ctx, allow_pending=True)
                if isinstance(value, _Pending) or self._stash_kind_pending:
                    self._stash_kind_pending = False
                    raise ScriptRuntimeError(
                        "the function returned a Promise that is still pending; use call_function_async to await it",
                        language=LANG, script=ctx.script)
                return value
            return self._scalar(result)
        if kind == 3:
            self._stash_kind_pending = True
            return None
        raise ScriptRuntimeError("internal error: bad result", language=LANG, script=ctx.script)  # pragma: no cover

    _stash_kind_pending = False

    def _error(self, ctx: _Context, info: dict[str, Any]) -> ScriptError:
        value = info.get("value")
        thrown = None
        if value is not None:
            try:
                thrown = decode(json.dumps(value), ctx)
            except Exception:  # noqa: BLE001
                thrown = None
        return from_info(info, ctx.script, input_is_script=ctx.input_is_script, host_errors=self._host_errors,
                         thrown_value=thrown, memory_limited=ctx.policy.memory_limit is not None)

    @staticmethod
    def _scalar(r: Any) -> Any:
        if type(r) is float:
            return number_from_js(r)
        return r

    def _binding_error(self, ctx: _Context, exc: BaseException) -> ScriptError:
        text = str(exc.args[0]) if exc.args else str(exc)
        return from_exception_text(text, ctx.script, input_is_script=ctx.input_is_script)

    def _pump(self, ctx: _Context) -> None:
        """Run the context's pending jobs (promise reactions): a microtask checkpoint."""
        run = ctx.ctx.execute_pending_job
        for _ in range(1_000_000):
            try:
                if not run():
                    return
            except _BINDING_ERRORS as exc:
                err = self._binding_error(ctx, exc)
                if isinstance(err, (ScriptError,)) and type(err).__name__ in ("ScriptTimeoutError", "MemoryLimitError"):
                    raise err from None
                self._report(err)

    def _report(self, err: ScriptError) -> None:
        dom = self.bridge.dom if self.bridge is not None else None
        if dom is not None and hasattr(dom, "errors"):
            dom.errors.append(err)
            try:
                dom.on_error(err)
            except Exception:  # noqa: BLE001
                pass

    def _ctx(self, script: str) -> _Context:
        ctx = self._scripts.get(script)
        if ctx is None:
            raise ScriptNotFoundError(f"no JavaScript script '{script}' is loaded", language=LANG, script=script)
        return ctx

    def _enter(self, ctx: _Context) -> float:
        """Arm the deadline for a call into ``ctx``; returns the previous one.
        A call nested inside a host callback also gets a smaller native stack
        (every entry into QuickJS starts a fresh stack budget, so nesting
        must divide one budget instead of stacking them)."""
        if self._nesting:
            self._shrink(ctx)
        prev = self._deadline
        if ctx.time_limit is not None:
            deadline = time.monotonic() + ctx.time_limit
            if deadline < prev:
                self._deadline = deadline
        return prev

    def _leave(self, ctx: _Context, prev: float) -> None:
        self._deadline = prev
        if ctx.stack_sizes and ctx.current_stack != ctx.stack_sizes[-1]:
            ctx.current_stack = ctx.stack_sizes.pop()
            ctx.ctx.set_max_stack_size(ctx.current_stack)
        elif ctx.stack_sizes:
            ctx.stack_sizes.pop()

    def _shrink(self, ctx: _Context) -> None:
        depth = self._nesting
        if depth > sandbox.MAX_NESTING:
            raise RecursionLimitError(
                f"JavaScript calls nested through the host more than {sandbox.MAX_NESTING} deep",
                language=LANG, script=ctx.script)
        size = max(sandbox.MIN_NESTED_STACK, ctx.stack_size // (depth + 1))
        ctx.stack_sizes.append(ctx.current_stack)
        ctx.current_stack = size
        ctx.ctx.set_max_stack_size(size)

    # -- compile and load -----------------------------------------------------------------
    def compile(self, source: "str | bytes", name: str, *, policy: SecurityPolicy | None = None) -> CompiledScript:
        text = source.decode("utf-8") if isinstance(source, bytes) else source
        bytecode = b""
        if self._capi:
            with self._lock:
                compiler = self._compiler_ctx()
                bytecode = self._compile_in(compiler, text, name)
        return CompiledScript(
            id=name, language=LANG, source=text, bytecode=bytecode, functions=scan_functions(text),
            engine_version=self.version,
        )

    def _compiler_ctx(self) -> _Context:
        if self._compiler is None:
            self._compiler = _Context(self, "<compiler>", SecurityPolicy.trusted())
        return self._compiler

    def _compile_in(self, ctx: _Context, text: str, name: str) -> bytes:
        try:
            return _capi.compile_only(ctx.ctx, text, name, ctx.holder)
        except _capi.CompileFailed:
            ctx.take_held()
            stash, self._stash = self._stash, None
            info = json.loads(stash[1]) if stash else {"isError": True, "name": "SyntaxError", "message": "?"}
            err = from_info(info, name, input_is_script=False, host_errors={}, compiling=True)
            raise CompileError(err.message, language=LANG, script=name, line=err.line, column=err.column,
                               stack=err.stack) from None

    def load_script(self, compiled: CompiledScript, *, policy: SecurityPolicy | None = None) -> str:
        ctx = self._run(compiled, policy or self.config.policy)
        with self._lock:
            old = self._scripts.get(compiled.id)
            self._scripts[compiled.id] = ctx
            if old is not None:
                old.close()
        return compiled.id

    def _run(self, compiled: CompiledScript, policy: SecurityPolicy) -> _Context:
        """A fresh context with the script's top level run in it; nothing is
        registered unless it succeeds."""
        with self._lock:
            ctx = _Context(self, compiled.id, policy)
            ok = False
            try:
                prev = self._enter(ctx)
                try:
                    if self._capi:
                        code = compiled.bytecode
                        if (_capi.bytecode_name(code) != compiled.id  # foreign, or compiled under another name
                                or (compiled.from_cache and policy.sandboxed)):  # disk bytecode is not verified
                            code = self._compile_in(ctx, compiled.source, compiled.id)
                        if not _capi.run_bytecode(ctx.ctx, code, ctx.holder):
                            ctx.take_held()
                            self._unbox(ctx)
                    else:
                        try:
                            ctx.ctx.eval(compiled.source)
                        except _BINDING_ERRORS as exc:
                            err = self._binding_error(ctx, exc)
                            if "SyntaxError" in str(exc.args[0] if exc.args else ""):
                                raise CompileError(err.message, language=LANG, script=compiled.id, line=err.line,
                                                   column=err.column, stack=err.stack) from None
                            raise err from None
                    self._pump(ctx)
                finally:
                    self._leave(ctx, prev)
                ctx.functions = self._describe(ctx, compiled.source)
                ok = True
            finally:
                if not ok:
                    ctx.close()
        return ctx

    def _describe(self, ctx: _Context, source: str) -> dict[str, FunctionInfo]:
        candidates = sorted(set(_DECLARED.findall(source)))
        listing = json.loads(ctx.describe(json.dumps(candidates)))
        lines = scan_functions(source)
        out: dict[str, FunctionInfo] = {}
        for name, src, kind, length in listing:
            names, variadic = parse_params(src)
            out[name] = FunctionInfo(
                name=name,
                parameter_count=len(names),
                parameter_names=tuple(names),
                is_async=kind in ("async", "asyncgenerator"),
                is_generator=kind in ("generator", "asyncgenerator"),
                is_variadic=variadic,
                line=lines[name].line if name in lines else None,
            )
        return out

    def reload_script(
        self, script_id: str, compiled: CompiledScript, *, policy: SecurityPolicy | None, previous: CompiledScript
    ) -> None:
        """Run the new version in a new context and swap only when its top
        level succeeded: a failing version leaves the old one running."""
        old = self._ctx(script_id)
        ctx = self._run(compiled, policy or old.policy)
        with self._lock:
            self._scripts[script_id] = ctx
            old.close()

    def unload_script(self, script_id: str) -> None:
        with self._lock:
            ctx = self._scripts.pop(script_id, None)
            if ctx is None:
                raise ScriptNotFoundError(f"no JavaScript script '{script_id}' is loaded", language=LANG, script=script_id)
            ctx.close()

    def list_functions(self, script_id: str) -> dict[str, FunctionInfo]:
        return dict(self._ctx(script_id).functions)

    # -- calls ------------------------------------------------------------------------------
    def call_function(self, function: str, args: Sequence[Any], *, script: str) -> Any:
        ctx = self._scripts.get(script) or self._ctx(script)
        caller = ctx.callers.get((function, len(args))) or self._caller(ctx, function, len(args))
        return caller(*args)

    def get_function(self, function: str, *, script: str) -> FunctionRef:
        """A handle straight to the (function, declared arity) caller; a call
        with another number of arguments takes the general path."""
        ctx = self._ctx(script)
        info = ctx.functions.get(function)
        n = info.parameter_count if info is not None else 0
        return self._function_ref(self._caller(ctx, function, n), function, script)

    def _caller(self, ctx: _Context, function: str, n: int) -> Callable[..., Any]:
        key = (function, n)
        caller = ctx.callers.get(key)
        if caller is None:
            with self._lock:
                if ctx.closed:
                    raise ScriptRuntimeError(f"script '{ctx.script}' was unloaded", language=LANG, script=ctx.script)
                wrapper = ctx.make_caller(function, n) if _IDENT.match(function) else None
                if wrapper is None or type(wrapper) is not JSObject:
                    raise FunctionNotFoundError(f"script '{ctx.script}' defines no function '{function}'",
                                                language=LANG, script=ctx.script)
                caller = ctx.callers[key] = self._make_caller(ctx, wrapper, function, n)
        return caller

    def _make_caller(self, ctx: _Context, wrapper: Any, function: str, n: int) -> Callable[..., Any]:
        """The hot path of one (function, arity): scalars straight through the
        binding, one generated JS wrapper around the function."""
        lock, engine = self._lock, self
        args_obj, apply_args, unbox, binding_error = ctx.args_obj, ctx.apply_args, self._unbox, self._binding_error
        pending = self._pending_release
        enter = self._enter
        acquire, release = lock.acquire, lock.release

        script = ctx.script
        general = self.call_function

        def slow(args: tuple[Any, ...]) -> Any:
            if len(args) != n:
                return general(function, args, script=script)
            with lock:
                if ctx.closed:
                    raise ScriptRuntimeError(f"script '{ctx.script}' was unloaded", language=LANG, script=ctx.script)
                if pending:
                    engine._flush_releases()
                prev = enter(ctx)
                argv = r = None
                try:
                    argv = args_obj(args)
                    r = apply_args(wrapper, argv)
                    argv = None  # binding Objects are released under the lock (see _call_ref)
                    t = type(r)
                    if t is str and ctx.max_value is not None and len(r) > ctx.max_value:
                        ctx.too_big("a result")
                    if t is int or t is str or t is bool or r is None:
                        return r
                    if t is float:
                        return number_from_js(r)
                    r = None
                    return unbox(ctx)
                except _BINDING_ERRORS as exc:
                    raise binding_error(ctx, exc) from None
                finally:
                    argv = r = None
                    engine._leave(ctx, prev)

        env = dict(
            slow=slow, ctx=ctx, pending=pending, acquire=acquire, release=release, wrapper=wrapper, unbox=unbox,
            binding_error=binding_error, number_from_js=number_from_js, plain_str=plain_str, engine=engine,
            enter=enter, _BINDING_ERRORS=_BINDING_ERRORS, MISSING=_MISSING, SCALARS=_PASS_TYPES, int=int, str=str,
            float=float, bool=bool, type=type,
        )
        exec(_caller_source(n, ctx.time_limit is not None, ctx.max_value), env)  # noqa: S102 - generated from a fixed template
        return env["call"]

    def _call_ref(self, ctx: _Context, fid: int, args: Sequence[Any], *, allow_pending: bool = False) -> Any:
        with self._lock:
            if ctx.closed:
                raise ScriptRuntimeError(f"script '{ctx.script}' was unloaded; its function cannot be called",
                                         language=LANG, script=ctx.script)
            if self._pending_release:
                self._flush_releases()
            argv = ctx.args_obj(args)
            prev = self._enter(ctx)
            try:
                r = ctx.call_ref(fid, argv)
                # drop binding Objects while the lock is held: QuickJS refcounts are not atomic,
                # and another thread may be running this runtime as soon as the lock is free
                boxed, argv, r = type(r) is JSObject, None, (None if type(r) is JSObject else r)
                result = self._unbox(ctx, allow_pending=allow_pending) if boxed else self._scalar(r)
                self._pump(ctx)
                return result
            except _BINDING_ERRORS as exc:
                raise self._binding_error(ctx, exc) from None
            finally:
                self._leave(ctx, prev)

    async def _call_ref_async(self, ctx: _Context, fid: int, args: Sequence[Any]) -> Any:
        value = self._call_ref(ctx, fid, args, allow_pending=True)
        if isinstance(value, _Pending):
            return await self._settle(ctx, value.id)
        return value

    async def call_function_async(self, function: str, args: Sequence[Any], *, script: str) -> Any:
        """Call the function; when it returns a Promise (an async function),
        pump QuickJS's job queue and yield to the running asyncio loop until
        the promise settles. A rejection is a ScriptRuntimeError with the JS stack."""
        ctx = self._ctx(script)
        with self._lock:
            argv = ctx.args_obj(args)
            prev = self._enter(ctx)
            try:
                r = argv = ctx.call_name(function, argv)
                r = argv = None
                value = self._unbox(ctx, allow_pending=True)
            except _BINDING_ERRORS as exc:
                raise self._binding_error(ctx, exc) from None
            finally:
                self._leave(ctx, prev)
        if not isinstance(value, _Pending):
            return value
        return await self._settle(ctx, value.id)

    async def _settle(self, ctx: _Context, pid: int) -> Any:
        """Pump the context's jobs and yield to the loop until promise ``pid`` settles."""
        delay = 0.0
        while True:
            with self._lock:
                if ctx.closed:
                    raise ScriptRuntimeError(f"script '{ctx.script}' was unloaded while awaited", language=LANG,
                                             script=ctx.script)
                prev = self._enter(ctx)
                try:
                    self._pump(ctx)
                    r = ctx.poll(pid)
                    boxed, r = type(r) is JSObject, (None if type(r) is JSObject else r)
                    result = self._unbox(ctx, allow_pending=True) if boxed else self._scalar(r)
                except _BINDING_ERRORS as exc:
                    raise self._binding_error(ctx, exc) from None
                finally:
                    self._leave(ctx, prev)
                if not self._stash_kind_pending:
                    return result
                self._stash_kind_pending = False
            await asyncio.sleep(delay)
            delay = min(0.01, delay * 2 or 0.0005)

    # -- globals ------------------------------------------------------------------------------
    def set_global(self, name: str, value: Any) -> None:
        if not isinstance(name, str) or not name:
            raise ScriptError("a global needs a non-empty name", language=LANG)
        with self._lock:
            for ctx in list(self._scripts.values()):
                ctx.set_global(name, ctx.to_js(value))
            self._globals[name] = copy.deepcopy(value)

    def get_global(self, name: str) -> Any:
        if name in self._globals:
            return copy.deepcopy(self._globals[name])
        with self._lock:
            for ctx in reversed(list(self._scripts.values())):
                try:
                    r = ctx.get_global(name)
                    boxed, r = type(r) is JSObject, (None if type(r) is JSObject else r)
                    value = self._unbox(ctx) if boxed else self._scalar(r)
                except _BINDING_ERRORS as exc:
                    raise self._binding_error(ctx, exc) from None
                if value is not None:
                    return value
        return None

    # -- memory ---------------------------------------------------------------------------------
    def _contexts(self) -> list[_Context]:
        out = list(self._scripts.values())
        if self._compiler is not None:
            out.append(self._compiler)
        return out

    def _used(self) -> int:
        return sum(int(c.ctx.memory()["memory_used_size"]) for c in self._contexts())

    def collect_garbage(self) -> GarbageCollectionStats:
        start = time.perf_counter()
        with self._lock:
            before = self._used()
            self._flush_releases()
            if not self._capi:
                import gc

                gc.collect()
            for c in self._contexts():
                if self._capi:
                    _capi.run_gc(c.ctx)
                else:
                    c.ctx.gc()
                if not c.closed:
                    c.sweep()
            after = self._used()
        return GarbageCollectionStats(before, after, None, (time.perf_counter() - start) * 1000)

    def get_memory_usage(self) -> MemoryUsage:
        with self._lock:
            used = self._used()
            limits = [sandbox.memory_limit(c.policy) for c in self._scripts.values()]
        limit = None if not limits or None in limits else sum(l for l in limits if l)
        return MemoryUsage(used_bytes=used, limit=limit, scripts=len(self._scripts))

    # -- debugging -------------------------------------------------------------------------------
    def get_stack_trace(self) -> list[StackFrame]:
        """The JS stack of the innermost running script (inside a host
        callback), innermost first; empty when no script is running."""
        with self._lock:
            ctx = self._in_callback
            if ctx is None or ctx.closed:
                return []
            try:
                text = ctx.stack_now()
            except _BINDING_ERRORS:
                return []
            return parse_stack(str(text), ctx.script, input_is_script=ctx.input_is_script)

    def close(self) -> None:
        with self._lock:
            for ctx in list(self._scripts.values()):
                ctx.close()
            self._scripts.clear()
            if self._compiler is not None:
                self._compiler.close()
                self._compiler = None


_MISSING = object()
_PASS_TYPES = frozenset({float, bool, type(None)})


def _caller_source(n: int, limited: bool, max_value: int | None = None) -> str:
    """Python source of the hot-path caller for a function of ``n`` declared
    parameters: one test per argument, no loop (scalars the binding passes
    exactly go straight through; anything else takes ``slow``)."""
    names = [f"a{i}" for i in range(n)]
    if n > 8:
        head = "def call(*args):\n"
        check = "    for a in args:\n        if not (type(a) is int and -2147483648 <= a <= 2147483647 or type(a) in SCALARS or type(a) is str and (a.isascii() or plain_str(a))):\n            return slow(args)\n    if len(args) != %d or pending or ctx.closed or engine._nesting:\n        return slow(args)\n" % n
        call_args = "*args"
    else:
        params = ", ".join([f"{a}=MISSING" for a in names] + ["*rest"])
        head = f"def call({params}):\n"
        size = f" and len({{a}}) <= {int(max_value)}" if max_value is not None else ""
        tests = " or ".join(
            f"not (type({a}) is int and -2147483648 <= {a} <= 2147483647 or type({a}) in SCALARS"
            f" or type({a}) is str and ({a}.isascii() or plain_str({a})){size.format(a=a)})" for a in names
        )
        given = f"({', '.join(names)}{',' if n == 1 else ''})" if n else "()"
        present = " or ".join([f"{a} is MISSING" for a in names] + ["rest"]) if n else "rest"
        check = (
            f"    if {present}:\n        return slow(tuple(x for x in {given} if x is not MISSING) + rest)\n"
            + (f"    if {tests}:\n        return slow({given})\n" if n else "")
            + f"    if pending or ctx.closed or engine._nesting:\n        return slow({given})\n"
        )
        call_args = ", ".join(names)
    body = "    acquire()\n"
    if limited:
        body += "    prev = enter(ctx)\n"
    body += (
        "    try:\n"
        f"        r = wrapper({call_args})\n"
        "        t = type(r)\n"
        + ("        if t is str and len(r) > %d:\n            ctx.too_big('a result')\n" % max_value if max_value is not None else "")
        + "        if t is int or t is str or t is bool or r is None:\n            return r\n"
        "        if t is float:\n            return number_from_js(r)\n"
        "        r = None\n"  # the BOX Object is released under the lock
        "        return unbox(ctx)\n"
        "    except _BINDING_ERRORS as exc:\n        raise binding_error(ctx, exc) from None\n"
        "    finally:\n"
        + ("        engine._deadline = prev\n" if limited else "")
        + "        release()\n"
    )
    return head + check + body


class _Pending:
    __slots__ = ("id",)

    def __init__(self, pid: int) -> None:
        self.id = pid


# -- static scans of the source ---------------------------------------------------------------------
_DECLARED = re.compile(r"(?:\bfunction\s*\*?\s*|\b(?:const|let|var|class)\s+)([A-Za-z_$][\w$]*)")
_FUNCTION_DEF = re.compile(
    r"^[ \t]*(?:export[ \t]+)?(?P<async>async[ \t]+)?function[ \t]*(?P<gen>\*)?[ \t]*(?P<name>[A-Za-z_$][\w$]*)[ \t]*\((?P<params>[^)]*)\)"
    r"|^[ \t]*(?:export[ \t]+)?(?:const|let|var)[ \t]+(?P<name2>[A-Za-z_$][\w$]*)[ \t]*=[ \t]*(?P<async2>async[ \t]+)?"
    r"(?:function[ \t]*(?P<gen2>\*)?[ \t]*[A-Za-z_$]?[\w$]*[ \t]*\((?P<params2>[^)]*)\)|\((?P<params3>[^)]*)\)[ \t]*=>|(?P<param4>[A-Za-z_$][\w$]*)[ \t]*=>)",
    re.M,
)


def scan_functions(text: str) -> dict[str, FunctionInfo]:
    """Functions a static scan of the source finds (before it runs): top-level
    ``function`` declarations and ``const f = (...) =>`` / ``function`` forms."""
    found: dict[str, FunctionInfo] = {}
    for m in _FUNCTION_DEF.finditer(text):
        if m.group("name"):
            name, params, is_async, is_gen = m.group("name"), m.group("params"), bool(m.group("async")), bool(m.group("gen"))
        else:
            name = m.group("name2")
            params = m.group("params2") if m.group("params2") is not None else (m.group("params3") if m.group("params3") is not None else m.group("param4"))
            is_async, is_gen = bool(m.group("async2")), bool(m.group("gen2"))
        names, variadic = _split_params(params or "")
        found.setdefault(name, FunctionInfo(
            name=name, parameter_count=len(names), parameter_names=tuple(names), is_async=is_async,
            is_generator=is_gen, is_variadic=variadic, line=text.count("\n", 0, m.start()) + 1,
        ))
    return found


def parse_params(src: str) -> tuple[list[str], bool]:
    """Parameter names of a function from its source text (``Function.prototype.toString``)."""
    s = src.lstrip()
    if s.startswith("async") and not re.match(r"async\s*=>", s):
        s = s[5:].lstrip()
    if s.startswith("function"):
        i = s.find("(")
        if i < 0:
            return [], False
        return _split_params(_balanced(s, i))
    if s.startswith("("):
        return _split_params(_balanced(s, 0))
    m = re.match(r"([A-Za-z_$][\w$]*)\s*=>", s)
    if m:
        return [m.group(1)], False
    i = s.find("(")  # method shorthand: name(a, b) { ... }
    if i >= 0:
        return _split_params(_balanced(s, i))
    return [], False


def _balanced(s: str, start: int) -> str:
    depth, quote = 0, ""
    for j in range(start, len(s)):
        c = s[j]
        if quote:
            if c == quote and s[j - 1] != "\\":
                quote = ""
            continue
        if c in "'\"`":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return s[start + 1 : j]
    return s[start + 1 :]


def _split_params(text: str) -> tuple[list[str], bool]:
    text = re.sub(r"/\*.*?\*/|//[^\n]*", "", text, flags=re.S)
    parts, depth, cur, quote = [], 0, "", ""
    for c in text:
        if quote:
            cur += c
            if c == quote:
                quote = ""
            continue
        if c in "'\"`":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += c
    parts.append(cur)
    names, variadic = [], False
    for p in (x.strip() for x in parts):
        if not p:
            continue
        if p.startswith("..."):
            variadic = True
            continue
        name = p.split("=", 1)[0].strip() if p[0] not in "[{" else re.sub(r"\s+", " ", p.split("=", 1)[0] if "=" in p and p.rfind("=") > max(p.rfind("}"), p.rfind("]")) else p).strip()
        names.append(name)
    return names, variadic
