"""An awaited call is bounded by the policy's time_limit as a whole: the call,
every pump of QuickJS's job queue and the waiting in between share one
deadline (kryon_core.awaited). A promise that never settles, a chain of short
steps that never ends and a host callback that eats the budget inside a step
all end in ScriptTimeoutError; the abandoned promise's jobs do not run into
the next call, the script keeps its globals and a bystander its state.
Trusted policies (no limit) keep waiting; the host's own cancellation still
works. Wall times are never asserted: "did not wait forever" is an outer
asyncio.wait_for of many times the budget."""

from __future__ import annotations

import asyncio
import time

import pytest

from kryon_core import Document, ScriptManager, ScriptTimeoutError, SecurityPolicy

pytest.importorskip("kryon_js")

JS = "javascript"
LIMIT = 0.5
OUTER = LIMIT * 12  # "not forever"

SOURCE = """
let n = 0;
function bump() { return ++n; }
async function never() { n += 1; await new Promise(() => {}); }
async function ticking() { for (;;) { n += 1; await new Promise((r) => setTimeout(r, 1)); } }
async function twoChains() { const spin = async () => { for (;;) await null; }; await Promise.all([spin(), spin()]); }
async function quick(x) { await null; return x + n; }
async function slowHost(wait, cb) {
  const start = kryon.getCurrentTime();
  while (kryon.getCurrentTime() - start < wait) await new Promise((r) => setTimeout(r, 1));
  cb();  // the host callback takes the rest of the budget: the deadline lands inside this step
  let i = 0;
  for (; i < 1e6; i++);  // short: it would finish under a fresh time_limit of the step's own
  return "finished";
}
"""


def _manager(policy: SecurityPolicy) -> tuple[ScriptManager, Document]:
    m = ScriptManager(policy=policy, cache=False, output=lambda lang, text: None)
    doc = m.setup_dom_bridge()
    m.load_script_from_source("s", JS, SOURCE)
    m.load_script_from_source("bystander", JS, "let k = 0; function inc() { return ++k; }")
    assert m.call_function("bystander.inc") == 1
    return m, doc


@pytest.fixture
def sandboxed():
    m, doc = _manager(SecurityPolicy.sandboxed(time_limit=LIMIT))
    yield m, doc
    m.close()


async def _with_clock(doc: Document, awaitable):
    clock = asyncio.ensure_future(doc.run_clock(tick_ms=1))
    try:
        return await asyncio.wait_for(awaitable, OUTER)
    finally:
        clock.cancel()


def _still_usable(m: ScriptManager, before: int) -> None:
    assert m.call_function("s.bump") == before + 1  # globals kept
    assert asyncio.run(asyncio.wait_for(m.call_function_async("s.quick", [1]), OUTER)) == before + 2
    assert m.call_function("bystander.inc") == 2


def test_a_promise_that_never_settles_times_out(sandboxed):
    m, _ = sandboxed
    with pytest.raises(ScriptTimeoutError) as info:
        asyncio.run(asyncio.wait_for(m.call_function_async("s.never"), OUTER))
    assert (info.value.language, info.value.script) == (JS, "s")
    _still_usable(m, 1)


def test_endless_short_steps_time_out(sandboxed):
    m, doc = sandboxed
    with pytest.raises(ScriptTimeoutError):
        asyncio.run(_with_clock(doc, m.call_function_async("s.ticking")))
    n = m.call_function("s.bump")
    assert n > 10  # it did step many times, each short
    _still_usable(m, n)


def test_a_bound_handle_awaited_times_out(sandboxed):
    m, _ = sandboxed
    ref = m.function("s.never")
    with pytest.raises(ScriptTimeoutError):
        asyncio.run(asyncio.wait_for(ref.call_async(), OUTER))
    assert m.call_function("s.bump") == 2


def test_jobs_of_an_abandoned_call_do_not_run_into_the_next(sandboxed):
    m, _ = sandboxed
    with pytest.raises(ScriptTimeoutError):
        asyncio.run(asyncio.wait_for(m.call_function_async("s.twoChains"), OUTER))
    # the other spinning chain was ended: the next awaited call gets its whole budget
    _still_usable(m, 0)


def test_the_deadline_lands_in_a_host_callback_during_a_step(sandboxed):
    m, doc = sandboxed
    calls = []
    started = time.monotonic()

    def eat_the_budget() -> None:
        calls.append(1)
        time.sleep(max(0.0, started + LIMIT * 1.1 - time.monotonic()))  # the deadline has surely passed

    with pytest.raises(ScriptTimeoutError):
        # 0.6 of the budget waiting, then a step whose callback takes it past the deadline: a step with a fresh
        # time_limit of its own would finish
        asyncio.run(_with_clock(doc, m.call_function_async("s.slowHost", [LIMIT * 600, eat_the_budget])))
    assert calls == [1]
    _still_usable(m, 0)


def test_the_hosts_own_cancellation_is_not_a_timeout(sandboxed):
    m, _ = sandboxed

    async def main() -> None:
        with pytest.raises(asyncio.TimeoutError) as info:
            await asyncio.wait_for(m.call_function_async("s.never"), LIMIT / 5)
        assert not isinstance(info.value, ScriptTimeoutError)

    asyncio.run(main())
    _still_usable(m, 1)


def test_trusted_keeps_waiting():
    m, doc = _manager(SecurityPolicy.trusted())
    try:
        async def main() -> None:
            task = asyncio.ensure_future(m.call_function_async("s.never"))
            await asyncio.sleep(LIMIT * 2)  # past what a limited call would get
            assert not task.done()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        _still_usable(m, 1)
    finally:
        m.close()
