"""What every script context of one engine shares: the way results and errors
come back from JavaScript (the side channel), the deadline and nesting of the
running call chain, host errors on their way through JavaScript, releases of
FunctionRefs waiting for the lock, the compiled prelude and the host globals.

:class:`Host` is the one object :mod:`state`, :mod:`calls` and
:mod:`engine` pass around; it holds no script of its own.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from importlib import resources
from typing import TYPE_CHECKING, Any, Callable

import quickjs

from kryon_core import RecursionLimitError, ScriptError, ScriptRuntimeError

from . import capi, sandbox
from .errors import from_exception_text, from_info
from .plugin import LANGUAGE
from .values import decode, number_from_js

if TYPE_CHECKING:
    from .state import ScriptState

JSObject = quickjs.Object
#: exceptions the binding raises for a JavaScript error it saw itself
BINDING_ERRORS = (quickjs.JSException, quickjs.StackOverflow)
INF = float("inf")

PRELUDE = resources.files("kryon_js").joinpath("prelude.js").read_text(encoding="utf-8")
PRELUDE_SOURCE = "globalThis.__kryon_internal = " + PRELUDE.strip().rstrip(";") + ";\n"


class Pending:
    """A call's result that is a Promise still pending (its id in the prelude's table)."""

    __slots__ = ("id",)

    def __init__(self, pid: int) -> None:
        self.id = pid


class Host:
    """Engine-wide plumbing between Python and every script context."""

    def __init__(self, output: Callable[[str], None], report: Callable[[ScriptError], None]) -> None:
        self.capi = capi.available()
        self.prelude_bytecode: bytes | None = None
        self.api: list[tuple[str, tuple[int, int], Callable[..., Any] | None]] = []
        self.globals: dict[str, Any] = {}
        self.lock = threading.RLock()
        #: what the prelude's STASH put there last: (kind, text)
        self.stash: tuple[int, str] | None = None
        self.stash_pending = False
        self.host_errors: dict[int, BaseException] = {}
        self.host_error_ids = itertools.count(1)
        self.last_host_error: tuple[str, str, int] | None = None
        #: FunctionRefs released without the lock: (weakref to their state, function id)
        self.pending_release: list[tuple[Any, int]] = []
        self.deadline = INF
        #: the script whose host callback runs now (for get_stack_trace)
        self.in_callback: "ScriptState | None" = None
        #: host callbacks running now (JS -> host -> JS nesting)
        self.nesting = 0
        self.report = report
        self.output = output
        self.interrupt: Any = None
        if self.capi:
            monotonic, host = time.monotonic, self

            @capi.INTERRUPT_HANDLER
            def interrupt(rt: int, opaque: int) -> int:
                return 1 if monotonic() > host.deadline else 0

            self.interrupt = interrupt

    # -- the callables every context gets (the prelude captures them) ---------------------
    def stash_fn(self, kind: int, text: str) -> None:
        self.stash = (kind, text)

    def hosterr_fn(self) -> str:
        info = self.last_host_error or ("Error", "host error", 0)
        return json.dumps(list(info))

    def out_fn(self, text: str) -> None:
        try:
            self.output(text)
        except Exception:  # noqa: BLE001 - a broken output handler must not break the script
            pass

    # -- errors -------------------------------------------------------------------------
    def host_failed(self, state: "ScriptState", exc: BaseException) -> Any:
        """Keep a host exception for the JS error that will carry it; returns the ERR marker."""
        hid = next(self.host_error_ids)
        self.host_errors[hid] = exc
        while len(self.host_errors) > 256:
            self.host_errors.pop(next(iter(self.host_errors)))
        name = type(exc).__name__
        message = str(exc) if not isinstance(exc, ScriptError) or exc.language not in (None, LANGUAGE) else exc.message
        self.last_host_error = (name, message, hid)
        return state.ERR

    def error(self, state: "ScriptState", info: dict[str, Any]) -> ScriptError:
        value = info.get("value")
        thrown = None
        if value is not None:
            try:
                thrown = decode(json.dumps(value), state)
            except Exception:  # noqa: BLE001
                thrown = None
        return from_info(info, state.script, input_is_script=state.input_is_script, host_errors=self.host_errors,
                         thrown_value=thrown, memory_limited=state.policy.memory_limit is not None)

    @staticmethod
    def binding_error(state: "ScriptState", exc: BaseException) -> ScriptError:
        text = str(exc.args[0]) if exc.args else str(exc)
        return from_exception_text(text, state.script, input_is_script=state.input_is_script)

    # -- results ------------------------------------------------------------------------
    @staticmethod
    def scalar(r: Any) -> Any:
        if type(r) is float:
            return number_from_js(r)
        return r

    def unbox(self, state: "ScriptState", *, allow_pending: bool = False) -> Any:
        """The value (or error) the prelude stashed for the call that just returned BOX."""
        stash, self.stash = self.stash, None
        if stash is None:
            raise ScriptRuntimeError("internal error: no result from the script", language=LANGUAGE, script=state.script)
        kind, text = stash
        if kind == 0:
            if state.max_value is not None and len(text) > state.max_value:
                state.too_big("a result")
            return decode(text, state)
        if kind == 1:
            raise self.error(state, json.loads(text))
        if kind == 2:
            pid = int(text)
            if allow_pending:
                return Pending(pid)
            self.pump(state)
            result = state.poll(pid)
            if type(result) is JSObject:
                value = self.unbox(state, allow_pending=True)
                if isinstance(value, Pending) or self.stash_pending:
                    self.stash_pending = False
                    raise ScriptRuntimeError(
                        "the function returned a Promise that is still pending; use call_function_async to await it",
                        language=LANGUAGE, script=state.script)
                return value
            return self.scalar(result)
        if kind == 3:
            self.stash_pending = True
            return None
        raise ScriptRuntimeError("internal error: bad result", language=LANGUAGE, script=state.script)  # pragma: no cover

    def pump(self, state: "ScriptState") -> None:
        """Run the context's pending jobs (promise reactions): a microtask checkpoint."""
        run = state.ctx.execute_pending_job
        for _ in range(1_000_000):
            try:
                if not run():
                    return
            except BINDING_ERRORS as exc:
                err = self.binding_error(state, exc)
                if type(err).__name__ in ("ScriptTimeoutError", "MemoryLimitError"):
                    raise err from None
                self.report(err)

    def flush_releases(self) -> None:
        pending = self.pending_release
        while pending:
            me, fid = pending.pop()
            state = me()
            if state is None or state.closed or fid in state.fnrefs:
                continue
            try:
                state.release(fid)
            except BINDING_ERRORS:  # pragma: no cover
                pass

    # -- entering a context ---------------------------------------------------------------
    def enter(self, state: "ScriptState") -> float:
        """Arm the deadline for a call into ``state``; returns the previous one.
        A call nested inside a host callback also gets a smaller native stack
        (every entry into QuickJS starts a fresh stack budget, so nesting
        must divide one budget instead of stacking them)."""
        if self.nesting:
            self.shrink(state)
        prev = self.deadline
        if state.time_limit is not None:
            deadline = time.monotonic() + state.time_limit
            if deadline < prev:
                self.deadline = deadline
        return prev

    def leave(self, state: "ScriptState", prev: float) -> None:
        self.deadline = prev
        if state.stack_sizes and state.current_stack != state.stack_sizes[-1]:
            state.current_stack = state.stack_sizes.pop()
            state.ctx.set_max_stack_size(state.current_stack)
        elif state.stack_sizes:
            state.stack_sizes.pop()

    def shrink(self, state: "ScriptState") -> None:
        depth = self.nesting
        if depth > sandbox.MAX_NESTING:
            raise RecursionLimitError(
                f"JavaScript calls nested through the host more than {sandbox.MAX_NESTING} deep",
                language=LANGUAGE, script=state.script)
        size = max(sandbox.MIN_NESTED_STACK, state.stack_size // (depth + 1))
        state.stack_sizes.append(state.current_stack)
        state.current_stack = size
        state.ctx.set_max_stack_size(size)
