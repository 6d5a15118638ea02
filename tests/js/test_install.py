"""Installing kryon-core and kryon-js into a fresh virtual environment gives
a working JavaScript host (slow: builds a venv and installs from PyPI)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import asyncio
    from kryon_core import ScriptManager, SecurityPolicy, Document
    m = ScriptManager(cache_dir=False)
    assert "javascript" in m.languages, m.languages
    assert not m.is_loaded("javascript")
    doc = m.setup_dom_bridge(Document())
    doc.append_child(doc.root, doc.create_element("button", {"id": "go"}))
    m.load_script_from_source("app", "javascript", '''
        kryon.addEventListener(kryon.getElementById("go"), "click", () => kryon.setVariable("clicked", true));
        async function answer(x) { await null; return x * 2; }
        function add(a, b) { return a + b; }
        console.log("loaded", window.kryon === kryon);
    ''')
    doc.click("go")
    assert doc.get_variable("clicked") is True
    assert m.call_function("add", [2, 3]) == 5
    assert asyncio.run(m.call_function_async("answer", [21])) == 42
    print("ok", m.engine("javascript").version)
""")


@pytest.mark.slow
def test_fresh_venv_install(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(ROOT), str(ROOT / "plugins" / "kryon-js")],
                   check=True, timeout=900)
    listed = subprocess.run([str(py), "-m", "pip", "list"], check=True, capture_output=True, text=True).stdout
    assert "quickjs-ng" in listed and "lupa" not in listed
    done = subprocess.run([str(py), "-c", SCRIPT], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "loaded true" in done.stdout and "ok QuickJS" in done.stdout
