"""Awaited Wren calls (a fiber stepped on the caller's loop): the shared
cases of kryon_core.testing.awaited, and Wren's own. Past the deadline while
the fiber waits, the fiber is dropped and the script keeps its state; past it
inside a step, the instance traps as a synchronous call's timeout does (the
script restarts: the shared host-callback case's step waits past STEP_SLACK).
A timeout while the fiber waits names the line where it yielded (the
fiber's innermost frame of the script, read through wren_fiber_line)."""

from __future__ import annotations

import pytest

from kryon_core import ScriptManager, ScriptTimeoutError
from kryon_core.testing.awaited import AwaitedContract, AwaitedScripts

pytest.importorskip("kryon_wren")

SOURCE = """var N = 0
class A {
  static bump() {
    N = N + 1
    return N
  }
  static sleeper() { Fiber.yield(10000000) }
  static ticker(cb) {
    while (true) {
      cb.call()
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
  static nested() {
    var f = Fn.new { A.sleeper() }
    return f.call()
  }
}
"""

WREN = AwaitedScripts(
    language="wren",
    source=SOURCE,
    bystander="var K = 0\nclass B {\n  static inc() {\n    K = K + 1\n    return K\n  }\n}\n",
    bump="A.bump", quick="A.quick", sleeper="A.sleeper", sleeper_line=7, ticker="A.ticker",
    host_step="A.hostStep", inc="B.inc", step_overrun=1.3,
)


class TestWrenAwaited(AwaitedContract):
    scripts = WREN

    def test_a_timeout_names_the_innermost_line_of_the_script(self, m: ScriptManager) -> None:
        with pytest.raises(ScriptTimeoutError) as info:
            self.awaited(m, "A.nested")
        assert info.value.line == 7  # sleeper's Fiber.yield, under nested's Fn
        self.still_usable(m, 0)

    def test_endless_bare_yields_time_out(self, m: ScriptManager) -> None:
        with pytest.raises(ScriptTimeoutError) as info:
            self.awaited(m, "A.yielder")
        assert (info.value.language, info.value.script) == ("wren", "s")
        n = m.call_function("A.bump") - 1
        assert n > 10  # stepped many times, each short; state kept
        self.still_usable(m, n + 1)
