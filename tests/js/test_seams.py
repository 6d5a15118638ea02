"""kryon-js on the core seams: trust between scripts by every route, one gate
per script runtime (threads calling into each other), evaluate, check_policy
and reload that keeps state."""

from __future__ import annotations

from functools import partial

import pytest

from kryon_core import (
    AccessDeniedError,
    CompileError,
    Document,
    ScriptError,
    ScriptManager,
    ScriptRuntimeError,
    SecurityPolicy,
    UnsupportedPolicyError,
)
from kryon_core.testing.concurrency import run_threads

pytest.importorskip("kryon_js")

JS = "javascript"
APP = """
function secret() { return "the app's secret"; }
function handOut() { return secret; }
function publish() { kryon.createShared("leak", { fn: secret, n: 1 }); }
function fire() { kryon.emitCustomEvent("box", "leak", { fn: secret }); }
"""
INTRUDER = """
function byQualified() { return kryon.call("app.secret"); }
function byBare() { return kryon.call("secret"); }
function viaRef() { return kryon.call("app.handOut")(); }
function viaShared() { return kryon.getShared("leak").fn(); }
let got = null;
function listen() { kryon.addEventListener("box", "leak", (e) => { got = e.data.fn(); }); }
function received() { return got; }
"""


def quiet(policy: SecurityPolicy) -> ScriptManager:
    return ScriptManager(cache_dir=False, policy=policy, output=lambda lang, text: None)


@pytest.fixture
def trust():
    m = quiet(SecurityPolicy.trusted())
    doc = m.setup_dom_bridge(Document())
    doc.append_child(doc.root, doc.create_element("box", {"id": "box"}))
    m.load_script_from_source("app", JS, APP)
    m.load_script_from_source("intruder", JS, INTRUDER, policy=SecurityPolicy.sandboxed())
    yield m, doc
    m.close()


@pytest.mark.parametrize("route", ["byQualified", "byBare", "viaRef", "viaShared"])
def test_a_sandboxed_script_cannot_reach_a_trusted_function(trust, route):
    m, _ = trust
    m.call_function("app.publish")
    with pytest.raises(AccessDeniedError) as info:
        m.call_function(f"intruder.{route}")
    assert info.value.script == "intruder" and info.value.language == JS


def test_a_trusted_function_in_event_data_does_not_reach_a_sandboxed_listener(trust):
    m, doc = trust
    m.call_function("intruder.listen")
    m.call_function("app.fire")
    assert m.call_function("intruder.received") is None
    assert doc.errors and isinstance(doc.errors[-1], AccessDeniedError)


def test_exports_open_exactly_what_they_name(trust):
    m, _ = trust
    m.expose("app.secret", to=["intruder"])
    assert m.call_function("intruder.byQualified") == "the app's secret"
    assert m.call_function("intruder.byBare") == "the app's secret"
    with pytest.raises(AccessDeniedError):  # handOut itself is not exposed
        m.call_function("intruder.viaRef")
    m.expose("app.handOut", to=["intruder"])
    assert m.call_function("intruder.viaRef") == "the app's secret"
    m.unexpose("app.secret")
    with pytest.raises(AccessDeniedError):
        m.call_function("intruder.byQualified")


def test_a_script_exposes_its_own_function():
    m = quiet(SecurityPolicy.trusted())
    m.load_script_from_source("app", JS, 'function hello() { return "hi"; }\nkryon.expose("hello", ["guest"]);')
    m.load_script_from_source("guest", JS, 'function ask() { return kryon.call("app.hello"); }',
                              policy=SecurityPolicy.sandboxed())
    m.load_script_from_source("other", JS, 'function ask() { return kryon.call("app.hello"); }',
                              policy=SecurityPolicy.sandboxed())
    assert m.call_function("guest.ask") == "hi"
    with pytest.raises(AccessDeniedError):
        m.call_function("other.ask")
    m.close()


# -- gates ------------------------------------------------------------------------------
def test_two_threads_inside_two_scripts_call_into_each_other():
    m = quiet(SecurityPolicy.sandboxed(time_limit=30))
    for me, other in (("a", "b"), ("b", "a")):
        m.load_script_from_source(me, JS, f"""
            let n = 0;
            function poke() {{ n++; return n; }}
            function work(k) {{ let s = 0; for (let i = 0; i < k; i++) s += kryon.call("{other}.poke"); return s > 0; }}
        """)
    results = []

    def run(name):
        results.append(m.call_function(f"{name}.work", [300]))

    run_threads([partial(run, n) for n in ("a", "b")], timeout=60)  # fails if they deadlock
    assert results == [True, True]
    assert m.call_function("a.poke") == 301 and m.call_function("b.poke") == 301
    m.close()


