"""An awaited Wren call (a fiber stepped on the caller's loop) is bounded by
the policy's time_limit as a whole: every step and every Fiber.yield wait
share one deadline (kryon_core.awaited). Past it while the fiber waits, the
fiber is dropped and the call raises ScriptTimeoutError, the script keeping
its state; past it inside a step, the instance traps as a synchronous call's
timeout does (the script restarts). A bystander keeps its state either way.
Trusted policies keep waiting; the host's own cancellation still works. Wall
times are never asserted: "did not wait forever" is an outer wait_for."""

from __future__ import annotations

import asyncio
import time

import pytest

from kryon_core import ScriptManager, ScriptTimeoutError, SecurityPolicy

pytest.importorskip("kryon_wren")

LIMIT = 0.5
OUTER = LIMIT * 12

SOURCE = """var N = 0
class A {
  static bump() {
    N = N + 1
    return N
  }
  static sleeper() { Fiber.yield(10000000) }
  static napper() {
    while (true) {
      N = N + 1
      Fiber.yield(5)
    }
  }
  static yielder() {
    while (true) {
      N = N + 1
      Fiber.yield()
    }
  }
  static hostStep(wait, cb) {
    Fiber.yield(wait)
    cb.call()
    var i = 0
    while (i < 100000) i = i + 1
    return "finished"
  }
  static quick(x) {
    Fiber.yield(1)
    return x + N
  }
}
"""


def _manager(policy: SecurityPolicy) -> ScriptManager:
    m = ScriptManager(policy=policy, cache=False, output=lambda lang, text: None)
    m.load_script_from_source("s", "wren", SOURCE)
    m.load_script_from_source("bystander", "wren", "var K = 0\nclass B {\n  static inc() {\n    K = K + 1\n    return K\n  }\n}\n")
    assert m.call_function("B.inc") == 1
    return m


@pytest.fixture
def m():
    mgr = _manager(SecurityPolicy.sandboxed(time_limit=LIMIT))
    yield mgr
    mgr.close()


def _await(m: ScriptManager, name: str, *args):
    return asyncio.run(asyncio.wait_for(m.call_function_async(name, list(args)), OUTER))


def _still_usable(m: ScriptManager, n: int) -> None:
    assert m.call_function("A.bump") == n + 1  # globals kept
    assert _await(m, "A.quick", 1) == n + 2
    assert m.call_function("B.inc") == 2


@pytest.mark.parametrize("name", ["sleeper", "napper", "yielder"])
def test_waiting_past_the_budget_times_out(m, name):
    with pytest.raises(ScriptTimeoutError) as info:
        _await(m, f"A.{name}")
    assert (info.value.language, info.value.script) == ("wren", "s")
    n = m.call_function("A.bump") - 1
    assert n > 10 if name != "sleeper" else n == 0  # stepped many times, each short; state kept
    _still_usable(m, n + 1)


def test_the_deadline_lands_in_a_host_callback_during_a_step(m):
    calls = []
    started = time.monotonic()

    def eat_the_budget() -> None:
        calls.append(1)
        time.sleep(max(0.0, started + LIMIT * 1.3 - time.monotonic()))  # past the deadline and STEP_SLACK

    # 0.6 of the budget waiting, then a step whose callback takes it past the deadline: a step with a fresh
    # time_limit of its own would finish its loop
    with pytest.raises(ScriptTimeoutError):
        _await(m, "A.hostStep", LIMIT * 600, eat_the_budget)
    assert calls == [1]
    _still_usable(m, 0)  # the trap restarted the script; it works again


def test_the_hosts_own_cancellation_is_not_a_timeout(m):
    async def main() -> None:
        with pytest.raises(asyncio.TimeoutError) as info:
            await asyncio.wait_for(m.call_function_async("A.sleeper"), LIMIT / 5)
        assert not isinstance(info.value, ScriptTimeoutError)

    asyncio.run(main())
    _still_usable(m, 0)


def test_trusted_keeps_waiting():
    mgr = _manager(SecurityPolicy.trusted())
    try:
        async def main() -> None:
            task = asyncio.ensure_future(mgr.call_function_async("A.napper"))
            await asyncio.sleep(LIMIT * 2)
            assert not task.done()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        n = mgr.call_function("A.bump")
        assert n > 10
        assert asyncio.run(mgr.call_function_async("A.quick", [1])) == n + 1
    finally:
        mgr.close()
