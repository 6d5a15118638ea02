"""Calls from the host into a script: the generated hot-path caller of each
(function, arity), calls through FunctionRefs a script handed out, and the
async path that pumps QuickJS's job queue until a promise settles. Every
call enters the script's runtime through its gate, under its deadline."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from kryon_core import FunctionRef, MemoryLimitError, ScriptError, ScriptRuntimeError, ScriptTimeoutError, threads

from . import cutoff
from .awaited_jobs import AwaitedJobs
from .ccall import compiled
from .plugin import LANGUAGE
from .runtime import BINDING_ERRORS, INF, JSObject, Pending
from .sandbox import MAX_NESTING, MIN_NESTED_STACK
from .values import number_from_js, plain_str

if TYPE_CHECKING:  # kryon_core.awaited loads asyncio: imported by the async calls, not at start-up
    from kryon_core.awaited import AwaitDeadline

    from .state import ScriptState

MISSING = object()
PASS_TYPES = frozenset({float, bool, type(None)})


class JSCall:
    """The call behind a FunctionRef to a JS function a script handed out."""

    __slots__ = ("state", "fid", "__weakref__")

    def __init__(self, state: "ScriptState", fid: int) -> None:
        self.state, self.fid = state, fid

    def __call__(self, *args: Any) -> Any:
        return call_ref(self.state, self.fid, args)


def function_ref(state: "ScriptState", fid: int, name: str) -> FunctionRef:
    """The FunctionRef for function ``fid`` the script handed out (one per live function)."""
    ref = state.fnrefs.get(fid)
    if ref is not None and ref.alive:
        return ref
    pending = state.pending_release

    def release(fid: int = fid) -> None:
        pending.append(fid)  # freed at the next entry into the runtime (any thread may drop a ref)

    async def call_async(*args: Any) -> Any:
        return await call_ref_async(state, fid, args)

    ref = FunctionRef(JSCall(state, fid), name=name, language=LANGUAGE, script=state.script, release=release,
                      call_async=call_async)
    state.fnrefs[fid] = ref
    state.fnids[ref] = fid
    return ref


def unloaded(state: "ScriptState", what: str = "") -> ScriptRuntimeError:
    return ScriptRuntimeError(f"script '{state.script}' was unloaded{what}", language=LANGUAGE, script=state.script)


def _call_ref_in(state: "ScriptState", fid: int, args: Sequence[Any], allow_pending: bool) -> Any:
    argv = state.args_obj(args)
    r = state.call_ref(fid, argv)
    # binding Objects are dropped inside the gate: QuickJS refcounts are not atomic,
    # and another thread may be running this runtime as soon as the gate is free
    argv = None
    result = state.result(r, allow_pending=allow_pending)
    r = None
    state.pump()
    return result


def call_ref(state: "ScriptState", fid: int, args: Sequence[Any], *, allow_pending: bool = False) -> Any:
    if state.closed:
        raise unloaded(state, "; its function cannot be called")
    return state.run(_call_ref_in, state, fid, args, allow_pending)


async def call_ref_async(state: "ScriptState", fid: int, args: Sequence[Any]) -> Any:
    from kryon_core.awaited import AwaitDeadline, bounded

    deadline = AwaitDeadline(state.time_limit)
    if state.closed:
        raise unloaded(state, "; its function cannot be called")
    jobs = AwaitedJobs(state)
    value = state.run_until(deadline.at, jobs.run, _call_ref_in, state, fid, args, True)
    if isinstance(value, Pending):
        return await bounded(deadline, settle(state, value.id, deadline, jobs), functools.partial(timed_out, state))
    jobs.settled = True
    return value


def _call_name_in(state: "ScriptState", function: str, args: Sequence[Any]) -> Any:
    argv = state.args_obj(args)
    state.call_name(function, argv)  # returns a marker: the prelude stashed the result, which unbox reads
    argv = None
    return state.unbox(allow_pending=True)


async def call_name_async(state: "ScriptState", function: str, args: Sequence[Any]) -> Any:
    """Call a function by name; await the promise it returns, if any. The
    call, every pump of the job queue and the waiting in between share one
    deadline, the policy's ``time_limit`` from the start (``kryon_core.awaited``)."""
    from kryon_core.awaited import AwaitDeadline, bounded

    deadline = AwaitDeadline(state.time_limit)
    jobs = AwaitedJobs(state)
    value = state.run_until(deadline.at, jobs.run, _call_name_in, state, function, args)
    if not isinstance(value, Pending):
        jobs.settled = True
        return value
    return await bounded(deadline, settle(state, value.id, deadline, jobs), functools.partial(timed_out, state))


def timed_out(state: "ScriptState") -> ScriptTimeoutError:
    return ScriptTimeoutError(
        f"the awaited call ran longer than the policy's time_limit ({state.time_limit:g} s) "
        "and its promise was abandoned", language=LANGUAGE, script=state.script)


