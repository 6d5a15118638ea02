"""A Wren script that fills its linear memory to just under its cap and then
enters the host (issue 10): ``Kryon.call`` (to itself, to another script, to a
host function that raises, one whose string result must be made in the VM),
``Kryon.log`` and the DOM methods must end in a clean MemoryLimitError (or
the script's own catchable error), never a hang or a trap that takes the
host down, and the host and other scripts keep working. Each sweep runs in a
subprocess, so a hang fails the test through the subprocess timeout."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SWEEP = textwrap.dedent('''
    import sys
    from kryon_core import Document, MemoryLimitError, ScriptError, ScriptManager, SecurityPolicy
    CAP = 4 * 1024 * 1024
    how = sys.argv[1]
    m = ScriptManager(policy=SecurityPolicy.sandboxed(memory_limit=CAP, time_limit=20), cache=False,
                      output=lambda lang, text: None)
    doc = m.setup_dom_bridge(Document())
    doc.append_child(doc.root, doc.create_element("div", {"id": "box", "title": "\\u00e9" * 300}))
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
    # the most list nodes that fit: the sweep then steps the script towards its cap 4 bytes at a time
    lo, hi = 0, 400000
    while lo < hi:
        mid = (lo + hi + 1) // 2
        try:
            m.call_function("evil.E.attack", [mid, 0, "fill"])
            lo = mid
        except MemoryLimitError:
            hi = mid - 1
    outcomes = {}
    for n in range(lo - 24, lo + 2):
        for pad in range(0, 96, 4):
            try:
                m.call_function("evil.E.attack", [n, pad, how])
                kind = "returned"
            except MemoryLimitError:
                kind = "full"
            except ScriptError as exc:
                kind = type(exc).__name__
            outcomes[kind] = outcomes.get(kind, 0) + 1
    m.call_function("evil.E.attack", [0, 0, "fill"])
    assert m.call_function("other.O.one") == 1 and m.call_function("evil.E.one") == 1
    print(outcomes)
    print("alive")
''')


@pytest.mark.parametrize("how", ["log", "self", "other", "dom", "list", "raise", "caught", "text"])
def test_host_entries_from_just_under_the_cap_never_hang(how):
    done = subprocess.run([sys.executable, "-c", SWEEP, how], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert done.stdout.rstrip().endswith("alive"), done.stdout
    assert "'full'" in done.stdout, done.stdout  # the sweep crossed the cap
    assert ("'ScriptRuntimeError'" if how == "raise" else "'returned'") in done.stdout, done.stdout
