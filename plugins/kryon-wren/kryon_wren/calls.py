"""Calls from the host into a Wren script: the caller made once per
(script, function) with its scalar fast path (one raw wasm call for numbers),
FunctionRefs of the Fns a script hands out, and async calls run as fibers
stepped on the event loop. Every call enters the script's instance through
its pool's gate, under one deadline for the call and its conversions; a Wren
error or a trap is translated in ``errors.py``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from kryon_core import FunctionNotFoundError, FunctionRef, ScriptRuntimeError

from .bridge import bars
from .errors import after_trap, restarted, script_runtime_error
from .plugin import LANGUAGE
from .scan import GETTER
from .values import MAX_SAFE, prepare, resolve
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


def make_caller(
    state: "ScriptState", function: str, receiver: Any, method: str, getter: bool
) -> Callable[..., Any]:
    """The call of ``method`` on ``receiver`` (a Fn's ``call``, or a static
    method of class ``function``'s owner), converting arguments and result."""
    vm = state.vm
    handles: dict[int, Any] = {}
    owner = function.partition(".")[0] if method != "call" or "." in function else ""

    def signature(n: int) -> Any:
        handle = handles.get(n)
        if handle is None:
            sig = method if getter and n == 0 else f"{method}({','.join('_' * n)})"
            handle = handles[n] = state.call_handle(sig)  # shared per VM: callers of Fn refs come and go
        return handle

    from .vm import STATUS_MASK, STATUS_TAG

    fast = vm.fast_call()
    inst = vm.instance
    # The scalar fast path writes wren_call_num's raw arguments itself
    # (the layout FastCall documents), saving a Python frame per call.
    export = fast.export
    i32, i64, f64 = export.i32, export.i64, export.f64
    invoke = export.invoke_rearming_lazily()
    s32, s64 = fast.stride32, fast.stride64
    vm_ptr, receiver_ptr = vm.ptr, receiver.ptr
    copysign = math.copysign

    gate = state.pool.gate
    arm, limited, slack, clock = inst._arm_limits, inst.limited, inst._slack, time.perf_counter
    lazy = inst.timeout is not None and inst.fuel is None

    def run(args: tuple[Any, ...]) -> Any:
        if state.vm is not vm or inst.dead is not None:
            return stale(state, function, args)
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
            method_handle = handles.get(n) or signature(n)
            if n <= 4:
                for a in args:
                    t = type(a)
                    if t is not float and (t is not int or not -MAX_SAFE <= a <= MAX_SAFE):
                        break
                else:
                    i32[0] = vm_ptr
                    i32[s32] = receiver_ptr
                    i32[2 * s32] = method_handle.ptr
                    i32[3 * s32] = n
                    for i in range(n):
                        f64[(4 + i) * s64] = args[i]
                    invoke()
                    if (i64[0] & STATUS_MASK) != STATUS_TAG:
                        d = f64[0]
                        if d.is_integer() and -MAX_SAFE <= d <= MAX_SAFE and (d or copysign(1.0, d) > 0):
                            return int(d)
                        return d
                    status = i64[0] & 0xFFFF
                    if status != 3:
                        vm.raise_for_status(status)
                    vm.ensure_slots(3)
                    result = vm.get_slot(0)
                    state.pending = None
                    if state.vm is not vm:
                        raise restarted(state)
                    return resolve(state, result)
            prepared = [prepare(state, a) for a in args]
            fn = state.method_fn(owner, method, n, getter) if owner else receiver
            result = state.invoke(fn, prepared)
            state.pending = None
            if state.vm is not vm:
                raise restarted(state)
            return resolve(state, result)
        except WrenRuntimeError as exc:
            state.flush()
            raise script_runtime_error(state, exc) from None
        except WrenError as exc:
            raise after_trap(state, exc, inst) from None
        finally:
            inst.depth = depth
            if not depth and inst._close_pending:
                inst.close()
            if state.partial_line:
                state.flush()

    def call(*args: Any) -> Any:
        if state.vm is not vm or inst.dead is not None:
            return stale(state, function, args)
        return gate.run(run, args)

    debug = state.engine.debugger
    if debug is not None and debug.attached:  # calls and returns across languages (debugging.py)
        return debug.activation(call)  # type: ignore[no-any-return]
    return call


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
        if state.vm is not vm or vm.instance.dead is not None:
            raise ScriptRuntimeError(
                "this Wren function no longer exists (its script was unloaded or restarted)",
                language=LANGUAGE, script=state.script_id,
            )
        return invoke(*args)

    ref = FunctionRef(call, name="<fn>", language=LANGUAGE, script=state.script_id,
                      release=Releaser(state, handle))
    state.engine.wren_fns[ref] = (state, handle)
    return ref


async def call_async(state: "ScriptState", function: str, args: Sequence[Any]) -> Any:
    """Run the function in a new fiber. ``Fiber.yield()`` gives the loop a
    turn; ``Fiber.yield(ms)`` with a number sleeps that long; the fiber's
    return value is the result."""
    gate = state.pool.gate
    fiber = gate.run(_fiber, state, function, args)
    vm = state.vm

    def step() -> tuple[bool, Any]:
        if state.vm is not vm:
            raise ScriptRuntimeError("the script was unloaded or restarted while awaited",
                                     language=LANGUAGE, script=state.script_id)
        vm.instance.enter()
        try:
            vm.call(state.host, state.call_handle("prep(_,_)"), fiber, [])
            done, value = vm.call_num(state.host, state.call_handle("stepGo()"))
            state.pending = None
            return bool(done), resolve(state, value)
        except WrenRuntimeError as exc:
            state.flush()
            raise script_runtime_error(state, exc) from None
        except WrenError as exc:
            raise after_trap(state, exc, vm.instance) from None
        finally:
            vm.instance.leave()
            state.flush()

    try:
        while True:
            done, value = gate.run(step)
            if done:
                return value
            delay = value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0
            await asyncio.sleep(max(0.0, float(delay)) / 1000.0)
    finally:
        if state.vm is vm:
            gate.run(fiber.release)


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
