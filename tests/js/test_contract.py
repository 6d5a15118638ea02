"""kryon-js against the engine contract suite (kryon_core.testing)."""

import pytest

from kryon_core.testing import EngineContract, Snippets

pytest.importorskip("kryon_js")

LIBRARY = """\
function add(a, b) {
  const sum = a + b;
  return sum;
}
function echo(x) { return x; }
function apply(f, x) { return f(x); }
function make_adder(n) { return (x) => x + n; }
function call_other(name, x) { return kryon.call(name, x); }
function fail() {
  throw new Error("boom");
}
function read_global() { return shared_setting; }
function shout(text) { console.log(text); }
function spin() { while (true) {} }
function hog() { const t = []; let i = 0; while (true) { i++; t.push("x".repeat(1024) + i); } }
function dive(n) { return dive(n + 1) + 1; }
function forbidden() { return require("fs").readFileSync("/etc/hostname", "utf8"); }
"""

DOM = """\
const btn = kryon.getElementById("btn");
kryon.addEventListener(btn, "click", (event) => {
  kryon.setProperty(event.target, "text", "clicked");
});
kryon.setVariable("ready", true);
setTimeout(() => kryon.setVariable("timer", "fired"), 100);
"""

JS = Snippets(
    language="javascript",
    library=LIBRARY,
    fail_line=10,
    dom=DOM,
    counter_v1="function version() { return 1; }",
    counter_v2="function version() { return 2; }",
    syntax_error="function version() {\n  return = 2;\n}\n",
    syntax_error_line=2,
    ident_a='var ident = "a";\nfunction get_ident() { return ident; }',
    ident_b='var ident = "b";\nfunction get_ident() { return ident; }',
    breakpoint_line=None,
    distinct_int_float=False,
    raise_statement='throw new Error("load fails");',
    evaluate=('var x = 40;', 'x + 2'),
    spin_statement="while (true) {}",
    nest="function nest(n) { if (n === 0) return 0; return nest(n - 1) + 1; }",
)


class TestJSContract(EngineContract):
    snippets = JS
