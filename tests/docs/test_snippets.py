"""Every code block of the README, docs/, the plugin READMEs and the example READMEs runs as written.

- ```python blocks run in a fresh interpreter (in a temporary directory) and must exit 0.
- ```wren blocks load as a trusted Wren script; ```toml blocks must parse.
- ```sh blocks run line by line from the repository root: a line using `kryon` runs in bash
  with this environment's `kryon` first on PATH and must exit 0 (`kryon serve` must start
  serving, then is stopped). Lines that install (`pip install ...`, `bash scripts/...`) are not
  run here (tests/install builds real environments); every path and distribution they name must
  exist and the scripts must parse.
- ```json blocks must parse.
- ```text blocks and blocks without a language are output, not code.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DOCUMENTS = sorted(
    [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "plugins").glob("*/README.md"),
     *(ROOT / "examples").glob("*/README.md")]
)
FENCE = re.compile(r"^```(\S*)\s*$")
COMMENT = re.compile(r"\s+#\s.*$|^#.*$")
DISTRIBUTIONS = {"kryon-core", *(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists())}


@dataclass(frozen=True)
class Block:
    document: Path
    line: int
    language: str
    code: str

    def __str__(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def blocks() -> list[Block]:
    found = []
    for document in DOCUMENTS:
        lines = document.read_text(encoding="utf-8").splitlines()
        i = 0
        while i < len(lines):
            opening = FENCE.match(lines[i])
            if opening is None:
                i += 1
                continue
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            found.append(Block(document, i + 1, opening.group(1).lower(), "\n".join(lines[i + 1 : end]) + "\n"))
            i = end + 1
    return found


ALL = blocks()
CODE = [b for b in ALL if b.language not in ("", "text")]
SHELL_LINES = [(b, n, line) for b in CODE if b.language in ("sh", "bash", "console")
               for n, line in enumerate(b.code.splitlines(), start=b.line + 1) if COMMENT.sub("", line).strip()]


def test_every_block_has_a_known_kind():
    kinds = {b.language for b in ALL}
    assert kinds <= {"", "text", "python", "wren", "toml", "sh", "json"}, kinds
    assert len(CODE) >= 10  # the README, the design, the plugin guide and each plugin README


@pytest.mark.parametrize("block", [b for b in CODE if b.language == "json"], ids=str)
def test_json_block_parses(block):
    json.loads(block.code)


@pytest.mark.parametrize("block", [b for b in CODE if b.language == "python"], ids=str)
def test_python_block_runs(block, tmp_path):
    result = subprocess.run([sys.executable, "-c", block.code], capture_output=True, text=True, cwd=tmp_path,
                            timeout=120)
    assert result.returncode == 0, f"{block} failed:\n{result.stderr[-3000:]}"


@pytest.mark.parametrize("block", [b for b in CODE if b.language == "wren"], ids=str)
def test_wren_block_loads(block):
    pytest.importorskip("kryon_wren")
    from kryon_core import ScriptManager, SecurityPolicy

    with ScriptManager(policy=SecurityPolicy.trusted(), cache=False) as m:
        m.load_script_from_source("snippet", "wren", block.code)
        assert m.functions(), f"{block} defines no function"


@pytest.mark.parametrize("block", [b for b in CODE if b.language == "toml"], ids=str)
def test_toml_block_parses(block):
    tomllib = pytest.importorskip("tomllib")
    assert tomllib.loads(block.code)


@pytest.mark.parametrize("block,number,line", SHELL_LINES, ids=[f"{b.document.relative_to(ROOT)}:{n}" for b, n, _ in SHELL_LINES])
def test_shell_line(block, number, line, tmp_path):
    command = COMMENT.sub("", line).strip()
    words = shlex.split(command)
    if words[:2] == ["pip", "install"]:
        _check_install(words[2:])
    elif words[0] == "bash" and words[1].startswith("scripts/"):
        assert (ROOT / words[1]).is_file()
        assert subprocess.run(["bash", "-n", str(ROOT / words[1])]).returncode == 0
    elif "kryon" in words or words[0] == "echo" and "kryon" in command:
        _run_kryon_line(command, tmp_path)
    else:
        pytest.fail(f"{block.document.relative_to(ROOT)}:{number}: no rule to check {command!r}")


def _check_install(targets: list[str]) -> None:
    for target in targets:
        if target.startswith("-"):
            continue
        if target.startswith("."):
            path = target.split("[", 1)[0] or "."
            matches = list(ROOT.glob(path.removeprefix("./"))) if "*" in path else [ROOT / path]
            assert matches and all((m / "pyproject.toml").is_file() for m in matches), target
        else:
            assert target in DISTRIBUTIONS, f"{target} is not a distribution of this repository"


def _run_kryon_line(command: str, tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    if command.startswith("kryon serve"):
        proc = subprocess.Popen(["bash", "-c", f"exec {command} --port 0"], cwd=ROOT, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            first = proc.stdout.readline()
            assert first.startswith("serving "), first + proc.stderr.read()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        return
    result = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{command!r} exited {result.returncode}:\n{result.stderr[-3000:]}"
