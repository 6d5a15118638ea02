"""An awaited Python or Lisp call is bounded by the policy's time_limit as a
whole, trusted (the coroutine stepped on the caller's loop) and sandboxed (the
coroutine run in the worker's loop): every step and every await in between
share one deadline (kryon_core.awaited). Past it the coroutine is abandoned
(closed in process, its task cancelled in the worker, with what it started),
its finally blocks run under a cleanup budget, and the call raises
ScriptTimeoutError; the script keeps its globals and a bystander its state.
Trusted policies without a limit keep waiting; the host's own cancellation
still works. Wall times are never asserted: "did not wait forever" is an
outer wait_for of many budgets."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

from kryon_core import ScriptManager, ScriptTimeoutError, SecurityPolicy

pytest.importorskip("kryon_python")
pytest.importorskip("kryon_lisp")

LIMIT = 0.5
OUTER = LIMIT * 12

PYTHON = """import asyncio
n = 0
def bump():
    global n
    n += 1
    return n
async def sleeper():
    await asyncio.sleep(10 ** 6)
async def waiter():
    await asyncio.Event().wait()
async def napper():
    global n
    while True:
        n += 1
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
"""

LISP = """(import asyncio)
(setv n 0)
(defn bump [] (global n) (setv n (+ n 1)) n)
(defn/a sleeper [] (await (asyncio.sleep 1000000)))
(defn/a waiter [] (await (.wait (asyncio.Event))))
(defn/a napper [] (global n) (while True (setv n (+ n 1)) (await (asyncio.sleep 0.005))))
(defn/a closing [] (global n) (try (await (asyncio.sleep 1000000)) (finally (setv n -100))))
(defn/a quick [x] (await (asyncio.sleep 0.001)) (+ x n))
"""

POLICIES = {
    "sandboxed": SecurityPolicy.sandboxed(time_limit=LIMIT, allowed_modules={"asyncio"}),
    "trusted with a limit": SecurityPolicy.trusted(time_limit=LIMIT),
}
needs_linux = pytest.mark.skipif(sys.platform != "linux", reason="the worker sandbox uses Linux limits")


def _manager(language: str, policy: SecurityPolicy) -> ScriptManager:
    m = ScriptManager(policy=policy, cache=False, output=lambda lang, text: None)
    m.load_script_from_source("s", language, PYTHON if language == "python" else LISP)
    bystander = "k = 0\ndef inc():\n    global k\n    k += 1\n    return k\n" if language == "python" else \
        "(setv k 0)\n(defn inc [] (global k) (setv k (+ k 1)) k)\n"
    m.load_script_from_source("bystander", language, bystander)
    assert m.call_function("bystander.inc") == 1
    return m


@pytest.fixture(params=[(lang, pol) for lang in ("python", "lisp") for pol in sorted(POLICIES)],
                ids=lambda p: f"{p[0]}-{p[1]}")
def m(request):
    language, policy = request.param
    if policy == "sandboxed" and sys.platform != "linux":
        pytest.skip("the worker sandbox uses Linux limits")
    mgr = _manager(language, POLICIES[policy])
    mgr.kind = request.param  # type: ignore[attr-defined]
    yield mgr
    mgr.close()


def _await(m: ScriptManager, name: str, *args):
    return asyncio.run(asyncio.wait_for(m.call_function_async(name, list(args)), OUTER))


def _still_usable(m: ScriptManager, n: int) -> None:
    assert m.call_function("s.bump") == n + 1  # globals kept
    assert _await(m, "s.quick", 1) == n + 2
    assert m.call_function("bystander.inc") == 2


@pytest.mark.parametrize("name", ["sleeper", "waiter", "napper"])
def test_waiting_past_the_budget_times_out(m, name):
    with pytest.raises(ScriptTimeoutError) as info:
        _await(m, f"s.{name}")
    assert (info.value.language, info.value.script) == (m.kind[0], "s")
    if m.kind == ("python", "trusted with a limit"):
        assert info.value.line == {"sleeper": 8, "waiter": 10, "napper": 15}[name]
    n = m.call_function("s.bump") - 1
    assert n > 10 if name == "napper" else n == 0  # the napper stepped many times, each short
    _still_usable(m, n + 1)


def test_the_abandoned_coroutine_unwinds(m):
    with pytest.raises(ScriptTimeoutError):
        _await(m, "s.closing")
    assert m.call_function("s.bump") == -99  # its finally block ran
    _still_usable(m, -99)


def test_the_hosts_own_cancellation_is_not_a_timeout(m):
    async def main() -> None:
        with pytest.raises(asyncio.TimeoutError) as info:
            await asyncio.wait_for(m.call_function_async("s.sleeper"), LIMIT / 5)
        assert not isinstance(info.value, ScriptTimeoutError)

    asyncio.run(main())
    time.sleep(LIMIT * 1.5)  # a sandboxed worker finishes the call it was asked for meanwhile
    _still_usable(m, 0)


@pytest.fixture(params=sorted(POLICIES))
def py(request):
    if request.param == "sandboxed" and sys.platform != "linux":
        pytest.skip("the worker sandbox uses Linux limits")
    mgr = _manager("python", POLICIES[request.param])
    yield mgr
    mgr.close()


def test_short_steps_with_busy_work_between_time_out(py):
    with pytest.raises(ScriptTimeoutError):
        _await(py, "s.busy")
    n = py.call_function("s.bump")
    assert n > 1
    _still_usable(py, n)


def test_a_coroutine_that_swallows_the_cancellation_is_ended(py):
    with pytest.raises(ScriptTimeoutError):
        _await(py, "s.stubborn")
    _still_usable(py, 0)


@needs_linux
def test_tasks_the_abandoned_call_started_stop_in_the_worker():
    mgr = _manager("python", POLICIES["sandboxed"])
    try:
        with pytest.raises(ScriptTimeoutError):
            _await(mgr, "s.spawner")
        n = mgr.call_function("s.bump")
        assert n > 5  # the spawned task ran while the call waited
        _await(mgr, "s.quick", 0)
        assert _await(mgr, "s.quick", 0) == n  # ... and runs no more, not even while the loop turns again
    finally:
        mgr.close()


def test_the_deadline_lands_in_a_host_callback_during_a_step():
    mgr = _manager("python", POLICIES["trusted with a limit"])
    try:
        calls = []
        started = time.monotonic()

        def eat_the_budget() -> None:
            calls.append(1)
            time.sleep(max(0.0, started + LIMIT * 1.1 - time.monotonic()))  # the deadline has surely passed

        # 0.6 of the budget asleep, then a step whose callback takes it past the deadline: a step with a fresh
        # time_limit of its own would finish its loop
        with pytest.raises(ScriptTimeoutError):
            _await(mgr, "s.host_step", LIMIT * 0.6, eat_the_budget)
        assert calls == [1]
        _still_usable(mgr, 0)
    finally:
        mgr.close()


@pytest.mark.parametrize("language", ["python", "lisp"])
def test_trusted_without_a_limit_keeps_waiting(language):
    mgr = _manager(language, SecurityPolicy.trusted())
    try:
        async def main() -> None:
            task = asyncio.ensure_future(mgr.call_function_async("s.napper"))
            await asyncio.sleep(LIMIT * 2)
            assert not task.done()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        n = mgr.call_function("s.bump")
        assert n > 10
        assert asyncio.run(mgr.call_function_async("s.quick", [1])) == n + 1
    finally:
        mgr.close()
