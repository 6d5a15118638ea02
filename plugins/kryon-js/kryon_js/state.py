"""One script's state: its QuickJS context (a runtime of its own), the
prelude's helpers in it, its handle tables and the host side of calls from
the script into the host.

Every script gets its own runtime and context: its globals, its builtins
(so prototype pollution stays inside it), its memory limit and its stack.
"""

from __future__ import annotations

import json
import weakref
from typing import Any, Callable, Sequence

import quickjs

from kryon_core import FunctionInfo, FunctionRef, ScriptError, ScriptRuntimeError, SecurityPolicy, SizeLimitError, UserData
from kryon_core.values import MAX_SAFE_DOUBLE_INT

from . import capi, sandbox
from .bridge import REQUIRE, require
from .calls import JSCall, call_ref_async
from .handles import HandleTable
from .plugin import LANGUAGE
from .runtime import PRELUDE_SOURCE, Host
from .values import INT32_MAX, INT32_MIN, Encoder, decode, handle_label, number_from_js, plain_str

#: the prelude helpers a state fetches by name (attribute name, prelude name)
HELPERS = (
    ("ERR", "ERR"), ("make_caller", "caller"), ("call_ref", "callRef"), ("call_name", "callName"),
    ("release", "release"), ("poll", "poll"), ("import_text", "importText"),
    # JSON.parse through a JS call rather than the binding's parse_json: only a JS call updates
    # QuickJS's stack top for the calling thread (parse_json from another thread fails spuriously)
    ("parse_text", "parseText"), ("make_handle", "handle"), ("box_text", "boxText"), ("apply_args", "applyArgs"),
    ("set_global", "setGlobal"), ("get_global", "getGlobal"), ("describe", "describe"), ("stack_now", "stackNow"),
    ("holder", "holder"), ("sweep_js", "sweep"), ("counts", "counts"), ("take_held", "takeHeld"),
)


