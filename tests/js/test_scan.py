"""Parameter names read from a function's source text (kryon_js.scan), as
``functions()`` lists them: commas and brackets inside a default value, a
destructuring pattern, a string, a template or a comment do not split
parameters."""

from __future__ import annotations

import pytest

pytest.importorskip("kryon_js")

from kryon_js.scan import parse_params, scan_functions  # noqa: E402


@pytest.mark.parametrize(
    "source, names, variadic",
    [
        ("function f(a, b) { return a; }", ["a", "b"], False),
        ("async function (a = (1, 2), b) {}", ["a", "b"], False),
        ('function f({a, b}, [c, d], e = "x,)") { return 1 }', ["{a, b}", "[c, d]", "e"], False),
        ("method(a, {b: [c, d]}) { }", ["a", "{b: [c, d]}"], False),
        ("async (x = `t,${1}`, /* a, b */ y) => x", ["x", "y"], False),
        ("(a, ...rest) => a", ["a"], True),
        ("x => x", ["x"], False),
        ("function f(a = ')', b) {}", ["a", "b"], False),
        # escapes inside a string: an escaped quote does not end it, an escaped backslash does not escape the quote
        ("(a, b = 'it\\'s, (fine)', ...rest) => a", ["a", "b"], True),
        ("(a = '\\\\', b) => { return ')' }", ["a", "b"], False),
        # a destructuring pattern's own default value is not part of its name; defaults inside it are
        ("({a, b} = {}, [c] = [1], {d = 2,\n e} = {}) => a", ["{a, b}", "[c]", "{d = 2, e}"], False),
    ],
)
def test_parameter_names_from_source(source: str, names: list[str], variadic: bool) -> None:
    assert parse_params(source) == (names, variadic)


def test_a_static_scan_finds_functions_and_their_parameters() -> None:
    found = scan_functions('function f({a, b}, c = "[,") {}\nconst g = (x, [y, z]) => 1\nlet h = async function* (q) {}')
    assert {name: (info.parameter_names, info.line) for name, info in found.items()} == {
        "f": (("{a, b}", "c"), 1), "g": (("x", "[y, z]"), 2), "h": (("q",), 3),
    }
    assert found["h"].is_async and found["h"].is_generator
