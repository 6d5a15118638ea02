"""One script's state: its QuickJS context (a runtime of its own, entered only
through the script's gate), the prelude's helpers in it, its handle tables,
and the side channel its calls return through.

Every script gets its own runtime and context: its globals, its builtins (so
prototype pollution stays inside it), its memory limit, its stack and its
gate (so scripts of one engine run side by side on different threads).
Every entry into the runtime goes through :meth:`ScriptState.run`, which arms
the deadline of the script's policy: the host never runs script code (a
getter, a replaced builtin, an iterator, a finalizer) outside a deadline.
"""

from __future__ import annotations

import functools
import json
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import quickjs

from kryon_core import (
    CallerCache,
    EngineGate,
    FunctionInfo,
    FunctionRef,
    RecursionLimitError,
    ScriptBridge,
    ScriptError,
    ScriptRuntimeError,
    ScriptTimeoutError,
    SecurityPolicy,
)

from . import capi, oom, sandbox
from .awaited_jobs import AwaitedJobs
from .bridge import ELEMENT_METHODS, REQUIRE, ROUTED_CALL
from .calls import function_ref
from .compiling import host_compile
from .cutoff import LOWERED, uncut
from .errors import from_info
from .evalsites import EVAL_ARG, EVAL_ARGS, EVAL_REF, ColumnMap
from .handles import HandleTable
from .inbound import element_call, host_call, invoke, routed_call_for
from .plugin import LANGUAGE
from .runtime import BINDING_ERRORS, INF, PRELUDE_SOURCE, Host, JSObject, Pending
from .values import args_obj, decode, to_js, too_big
from .watchdog import WATCHDOG

#: the prelude helpers a state fetches by name (attribute name, prelude name)
HELPERS = (
    ("ERR", "ERR"), ("make_caller", "caller"), ("call_ref", "callRef"), ("call_name", "callName"),
    ("release", "release"), ("poll", "poll"), ("import_text", "importText"),
    # JSON.parse through a JS call rather than the binding's parse_json: only a JS call updates
    # QuickJS's stack top for the calling thread (parse_json from another thread fails spuriously)
    ("parse_text", "parseText"), ("make_handle", "handle"), ("box_text", "boxText"), ("apply_args", "applyArgs"),
    ("set_global", "setGlobal"), ("get_global", "getGlobal"), ("describe", "describe"), ("stack_now", "stackNow"),
    ("holder", "holder"), ("sweep_js", "sweep"), ("counts", "counts"), ("take_held", "takeHeld"),
    ("snapshot", "snapshot"), ("restore", "restore"), ("take_result", "takeResult"), ("eval_code", "evalCode"),
    ("forget", "forget"), ("target", "target"), ("settle", "settle"), ("box_error", "boxError"),
)


