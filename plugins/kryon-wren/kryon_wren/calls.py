"""Calls from the host into a Wren script: the caller made once per
(script, function) with its scalar fast path (one raw wasm call for the call
with its scalar arguments and result),
FunctionRefs of the Fns a script hands out, and async calls run as fibers
stepped on the event loop. Every call enters the script's instance through
its pool's gate, under one deadline for the call and its conversions; a Wren
error or a trap is translated in ``errors.py``.
"""

from __future__ import annotations

import asyncio
import ctypes
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from wasmtime import _ffi as ffi

from kryon_core import FunctionNotFoundError, FunctionRef, ScriptRuntimeError, ScriptTimeoutError, threads
from kryon_core.awaited import AwaitDeadline, bounded

from . import ccall
from .bridge import bars
from .errors import restarted, script_runtime_error, vm_failure
from .plugin import LANGUAGE
from .scan import GETTER
from .values import MAX_SAFE, prepare, resolve
from .vm import IN_SLOT, ScalarCall
from .vm_errors import WrenCompileError, WrenError, WrenRuntimeError

if TYPE_CHECKING:
    from .state import ScriptState


def target(state: "ScriptState", function: str) -> tuple[Any, str, bool]:
    """(receiver handle, method name, getter?) of a callable name."""
    vm = state.vm
    if vm is None:
        raise ScriptRuntimeError(
            f"script '{state.script_id}' failed to restart after its instance trapped", language=LANGUAGE,
            script=state.script_id,
        )
    owner, _, method = function.partition(".")
    if not vm.has_variable(state.script_id, owner):
        raise FunctionNotFoundError(
            f"script '{state.script_id}' defines no function '{function}'", language=LANGUAGE, script=state.script_id
        )
    receiver = vm.get_variable(state.script_id, owner)
    if not hasattr(receiver, "release"):
        raise FunctionNotFoundError(
            f"'{function}' of script '{state.script_id}' is not a Fn or class", language=LANGUAGE,
            script=state.script_id,
        )
    if method:
        info = state.compiled.functions.get(function)
        getter = bool(info is not None and info.documentation == GETTER)
        return receiver, method, getter
    if state.ask("arityOf(_)", receiver, -1) < 0:
        receiver.release()
        raise FunctionNotFoundError(
            f"'{function}' of script '{state.script_id}' is not a Fn", language=LANGUAGE, script=state.script_id
        )
    return receiver, "call", False


def caller(state: "ScriptState", function: str) -> Callable[..., Any]:
    """The script's caller of ``function``, made (inside its gate) on first use."""
    def make() -> Callable[..., Any]:
        receiver, method, getter = target(state, function)
        return make_caller(state, function, receiver, method, getter)

    return state.callers.get(function, lambda: state.pool.gate.run(make))


#: the most arguments a call passes through ``wren_call_scalar`` (one wasm
#: crossing; vm.ScalarCall); tests set -1 to compare with the general path
FAST_ARGS = 4


