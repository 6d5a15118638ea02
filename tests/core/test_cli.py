"""The `kryon` command, run as a subprocess like a user would."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def kryon(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "kryon_core.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_engines_lists_installed():
    result = kryon("engines", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    for row in rows:
        assert {"language", "distribution", "engine_version", "capabilities"} <= row.keys()


needs_lua = pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import kryon_lua"], capture_output=True).returncode != 0,
    reason="kryon-lua is not installed",
)


@needs_lua
def test_run_file_output_and_exit_codes(tmp_path):
    script = tmp_path / "greet.lua"
    script.write_text('print("hello", 40 + 2)\nfunction twice(s) return s .. s end\nfunction boom()\n  error("bad")\nend\n')
    ok = kryon("run", script, "--call", "twice", "ab")
    assert ok.returncode == 0 and ok.stdout.splitlines() == ["hello\t42", '"abab"']
    failed = kryon("run", script, "--call", "boom")
    assert failed.returncode == 70
    assert "greet:4: bad" in failed.stderr and "at greet:4" in failed.stderr
    broken = tmp_path / "broken.lua"
    broken.write_text("if then\n")
    assert kryon("run", broken).returncode == 65
    unknown = tmp_path / "notes.txt"
    unknown.write_text("hi")
    assert kryon("run", unknown).returncode == 69
    sandboxed = tmp_path / "escape.lua"
    sandboxed.write_text('os.execute("echo escaped")\n')
    denied = kryon("run", sandboxed, "--sandbox")
    assert denied.returncode == 70 and "not available under a sandboxed policy" in denied.stderr
    assert "escaped" not in denied.stdout


@needs_lua
def test_run_app_plays_events_and_reports(tmp_path):
    result = kryon("run", ROOT / "examples" / "todo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "== document" in out and "== engines" in out
    assert "item#item-3" in out and "Call the plumber" in out
    assert "lua" in out


@needs_lua
def test_app_with_bad_parts_keeps_running(tmp_path):
    (tmp_path / "app.json").write_text(
        json.dumps(
            {
                "tree": {"type": "panel", "id": "p", "children": [{"type": "marquee", "id": "old"}, {"type": "label", "id": "l"}]},
                "scripts": ["missing.lua", "ok.lua", "notes.cobol"],
                "events": [{"click": "nowhere"}, {"call": ["ok.hello"]}],
            }
        )
    )
    (tmp_path / "ok.lua").write_text('function hello() kryon.setProperty("l", "text", "still running") end\n')
    result = kryon("run", tmp_path)
    assert result.returncode == 0
    assert "unknown element type 'marquee'" in result.stderr
    assert "missing.lua" in result.stderr
    assert "notes.cobol" in result.stdout  # skipped: no engine for it
    assert "nowhere" in result.stderr
    assert "still running" in result.stdout