# -- evaluate -----------------------------------------------------------------------------
@pytest.mark.parametrize("policy", [SecurityPolicy.trusted(), SecurityPolicy.sandboxed()], ids=["trusted", "sandboxed"])
def test_evaluate_in_a_script(policy):
    m = quiet(policy)
    m.load_script_from_source("s", JS, "var base = 40;\nfunction get() { return base; }")
    assert m.evaluate(JS, "base + 2", script="s") == 42
    assert m.evaluate(JS, "function twice(x) { return 2 * x; }", script="s") is None
    assert m.call_function("s.twice", [21]) == 42, "a function evaluate defines is callable"
    assert m.evaluate(JS, "base = 1; [base, {k: 'v'}]", script="s") == [1, {"k": "v"}]
    assert m.call_function("s.get") == 1
    with pytest.raises(ScriptRuntimeError) as info:
        m.evaluate(JS, "1;\n\nthrow new Error('third line');", script="s")
    assert info.value.script == "s" and info.value.line == 3
    with pytest.raises(CompileError) as info:
        m.evaluate(JS, "let = ;", script="s")
    assert info.value.line == 1
    assert m.call_function("s.get") == 1, "a failed evaluation leaves the script as it was"
    m.close()


def test_evaluate_is_time_limited():
    from kryon_core import ScriptTimeoutError

    m = quiet(SecurityPolicy.sandboxed(time_limit=0.2))
    with pytest.raises(ScriptTimeoutError):
        m.evaluate(JS, "for (;;) {}")
    assert m.evaluate(JS, "6 * 7") == 42
    m.close()


# -- check_policy ---------------------------------------------------------------------------
@pytest.mark.parametrize("limits, field", [
    ({"memory_limit": 1024 * 1024}, "memory_limit"),
    ({"max_recursion": 100_000}, "max_recursion"),
    ({"time_limit": 0}, "time_limit"),
    ({"time_limit": -1.0}, "time_limit"),
])
def test_limits_the_engine_cannot_keep_are_refused(limits, field):
    policy = SecurityPolicy.sandboxed(**limits)
    with pytest.raises(UnsupportedPolicyError) as info:
        quiet(policy).engine(JS)
    assert info.value.limit == field and "javascript" in str(info.value).lower() or info.value.language == JS
    m = quiet(SecurityPolicy.trusted())
    with pytest.raises(UnsupportedPolicyError):
        m.load_script_from_source("s", JS, "1", policy=policy)
    assert "s" not in m.scripts
    m.close()


# -- reload that keeps state ------------------------------------------------------------------
POLICIES = [SecurityPolicy.trusted(), SecurityPolicy.sandboxed()]


@pytest.mark.parametrize("policy", POLICIES, ids=["trusted", "sandboxed"])
def test_reload_without_a_hook_keeps_data_the_new_version_leaves_unset(policy):
    m = quiet(policy)
    m.load_script_from_source("c", JS, """
        let count = 0; var names = []; let config = { mode: "dark" }; const fixed = 7;
        function bump(n) { count += 1; names.push(n); return count; }
    """)
    m.call_function("c.bump", ["a"])
    m.call_function("c.bump", ["b"])
    m.hot_reload_script("c", """
        let count; var names; let config = { mode: "light" }; const fixed = 8;
        function bump(n) { count += 10; names.push(n); return count; }
        function show() { return [count, names, config, fixed]; }
    """)
    assert m.call_function("c.show") == [2, ["a", "b"], {"mode": "light"}, 8]
    assert m.call_function("c.bump", ["c"]) == 12
    m.close()


@pytest.mark.parametrize("policy", POLICIES, ids=["trusted", "sandboxed"])
def test_reload_hook_gets_the_old_state_and_returns_the_new(policy):
    m = quiet(policy)
    m.load_script_from_source("c", JS, """
        let count = 5; let label = "v1"; const helper = () => 1; let blob = { f: () => 1, x: 1 };
        function get() { return count; }
    """)
    m.hot_reload_script("c", """
        let total = 0; let seen = null;
        function onReload(old) { seen = Object.keys(old).sort(); return { total: old.count * 10 }; }
        function get() { return [total, seen]; }
    """)
    assert m.call_function("c.get") == [50, ["count", "label"]], "functions and data holding functions are left out"
    m.hot_reload_script("c", """
        let kept = "unset";
        function onReload(old) { kept = old.total; }
        function get() { return kept; }
    """)
    assert m.call_function("c.get") == 50, "a hook may set the state itself"
    m.close()


@pytest.mark.parametrize("policy", POLICIES, ids=["trusted", "sandboxed"])
def test_a_failing_reload_hook_rolls_the_reload_back(policy):
    m = quiet(policy)
    doc = m.setup_dom_bridge(Document())
    doc.append_child(doc.root, doc.create_element("button", {"id": "b"}))
    m.load_script_from_source("c", JS, """
        let clicks = 0;
        kryon.addEventListener("b", "click", () => { clicks++; });
        function get() { return clicks; }
    """)
    doc.click("b")
    for broken in (
        'kryon.addEventListener("b", "click", () => {});\nfunction onReload(old) { throw new Error("hook broke"); }',
        'function onReload(old) { return 42; }',
        'const clicks = 0;\nfunction onReload(old) { return { clicks: 9 }; }',
    ):
        with pytest.raises(ScriptError):
            m.hot_reload_script("c", broken)
        assert doc.callback_counts()["listeners"] == 1
        doc.click("b")
        assert m.call_function("c.get") >= 2, "the old version keeps running with its state"
    assert m.call_function("c.get") == 4
    m.close()