def _poll_in(state: "ScriptState", pid: int) -> tuple[bool, Any]:
    state.pump()
    result = state.result(state.poll(pid), allow_pending=True)
    if state.stash_pending:
        state.stash_pending = False
        return False, None
    return True, result


def _abandon_in(state: "ScriptState", pid: int) -> None:
    state.forget(pid)
    state.end_jobs()


async def settle(state: "ScriptState", pid: int, deadline: AwaitDeadline | None = None,
                 jobs: AwaitedJobs | None = None) -> Any:
    """Pump the context's jobs and yield to the loop until promise ``pid``
    settles, each pump under ``deadline`` (and every other entry's pump too,
    while it is pending: ``ScriptState.pump``). Left early (the deadline passed,
    the awaiting task was cancelled, a pump failed), the promise is forgotten,
    the jobs still queued are ended (``ScriptState.end_jobs``) and the timers
    the call set are cleared (``jobs``, see awaited_jobs.py), so none of it
    runs into the script's next call or later."""
    if jobs is None:
        jobs = AwaitedJobs(state)
    import asyncio

    at = deadline.at if deadline is not None else None
    delay = 0.0
    settled = False
    if at is not None:
        state.awaiting[pid] = at
    try:
        while True:
            if state.closed:
                raise unloaded(state, " while awaited")
            try:
                done, result = state.run_until(at, jobs.run, _poll_in, state, pid)
            except (ScriptTimeoutError, MemoryLimitError):
                raise  # a pump ran out: the promise may still be pending
            except ScriptError:
                settled = True  # it rejected
                raise
            if done:
                settled = True
                return result
            await asyncio.sleep(delay)
            delay = min(0.01, delay * 2 or 0.0005)
    finally:
        state.awaiting.pop(pid, None)
        if settled:
            jobs.settled = True
        elif not state.closed:
            cleanup = deadline.cleanup_at() if deadline is not None else None
            try:
                state.run_until(cleanup, jobs.run, _abandon_in, state, pid)
            except ScriptError:  # the script's unwinding failed or overran: it is abandoned all the same
                pass
            finally:
                jobs.end()  # after the unwinding: a timer it set is cleared too