def make_caller(
    state: "ScriptState", function: str, receiver: Any, method: str, getter: bool
) -> Callable[..., Any]:
    """The call of ``method`` on ``receiver`` (a Fn's ``call``, or a static
    method of class ``function``'s owner), converting arguments and result.

    Up to four scalar arguments (numbers, null, bools, short strings) cross
    with the call itself in one raw wasm call (``wren_call_scalar``), and a
    scalar result (a number, null, a bool, a short string) comes back with
    it; other calls take the general path through ``KryonHost.prep``."""
    vm = state.vm
    handles: dict[int, Any] = {}
    owner = function.partition(".")[0] if method != "call" or "." in function else ""
    fast_args = FAST_ARGS

    def signature(n: int) -> Any:
        handle = handles.get(n)
        if handle is None:
            sig = method if getter and n == 0 else f"{method}({','.join('_' * n)})"
            handle = handles[n] = state.call_handle(sig)  # shared per VM: callers of Fn refs come and go
        return handle

    # one parameter block per arity for numbers only (the hot path writes
    # just the numbers) and one for any scalar kinds (it writes the kinds too)
    plain: list[Any] = [None] * 5
    tagged: list[ScalarCall | None] = [None] * 5
    # the numbers-only block of the first arity called, in closure cells for
    # ``call``'s inline path (the arity a caller is almost always called with)
    hot_n = -1
    hot_f64: Any = None
    hot_i64: Any = None
    hot_at: Any = None
    hot_call: Any = None
    hot_args: Any = None
    hot_trap: Any = None
    hot_sc: Any = None
    # the compiled caller (ccall.py) when the extension loaded and its checks held: it takes
    # each arity's numbers-only block once this caller made it
    fast: Any = None

    def prime(n: int) -> Any:
        nonlocal hot_n, hot_f64, hot_i64, hot_at, hot_call, hot_args, hot_trap, hot_sc
        sc = vm.scalar_call(receiver, signature(n))
        plain[n] = (sc.f64, sc.at, sc.call, sc.call_args, sc.trap, sc)
        if fast is not None:
            ccall.prime(fast, n, sc)
        if hot_n < 0:
            hot_f64, hot_at, hot_call, hot_args, hot_trap, hot_sc = plain[n]
            hot_i64 = sc.i64
            hot_n = n
        return plain[n]

    inst = vm.instance
    gate = state.pool.gate
    acquire, unlock = gate.uncontended_inline()
    tracking = threads.tracking
    arm, limited, slack, clock = inst._arm_limits, inst.limited, inst._slack, time.perf_counter
    lazy = inst.timeout is not None and inst.fuel is None
    max_text = state.policy.max_value_size

    def failed(error: Any, trap: Any) -> None:
        """Raises the trap (or wasmtime error) a raw call ended with."""
        if lazy:
            inst._armed_at = -1e18  # the next call re-arms the epoch deadline
        pending, trap.value = trap.value, None
        inst._raise_trap(
            ctypes.cast(pending, ctypes.POINTER(ffi.wasm_trap_t)) if pending else None,
            ctypes.cast(error, ctypes.POINTER(ffi.wasmtime_error_t)) if error else None,
        )

    def result_of(sc: ScalarCall) -> Any:
        """A scalar call's result: an int within 2**53 comes as that integer
        (``wren_call_scalar``), another number as its bits, the rest as a
        status (NaN bits)."""
        r = sc.i64[0]
        if -MAX_SAFE <= r <= MAX_SAFE:
            return r
        d = sc.f64[0]
        return d if d == d else other(sc)

    def other(sc: ScalarCall) -> Any:
        """A scalar call's result that is not a number (or is a NaN)."""
        result = sc.status_result(sc.i64[0])
        if result is IN_SLOT:
            vm.ensure_slots(3)
            result = vm.get_slot(0)
        state.pending = None
        if state.vm is not vm:
            raise restarted(state)
        return resolve(state, result)

    def run(args: tuple[Any, ...]) -> Any:
        n = len(args)
        if state.release_queue:
            state.drain()
        # one deadline for the whole call: converting the arguments, the
        # call, host functions it calls and converting the result
        # (WasmInstance.enter and leave, inlined: this is the hot path)
        depth = inst.depth
        if not depth and limited and not (lazy and clock() - inst._armed_at < slack):
            arm()
        inst.depth = depth + 1
        try:
            if n <= fast_args:
                for a in args:
                    t = type(a)
                    if t is not float and (t is not int or not -MAX_SAFE <= a <= MAX_SAFE):
                        break
                else:
                    f64, at, unchecked, call_args, trap, sc = plain[n] or prime(n)
                    for i in range(n):
                        f64[at[i]] = args[i]
                    error = unchecked(*call_args)
                    if error or trap.value:
                        failed(error, trap)
                    return result_of(sc)
                sc = tagged[n]
                if sc is None:
                    sc = tagged[n] = vm.scalar_call(receiver, signature(n))
                if sc.write(args, max_text):
                    error = sc.call(*sc.call_args)
                    if error or sc.trap.value:
                        failed(error, sc.trap)
                    return result_of(sc)
            prepared = [prepare(state, a) for a in args]
            fn = state.method_fn(owner, method, n, getter) if owner else receiver
            result = state.invoke(fn, prepared)
            state.pending = None
            if state.vm is not vm:
                raise restarted(state)
            return resolve(state, result)
        except WrenError as exc:
            raise vm_failure(state, exc, inst) from None
        finally:
            inst.depth = depth
            if not depth and inst._close_pending:
                inst.close()
            if state.partial_line:
                state.flush()

    def finish(sc: ScalarCall, error: Any, depth: int) -> Any:
        """The end of an inline call (below) whose raw call trapped, printed
        part of a line, closed the instance or gave no plain number: settled
        inside the instance, as in ``run``."""
        inst.depth = depth + 1
        try:
            if error or sc.trap.value:
                failed(error, sc.trap)
            return result_of(sc)
        except WrenError as exc:
            raise vm_failure(state, exc, inst) from None
        finally:
            inst.depth = depth
            if not depth and inst._close_pending:
                inst.close()
            if state.partial_line:
                state.flush()

    def call(*args: Any) -> Any:
        if state.vm is not vm or inst.dead is not None:
            return stale(state, function, args)
        n = len(args)
        if n > fast_args or tracking or state.release_queue or not acquire(False):
            return gate.run(run, args)  # contended, a debugger records gate entries, or handles to release
        # EngineGate.run's uncontended path and run's numbers-only path for
        # the hot arity, inlined: one Python frame for the usual call
        try:
            if n != hot_n:
                return run(args)
            f64 = hot_f64
            if n == 1:
                a = args[0]
                t = type(a)
                if t is not float and (t is not int or not -MAX_SAFE <= a <= MAX_SAFE):
                    return run(args)
                f64[0] = a
            elif n == 2:
                a, b = args
                t, u = type(a), type(b)
                if (t is not float and (t is not int or not -MAX_SAFE <= a <= MAX_SAFE)) or (
                        u is not float and (u is not int or not -MAX_SAFE <= b <= MAX_SAFE)):
                    return run(args)
                f64[0] = a
                f64[hot_at[1]] = b
            elif n:
                for a in args:
                    t = type(a)
                    if t is not float and (t is not int or not -MAX_SAFE <= a <= MAX_SAFE):
                        return run(args)
                at = hot_at
                for i in range(n):
                    f64[at[i]] = args[i]
            depth = inst.depth
            if not depth and limited and not (lazy and clock() - inst._armed_at < slack):
                arm()
            inst.depth = depth + 1
            try:
                error = hot_call(*hot_args)
            finally:
                inst.depth = depth
            if error or hot_trap.value or inst._close_pending or state.partial_line:
                return finish(hot_sc, error, depth)
            r = hot_i64[0]  # an int result comes as itself (wren_call_scalar)
            if -MAX_SAFE <= r <= MAX_SAFE:
                return r
            d = f64[0]
            return d if d == d else finish(hot_sc, error, depth)
        finally:
            unlock()
            if gate._waiting:
                threads.wake_waiters()

    debug = state.engine.debugger
    if debug is not None and debug.attached:  # calls and returns across languages (debugging.py)
        return debug.activation(call)  # type: ignore[no-any-return]

    def finish_compiled(n: int, error: int | None, depth: int) -> Any:
        """The end of a compiled call of arity ``n`` (``_ccall.c``) that
        trapped, printed part of a line, closed the instance or gave no plain
        number: this caller's own ``finish``."""
        return finish(plain[n][5], error, depth)

    fast = ccall.compiled(state, call, finish_compiled)
    return call if fast is None else fast


