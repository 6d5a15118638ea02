"""Awaited Python and Lisp calls, trusted (the coroutine stepped on the
caller's loop) and sandboxed (the coroutine run in the worker's loop): the
shared cases of kryon_core.testing.awaited, and their own. Past the deadline
the coroutine is abandoned (closed in process, its task cancelled in the
worker, with what it started) and its finally blocks run under a cleanup
budget; the host's cancellation stops a worker's call too, and one whose
unwinding swallows it is ended by restarting the worker."""

from __future__ import annotations

import asyncio
import sys

import pytest

from kryon_core import ScriptManager, ScriptTimeoutError
from kryon_core.testing.awaited import LIMIT, OUTER, AwaitedContract, AwaitedScripts

pytest.importorskip("kryon_python")
pytest.importorskip("kryon_lisp")

if sys.platform != "linux":
    pytest.skip("the worker sandbox uses Linux limits", allow_module_level=True)

PYTHON = """import asyncio
n = 0
def bump():
    global n
    n += 1
    return n
async def sleeper():
    await asyncio.sleep(10 ** 6)
async def ticker(cb):
    while True:
        cb()
        await asyncio.sleep(0.005)
async def busy():
    global n
    while True:
        n += 1
        await asyncio.sleep(0)
        end = n + 20000
        k = n
        while k < end:
            k += 1
async def closing():
    global n
    try:
        await asyncio.sleep(10 ** 6)
    finally:
        n = -100
async def stubborn():
    while True:
        try:
            await asyncio.sleep(10)
        except BaseException:
            pass
async def spawner():
    async def forever():
        global n
        while True:
            n += 1
            await asyncio.sleep(0.002)
    asyncio.ensure_future(forever())
    await asyncio.sleep(10 ** 6)
async def host_step(wait, cb):
    await asyncio.sleep(wait)
    cb()
    k = 0
    for i in range(200000):
        k += i
    return "finished"
async def quick(x):
    await asyncio.sleep(0.001)
    return x + n
def spin(cb):
    cb()
    while True:
        pass
"""

LISP = """(import asyncio)
(setv n 0)
(defn bump [] (global n) (setv n (+ n 1)) n)
(defn/a sleeper [] (await (asyncio.sleep 1000000)))
(defn/a ticker [cb] (while True (cb) (await (asyncio.sleep 0.005))))
(defn/a closing [] (global n) (try (await (asyncio.sleep 1000000)) (finally (setv n -100))))
(defn/a host-step [wait cb]
  (await (asyncio.sleep wait))
  (cb)
  (setv k 0)
  (for [i (range 200000)] (setv k (+ k i)))
  "finished")
(defn/a quick [x] (await (asyncio.sleep 0.001)) (+ x n))
"""

PY = AwaitedScripts(
    language="python",
    source=PYTHON,
    bystander="k = 0\ndef inc():\n    global k\n    k += 1\n    return k\n",
    bump="s.bump", quick="s.quick", sleeper="s.sleeper", sleeper_line=8, ticker="s.ticker",
    host_step="s.host_step", inc="bystander.inc", sleep_unit=1.0,
    sandbox_overrides={"allowed_modules": {"asyncio"}},
)

LISP_SCRIPTS = AwaitedScripts(
    language="lisp",
    source=LISP,
    bystander="(setv k 0)\n(defn inc [] (global k) (setv k (+ k 1)) k)\n",
    bump="s.bump", quick="s.quick", sleeper="s.sleeper", sleeper_line=4, ticker="s.ticker",
    host_step="s.host-step", inc="bystander.inc", sleep_unit=1.0,
    sandbox_overrides={"allowed_modules": {"asyncio"}},
)


class TestPythonAwaited(AwaitedContract):
    scripts = PY

    def test_the_abandoned_coroutine_unwinds(self, m: ScriptManager) -> None:
        with pytest.raises(ScriptTimeoutError):
            self.awaited(m, "s.closing")
        assert m.call_function("s.bump") == -99  # its finally block ran
        self.still_usable(m, -99)

    def test_short_steps_with_busy_work_between_time_out(self, m: ScriptManager) -> None:
        with pytest.raises(ScriptTimeoutError):
            self.awaited(m, "s.busy")
        n = m.call_function("s.bump")
        assert n > 1
        self.still_usable(m, n)

    def test_a_coroutine_that_swallows_the_cancellation_is_ended(self, m: ScriptManager) -> None:
        with pytest.raises(ScriptTimeoutError):
            self.awaited(m, "s.stubborn")
        self.still_usable(m, 0)

    def test_tasks_the_abandoned_call_started_stop_in_the_worker(self) -> None:
        m = self.make("sandboxed with a limit")
        try:
            with pytest.raises(ScriptTimeoutError):
                self.awaited(m, "s.spawner")
            n = m.call_function("s.bump")
            assert n > 5  # the spawned task ran while the call waited
            self.awaited(m, "s.quick", 0)
            assert self.awaited(m, "s.quick", 0) == n  # ... and runs no more, not even while the loop turns again
        finally:
            m.close()

    @pytest.mark.parametrize("cancels", [1, 2])
    def test_a_worker_call_that_swallows_the_hosts_cancellation_is_ended(self, cancels: int) -> None:
        """Without a time limit nothing else would end it: the worker is
        stopped past the grace and restarts (the script's state starts over);
        the bystander's worker is not touched. A second cancellation while
        the host waits for that does not leave the worker running."""
        m = self.make("sandboxed without a limit")
        try:
            assert m.call_function("s.bump") == 1

            async def main() -> None:
                task = asyncio.ensure_future(m.call_function_async("s.stubborn"))
                await asyncio.sleep(LIMIT / 2)
                for _ in range(cancels):
                    task.cancel()
                    await asyncio.sleep(LIMIT / 5)
                with pytest.raises(asyncio.CancelledError):
                    await task

            asyncio.run(asyncio.wait_for(main(), OUTER))
            assert m.call_function("s.bump") == 1, "the worker was restarted, the script reloaded"
            assert self.awaited(m, "s.quick", 1) == 2
            assert m.call_function("bystander.inc") == 2, "the bystander keeps its state"
        finally:
            m.close()


    def test_an_awaited_synchronous_worker_call_is_stopped_by_the_hosts_cancellation(self) -> None:
        m = self.make("sandboxed without a limit")
        try:
            started: list[int] = []

            async def main() -> None:
                task = asyncio.ensure_future(m.call_function_async("s.spin", [lambda: started.append(1)]))
                while not started:
                    await asyncio.sleep(0.005)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task

            asyncio.run(asyncio.wait_for(main(), OUTER))
            self.still_usable(m, 0)  # the worker's endless loop was interrupted, its state kept
        finally:
            m.close()


class TestLispAwaited(AwaitedContract):
    scripts = LISP_SCRIPTS

    def test_the_abandoned_coroutine_unwinds(self, m: ScriptManager) -> None:
        with pytest.raises(ScriptTimeoutError):
            self.awaited(m, "s.closing")
        assert m.call_function("s.bump") == -99  # its finally block ran
        self.still_usable(m, -99)
