"""The one scanner of Wren source (kryon_wren/scan.py) behind the function
scan of ``compile``, the import list and the debugger's renaming of ``this``;
and the layout rule that the plugin's modules share only public names."""

import ast
import pathlib

import pytest

pytest.importorskip("kryon_wren")
from kryon_wren import scan  # noqa: E402


def texts(source: str, **kw: bool) -> list[str]:
    return [t.text for t in scan.tokens(source, **kw)]


def test_tokens_skip_comments_and_keep_strings_whole() -> None:
    source = 'var a = "x %(b) y" // c\n/* d /* e */ f */ g """h\n"""'
    assert texts(source) == ["var", "a", "=", scan.STRING, "g", scan.STRING]
    lines = {t.text: t.line for t in scan.tokens(source)}
    assert lines["g"] == 2


def test_tokens_with_interpolations_read_the_code_inside_them() -> None:
    source = '"a %(f("%(this)") + (1)) b" this'
    assert texts(source, interpolations=True) == [
        scan.STRING, "f", "(", scan.STRING, "this", scan.STRING, ")", "+", "(", "1", ")", scan.STRING, "this",
    ]
    # without, a string is one token whatever it interpolates
    assert texts(source) == [scan.STRING, "this"]


def test_token_spans_and_lines_point_into_the_text() -> None:
    source = "class A {\n  static go(x) { x }\n}\n"
    for tok in scan.tokens(source):
        assert source[tok.start:tok.end] == tok.text
        assert source.count("\n", 0, tok.start) + 1 == tok.line


@pytest.mark.parametrize(
    ("expression", "renamed"),
    [
        ("this.n + 1", f"{scan.THIS}.n + 1"),
        ('"this %(this.n)"', f'"this %({scan.THIS}.n)"'),
        ('"%("%(this)")" + this', f'"%("%({scan.THIS})")" + {scan.THIS}'),
        ("this // this", f"{scan.THIS} // this"),
        ("/* this /* this */ */ this", f"/* this /* this */ */ {scan.THIS}"),
        ('"""this""" + thisOne + _this', '"""this""" + thisOne + _this'),
        ('"\\"this" + this', f'"\\"this" + {scan.THIS}'),
        ('"unclosed this', '"unclosed this'),
    ],
)
def test_rename_this_renames_only_code(expression: str, renamed: str) -> None:
    assert scan.rename_this(expression) == renamed


def test_scan_functions_and_imports() -> None:
    source = (
        'import "kryon" for Kryon\nimport "util" for U\nimport "util" for V\n'
        "var add = Fn.new { |a, b| a + b }\n"
        'var text = "class Fake { static no() {} }"\n'
        "class Counter {\n  static count { __n }\n  static bump(by) { __n = __n + by }\n"
        "  foo() { 1 }\n}\n"
    )
    found = scan.scan_functions(source)
    assert sorted(found) == ["Counter.bump", "Counter.count", "add", "text"]
    assert found["add"].parameter_names == ("a", "b") and found["add"].line == 4
    assert found["Counter.count"].documentation == scan.GETTER
    assert found["Counter.bump"].parameter_names == ("by",) and found["Counter.bump"].line == 8
    assert scan.imports(source) == ["util"]


def test_no_module_imports_another_modules_underscore_names() -> None:
    """The plugin's modules use each other's public names only (the engine's
    guard in test_vm.py, for every module)."""
    import kryon_wren

    package = pathlib.Path(kryon_wren.__file__).parent
    private = [
        (path.name, node.module, alias.name)
        for path in sorted(package.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.level > 0
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert private == []
    assert len(list(package.glob("*.py"))) >= 10  # the walk saw the package