def stale(state: "ScriptState", function: str, args: Sequence[Any]) -> Any:
    """A caller made for a VM that has since been replaced (a restart)."""
    current = state.engine.current(state.script_id)
    if current is None:
        raise ScriptRuntimeError(
            f"script '{state.script_id}' was unloaded", language=LANGUAGE, script=state.script_id
        )
    if current.pool.instance.dead is not None:
        current.pool.rebuild()
    current.callers.drop(function)
    return caller(current, function)(*args)


def fn_ref(state: "ScriptState", handle: Any) -> FunctionRef:
    """The FunctionRef of a Wren Fn the script handed to the host."""
    vm = state.vm
    # The same caller a Fn held in a script variable gets (scalar fast path,
    # conversions, error translation, output flushing); only a stale VM is
    # handled here, since an anonymous Fn cannot be looked up again by name.
    invoke = make_caller(state, "<fn>", handle, "call", False)

    def call(*args: Any) -> Any:
        if state.vm is not vm or vm.instance.dead is not None or not handle.ptr:
            raise ScriptRuntimeError(
                "this Wren function no longer exists (its script was unloaded or restarted,"
                " or the call that passed it failed)",
                language=LANGUAGE, script=state.script_id,
            )
        return invoke(*args)

    ref = FunctionRef(call, name="<fn>", language=LANGUAGE, script=state.script_id,
                      release=Releaser(state, handle))
    state.engine.wren_fns[ref] = (state, handle)
    return ref


#: how far past an awaited call's deadline a step's own epoch deadline lies, as a share of time_limit
STEP_SLACK = 0.1