class ScriptState:
    """One script: its QuickJS context, gate, helpers and handle tables."""

    ERR: Any
    make_caller: Any
    call_ref: Any
    call_name: Any
    release: Any
    poll: Any
    forget: Any
    import_text: Any
    parse_text: Any
    make_handle: Any
    box_text: Any
    apply_args: Any
    set_global: Any
    get_global: Any
    describe: Any
    stack_now: Any
    holder: Any
    sweep_js: Any
    counts: Any
    take_held: Any
    snapshot: Any
    restore: Any
    take_result: Any
    eval_code: Any
    target: Any
    settle: Any
    box_error: Any

    def __init__(self, host: Host, script: str, policy: SecurityPolicy, view: ScriptBridge | None,
                 convert_unknown: Callable[[Any, str | None], Any], gate: EngineGate) -> None:
        self.host = host
        self.script = script
        self.policy = policy
        self.view = view
        self.gate = gate
        self.closed = False
        self.time_limit = sandbox.time_limit(policy)
        self.memory_limit = sandbox.memory_limit(policy)
        #: the runtime, when oom.py watches its GC threshold (memory-limited, C API reachable)
        self.oom_rt = 0
        #: every source compiled at run time passes the compile guards (compile_guards.js, compiling.py):
        #: under a time limit to be bounded by max_source_size, under a memory limit to find room first
        #: (QuickJS's compiler crashes the process when an allocation is refused midway)
        self.eval_guard = sandbox.compile_guarded(policy)
        #: the most UTF-8 bytes of source one run-time compile may take (only under a time limit)
        self.source_bound = policy.max_source_size if self.time_limit is not None else None
        #: regular expressions are measured before they compile (only under a time limit: regexcost.py)
        self.regex_guard = self.time_limit is not None
        #: the script's source ran with its eval sites rewritten: its columns back to the original's
        self.columns: ColumnMap | None = None
        self.max_value = policy.max_value_size
        #: the most a value handed in may take before it is built (see values.Encoder)
        limits = [x for x in (policy.max_value_size, sandbox.memory_limit(policy)) if x is not None]
        self.value_budget = min(limits) if limits else float("inf")
        self.ctx: Any = quickjs.Context()
        #: the runtime's pointer and its malloc limit as the policy sets it (cutoff.py lowers and restores it)
        self.rt = 0
        self.normal_limit = 0
        #: the watchdog lowered this runtime's limit during the running entry: its errors are timeouts
        self.cut = False
        self.callers = CallerCache()
        self.functions: dict[str, FunctionInfo] = {}
        self.fnrefs: "weakref.WeakValueDictionary[int, FunctionRef]" = weakref.WeakValueDictionary()
        self.fnids: "weakref.WeakKeyDictionary[FunctionRef, int]" = weakref.WeakKeyDictionary()
        #: FunctionRefs released from any thread, freed at the next entry
        self.pending_release: list[int] = []
        #: the deadlines of the awaited calls of this script still pending, by promise id (calls.settle)
        self.awaiting: dict[int, float] = {}
        #: the awaited call whose code runs now: timers set now are its own (awaited_jobs.py)
        self.awaited_call: AwaitedJobs | None = None
        #: what the prelude's STASH put there last: (kind, text); kind 3 = a promise still pending
        self.stash: tuple[int, str] | None = None
        self.stash_pending = False
        self.last_host_error: tuple[str, str, int] | None = None
        self.input_is_script = not host.capi
        self.sources: list[str] = []
        #: the source with statement probes this script runs while a debugger is attached (debugging.py)
        self.debug_source: str | None = None
        self._convert_unknown = convert_unknown
        self.stack_size = self.current_stack = sandbox.stack_size(policy)
        self.stack_sizes: list[int] = []
        self.handles = HandleTable(script, self._sweep_text)
        self.gate.run(self._install)

    # -- setup --------------------------------------------------------------------
    def _install(self) -> None:
        host, ctx = self.host, self.ctx
        limit = sandbox.memory_limit(self.policy)
        if limit is not None:
            ctx.set_memory_limit(limit)  # before the prelude: nothing the script has is free
        self.normal_limit = int(ctx.memory()["malloc_limit"])
        #: the runtime's allocated bytes and limit, read in place by the room check (None: ask capi.heap_room)
        self.heap = capi.heap_words(ctx) if host.capi and limit is not None else None
        ctx.set_max_stack_size(self.stack_size)
        ctx.add_callable("__kryon_host", functools.partial(host_call, self))
        ctx.add_callable("__kryon_invoke", functools.partial(invoke, self))
        for i, entry in enumerate(host.api):  # the element methods' own entries (prelude.js elementMethod)
            if entry.name in ELEMENT_METHODS and entry.on_view and entry.fn is not None and self.view is not None:
                ctx.add_callable(f"__kryon_element{i}", functools.partial(element_call, self, entry.fn))
            elif entry.name == ROUTED_CALL and entry.on_view and entry.fn is not None and self.view is not None:
                # kryon.call's own entry, bound to this script's view (prelude.js callMethod)
                ctx.add_callable("__kryon_kcall", routed_call_for(self, self.view))
        ctx.add_callable("__kryon_stash", self._stash)
        ctx.add_callable("__kryon_hosterr", self._hosterr)
        ctx.add_callable("__kryon_out", host.out_fn)
        ctx.add_callable("__kryon_tick", self._tick)
        ctx.add_callable("__kryon_mark", self._mark)
        ctx.add_callable("__kryon_compile", functools.partial(host_compile, self))
        ctx.add_callable("__kryon_room", self._room)
        api = [[entry.name, i, *entry.arity] for i, entry in enumerate(host.api) if i != REQUIRE]
        ctx.set("__KRYON_API__", json.dumps(api))
        ctx.set("__KRYON_CONF__", json.dumps({
            "guard": self.regex_guard,
            "evalGuard": self.eval_guard,
            "maxSource": self.source_bound,
            "room": limit is not None}))
        if host.capi:
            with host.compile_lock:
                if host.prelude_bytecode is None:
                    host.prelude_bytecode = capi.compile_only(ctx, PRELUDE_SOURCE, "<kryon>", None)  # never fails
            if not capi.run_bytecode(ctx, host.prelude_bytecode, None):  # pragma: no cover
                raise ScriptError("the kryon prelude failed to run", language=LANGUAGE)
            # every runtime gets the deadline check: a limited chain may call into an unlimited script
            capi.set_interrupt_handler(ctx, host.interrupt)
            counter = capi.interrupt_counter(ctx)
            if counter is not None:
                self.rt = capi.pointers(ctx)[0]
                WATCHDOG.add(id(self), ctx, counter, self)
                weakref.finalize(self, WATCHDOG.remove, id(self))  # a state dropped without close()
        else:
            ctx.eval(PRELUDE_SOURCE)
            if self.time_limit is not None:  # pragma: no cover - the binding's limit (host calls refused meanwhile)
                ctx.set_time_limit(self.time_limit)
        internal = ctx.get("__kryon_internal")
        ctx.eval("delete globalThis.__kryon_internal; delete globalThis.__KRYON_API__;")
        if self.eval_guard:  # the intrinsic eval as a global lexical binding: direct eval stays direct (evalsites.py)
            ctx.eval(f"let eval = globalThis.__kryon_evals[0]; const [, {EVAL_REF}, {EVAL_ARG}, {EVAL_ARGS}] = "
                     "globalThis.__kryon_evals; delete globalThis.__kryon_evals;")
        for attr, name in HELPERS:
            setattr(self, attr, internal(name))
        for name, value in host.globals.items():
            self.set_global(name, self.to_js(value))
        oom.register(self)  # the evidence of an out-of-memory null starts here (oom.py)

    def _tick(self) -> bool:
        """Whether the running chain is past its deadline (the guards ask between chunks)."""
        return self.host.expired()

    def _room(self, need: int) -> bool:
        """Whether ``need`` bytes are free under the memory limit (after a collection if not):
        asked before every compile at run time (compile_guards.js, prelude.js ``lookup``), since
        QuickJS's compiler is not safe against an allocation refused midway (it crashes the process:
        tests/js/test_near_cap.py, tests/js/test_compile_near_cap.py)."""
        heap = self.heap
        if heap is not None:  # [allocated, limit], read in place
            if heap[1] - heap[0] >= need:
                return True
            capi.run_gc(self.ctx)
            return bool(heap[1] - heap[0] >= need)
        if capi.heap_room(self.ctx) >= need:
            return True
        if self.host.capi:
            capi.run_gc(self.ctx)
        return capi.heap_room(self.ctx) >= need

    def _mark(self, error: Any) -> None:
        if self.host.capi:
            capi.set_uncatchable(self.ctx, error)

    def _stash(self, kind: int, text: str) -> None:
        self.stash = (kind, text)

    def _hosterr(self) -> str:
        return json.dumps(list(self.last_host_error or ("Error", "host error", 0)))

    def _sweep_text(self) -> str:
        return str(self.sweep_js())

    def close(self) -> None:
        """Mark the script gone and drop every reference into its runtime, so
        QuickJS frees it as soon as no handle to one of its functions is left."""
        self.gate.run(self._close)

    def _close(self) -> None:
        self.closed = True
        WATCHDOG.remove(id(self))
        oom.unregister(self)
        self.callers.clear()
        self.handles.clear()
        for ref in list(self.fnrefs.values()):
            ref.release()
        # never empty again: the hot-path callers test only this list (not ``closed`` as well) and so
        # take the checked path, which refuses the call
        self.pending_release[:] = [0]
        for attr, _ in HELPERS:
            self.__dict__.pop(attr, None)
        self.ctx = None
        self.heap = None  # (it pointed into the runtime)

    def convert_unknown(self, value: Any) -> Any:
        return self._convert_unknown(value, self.script)

    def to_js(self, value: Any) -> Any:
        return to_js(self, value)

    # -- entering the runtime ----------------------------------------------------------
    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` inside this script's runtime: through its gate, under
        the deadline of its policy (and of the chain it is part of), with
        binding errors translated."""
        return self.gate.run(self._entered, fn, args)

    def run_until(self, deadline: float | None, fn: Callable[..., Any], *args: Any) -> Any:
        """:meth:`run` under ``deadline`` (monotonic seconds) as well: a step of
        an awaited call ends at the call's one deadline, never at a fresh
        ``time_limit`` of its own (``kryon_core.awaited``)."""
        if deadline is None:
            return self.gate.run(self._entered, fn, args)
        return self.gate.run(self._until, deadline, fn, args)

    def _until(self, deadline: float, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        chain = self.host.chain
        prev = chain.deadline
        if prev == INF:  # an outermost limited entry: its deadline may get GRACE once
            self.host.fresh_chain()
        if deadline < prev:
            chain.deadline = deadline
        try:
            return self._entered(fn, args)
        finally:
            chain.deadline = prev

    def run_limited(self, time_limit: float | None, fn: Callable[..., Any], *args: Any) -> Any:
        """:meth:`run` under ``time_limit`` instead of the state's own (the
        shared compiler compiles each script under that script's policy)."""
        return self.gate.run(self._limited, time_limit, fn, args)

    def _limited(self, time_limit: float | None, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        saved, self.time_limit = self.time_limit, time_limit
        try:
            return self._entered(fn, args)
        finally:
            self.time_limit = saved

    def _entered(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        if self.closed:
            raise ScriptRuntimeError(f"script '{self.script}' was unloaded", language=LANGUAGE, script=self.script)
        if self.pending_release:
            self.flush_releases()
        prev = self.enter()
        try:
            return fn(*args)
        except BINDING_ERRORS as exc:
            raise self.host.binding_error(self, exc) from None
        finally:
            self.leave(prev)

    def enter(self) -> float:
        """Arm the deadline for an entry (the earlier of the chain's and this
        script's own); returns the chain's previous deadline. An entry nested
        inside a host callback also gets a smaller native stack (every entry
        into QuickJS starts a fresh stack budget, so nesting must divide one
        budget instead of stacking them)."""
        chain = self.host.chain
        if chain.nesting:
            self._shrink(chain.nesting)
        elif LOWERED:
            uncut(self)  # left lowered by a race with the watchdog (cutoff.py)
        if self.oom_rt:
            oom.clear(self.oom_rt)
        prev = chain.deadline
        if self.time_limit is not None:
            if prev == INF:
                self.host.fresh_chain()
            deadline = time.monotonic() + self.time_limit
            if deadline < prev:
                chain.deadline = deadline
        return prev

    def leave(self, prev: float) -> None:
        chain = self.host.chain
        chain.deadline = prev
        if LOWERED and not chain.nesting:
            uncut(self)
        if self.stack_sizes:
            size = self.stack_sizes.pop()
            if size != self.current_stack and self.ctx is not None:
                self.current_stack = size
                self.ctx.set_max_stack_size(size)

    def _shrink(self, depth: int) -> None:
        if depth > sandbox.MAX_NESTING:
            raise RecursionLimitError(
                f"JavaScript calls nested through the host more than {sandbox.MAX_NESTING} deep",
                language=LANGUAGE, script=self.script)
        size = max(sandbox.MIN_NESTED_STACK, self.stack_size // (depth + 1))
        self.stack_sizes.append(self.current_stack)
        self.current_stack = size
        self.ctx.set_max_stack_size(size)

    def flush_releases(self) -> None:
        pending = self.pending_release
        while pending:
            fid = pending.pop()
            if fid not in self.fnrefs:
                self.release(fid)

    # -- results -----------------------------------------------------------------------
    def unbox(self, *, allow_pending: bool = False) -> Any:
        """The value (or error) the prelude stashed for the call that just returned BOX."""
        stash, self.stash = self.stash, None
        if stash is None:
            raise ScriptRuntimeError("internal error: no result from the script", language=LANGUAGE, script=self.script)
        kind, text = stash
        if kind == 0:
            if self.max_value is not None and len(text) > self.max_value:
                self.too_big("a result")
            return decode(text, self)
        if kind == 1:
            raise self.error(json.loads(text))
        if kind == 2:
            return self._promise(int(text), allow_pending)
        if kind == 3:
            self.stash_pending = True
            return None
        raise ScriptRuntimeError("internal error: bad result", language=LANGUAGE, script=self.script)  # pragma: no cover

    def _promise(self, pid: int, allow_pending: bool) -> Any:
        if allow_pending:
            return Pending(pid)
        self.pump()
        result = self.poll(pid)
        if type(result) is not JSObject:
            return self.host.scalar(result)
        result = None
        value = self.unbox(allow_pending=True)
        if isinstance(value, Pending) or self.stash_pending:
            self.stash_pending = False
            raise ScriptRuntimeError(
                "the function returned a Promise that is still pending; use call_function_async to await it",
                language=LANGUAGE, script=self.script)
        return value

    def result(self, r: Any, *, allow_pending: bool = False) -> Any:
        """A helper's return value as a host value (BOX: what was stashed)."""
        if type(r) is JSObject:
            return self.unbox(allow_pending=allow_pending)
        return self.host.scalar(r)

    def error(self, info: dict[str, Any]) -> ScriptError:
        value = info.get("value")
        thrown = None
        if value is not None:
            try:
                thrown = decode(json.dumps(value), self)
            except Exception:  # noqa: BLE001
                thrown = None
        err = from_info(info, self.script, input_is_script=self.input_is_script, host_errors=self.host.host_errors,
                        thrown_value=thrown, memory_limited=self.memory_limit is not None, columns=self.columns,
                        ran_out=functools.partial(oom.was_out_of_memory, self))
        return self.timed_out(err) if self.cut else err

    def timed_out(self, err: ScriptError) -> ScriptError:
        """``err`` as a timeout: the watchdog cut the memory of a late entry (cutoff.py), so whatever
        failed (mostly an allocation) failed because the deadline passed."""
        if isinstance(err, ScriptTimeoutError):
            return err
        return ScriptTimeoutError("the call ran longer than the policy's time_limit", language=LANGUAGE,
                                  script=err.script or self.script, line=err.line, column=err.column, stack=err.stack)

    def pump(self) -> None:
        """Run the context's pending jobs (promise reactions, finalizers): a microtask checkpoint.
        While awaited calls of this script are pending (``awaiting``), the jobs run under the
        earliest of their deadlines too, whichever entry pumps them: an awaited call's
        continuation often runs in the pump after a timer or event callback (the one that
        resolved what it awaited), and must not get that entry's fresh time_limit."""
        if self.awaiting:
            at = min(self.awaiting.values())
            chain = self.host.chain
            if at < chain.deadline:
                prev = chain.deadline
                chain.deadline = at
                try:
                    self._pump()
                finally:
                    chain.deadline = prev
                return
        self._pump()

    def _pump(self) -> None:
        run = self.ctx.execute_pending_job
        for _ in range(1_000_000):
            try:
                if not run():
                    return
            except BINDING_ERRORS as exc:
                err = self.host.binding_error(self, exc)
                if self.host.is_limit(err):
                    raise err from None
                self.host.report(err)

    def end_jobs(self, limit: int = 100_000) -> None:
        """End the jobs left in the queue when an awaited call is abandoned
        (its deadline passed in the middle of a pump, or a chain of jobs kept
        the queue from emptying): each runs with the chain's deadline already
        past and no GRACE, and the interrupt counter set to ask at the job's
        first poll, so a job that would go on (an ``await`` in an endless loop)
        is interrupted and its async function rejected; the chain ends instead
        of running into the script's next call. Errors are dropped: nobody
        awaits them any more."""
        chain = self.host.chain
        counter = capi.interrupt_counter(self.ctx) if self.host.capi else None
        saved = chain.deadline, chain.extended
        chain.deadline = chain.extended = -1.0
        run = self.ctx.execute_pending_job
        try:
            for _ in range(limit):
                if counter is not None:
                    counter.value = 1
                try:
                    if not run():
                        return
                except BINDING_ERRORS:
                    continue
        finally:
            chain.deadline, chain.extended = saved

    def too_big(self, what: str) -> None:
        too_big(self, what)

    def args_obj(self, args: Sequence[Any]) -> Any:
        return args_obj(self, args)

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
        return function_ref(self, fid, name)
