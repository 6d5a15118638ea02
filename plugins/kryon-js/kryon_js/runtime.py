"""What every script context of one engine shares: the running call chain of
each thread (its deadline, how deep it nests through the host, the script
whose host callback runs), host errors on their way through JavaScript, the
compiled prelude, the ``kryon`` API table and the host globals.

Each script's runtime has its own gate (``ScriptState.gate``); nothing here
is tied to one script, so :class:`Host` needs no lock of its own: the chain
is per thread, and the tables it holds are only added to.
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
from collections.abc import Callable
from threading import get_ident
from typing import TYPE_CHECKING, Any

import quickjs

from kryon_core import ScriptError
from kryon_core.plugins import package_text

from . import capi, cutoff, oom
from .bridge import ApiEntry
from .errors import from_exception_text
from .plugin import LANGUAGE
from .values import number_from_js

if TYPE_CHECKING:
    from .state import ScriptState

JSObject = quickjs.Object
#: exceptions the binding raises for a JavaScript error it saw itself
BINDING_ERRORS = (quickjs.JSException, quickjs.StackOverflow)
INF = float("inf")
#: once a chain's deadline fired, the host's own work on the way out (turning the error into text, which
#: may run JavaScript and so poll) gets this long before it would fire again; the interrupt itself
#: cannot be caught, so the script gets no more time from it
GRACE = 0.05

PRELUDE = package_text("kryon_js", "prelude.js").replace(
    "/*GUARDS*/", "".join(package_text("kryon_js", name) for name in ("guards.js", "compile_guards.js")))
PRELUDE_SOURCE = "globalThis.__kryon_internal = " + PRELUDE.strip().rstrip(";") + ";\n"


class Pending:
    """A call's result that is a Promise still pending (its id in the prelude's table)."""

    __slots__ = ("id",)

    def __init__(self, pid: int) -> None:
        self.id = pid


class Chain:
    """The call chain running on one thread (see :class:`Chains`)."""

    __slots__ = ("deadline", "extended", "nesting", "inside", "thread", "__weakref__")

    def __init__(self) -> None:
        #: the thread running the chain (the watchdog finds the runtimes it is inside by it, cutoff.py)
        self.thread = get_ident()
        #: when the chain must stop (monotonic seconds): the earliest deadline of every limited call in it
        self.deadline = INF
        #: the deadline fired and was pushed back by GRACE once (cleared when an outermost limited call starts)
        self.extended = 0.0
        #: host callbacks running now on this thread (JS -> host -> JS nesting)
        self.nesting = 0
        #: the script whose host callback runs now (for get_stack_trace)
        self.inside: "ScriptState | None" = None


class Chains(threading.local):
    """Each thread's :class:`Chain`: one thread-local look-up, then plain slot
    attributes (every attribute of a thread-local costs that look-up, and a
    call reads and writes the chain several times)."""

    def __init__(self) -> None:
        self.chain = Chain()
        cutoff.watch_chain(self.chain)


class Host:
    """Engine-wide plumbing between Python and every script context."""

    def __init__(self, output: Callable[[str], None], report: Callable[[ScriptError], None]) -> None:
        self.capi = capi.available()
        self.prelude_bytecode: bytes | None = None
        self.api: list[ApiEntry] = []
        self.globals: dict[str, Any] = {}
        self.chains = Chains()
        #: how many threads run a host callback now (their chain's nesting > 0): the hot-path callers
        #: read this, which is 0 most of the time, instead of the thread-local chain. A thread adds 1
        #: as its outermost callback starts and takes it back as it ends, each in one statement with
        #: no call in it, which no other thread interrupts under the GIL (the same rule keeps the
        #: manager's call counts exact: kryon_core.interop, CrossLanguageRegistry.router)
        self.nested = 0
        #: the threads whose chain got its GRACE (``Chain.extended`` set), until their next outermost
        #: limited call starts: the hot-path callers reset ``extended`` only when this set is not empty
        self.graced: set[int] = set()
        #: host exceptions on their way through JavaScript, by id (the JS Error carries the id)
        self.host_errors: dict[int, BaseException] = {}
        self.host_error_ids = itertools.count(1)
        self.report = report
        self.output = output
        self.interrupt: Any = None
        if self.capi:
            monotonic, chains, graced, lowered = time.monotonic, self.chains, self.graced, cutoff.LOWERED
            parked, park = oom.PARKED, oom.park

            @capi.INTERRUPT_HANDLER  # type: ignore[untyped-decorator]  # a ctypes function type
            def interrupt(rt: int, opaque: int) -> int:
                if parked and rt in parked:
                    park(rt)  # a collection may have raised the GC threshold past the limit (oom.py)
                # runs on the thread executing JavaScript, so it reads that thread's chain
                now = monotonic()
                chain = chains.chain
                if now > chain.deadline:
                    if not chain.extended:  # once per outermost limited call: nested catches get no more
                        chain.extended = chain.deadline = now + GRACE
                        graced.add(get_ident())
                    if lowered:  # the watchdog cut this runtime's memory: the interrupt error needs some
                        cutoff.restore(int(rt or 0))
                    return 1
                return 0

            self.interrupt = interrupt
        # one lock for the shared compile-only context and the prelude bytecode made once
        self.compile_lock = threading.Lock()

    @property
    def chain(self) -> Chain:
        """The calling thread's call chain."""
        return self.chains.chain

    def expired(self) -> bool:
        """Whether the running chain is past its deadline (the guards ask
        between chunks); when it is, the host gets GRACE to unwind."""
        now = time.monotonic()
        chain = self.chain
        if now > chain.deadline:
            if not chain.extended:
                chain.extended = chain.deadline = now + GRACE
                self.graced.add(get_ident())
            return True
        return False

    def fresh_chain(self) -> None:
        """An outermost limited call starts: its deadline may be pushed back by GRACE once again."""
        self.chain.extended = 0.0
        self.graced.discard(get_ident())

    def out_fn(self, text: str) -> None:
        try:
            self.output(text)
        except Exception:  # noqa: BLE001 - a broken output handler must not break the script
            pass

    def keep_host_error(self, exc: BaseException) -> int:
        hid = next(self.host_error_ids)
        self.host_errors[hid] = exc
        while len(self.host_errors) > 256:
            try:
                self.host_errors.pop(next(iter(self.host_errors)))
            except (StopIteration, KeyError, RuntimeError):  # another thread trimmed it meanwhile
                break
        return hid

    @staticmethod
    def binding_error(state: "ScriptState", exc: BaseException) -> ScriptError:
        text = str(exc.args[0]) if exc.args else str(exc)
        err = from_exception_text(text, state.script, input_is_script=state.input_is_script, columns=state.columns,
                                  memory_limited=state.memory_limit is not None,
                                  ran_out=functools.partial(oom.was_out_of_memory, state))
        return state.timed_out(err) if state.cut else err

    @staticmethod
    def scalar(r: Any) -> Any:
        if type(r) is float:
            return number_from_js(r)
        return r

    def is_limit(self, err: ScriptError) -> bool:
        return type(err).__name__ in ("ScriptTimeoutError", "MemoryLimitError")


__all__ = ["BINDING_ERRORS", "Chain", "Chains", "Host", "INF", "JSObject", "LANGUAGE", "PRELUDE_SOURCE", "Pending"]