async def call_async(state: "ScriptState", function: str, args: Sequence[Any]) -> Any:
    """Run the function in a new fiber. ``Fiber.yield()`` gives the loop a
    turn; ``Fiber.yield(ms)`` with a number sleeps that long; the fiber's
    return value is the result. The whole call has one deadline, the
    policy's ``time_limit`` from its start (``kryon_core.awaited``): past it
    while the fiber waits, the fiber is dropped and the call raises
    ScriptTimeoutError (the script keeps its state); no step starts past it;
    a step running past it (by ``STEP_SLACK`` of the limit) traps and the
    instance restarts, as a synchronous call's timeout does."""
    gate = state.pool.gate
    vm = state.vm
    deadline = AwaitDeadline(vm.instance.timeout)
    # a step's epoch deadline lies a little past the call's: the epoch ticker may release several ticks
    # at once after a late wake-up, and a step that merely straddles the deadline is better ended by
    # the loop's timer (the fiber dropped, the state kept) than by a trap (the instance restarts)
    step_until = None if deadline.at is None else deadline.at + STEP_SLACK * (vm.instance.timeout or 0)
    fiber = gate.run(_fiber, state, function, args)
    #: where the fiber stood when the call was left while it waited (its timeout names that line)
    suspended_at: list[int | None] = [None]

    def step() -> tuple[bool, Any]:
        if state.vm is not vm:
            raise ScriptRuntimeError("the script was unloaded or restarted while awaited",
                                     language=LANGUAGE, script=state.script_id)
        vm.instance.enter(until=step_until)
        try:
            vm.call(state.host, state.call_handle("prep(_,_)"), fiber, [])
            done, value = vm.call_num(state.host, state.call_handle("stepGo()"))
            state.pending = None
            return bool(done), resolve(state, value)
        except WrenError as exc:
            raise vm_failure(state, exc, vm.instance) from None
        finally:
            vm.instance.leave()
            state.flush()

    def drop() -> None:
        try:
            if not finished[0]:  # left while it waited: where it stands
                suspended_at[0] = vm.fiber_line(fiber, state.script_id)
        except WrenError:  # the instance died meanwhile: no line, the error already says why
            pass
        finally:
            fiber.release()

    finished = [False]

    async def drive() -> Any:
        try:
            while True:
                if deadline.passed():
                    await deadline.expired()  # no step past the deadline: the loop's timer ends the call
                done, value = gate.run(step)
                if done:
                    finished[0] = True
                    return value
                delay = value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0
                await asyncio.sleep(max(0.0, float(delay)) / 1000.0)
        finally:
            if state.vm is vm:
                gate.run(drop)

    def timed_out() -> ScriptTimeoutError:
        return ScriptTimeoutError(
            f"the awaited call ran longer than the policy's time_limit ({vm.instance.timeout:g} s) "
            "and its fiber was dropped", language=LANGUAGE, script=state.script_id, line=suspended_at[0])

    return await bounded(deadline, drive(), timed_out)


def _fiber(state: "ScriptState", function: str, args: Sequence[Any]) -> Any:
    params = ", ".join(f"a{i}" for i in range(len(args)))
    owner, _, method = function.partition(".")
    if not state.vm.has_variable(state.script_id, owner):
        raise FunctionNotFoundError(f"script '{state.script_id}' defines no function '{function}'",
                                    language=LANGUAGE, script=state.script_id)
    info = state.compiled.functions.get(function)
    if method and not args and info is not None and info.documentation == GETTER:
        invoke = f"{owner}.{method}"
    else:
        invoke = f"{owner}.{method}({params})" if method else f"{owner}.call({params})"
    key = f"async:{function}/{len(args)}"
    try:
        maker = state.calls.get(key)
        if maker is None:
            module = f"{state.script_id}#async{next(state.engine.module_ids)}"
            source = (f'import "{state.script_id}" for {owner}\n'
                      f"var run = Fn.new {{{bars(params)} Fiber.new {{ {invoke} }} }}\n")
            state.vm.interpret(source, module=module)
            maker = state.calls[key] = state.vm.variable_handle(module, "run")
        prepared = [prepare(state, a) for a in args]
        return state.invoke(maker, prepared)
    except (WrenCompileError, WrenRuntimeError) as exc:
        raise script_runtime_error(state, exc) from None


class Releaser:
    """Finalizer of a Wren Fn's FunctionRef: queues the handle (released at
    the next call into that VM, never from inside a finalizer)."""

    __slots__ = ("state", "handle")

    def __init__(self, state: "ScriptState", handle: Any) -> None:
        self.state = state
        self.handle = handle

    def __call__(self) -> None:
        self.state.release_queue.append(self.handle)
