"""The DOM bridge's JavaScript entry points just under the memory cap (issue 10):
each ends in its result or in a MemoryLimitError naming the script and the
language, never in another error. The host builds some results inside the
script's runtime while its callback runs (the handles of
``getElementsByTag``, a non-ASCII string, a dict); near the cap QuickJS throws
``null`` or a message-less ``InternalError`` there, which reached the script as
a host error named ``JSException`` (a ``ScriptRuntimeError`` "JSException:
null" uncaught) until the host read it as the out-of-memory it is
(``inbound.failed``). Each policy's sweep runs in a subprocess."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("kryon_js")

SWEEP = textwrap.dedent(r'''
    import sys
    from kryon_core import Document, MemoryLimitError, ScriptError, ScriptManager, SecurityPolicy
    from kryon_core.testing.near_cap import most_that_fits
    CAP = 2 * 1024 * 1024
    policy = {"trusted": SecurityPolicy.trusted(memory_limit=CAP),
              "sandboxed": SecurityPolicy.sandboxed(memory_limit=CAP, time_limit=20)}[sys.argv[1]]
    m = ScriptManager(policy=policy, cache_dir=False, output=lambda lang, text: None)
    doc = m.setup_dom_bridge(Document())
    for i in range(5):
        doc.append_child(doc.root, doc.create_element("div", {"id": f"box{i}", "class": "c", "title": "\u00e9" * 300}))
    m.load_script_from_source("bystander", "javascript", "let n = 0; function bump() { return ++n; }")
    m.load_script_from_source("evil", "javascript", """
    let held = null, heard = 0;
    function fill(n) { let node = null; for (let i = 0; i < n; i++) node = {n: node}; return node; }
    function probeFill(n) { held = null; held = fill(n); held = null; return 0; }
    kryon.setVariable("v", ["\\u00e9".repeat(40), "\\u00e9".repeat(40), {a: [1, 2]}]);
    kryon.addEventListener("box3", "poke", (e) => { heard += 1; });
    const H = () => kryon.getElementById("box0");
    const routes = {
      getElementsByTag: () => kryon.getElementsByTag("div").length,
      getElementsByClass: () => kryon.getElementsByClass("c").length,
      getElementById: () => kryon.getElementById("box1") === null ? 0 : 1,
      createElement: () => { kryon.createElement("span", {a: 1, b: "\\u00e9"}); return 1; },
      appendChild: () => { kryon.appendChild("box1", kryon.createElement("i")); return 1; },
      removeElement: () => { const e = kryon.createElement("i"); kryon.appendChild("box2", e); kryon.removeElement(e); return 1; },
      getProperty: () => kryon.getProperty("box0", "title").length,
      "getProperty(handle)": () => kryon.getProperty(H(), "title").length,
      getStyle: () => { kryon.getStyle("box0"); return 1; },
      setStyle: () => { kryon.setStyle(H(), "color", "red"); return 1; },
      setProperty: () => { kryon.setProperty("box0", "data", {a: [1, 2], b: "\\u00e9"}); return 1; },
      hasClass: () => kryon.hasClass(H(), "c") ? 1 : 0,
      toggleClass: () => { kryon.toggleClass("box4", "d"); return 1; },
      addEventListener: () => { kryon.removeEventListener(kryon.addEventListener("box0", "x", () => 0)); return 1; },
      emitCustomEvent: () => { kryon.emitCustomEvent("box3", "poke", {a: "\\u00e9"}); return 1; },
      getVariable: () => kryon.getVariable("v").length,
      setVariable: () => { kryon.setVariable("w", [1, "\\u00e9", {b: 2}]); return 1; },
      watchVariable: () => { kryon.unwatchVariable(kryon.watchVariable("w", () => 0)); return 1; },
      animate: () => kryon.animate("box0", {property: "x", to_value: 1, duration_ms: 10}) > 0 ? 1 : 0,
      getCurrentTime: () => kryon.getCurrentTime() > 0 ? 1 : 0,
    };
    function attack(n, pad, how) {
      held = null;
      held = [fill(n), "y".repeat(pad)];
      try { return routes[how](); } finally { held = null; }
    }
    function names() { return Object.keys(routes); }
    """)
    before = m.call_function("bystander.bump")
    names = m.call_function("evil.names")
    for how in names:
        assert m.call_function("evil.attack", [0, 0, how]) >= 0, how
    lo = most_that_fits(lambda n: m.call_function("evil.probeFill", [n]), 200000)
    wrong = {}
    full = 0
    for how in names:
        for n in range(lo - 12, lo + 2):
            for pad in range(0, 96, 8):
                try:
                    m.call_function("evil.attack", [n, pad, how])
                except MemoryLimitError as exc:
                    assert exc.script == "evil" and exc.language == "javascript", (how, exc)
                    full += 1
                except ScriptError as exc:
                    wrong.setdefault(how, f"{type(exc).__name__}: {exc}")
        assert m.call_function("evil.attack", [0, 0, how]) >= 0, how  # with room again, the entry works
    assert m.call_function("bystander.bump") == before + 1
    print(full, wrong)
    print("alive")
''')


@pytest.mark.parametrize("policy", ["trusted", "sandboxed"])
def test_dom_entries_just_under_the_cap_fail_only_as_memory_limit(policy):
    done = subprocess.run([sys.executable, "-c", SWEEP, policy], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert done.stdout.rstrip().endswith("alive"), done.stdout
    full, _, wrong = done.stdout.splitlines()[-2].partition(" ")
    assert int(full) > 0, done.stdout  # the sweep crossed the cap
    assert wrong == "{}", wrong
