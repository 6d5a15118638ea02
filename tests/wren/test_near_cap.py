"""A Wren script that fills its linear memory to just under its cap and then
enters the host (issue 10): ``Kryon.call`` (to itself, to another script, to a
host function that raises, one whose string result must be made in the VM),
``Kryon.log`` and the DOM methods must end in a clean MemoryLimitError (or
the script's own catchable error), never a hang or a trap that takes the
host down, and the host and other scripts keep working. Each sweep runs in a
subprocess (kryon_core.testing.near_cap), so a hang fails the test through
the subprocess timeout."""

from __future__ import annotations

import textwrap

import pytest

from kryon_core.testing.near_cap import run_sweep

SWEEP = textwrap.dedent('''
    import sys
    from kryon_core.testing.near_cap import capped_host, report, sweep_host_entries
    how = sys.argv[1]
    m, doc = capped_host(4 * 1024 * 1024, cache=False)
    m.load_script_from_source("h", "python", "def text():\\n    return 'z' * 200\\n\\ndef boom():\\n    return 1 / 0\\n")
    m.load_script_from_source("other", "wren", "class O {\\n  static one() { 1 }\\n}\\n")
    m.load_script_from_source("evil", "wren", """import "kryon" for Kryon
    class E {
      static one() { 1 }
      static fill(n, pad) {
        var node = null
        for (i in 0...n) node = [node]
        return [node, "y" * pad]
      }
      static attack(n, pad, how) {
        var keep = fill(n, pad)
        if (how == "log") return Kryon.log("x")
        if (how == "self") return Kryon.call("evil.E.one")
        if (how == "other") return Kryon.call("other.O.one")
        if (how == "dom") return Kryon.getProperty("box", "title").count
        if (how == "list") return Kryon.getElementsByTag("div").count
        if (how == "raise") return Kryon.call("h.boom")
        if (how == "caught") {
          var f = Fiber.new { Kryon.call("h.boom") }
          f.try()
          return 0
        }
        if (how == "text") return Kryon.call("h.text").count
        return keep.count
      }
    }
    """)
    m.call_function("evil.E.one")
    # the most list nodes that fit, then the grid steps the script towards its cap 4 bytes at a time
    outcomes = sweep_host_entries(m, "evil.E.attack", how, "evil", upper=400000, raisers=("h",))  # h.boom raises
    assert m.call_function("other.O.one") == 1 and m.call_function("evil.E.one") == 1
    report(outcomes)
''')


@pytest.mark.parametrize("how", ["log", "self", "other", "dom", "list", "raise", "caught", "text"])
def test_host_entries_from_just_under_the_cap_never_hang(how):
    outcomes = run_sweep(SWEEP, how, timeout=240)
    assert "full" in outcomes, outcomes  # the sweep crossed the cap
    assert ("ScriptRuntimeError" if how == "raise" else "returned") in outcomes, outcomes
