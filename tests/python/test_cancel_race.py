"""A cancellation stops only the call it was meant for. The host chooses the
worker request to interrupt, then signals; if that call ends in between and
another thread's call starts on the same worker, the signal must not stop
the new call. The race is provoked deterministically with the canceller's
test hook (``kryon_core.isolation.testing.interrupt_hook``): the hook lets
the cancelled call end and the next one start before the interrupt goes."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from typing import Any

import pytest

from kryon_core import Document, ScriptManager, SecurityPolicy
from kryon_core.isolation.testing import interrupt_hook

pytest.importorskip("kryon_python")
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the worker sandbox uses Linux limits")

SOURCE = """import kryon
def first():
    kryon.set_variable('first', 1)
    while kryon.get_variable('go') != 1:
        pass
    return 'first ended on its own'
def second():
    kryon.set_variable('second', 1)
    steps = 0
    for i in range(STEPS):  # no host call: the signal lands in script code
        steps += 1
    return steps
"""
#: bounds the test's waits (never reached when things work)
OUTER = 60.0
#: the second call's loop: long past the moment the interrupt is sent (a second or so)
STEPS = 20_000_000


def _wait_for(doc: Document, name: str) -> None:
    give_up = time.monotonic() + OUTER
    while doc.get_variable(name) != 1:
        assert time.monotonic() < give_up, f"{name} never started"
        time.sleep(0.002)


@pytest.mark.parametrize("language", ["python", "lisp"])
def test_an_interrupt_meant_for_an_ended_call_does_not_stop_the_next(language: str) -> None:
    if language == "lisp":
        pytest.importorskip("kryon_lisp")
    source = (SOURCE if language == "python" else LISP_SOURCE).replace("STEPS", str(STEPS))
    with ScriptManager(cache=False, policy=SecurityPolicy.sandboxed(time_limit=OUTER)) as m:
        doc = m.setup_dom_bridge(Document())
        m.load_script_from_source("s", language, source)
        results: list[Any] = []
        hooked: list[int] = []
        second: threading.Thread | None = None

        def run_second() -> None:
            try:
                results.append(m.call_function("s.second"))
            except Exception as exc:  # noqa: BLE001 - the test reports it
                results.append(exc)

        def hook() -> None:  # the canceller chose the first call's request; it has not signalled yet
            nonlocal second
            hooked.append(1)
            if len(hooked) > 1:
                return
            doc.set_variable("go", 1)  # the first call ends on its own ...
            second = threading.Thread(target=run_second)
            second.start()  # ... and another thread's call starts on the same worker
            _wait_for(doc, "second")
            time.sleep(0.1)  # its host call returned: it loops in script code

        async def main() -> None:
            task = asyncio.ensure_future(m.call_function_async("s.first"))
            await asyncio.get_running_loop().run_in_executor(None, _wait_for, doc, "first")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        with interrupt_hook(hook):
            asyncio.run(asyncio.wait_for(main(), OUTER))
        assert hooked, "the canceller sent its interrupt"
        assert second is not None
        second.join(OUTER)
        assert results == [STEPS], f"the second call ran to its end: {results}"
        assert m.call_function("s.first") == "first ended on its own", "the worker keeps working"


LISP_SOURCE = """(defn first []
  (set-variable! "first" 1)
  (while (!= (get-variable "go") 1) None)
  "first ended on its own")
(defn second []
  (set-variable! "second" 1)
  (setv steps 0)
  (for [i (range STEPS)] (+= steps 1))
  steps)
"""