def make_caller(state: "ScriptState", wrapper: Any, function: str, n: int,
                general: Callable[..., Any]) -> Callable[..., Any]:
    """The hot path of one (function, arity): scalars straight through the
    binding, one generated JS wrapper around the function; ``general`` takes
    a call with another number of arguments."""
    script = state.script
    max_value = state.max_value

    def result(r: Any) -> Any:
        t = type(r)
        if t is str and max_value is not None and len(r) > max_value:
            state.too_big("a result")
        if t is int or t is str or t is bool or r is None:
            return r
        if t is float:
            return number_from_js(r)
        r = None  # the BOX Object is released inside the gate
        return state.unbox()

    def slow_in(args: tuple[Any, ...]) -> Any:
        argv = state.args_obj(args)
        r = state.apply_args(wrapper, argv)
        argv = None
        return result(r)

    def slow(args: tuple[Any, ...]) -> Any:
        """Arguments that need converting, or another number of them."""
        if len(args) != n:
            return general(function, args, script=script)
        if state.closed:
            raise unloaded(state)
        return state.run(slow_in, args)

    def entered_in(args: tuple[Any, ...]) -> Any:
        return result(wrapper(*args))

    def entered(args: tuple[Any, ...]) -> Any:
        """Scalar arguments, but the call goes through ``ScriptState.run``: the
        gate is contended, a debugger records gate entries, a release is
        pending, the script was unloaded (``ScriptState.close`` leaves a marker
        in ``pending_release``) or the call nests deeper than ``MAX_NESTING``
        (``run`` refuses it)."""
        return state.run(entered_in, args)

    acquire, unlock = state.gate.uncontended_inline()
    # the stack a call nested ``depth`` deep through the host gets (ScriptState._shrink), by depth
    stack_for = tuple(max(MIN_NESTED_STACK, state.stack_size // (depth + 1)) for depth in range(MAX_NESTING + 1))
    env = dict(
        slow=slow, entered=entered, ctx=state, pending=state.pending_release, acquire=acquire,
        release=state.gate.uncontended()[1], set_stack=state.ctx.set_max_stack_size, stack_for=stack_for,
        MAX_NESTING=MAX_NESTING,
        unlock=unlock, gate=state.gate, wake=threads.wake_waiters,
        wrapper=wrapper, unbox=state.unbox, binding_error=state.host.binding_error, number_from_js=number_from_js,
        plain_str=plain_str, chains=state.host.chains, host=state.host, graced=state.host.graced,
        fresh_chain=state.host.fresh_chain, tracking=threads.tracking, monotonic=time.monotonic,
        BINDING_ERRORS=BINDING_ERRORS, MISSING=MISSING, SCALARS=PASS_TYPES, INF=INF, int=int, str=str, float=float,
        bool=bool, type=type, JSObject=JSObject, lowered=cutoff.LOWERED, uncut=cutoff.uncut,
    )
    exec(caller_source(n, state.time_limit, state.max_value), env)  # noqa: S102 - generated from a fixed template
    call: Callable[..., Any] = env["call"]
    # the compiled caller (kryon_js/ccall.py) when the extension loaded and every check of it holds;
    # it hands every case it does not handle itself to the generated one
    return compiled(state, wrapper, n, stack_for, call) or call


def caller_source(n: int, time_limit: float | None, max_value: int | None = None) -> str:
    """Python source of the hot-path caller for a function of ``n`` declared
    parameters, all in one frame (each Python call here costs as much as a
    tenth of the JavaScript call): one test per argument, no loop (scalars the
    binding passes exactly go straight through; anything else takes
    ``slow``), then the gate's uncontended path inlined, the deadline armed,
    the JS wrapper called and its result read. A call nested inside a host
    callback (``Host.nested`` counts the threads running one; every ``kryon.call``
    into JavaScript) is written out too: its share of the stack for that
    depth (``stack_for``), set before and given back after. A debugger
    tracking gate entries (``threads.tracking``), a contended gate, a pending
    release or an unloaded script (both in ``pending``) and nesting deeper
    than ``MAX_NESTING`` take ``entered``, which goes through
    ``ScriptState.run`` with the arguments as they are."""
    names = [f"a{i}" for i in range(n)]
    if n > 8:
        head = "def call(*args):\n"
        check = ("    for a in args:\n        if not (type(a) is int and -2147483648 <= a <= 2147483647 or type(a) in SCALARS"
                 " or type(a) is str and (a.isascii() or plain_str(a))):\n            return slow(args)\n"
                 f"    if len(args) != {n}:\n        return slow(args)\n")
        call_args, given = "*args", "args"
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
        )
        call_args = ", ".join(names)
    timed = time_limit is not None
    # some thread runs a host callback (``Host.nested``, read before the thread-local): is it this one?
    gate = "    chain = chains.chain\n" if timed else ""
    gate += "    if host.nested:\n" + ("" if timed else "        chain = chains.chain\n")
    # nested: every kryon.call into JavaScript; the gate is free or held by this thread already
    gate += (
        "        depth = chain.nesting\n        if depth:\n"
        f"            if tracking or depth > MAX_NESTING or not acquire(False):\n                return entered({given})\n"
        f"            if pending:\n                release()\n                return entered({given})\n"
        # every entry into QuickJS starts a fresh stack budget: a nested one gets its share (ScriptState._shrink)
        "            outer = ctx.current_stack\n            size = stack_for[depth]\n            ctx.current_stack = size\n"
        + indent(deadline(time_limit), "        ")
        + "            try:\n                set_stack(size)\n"
        + indent(invoke(call_args, max_value), "        ")
        + "            finally:\n"
        + ("                chain.deadline = prev\n" if timed else "")
        + "                ctx.current_stack = outer\n                set_stack(outer)\n"
        "                unlock()\n                if gate._waiting:\n                    wake()\n"
    )
    gate += (f"    if tracking or not acquire(False):\n        return entered({given})\n"
             f"    if pending:\n        release()\n        return entered({given})\n"
             "    if lowered:\n        uncut(ctx)\n")  # left lowered by a race with the watchdog (cutoff.py)
    body = deadline(time_limit) + "    try:\n" + invoke(call_args, max_value) + (
        "    finally:\n"
        + ("        chain.deadline = prev\n" if timed else "")
        + "        if lowered:\n            uncut(ctx)\n"
        # the gate's release written out (EngineGate.uncontended_inline): one frame less per call
        + "        unlock()\n        if gate._waiting:\n            wake()\n"
    )
    return head + check + gate + body


def indent(source: str, by: str) -> str:
    return "".join(by + line if line else line for line in source.splitlines(keepends=True))


def deadline(time_limit: float | None) -> str:
    """Arm the chain's deadline (``prev`` keeps the chain's own): outside a callback it is normally
    INF, and this call starts a limited chain."""
    if time_limit is None:
        return ""
    return (f"    prev = chain.deadline\n    deadline = monotonic() + {float(time_limit)!r}\n"
            "    if deadline < prev:\n        chain.deadline = deadline\n"
            "        if graced and prev == INF:\n            fresh_chain()\n")


def invoke(call_args: str, max_value: int | None) -> str:
    """Inside the caller's ``try``: the JS wrapper called and its result read."""
    return (
        f"        r = wrapper({call_args})\n"
        "        t = type(r)\n"
        + (f"        if t is str and len(r) > {max_value}:\n            ctx.too_big('a result')\n" if max_value is not None else "")
        + "        if t is int or t is str or t is bool or r is None:\n            return r\n"
        "        if t is float:\n            return number_from_js(r)\n"
        "        r = None\n"  # the BOX Object is released inside the gate
        "        return unbox()\n"
        "    except BINDING_ERRORS as exc:\n        raise binding_error(ctx, exc) from None\n"
    )
