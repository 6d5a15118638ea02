"""Awaited JavaScript calls (QuickJS's job queue pumped on the caller's
loop): the shared cases of kryon_core.testing.awaited, and JavaScript's own.
Past the deadline the promise is forgotten and the jobs still queued in the
script's runtime are ended, so an abandoned chain does not run into the next
call; a bound handle's awaited call has the same deadline."""

from __future__ import annotations

import asyncio

import pytest

from kryon_core import ScriptManager, ScriptTimeoutError
from kryon_core.testing.awaited import OUTER, AwaitedContract, AwaitedScripts

pytest.importorskip("kryon_js")

SOURCE = """let n = 0;
function bump() { return ++n; }
async function never() {
  await new Promise(() => {});
}
async function ticker(cb) {
  for (;;) {
    cb();
    await new Promise((r) => setTimeout(r, 5));
  }
}
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

JS = AwaitedScripts(
    language="javascript",
    source=SOURCE,
    bystander="let k = 0; function inc() { return ++k; }",
    bump="s.bump", quick="s.quick", sleeper="s.never", ticker="s.ticker",
    host_step="s.slowHost", inc="bystander.inc", clock=True,
    sleeper_line=None,
    line_unknown="QuickJS keeps no position of a suspended async function that its API can read",
)


class TestJSAwaited(AwaitedContract):
    scripts = JS

    def test_a_bound_handle_awaited_times_out(self, m: ScriptManager) -> None:
        ref = m.function("s.never")
        with pytest.raises(ScriptTimeoutError):
            asyncio.run(asyncio.wait_for(ref.call_async(), OUTER))
        self.still_usable(m, 0)

    def test_jobs_of_an_abandoned_call_do_not_run_into_the_next(self, m: ScriptManager) -> None:
        with pytest.raises(ScriptTimeoutError):
            self.awaited(m, "s.twoChains")
        # the other spinning chain was ended: the next awaited call gets its whole budget
        self.still_usable(m, 0)
