"""Calls from the host into a script: the generated hot-path caller of each
(function, arity), calls through FunctionRefs a script handed out, and the
async path that pumps QuickJS's job queue until a promise settles."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Callable, Sequence

from kryon_core import ScriptRuntimeError

from .plugin import LANGUAGE
from .runtime import BINDING_ERRORS, Host, JSObject, Pending
from .values import number_from_js, plain_str

if TYPE_CHECKING:
    from .state import ScriptState

MISSING = object()
PASS_TYPES = frozenset({float, bool, type(None)})


class JSCall:
    """The call behind a FunctionRef to a JS function a script handed out."""

    __slots__ = ("host", "state", "fid", "__weakref__")

    def __init__(self, host: Host, state: "ScriptState", fid: int) -> None:
        self.host, self.state, self.fid = host, state, fid

    def __call__(self, *args: Any) -> Any:
        return call_ref(self.host, self.state, self.fid, args)


def unloaded(state: "ScriptState", what: str = "") -> ScriptRuntimeError:
    return ScriptRuntimeError(f"script '{state.script}' was unloaded{what}", language=LANGUAGE, script=state.script)


def call_ref(host: Host, state: "ScriptState", fid: int, args: Sequence[Any], *, allow_pending: bool = False) -> Any:
    with host.lock:
        if state.closed:
            raise unloaded(state, "; its function cannot be called")
        if host.pending_release:
            host.flush_releases()
        argv = state.args_obj(args)
        prev = host.enter(state)
        try:
            r = state.call_ref(fid, argv)
            # drop binding Objects while the lock is held: QuickJS refcounts are not atomic,
            # and another thread may be running this runtime as soon as the lock is free
            boxed, argv, r = type(r) is JSObject, None, (None if type(r) is JSObject else r)
            result = host.unbox(state, allow_pending=allow_pending) if boxed else host.scalar(r)
            host.pump(state)
            return result
        except BINDING_ERRORS as exc:
            raise host.binding_error(state, exc) from None
        finally:
            host.leave(state, prev)


async def call_ref_async(host: Host, state: "ScriptState", fid: int, args: Sequence[Any]) -> Any:
    value = call_ref(host, state, fid, args, allow_pending=True)
    if isinstance(value, Pending):
        return await settle(host, state, value.id)
    return value


async def call_name_async(host: Host, state: "ScriptState", function: str, args: Sequence[Any]) -> Any:
    """Call a function by name; await the promise it returns, if any."""
    with host.lock:
        argv = state.args_obj(args)
        prev = host.enter(state)
        try:
            r = argv = state.call_name(function, argv)
            r = argv = None
            value = host.unbox(state, allow_pending=True)
        except BINDING_ERRORS as exc:
            raise host.binding_error(state, exc) from None
        finally:
            host.leave(state, prev)
    if not isinstance(value, Pending):
        return value
    return await settle(host, state, value.id)


async def settle(host: Host, state: "ScriptState", pid: int) -> Any:
    """Pump the context's jobs and yield to the loop until promise ``pid`` settles."""
    delay = 0.0
    while True:
        with host.lock:
            if state.closed:
                raise unloaded(state, " while awaited")
            prev = host.enter(state)
            try:
                host.pump(state)
                r = state.poll(pid)
                boxed, r = type(r) is JSObject, (None if type(r) is JSObject else r)
                result = host.unbox(state, allow_pending=True) if boxed else host.scalar(r)
            except BINDING_ERRORS as exc:
                raise host.binding_error(state, exc) from None
            finally:
                host.leave(state, prev)
            if not host.stash_pending:
                return result
            host.stash_pending = False
        await asyncio.sleep(delay)
        delay = min(0.01, delay * 2 or 0.0005)


def make_caller(host: Host, state: "ScriptState", wrapper: Any, function: str, n: int,
                general: Callable[..., Any]) -> Callable[..., Any]:
    """The hot path of one (function, arity): scalars straight through the
    binding, one generated JS wrapper around the function; ``general`` takes
    a call with another number of arguments."""
    lock = host.lock
    args_obj, apply_args, unbox, binding_error = state.args_obj, state.apply_args, host.unbox, host.binding_error
    pending = host.pending_release
    enter = host.enter
    acquire, release = lock.acquire, lock.release
    script = state.script

    def slow(args: tuple[Any, ...]) -> Any:
        if len(args) != n:
            return general(function, args, script=script)
        with lock:
            if state.closed:
                raise unloaded(state)
            if pending:
                host.flush_releases()
            prev = enter(state)
            argv = r = None
            try:
                argv = args_obj(args)
                r = apply_args(wrapper, argv)
                argv = None  # binding Objects are released under the lock (see call_ref)
                t = type(r)
                if t is str and state.max_value is not None and len(r) > state.max_value:
                    state.too_big("a result")
                if t is int or t is str or t is bool or r is None:
                    return r
                if t is float:
                    return number_from_js(r)
                r = None
                return unbox(state)
            except BINDING_ERRORS as exc:
                raise binding_error(state, exc) from None
            finally:
                argv = r = None
                host.leave(state, prev)

    env = dict(
        slow=slow, ctx=state, pending=pending, acquire=acquire, release=release, wrapper=wrapper, unbox=unbox,
        binding_error=binding_error, number_from_js=number_from_js, plain_str=plain_str, host=host,
        enter=enter, BINDING_ERRORS=BINDING_ERRORS, MISSING=MISSING, SCALARS=PASS_TYPES, int=int, str=str,
        float=float, bool=bool, type=type,
    )
    exec(caller_source(n, state.time_limit is not None, state.max_value), env)  # noqa: S102 - generated from a fixed template
    return env["call"]  # type: ignore[no-any-return]


def caller_source(n: int, limited: bool, max_value: int | None = None) -> str:
    """Python source of the hot-path caller for a function of ``n`` declared
    parameters: one test per argument, no loop (scalars the binding passes
    exactly go straight through; anything else takes ``slow``)."""
    names = [f"a{i}" for i in range(n)]
    if n > 8:
        head = "def call(*args):\n"
        check = "    for a in args:\n        if not (type(a) is int and -2147483648 <= a <= 2147483647 or type(a) in SCALARS or type(a) is str and (a.isascii() or plain_str(a))):\n            return slow(args)\n    if len(args) != %d or pending or ctx.closed or host.nesting:\n        return slow(args)\n" % n
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
            + "    if pending or ctx.closed or host.nesting:\n        return slow(" + given + ")\n"
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
        "    except BINDING_ERRORS as exc:\n        raise binding_error(ctx, exc) from None\n"
        "    finally:\n"
        + ("        host.deadline = prev\n" if limited else "")
        + "        release()\n"
    )
    return head + check + body
