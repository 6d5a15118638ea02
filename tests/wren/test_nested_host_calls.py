"""Host calls nested inside a Wren VM (Wren -> host -> the same VM, as a
``Kryon.call`` of the script's own function): each nesting level runs on a
fiber the VM keeps (csrc/vm.c acquireApiFiber) instead of a new one per
call, and that stays right past the kept levels, after errors, across
collections, and when the script holds a host call's fiber (``Fiber.current``:
such a fiber is never given to a later call)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("kryon_wren")

from kryon_core import ScriptManager, SecurityPolicy  # noqa: E402

SOURCE = """\
import "kryon" for Kryon
class R {
  static noop(x) { x }
  static many(n) {
    var sum = 0
    for (i in 1..n) sum = sum + Kryon.call("r.R.noop", i)
    return sum
  }
  static collect(x) {
    System.gc()
    return x
  }
  static depth(n) {
    if (n == 0) return Kryon.call("r.R.collect", 0)
    var list = [n]
    var inner = Kryon.call("r.R.depth", [n - 1])
    return inner + list[0] - n + 1
  }
  static failing(x) { Fiber.abort("inner failed %(x)") }
  static catchNested() {
    var f = Fiber.new { Kryon.call("r.R.failing", [3]) }
    f.try()
    return f.error
  }
  static keep(x) {
    __kept = Fiber.current
    return x
  }
  static resumeKept(x) {
    var same = __kept == Fiber.current
    var f = Fiber.new { __kept.transfer() }
    f.try()
    return [same, f.error]
  }
  static holdThenResume() {
    Kryon.call("r.R.keep", 1)
    return Kryon.call("r.R.resumeKept", 2)
  }
}
"""


@pytest.fixture
def m() -> Iterator[ScriptManager]:
    manager = ScriptManager(cache=False, policy=SecurityPolicy.trusted(), output=lambda lang, text: None)
    manager.load_script_from_source("r", "wren", SOURCE)
    yield manager
    manager.close()


def allocated(m: ScriptManager) -> int:
    state = m.engine("wren").script_state("r")
    return int(state.pool.gate.run(state.vm.bytes_allocated))


def test_nested_calls_allocate_no_fiber(m: ScriptManager) -> None:
    """A nested call used to make a fiber (and its stack and frames) each
    time: 200 of them grew the heap by ~130 KiB; now by nothing."""
    assert m.call_function("r.R.many", [10]) == 55
    before = allocated(m)
    assert m.call_function("r.R.many", [200]) == 20100
    assert allocated(m) - before < 1024


@pytest.mark.parametrize("levels", [1, 7, 8, 9, 30])
def test_nesting_past_the_kept_levels_gives_every_result(m: ScriptManager, levels: int) -> None:
    assert m.call_function("r.R.depth", [levels]) == levels
    before = allocated(m)
    assert m.call_function("r.R.many", [50]) == 1275, "every level was given back"
    assert allocated(m) - before < 1024


def test_an_error_in_a_nested_call_gives_its_level_back(m: ScriptManager) -> None:
    for _ in range(3):
        error = m.call_function("r.R.catchNested")
        assert "inner failed 3" in error
    before = allocated(m)
    assert m.call_function("r.R.many", [50]) == 1275
    assert allocated(m) - before < 1024


def test_a_fiber_the_script_holds_is_not_given_to_a_later_call(m: ScriptManager) -> None:
    """``Fiber.current`` inside one nested call, then a transfer to it from
    the next nested call at the same level: it must find the first call's
    fiber, finished, not the running call's."""
    for _ in range(2):
        same, error = m.call_function("r.R.holdThenResume")
        assert same is False
        assert error == "Cannot transfer to a finished fiber."
    assert m.call_function("r.R.many", [5]) == 15, "the VM goes on"
