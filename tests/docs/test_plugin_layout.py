"""docs/plugins.md's layout table holds for every engine plugin in this repository.

Each module the table names without "where needed" exists in every plugin's package and opens
with a docstring; `plugin.py` defines `LANGUAGE`, and no other module spells its language id as a
literal (`language="lua"`): they import `LANGUAGE`."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = sorted(p for p in (ROOT / "plugins").glob("kryon-*/kryon_*") if (p / "plugin.py").exists())


def _table() -> dict[str, str]:
    """module -> what the docs say it holds, from the "Layout of a plugin" table."""
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    section = text.split("## Layout of a plugin", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `([a-z_]+\.py)` \| (.*?) \|$", section, re.M))


def test_the_table_is_read_and_every_plugin_is_seen() -> None:
    table = _table()
    assert {"plugin.py", "engine.py", "state.py", "values.py", "bridge.py", "sandbox.py", "errors.py"} <= set(table)
    assert {p.name for p in PLUGINS} == {"kryon_lua", "kryon_js", "kryon_python", "kryon_lisp", "kryon_wren"}


@pytest.mark.parametrize("package", PLUGINS, ids=lambda p: p.name)
def test_every_required_module_is_there_with_its_docstring(package: Path) -> None:
    required = [name for name, holds in _table().items() if not holds.startswith("where needed")]
    for name in required:
        path = package / name
        assert path.exists(), f"{package.name} has no {name} (docs/plugins.md, Layout of a plugin)"
        assert ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))), f"{package.name}/{name} has no docstring"


@pytest.mark.parametrize("package", PLUGINS, ids=lambda p: p.name)
def test_the_language_id_is_spelled_once(package: Path) -> None:
    plugin = ast.parse((package / "plugin.py").read_text(encoding="utf-8"))
    [language] = [
        node.value.value for node in plugin.body
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["LANGUAGE"]
        and isinstance(node.value, ast.Constant)
    ]
    for path in sorted(package.glob("*.py")):
        if path.name == "plugin.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            literal = None
            if isinstance(node, ast.keyword) and node.arg == "language":
                literal = node.value
            elif isinstance(node, ast.Assign) and any(getattr(t, "id", None) in ("language", "LANG", "_LANG") for t in node.targets):
                literal = node.value
            assert not (isinstance(literal, ast.Constant) and literal.value == language), (
                f"{package.name}/{path.name}:{node.lineno} spells {language!r}; import LANGUAGE from .plugin")


def test_no_module_imports_another_modules_underscore_names() -> None:
    """Modules of kryon_core and of every plugin use each other's public
    names only: a name another module may import is part of its interface."""
    packages = [ROOT / "kryon_core", *PLUGINS]
    private = [
        f"{path.relative_to(ROOT)}:{node.lineno} imports {alias.name} from {node.module or '.'}"
        for package in packages
        for path in sorted(package.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").startswith("kryon"))
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]
    assert private == []
