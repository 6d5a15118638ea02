"""String.replace sized by the script (issue 10): the result is sized before
it is built, bounded as ``*`` is (10^9 bytes) and allocated under the VM's
memory accounting. Before, it grew a buffer of its own outside that
accounting: 10^6 matches times a 2,000-byte replacement wrapped wasm32's
size_t and wrote out of bounds (a trap: the script restarted, its state
lost). Now the error is the script's to catch, its state stays, and a
bystander in another language keeps its own."""

from __future__ import annotations

import pytest

pytest.importorskip("kryon_wren")

from kryon_core import MemoryLimitError, ScriptManager, ScriptRuntimeError, SecurityPolicy  # noqa: E402

SOURCE = """\
var Hits = 0
class W {
  static bump() {
    Hits = Hits + 1
    return Hits
  }
  static grow(n) { ("a" * 1000000).replace("a", "b" * n).count }
  static caught(n) {
    var f = Fiber.new { ("a" * 1000000).replace("a", "b" * n) }
    f.try()
    return f.error
  }
  static results() {
    return ["abcabc".replace("b", "XY"), "aaa".replace("aa", "b"), "x".replace("y", "z"),
            "ééé".replace("é", ""), "ab".replace("ab", ""), "aXa".replace("a", "aa"), ("ab" * 3).replace("ba", "-")]
  }
}
"""


@pytest.fixture
def m():
    manager = ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=20), cache=False, output=lambda lang, text: None)
    manager.load_script_from_source("by", "lua", "n = 0 function bump() n = n + 1 return n end")
    manager.load_script_from_source("w", "wren", SOURCE)
    yield manager
    manager.close()


@pytest.mark.parametrize("n", [2000, 4295, 10 ** 6])
def test_a_replacement_past_the_string_bound_is_an_error_and_the_script_keeps_its_state(m, n):
    assert m.call_function("w.W.bump") == 1 and m.call_function("by.bump") == 1
    with pytest.raises(ScriptRuntimeError) as caught:
        m.call_function("w.W.grow", [n])
    err = caught.value
    assert (err.script, err.language, err.line) == ("w", "wren", 7) and "String too large." in str(err)
    assert m.call_function("w.W.caught", [n]) == "String too large."
    assert m.call_function("w.W.bump") == 2, "no restart: the module's state is kept"
    assert m.call_function("by.bump") == 2


def test_a_replacement_past_the_memory_limit_is_a_memory_limit_error(m):
    with pytest.raises(MemoryLimitError) as caught:
        m.call_function("w.W.grow", [500])  # 500 MB under the 256 MiB default cap
    assert (caught.value.script, caught.value.language) == ("w", "wren")
    assert m.call_function("by.bump") == 1
    assert m.call_function("w.W.results")[0] == "aXYcaXYc"


def test_replace_keeps_its_results(m):
    assert m.call_function("w.W.results") == ["aXYcaXYc", "ba", "x", "", "", "aaXaa", "a--b"]
