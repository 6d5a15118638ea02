"""kryon-core + kryon-python installed into a fresh virtual environment
(as a user would, with pip) and used there: trusted and sandboxed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

USE = textwrap.dedent(
    """
    import sys
    from kryon_core import ScriptManager, SecurityPolicy, AccessDeniedError
    m = ScriptManager(cache=False)
    assert "python" in m.languages, m.languages
    m.load_script_from_source("app", "python", "def add(a, b): return a + b", policy=SecurityPolicy.trusted())
    m.expose("app.add", to=["plug"])  # a sandboxed script calls a trusted one only through an export
    m.load_script_from_source("plug", "python", "import kryon\\ndef via(): return kryon.call('app.add', 2, 3)")
    m.expose("app.add", to=["plug"])
    assert m.call_function("plug.via") == 5
    try:
        m.load_script_from_source("bad", "python", "open('/etc/hostname').read()")
    except AccessDeniedError:
        pass
    else:
        raise SystemExit("the sandbox let a script open a file")
    m.close()
    print("kryon-python works")
    """
)


@pytest.mark.slow
def test_install_core_and_python_into_a_fresh_venv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(ROOT), str(ROOT / "plugins" / "kryon-python")],
        check=True,
        timeout=900,
    )
    result = subprocess.run([str(py), "-c", USE], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "kryon-python works" in result.stdout