class ScriptState:
    """One script: its QuickJS context, helpers and handle tables."""

    def __init__(self, host: Host, script: str, policy: SecurityPolicy,
                 convert_unknown: Callable[[Any, str | None], Any]) -> None:
        self.host = host
        self.script = script
        self.policy = policy
        self.closed = False
        self.time_limit = sandbox.time_limit(policy)
        self.max_value = policy.max_value_size
        self.ctx: Any = quickjs.Context()
        self.callers: dict[tuple[str, int], Any] = {}
        self.functions: dict[str, FunctionInfo] = {}
        self.fnrefs: "weakref.WeakValueDictionary[int, FunctionRef]" = weakref.WeakValueDictionary()
        self.fnids: "weakref.WeakKeyDictionary[FunctionRef, int]" = weakref.WeakKeyDictionary()
        self.input_is_script = not host.capi
        self._convert_unknown = convert_unknown
        self._install()
        self.handles = HandleTable(script, self.sweep_js)

    # -- setup --------------------------------------------------------------------
    def _install(self) -> None:
        host, ctx = self.host, self.ctx
        ctx.add_callable("__kryon_host", self.host_call)
        ctx.add_callable("__kryon_invoke", self.invoke)
        ctx.add_callable("__kryon_stash", host.stash_fn)
        ctx.add_callable("__kryon_hosterr", host.hosterr_fn)
        ctx.add_callable("__kryon_out", host.out_fn)
        api = [[name, i] for i, (name, _, _) in enumerate(host.api) if i != REQUIRE]
        ctx.set("__KRYON_API__", json.dumps(api))
        if host.capi and host.prelude_bytecode is None:
            host.prelude_bytecode = capi.compile_only(ctx, PRELUDE_SOURCE, "<kryon>", None)  # never fails
        if host.capi:
            if not capi.run_bytecode(ctx, host.prelude_bytecode, None):  # pragma: no cover
                raise ScriptError("the kryon prelude failed to run", language=LANGUAGE)
        else:
            ctx.eval(PRELUDE_SOURCE)
        internal = ctx.get("__kryon_internal")
        ctx.eval("delete globalThis.__kryon_internal; delete globalThis.__KRYON_API__;")
        for attr, name in HELPERS:
            setattr(self, attr, internal(name))
        for name, value in host.globals.items():
            self.set_global(name, self.to_js(value))
        limit = sandbox.memory_limit(self.policy)
        if limit is not None:
            ctx.set_memory_limit(limit)
        self.stack_size = self.current_stack = sandbox.stack_size(self.policy)
        self.stack_sizes: list[int] = []
        ctx.set_max_stack_size(self.stack_size)
        if self.time_limit is not None:
            if host.capi:
                capi.set_interrupt_handler(ctx, host.interrupt)
            else:  # pragma: no cover - the binding's limit (host calls refused meanwhile)
                ctx.set_time_limit(self.time_limit)

    def close(self) -> None:
        """Mark the script gone and drop every reference into its runtime, so
        QuickJS frees it as soon as no handle to one of its functions is left
        (call with the engine lock held)."""
        self.closed = True
        self.callers.clear()
        if hasattr(self, "handles"):
            self.handles.clear()
        for ref in list(self.fnrefs.values()):
            ref.release()
        for attr, _ in HELPERS:
            self.__dict__.pop(attr, None)
        self.ctx = None

    def convert_unknown(self, value: Any) -> Any:
        return self._convert_unknown(value, self.script)

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
            return self.make_handle(self.userdata_id(v), handle_label(v))
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
                             f"max_value_size ({self.max_value} bytes as JSON)", language=LANGUAGE, script=self.script)

    def args_obj(self, args: Sequence[Any]) -> Any:
        """A JS array (an Object) holding ``args`` converted exactly."""
        enc = Encoder(self)
        text = json.dumps(enc.tree(list(args)))
        if self.max_value is not None and len(text) > self.max_value:
            self.too_big("the arguments")
        if not enc.special:
            return self.parse_text(text)
        return self.import_text(text)

    # -- handles (see handles.py) ---------------------------------------------------
    def userdata_id(self, value: Any) -> int:
        return self.handles.userdata_id(value)

    def userdata(self, uid: int) -> Any:
        return self.handles.userdata(uid)

    def callable_id(self, fn: Any) -> int:
        return self.handles.callable_id(fn)

    def callable(self, pid: int) -> Any:
        return self.handles.callable(pid)

    def own_function_id(self, value: Any) -> int | None:
        if isinstance(value, FunctionRef) and value.alive:
            return self.fnids.get(value)
        return None

    def function_ref(self, fid: int, name: str) -> FunctionRef:
        ref = self.fnrefs.get(fid)
        if ref is not None and ref.alive:
            return ref
        host = self.host
        call = JSCall(host, self, fid)
        pending = host.pending_release
        me = weakref.ref(self)

        def release(fid: int = fid) -> None:
            pending.append((me, fid))

        async def call_async(*args: Any) -> Any:
            return await call_ref_async(host, self, fid, args)

        ref = FunctionRef(call, name=name, language=LANGUAGE, script=self.script, release=release, call_async=call_async)
        self.fnrefs[fid] = ref
        self.fnids[ref] = fid
        return ref

    # -- calls from JS into the host --------------------------------------------------
    def _args(self, enc: Any, args: tuple[Any, ...]) -> list[Any]:
        """Arguments of a call from JS: as they came (scalars), with handle
        ids at the positions set in an int ``enc`` mask, or tagged JSON."""
        if type(enc) is str:
            if self.max_value is not None and len(enc) > self.max_value:
                self.too_big("the arguments of a host call")
            return decode(enc, self)  # type: ignore[no-any-return]
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

    def _run_host(self, fn: Callable[..., Any], values: list[Any]) -> Any:
        host = self.host
        outer, host.in_callback = host.in_callback, self
        host.nesting += 1
        try:
            return fn(*values)
        finally:
            host.nesting -= 1
            host.in_callback = outer

    def host_call(self, idx: int, enc: Any, *args: Any) -> Any:
        """``kryon.<name>(...)`` from the script: entry ``idx`` of the API table."""
        try:
            values = self._args(enc, args) if enc or args else []
            idx = int(idx)
            name, (lo, hi), fn = self.host.api[idx]
            if len(values) < lo or (hi >= 0 and len(values) > hi):
                want = f"{lo}" if lo == hi else (f"at least {lo}" if hi < 0 else f"{lo} to {hi}")
                raise ScriptRuntimeError(f"kryon.{name} takes {want} argument(s), {len(values)} given",
                                         language=LANGUAGE, script=self.script)
            if idx == REQUIRE:
                return require(str(values[0]), self.policy, self.script)
            if fn is None:
                raise ScriptRuntimeError(f"kryon.{name} needs a ScriptManager bridge", language=LANGUAGE,
                                         script=self.script)
            return self.to_js(self._run_host(fn, values))
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to JS as an Error
            return self.host.host_failed(self, exc)

    def invoke(self, pid: int, enc: Any, *args: Any) -> Any:
        """A host callable the script holds, called from the script."""
        try:
            fn = self.handles.py_objs[int(pid)]
            values = self._args(enc, args)
            return self.to_js(self._run_host(fn, values))
        except BaseException as exc:  # noqa: BLE001
            return self.host.host_failed(self, exc)
