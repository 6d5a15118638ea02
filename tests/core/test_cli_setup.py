"""scripts/demo.sh on a fresh environment: it says what it installs while it does,
installs no test tools, shows the app and how to serve it; a second run reinstalls nothing,
and a changed package is reinstalled alone, reusing the Wren VM's wasm when csrc/ did not change.

It builds a real virtual environment, so it is marked slow (it still runs in CI)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["kryon-core", *sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists())]

pytestmark = pytest.mark.slow


def run(script: str, venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    env.update(KRYON_VENV=str(venv), PIP_DISABLE_PIP_VERSION_CHECK="1")
    result = subprocess.run(["bash", str(ROOT / "scripts" / script), *args], capture_output=True, text=True,
                            env=env, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def setup_lines(output: str) -> list[str]:
    return [line.removeprefix("kryon setup: ") for line in output.splitlines() if line.startswith("kryon setup: ")]


def test_demo_twice(tmp_path):
    venv = tmp_path / "venv"
    first = run("demo.sh", venv)
    lines = setup_lines(first.stdout)
    assert lines[0] == f"creating the virtual environment {venv}"
    assert any(line.startswith("kryon-wren: building the Wren VM") for line in lines)
    assert f"installing {' '.join(PACKAGES)} (new or changed sources)" in lines
    assert "== document" in first.stdout and "Call the plumber" in first.stdout
    assert f"  {venv}/bin/kryon serve examples/todo      # then open http://127.0.0.1:8765/" in first.stdout
    listed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list"], capture_output=True, text=True).stdout
    assert "pytest" not in listed and "playwright" not in listed, "the demo installs no test tools"

    second = run("demo.sh", venv)
    lines = setup_lines(second.stdout)
    assert [line for line in lines if not line.startswith("ready in")] == [f"{p}: up to date" for p in PACKAGES]
    assert "== document" in second.stdout

    # a package whose sources changed is reinstalled alone; the Wren VM is not rebuilt
    (venv / "kryon-stamps" / "kryon-wren").write_text("a stale hash\n")
    third = setup_lines(run("setup.sh", venv).stdout)
    assert "kryon-wren: the Wren VM's sources did not change: reusing its wasm" in third
    assert "installing kryon-wren (new or changed sources)" in third
    assert not any("building the Wren VM" in line for line in third)
    done = subprocess.run([str(venv / "bin" / "kryon"), "run", str(ROOT / "examples" / "hello" / "hello.wren"),
                           "--call", "Hello.greet", "Ada"], capture_output=True, text=True, timeout=300)
    assert done.stdout.splitlines() == ["hello from Wren", '"hello, Ada"'], done.stderr
