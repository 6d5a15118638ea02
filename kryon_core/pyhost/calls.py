"""Calls into in-process scripts: the hot-path callers, FunctionRefs for
script callables, results, and async functions awaited step by step.

A function's caller is made once per script version (``HostedScript.callers``)
and is what bound handles (``ScriptManager.function``) call: for a script with
no limits and no breakpoints it is the gate, the call and a type check of the
result; otherwise it goes through :meth:`Entry.run`.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ScriptError, ScriptRuntimeError, ScriptTimeoutError
from ..values import FunctionRef
from .entry import PASSTHROUGH, Entry
from .fastcall import arity, compiled_caller, fast_caller
from .state import SCRIPT_KEY, HostedScript, ScriptTable
from .values import PLAIN, Converter, check_size

if TYPE_CHECKING:  # ..awaited and asyncio load with the first async call, not with every trusted script
    from ..awaited import AwaitDeadline

__all__ = ["Calls"]

_GENERATOR, _COROUTINE, _ASYNC_GENERATOR = types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType
_CO_COROUTINE, _CO_ASYNC_GENERATOR = 0x80, 0x200


class Calls:
    """Calls for one engine: ``entry`` runs script code, ``converter`` makes
    results host values, ``table`` names the script a function belongs to."""

    def __init__(self, language: str, entry: Entry, converter: Converter, table: ScriptTable,
                 name_of: Callable[[str], str]) -> None:
        self.language = language
        self.entry = entry
        self.converter = converter
        self.table = table
        self.name_of = name_of  # a function's __name__ as the language shows it

    # -- results -----------------------------------------------------------------------
    def finish(self, value: Any, script: HostedScript) -> Any:
        """A result as a host value, still inside the engine: a generator is
        drained into a list, a coroutine run to completion (when no loop runs
        here), the rest converted by the value rules."""
        t = type(value)
        if t in PLAIN and script.policy.max_value_size is None:
            return value
        if t is _GENERATOR:
            value = list(value)
        elif t is _COROUTINE or t is _ASYNC_GENERATOR:
            value = self._run_to_completion(value, script)
        return self.converter.out(value, script.id, script.policy.max_value_size)

    def _run_to_completion(self, coro: Any, script: HostedScript) -> Any:
        import asyncio

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            if type(coro) is _COROUTINE:
                coro.close()  # never started: closing it avoids the "never awaited" warning
            raise ScriptRuntimeError(
                "an async function was called synchronously inside a running event loop: "
                "await it with call_function_async (or FunctionRef.call_async)",
                language=self.language,
                script=script.id,
            )
        if type(coro) is _ASYNC_GENERATOR:
            coro = _collect(coro)
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(coro)
        finally:
            loop.close()

    # -- callers ------------------------------------------------------------------------
    def caller(self, script: HostedScript, fn: Callable[..., Any]) -> Callable[..., Any]:
        """The hot-path callable for ``fn`` of ``script`` (made once, kept in its callers)."""
        made = script.callers.peek(fn)
        return made if made is not None else script.callers.get(fn, lambda: self._make_caller(script, fn))

    def _make_caller(self, script: HostedScript, fn: Callable[..., Any]) -> Callable[..., Any]:
        run, finish, fail = self.entry.run, self.finish, self.entry.fail
        limit = script.policy.max_value_size
        if script.guarded:
            language = self.language

            def guarded(*args: Any) -> Any:
                if limit is not None:
                    check_size(args, limit, language, script.id)
                return run(script, fn, args, finish)

            return guarded
        gate_run, breakpoints = self.entry.gate.run, self.entry.tracer.breakpoints

        def general(args: tuple[Any, ...]) -> Any:
            return run(script, fn, args, finish)

        def failed(exc: BaseException) -> BaseException:
            return fail(exc, script)

        def rest_of(result: Any) -> Any:
            if result.__class__ is list:  # a flat list of plain values: one copy, no further calls
                for item in result:
                    if item.__class__ not in PLAIN:
                        break
                else:
                    return result[:]
            try:
                return gate_run(finish, result, script)  # a generator's body runs in the runtime
            except PASSTHROUGH:
                raise
            except BaseException as exc:
                raise fail(exc, script) from None

        n = arity(fn)
        python = fast_caller(fn, n, gate_run, breakpoints, general, failed, rest_of) if n is not None else None
        if python is None:

            def call(*args: Any) -> Any:
                if breakpoints.active:
                    return general(args)
                try:
                    result = gate_run(fn, *args)
                except PASSTHROUGH:
                    raise
                except BaseException as exc:
                    raise fail(exc, script) from None
                if result.__class__ in PLAIN:
                    return result
                return rest_of(result)

            python = call
        # the same caller in C when the compiled core is there (it hands every uncommon case to `python`)
        return compiled_caller(fn, n, python, self.entry.gate, breakpoints, failed, rest_of) or python

    # -- FunctionRefs -----------------------------------------------------------------------
    def ref(self, script: HostedScript, fn: Callable[..., Any], name: str) -> FunctionRef:
        """A FunctionRef calling ``fn`` of ``script`` (released when the script goes)."""
        call_async = None
        code = getattr(fn, "__code__", None)
        if code is not None and code.co_flags & (_CO_COROUTINE | _CO_ASYNC_GENERATOR):

            def call_async(*args: Any) -> Any:
                return self.awaited(script, fn, args)

        ref = FunctionRef(self.caller(script, fn), name=name, language=self.language, script=script.id,
                          call_async=call_async)
        script.refs.add(ref)
        return ref

    def wrap(self, fn: Callable[..., Any], owner: str | None) -> FunctionRef:
        """A callable leaving a script: a FunctionRef owned by the script that
        defined it (a script function), else by ``owner`` (the script handing it out)."""
        name = self.name_of(getattr(fn, "__name__", "function"))
        globals_ = getattr(fn, "__globals__", None)
        script: HostedScript | None = None
        if isinstance(globals_, dict) and SCRIPT_KEY in globals_:
            script = self.table.of_namespace(globals_)
            owner = globals_[SCRIPT_KEY]
        elif owner is not None:
            script = self.table.get(owner) or next((s for s in self.table.live() if s.id == owner), None)
        if script is None:  # its script is gone (or there never was one): a handle that says so
            ref = FunctionRef(fn, name=name, language=self.language, script=owner)
            ref.release()
            return ref
        return self.ref(script, fn, name)

    # -- async ---------------------------------------------------------------------------
    async def awaited(self, script: HostedScript, fn: Callable[..., Any], args: Sequence[Any]) -> Any:
        """Await ``fn`` on the running loop: an async function (or async
        generator, collected into a list) runs one step at a time, each step
        entering the engine like a call; anything else runs to completion."""
        import asyncio

        from ..awaited import AwaitDeadline, bounded

        code = getattr(fn, "__code__", None)
        if code is None or not code.co_flags & (_CO_COROUTINE | _CO_ASYNC_GENERATOR):
            await asyncio.sleep(0)
            return self.entry.run(script, fn, args, self.finish)
        deadline = AwaitDeadline(script.time_limit)
        coro = self.entry.run_until(deadline.at, script, fn, args, _raw)
        if code.co_flags & _CO_ASYNC_GENERATOR:
            coro = _collect(coro)
        steps = _Steps(self, script, coro, deadline)
        return await bounded(deadline, steps, steps.timed_out)


class _Steps:
    """Awaitable driving a script's coroutine on the caller's loop: each step
    runs inside the engine (gate, limits, breakpoints, error translation), and
    what the coroutine awaits is awaited by the loop between steps. Every
    step runs under the call's one deadline (``kryon_core.awaited``); when
    the deadline's cancellation arrives, the coroutine is closed (its
    ``finally`` blocks run, under a cleanup budget) instead of being handed
    the cancellation, which it could swallow and go on."""

    __slots__ = ("calls", "script", "coro", "deadline", "line")

    def __init__(self, calls: Calls, script: HostedScript, coro: Any, deadline: AwaitDeadline) -> None:
        self.calls, self.script, self.coro, self.deadline = calls, script, coro, deadline
        self.line: int | None = None

    def __await__(self) -> Generator[Any, Any, Any]:
        import asyncio

        calls, script, coro, deadline = self.calls, self.script, self.coro, self.deadline
        value: Any = None
        exc: BaseException | None = None
        while True:
            done, out = calls.entry.run_until(deadline.at, script, _step, (coro, value, exc), _raw)
            if done:
                return calls.finish(out, script)
            try:
                value, exc = (yield out), None
            except asyncio.CancelledError as e:
                if deadline.passed():  # the call's deadline (bounded's timer), not the host's own cancel
                    self._abandon()
                    raise
                value, exc = None, e
            except BaseException as e:  # an error thrown into the awaiting task
                value, exc = None, e

    def _abandon(self) -> None:
        """Note where the coroutine was suspended, then close it under the cleanup budget."""
        coro = self.coro
        self.line = _suspended_line(coro, self.script)
        try:
            self.calls.entry.run_until(self.deadline.cleanup_at(), self.script, coro.close, (), _raw)
        except ScriptError:  # its finally blocks overran or failed: abandoned all the same
            pass
        if getattr(coro, "cr_frame", None) is not None:
            # it ignored the close (caught GeneratorExit and awaited again; trusted code can outlast
            # trusted limits): it is never resumed, and never finalized either, since finalizing it
            # would run it again, outside any limit, wherever the garbage collector happens to be
            _never_finalized(coro)

    def timed_out(self) -> ScriptTimeoutError:
        return ScriptTimeoutError(
            f"the awaited call ran longer than the policy's time_limit ({self.script.time_limit:g} s)",
            language=self.calls.language, script=self.script.id, line=self.line)


def _never_finalized(obj: Any) -> None:
    import ctypes  # only a coroutine that outlasted its limit gets here

    ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))


def _suspended_line(coro: Any, script: HostedScript) -> int | None:
    """The line of the innermost frame of ``script`` in the chain of coroutines ``coro`` awaits."""
    line = None
    for _ in range(100):
        frame = getattr(coro, "cr_frame", None)
        if frame is None:
            break
        if frame.f_globals is script.ns:
            line = frame.f_lineno
        coro = getattr(coro, "cr_await", None)
    return line


def _step(coro: Any, value: Any, exc: BaseException | None) -> tuple[bool, Any]:
    """Run a coroutine to its next suspension: (done, yielded or result)."""
    try:
        out = coro.send(value) if exc is None else coro.throw(exc)
    except StopIteration as stop:
        return True, stop.value
    return False, out


async def _collect(agen: Any) -> list[Any]:
    return [item async for item in agen]


def _raw(value: Any, script: HostedScript) -> Any:
    return value
