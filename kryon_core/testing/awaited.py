"""Awaited-call cases every engine with ``call_function_async`` passes: one
deadline for the whole call (``kryon_core.awaited``), the line where a
timed-out call was suspended, and the host's own cancellation stopping the
call (in process, and in a sandboxed worker).

An engine's test module subclasses :class:`AwaitedContract` with
:class:`AwaitedScripts` in its language, as :mod:`.contract` does for the
engine contract, and keeps only cases of its own beside it::

    class TestLuaAwaited(AwaitedContract):
        scripts = AwaitedScripts(language="lua", source=..., ...)

Wall times are never asserted: "did not wait forever" is an outer
``asyncio.wait_for`` of many budgets, and "the call stopped" is counted (a
host callback the script calls on every step makes no more calls).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import pytest

from ..dom import Document
from ..errors import ScriptTimeoutError
from ..manager import ScriptManager
from ..policy import SecurityPolicy

__all__ = ["AwaitedContract", "AwaitedScripts", "LIMIT", "OUTER"]

T = TypeVar("T")

#: the time limit of the limited policies (seconds)
LIMIT = 0.5
#: "not forever": the outer bound of every awaited call
OUTER = LIMIT * 12


@dataclass(frozen=True)
class AwaitedScripts:
    """Scripts in the engine's language, and the names to call in them.

    ``source`` is loaded as script ``s``; it keeps a counter ``n`` (0 at load)
    and defines:

    - ``bump``: adds 1 to ``n`` and returns it;
    - ``quick(x)``: awaits once, briefly, and returns ``x + n``;
    - ``sleeper``: awaits something that never ends (a sleep of days, a
      promise that never settles), at line ``sleeper_line``;
    - ``ticker(cb)``: forever calls ``cb()`` and sleeps a few milliseconds;
    - ``host_step(wait, cb)``: sleeps ``wait`` (in ``sleep_unit`` per second),
      calls ``cb()``, runs a short loop and returns ``"finished"``.

    ``bystander`` is loaded as script ``bystander``: ``inc`` adds 1 to its own
    counter and returns it. Names are as ``call_function`` takes them.
    """

    language: str
    source: str
    bystander: str
    bump: str
    quick: str
    sleeper: str
    #: the line of ``sleeper``'s await, or None where the engine cannot know it (say why in ``line_unknown``)
    sleeper_line: int | None
    ticker: str
    host_step: str
    inc: str
    #: the unit of ``host_step``'s ``wait``, per second (1000: milliseconds)
    sleep_unit: float = 1000.0
    #: how far past the deadline (in limits) the callback of ``host_step`` waits: beyond any slack the
    #: engine gives a step that straddles the deadline
    step_overrun: float = 1.1
    #: why ``sleeper_line`` is None (documented in the engine's README)
    line_unknown: str = ""
    #: the document's clock must run for the script's timers (JavaScript's setTimeout)
    clock: bool = False
    #: keyword arguments for every sandboxed policy (a module the source imports)
    sandbox_overrides: dict[str, Any] = field(default_factory=dict)
    #: cases the engine does not pass yet: test name -> why (each is skipped saying so; the engine's
    #: README names them too)
    pending: dict[str, str] = field(default_factory=dict)


class AwaitedContract:
    """Subclass with ``scripts`` set; pytest runs every case for the engine
    under a sandboxed and a trusted policy with a time limit (and, for the
    host's cancellation, both without one)."""

    scripts: ClassVar[AwaitedScripts]

    # -- the host ------------------------------------------------------------------------------
    @pytest.fixture(autouse=True)
    def _skip_pending(self, request: Any) -> None:
        why = self.scripts.pending.get(request.function.__name__)
        if why is not None:
            pytest.skip(f"{self.scripts.language} does not pass {request.function.__name__} yet: {why}")

    def policy(self, kind: str) -> SecurityPolicy:
        limit = LIMIT if kind.endswith("with a limit") else None
        if kind.startswith("sandboxed"):
            return SecurityPolicy.sandboxed(time_limit=limit, **self.scripts.sandbox_overrides)
        return SecurityPolicy.trusted(time_limit=limit)

    def make(self, kind: str) -> ScriptManager:
        """A manager under policy ``kind`` with ``s`` and ``bystander`` loaded."""
        m = ScriptManager(policy=self.policy(kind), cache=False, output=lambda lang, text: None)
        #: the document whose clock runs the scripts' timers (pytest makes an instance per test)
        self.doc = m.setup_dom_bridge(Document()) if self.scripts.clock else None
        m.load_script_from_source("s", self.scripts.language, self.scripts.source)
        m.load_script_from_source("bystander", self.scripts.language, self.scripts.bystander)
        assert m.call_function(self.scripts.inc) == 1
        return m

    @pytest.fixture(params=["sandboxed with a limit", "trusted with a limit"])
    def m(self, request: Any) -> Iterator[ScriptManager]:
        mgr = self.make(request.param)
        yield mgr
        mgr.close()

    @pytest.fixture(params=["sandboxed with a limit", "trusted with a limit", "sandboxed without a limit",
                            "trusted without a limit"])
    def any_m(self, request: Any) -> Iterator[ScriptManager]:
        mgr = self.make(request.param)
        yield mgr
        mgr.close()

    def run(self, m: ScriptManager, main: Callable[[], Awaitable[T]]) -> T:
        """``main()`` on a fresh loop, with the document's clock running where the scripts need it."""
        doc = getattr(self, "doc", None)

        async def with_clock() -> T:
            clock = asyncio.ensure_future(doc.run_clock(tick_ms=1)) if doc is not None else None
            try:
                return await main()
            finally:
                if clock is not None:
                    clock.cancel()

        return asyncio.run(with_clock())

    def awaited(self, m: ScriptManager, name: str, *args: Any) -> Any:
        """An awaited call, bounded by ``OUTER``."""
        return self.run(m, lambda: asyncio.wait_for(m.call_function_async(name, list(args)), OUTER))

    def still_usable(self, m: ScriptManager, n: int) -> None:
        """``s`` kept its counter ``n`` and works, synchronously and awaited; the bystander was not touched."""
        assert m.call_function(self.scripts.bump) == n + 1, "the script keeps its globals"
        assert self.awaited(m, self.scripts.quick, 1) == n + 2
        assert m.call_function(self.scripts.inc) == 2, "the bystander keeps its state"

    # -- the deadline ----------------------------------------------------------------------------
    def test_a_suspended_call_times_out_naming_its_line(self, m: ScriptManager) -> None:
        with pytest.raises(ScriptTimeoutError) as info:
            self.awaited(m, self.scripts.sleeper)
        error = info.value
        assert (error.language, error.script) == (self.scripts.language, "s")
        if self.scripts.sleeper_line is not None:
            assert error.line == self.scripts.sleeper_line, f"the line of the await: {error}"
        else:
            assert self.scripts.line_unknown, "say why the engine cannot know the line"
        self.still_usable(m, 0)

    def test_endless_short_steps_time_out(self, m: ScriptManager) -> None:
        ticks: list[int] = []
        with pytest.raises(ScriptTimeoutError):
            self.awaited(m, self.scripts.ticker, lambda: ticks.append(1))
        assert len(ticks) > 10, "it stepped many times, each short"
        self.still_usable(m, 0)

    def test_the_deadline_lands_in_a_host_callback_during_a_step(self, m: ScriptManager) -> None:
        calls: list[int] = []
        started = time.monotonic()

        def eat_the_budget() -> None:
            calls.append(1)
            time.sleep(max(0.0, started + LIMIT * self.scripts.step_overrun - time.monotonic()))

        # 0.6 of the budget asleep, then a step whose callback takes it past the deadline: a step with a
        # fresh time_limit of its own would finish its loop
        with pytest.raises(ScriptTimeoutError):
            self.awaited(m, self.scripts.host_step, LIMIT * 0.6 * self.scripts.sleep_unit, eat_the_budget)
        assert calls == [1]
        self.still_usable(m, 0)

    # -- the host's cancellation -------------------------------------------------------------------
    def test_the_hosts_cancellation_stops_the_call(self, any_m: ScriptManager) -> None:
        """``task.cancel()`` stops the script's call where it runs (a worker
        too): no step runs after ``CancelledError`` reached the host."""
        m = any_m
        ticks: list[int] = []
        after: list[int] = []

        async def main() -> None:
            task = asyncio.ensure_future(m.call_function_async(self.scripts.ticker, [lambda: ticks.append(1)]))
            while len(ticks) < 3 and not task.done():
                await asyncio.sleep(0.005)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            seen = len(ticks)
            await asyncio.sleep(LIMIT / 2)  # many of the ticker's steps, were it still running
            after.append(len(ticks) - seen)

        self.run(m, lambda: asyncio.wait_for(main(), OUTER))
        assert after == [0], f"the call ran on after its task was cancelled ({after[0]} more steps)"
        self.still_usable(m, 0)

    def test_the_hosts_timeout_is_not_a_script_timeout(self, m: ScriptManager) -> None:
        async def main() -> None:
            with pytest.raises(asyncio.TimeoutError) as info:
                await asyncio.wait_for(m.call_function_async(self.scripts.sleeper), LIMIT / 5)
            assert not isinstance(info.value, ScriptTimeoutError)

        self.run(m, main)
        self.still_usable(m, 0)

    @pytest.mark.parametrize("kind", ["trusted without a limit", "sandboxed without a limit"])
    def test_without_a_limit_the_call_keeps_waiting(self, kind: str) -> None:
        m = self.make(kind)
        ticks: list[int] = []
        try:
            async def main() -> None:
                task = asyncio.ensure_future(m.call_function_async(self.scripts.ticker, [lambda: ticks.append(1)]))
                await asyncio.sleep(LIMIT * 2)  # past what a limited call would get
                assert not task.done()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task

            self.run(m, main)
            assert len(ticks) > 10
            self.still_usable(m, 0)
        finally:
            m.close()
