"""Host calls nested inside a Wren VM (Wren -> host -> the same VM, as a
``Kryon.call`` of the script's own function): each nesting level runs on a
fiber the VM keeps (csrc/vm.c acquireApiFiber) instead of a new one per call,
and that stays right past the kept levels, after errors and across
collections."""

from __future__ import annotations

import pytest

pytest.importorskip("kryon_wren")

from kryon_core import ScriptManager, SecurityPolicy  # noqa: E402

SOURCE = """\
import "kryon" for Kryon
class R {
  static probe(x) {
    __seen.add(Fiber.current)
    System.gc()
    return x
  }
  static sameFiber() {
    __seen = []
    var a = Kryon.call("r.R.probe", [1])
    var b = Kryon.call("r.R.probe", ["two"])
    return a == 1 && b == "two" && __seen[0] == __seen[1] && __seen[0] != Fiber.current
  }
  static depth(n) {
    if (n == 0) return 0
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
}
"""


@pytest.fixture
def m() -> ScriptManager:
    manager = ScriptManager(cache=False, policy=SecurityPolicy.trusted(), output=lambda lang, text: None)
    manager.load_script_from_source("r", "wren", SOURCE)
    yield manager
    manager.close()


def test_nested_calls_at_one_level_reuse_one_fiber(m: ScriptManager) -> None:
    assert m.call_function("r.R.sameFiber") is True
    assert m.call_function("r.R.sameFiber") is True


@pytest.mark.parametrize("levels", [1, 7, 8, 9, 30])
def test_nesting_past_the_kept_levels_gives_every_result(m: ScriptManager, levels: int) -> None:
    assert m.call_function("r.R.depth", [levels]) == levels
    assert m.call_function("r.R.sameFiber") is True, "every level was given back"


def test_an_error_in_a_nested_call_gives_its_level_back(m: ScriptManager) -> None:
    for _ in range(3):
        error = m.call_function("r.R.catchNested")
        assert "inner failed 3" in error
        assert m.call_function("r.R.sameFiber") is True
