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
        assert {"language", "distribution", "engine_version", "capabilities", "extensions"} <= row.keys()
        assert isinstance(row["capabilities"], list) and all(isinstance(c, str) for c in row["capabilities"])


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
    assert f"{script}:4: error: bad [lua]" in failed.stderr and f"at {script}:4" in failed.stderr
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
    assert result.returncode == 65  # the tree's unknown element type is the first failure
    assert "unknown element type 'marquee'" in result.stderr
    assert "missing.lua" in result.stderr
    assert "notes.cobol" in result.stdout  # skipped: no engine for it
    assert "nowhere" in result.stderr
    assert "still running" in result.stdout


def kryon_main(*args, stdin=None, env=None):
    """`python -m kryon_core` (the package itself), as a user would call it."""
    import os

    return subprocess.run([sys.executable, "-m", "kryon_core", *map(str, args)], capture_output=True, text=True,
                          input=stdin, env={**os.environ, **(env or {})}, timeout=120)


def test_version_names_core_and_each_engine():
    from importlib.metadata import version

    result = kryon_main("--version")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"kryon-core {version('kryon-core')}"
    if installed("kryon_lua"):
        assert f"kryon-lua {version('kryon-lua')} (lua)" in lines


def installed(module):
    return subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True).returncode == 0


@needs_lua
def test_options_anywhere_and_stdin(tmp_path):
    script = tmp_path / "calc.lua"
    script.write_text("function add(a, b) return a + b end\n")
    for argv in (("run", "--call", "add", script, "2", "3"), ("run", script, "--call", "add", "2", "3"),
                 ("--json", "run", script, "2", "--call", "add", "3"), ("run", script, "2", "3", "--call", "add")):
        result = kryon_main(*argv)
        assert (result.returncode, result.stdout) == (0, "5\n"), (argv, result.stderr)
    piped = kryon_main("run", "-", "--lang", "lua", "--call", "add", "1", "2", stdin="function add(a, b) return a + b end")
    assert (piped.returncode, piped.stdout) == (0, "3\n"), piped.stderr
    failing = kryon_main("run", "-", "--lang", "lua", stdin="\n\nerror('boom')\n")
    assert (failing.returncode, failing.stderr.splitlines()[0]) == (70, "<stdin>:3: error: boom [lua]")
    calls_none = kryon_main("run", script, "--call", "add", "1", "2", "--json")
    assert calls_none.stdout == "3\n"


def test_python_script_runs_as_main(tmp_path):
    if not installed("kryon_python"):
        pytest.skip("kryon-python is not installed")
    script = tmp_path / "prog.py"
    script.write_text('def double(x):\n    return 2 * x\n\nif __name__ == "__main__":\n    print("main", double(21))\n')
    for extra in ((), ("--sandbox",)):
        result = kryon_main("run", script, *extra)
        assert (result.returncode, result.stdout) == (0, "main 42\n"), result.stderr
    called = kryon_main("run", script, "--call", "double", "4")
    assert called.stdout == "main 42\n8\n"
    qualified = kryon_main("run", script, "--call", "prog.double", "5")
    assert qualified.stdout == "main 42\n10\n", qualified.stderr


def test_non_finite_results_print_as_valid_json(tmp_path):
    if not installed("kryon_js"):
        pytest.skip("kryon-js is not installed")
    script = tmp_path / "nums.js"
    script.write_text("function nan() { return NaN }\nfunction many() { return [1, Infinity, {x: -Infinity}] }\n")
    nan = kryon_main("run", script, "--call", "nan")
    assert (nan.returncode, nan.stdout) == (0, "null\n")
    assert nan.stderr == "note: result is NaN, printed as null (JSON has no NaN)\n"
    many = kryon_main("run", script, "--call", "many")
    assert json.loads(many.stdout) == [1, None, {"x": None}]
    assert many.stderr.splitlines() == ["note: result[1] is Infinity, printed as null (JSON has no Infinity)",
                                        "note: result[2].x is -Infinity, printed as null (JSON has no -Infinity)"]


@needs_lua
def test_limits_and_log_level(tmp_path):
    loop = tmp_path / "loop.lua"
    loop.write_text('kryon.log("detail", "debug")\nkryon.log("progress", "info")\nwhile true do end\n')
    timed = kryon_main("run", loop, "--sandbox", "--time-limit", "0.3")
    assert timed.returncode == 70
    assert timed.stdout == "progress\n"
    assert timed.stderr.splitlines()[0] == f"{loop}:3: error: time limit exceeded [lua]"
    verbose = kryon_main("--log-level", "debug", "run", loop, "--sandbox", "--time-limit", "0.3")
    assert verbose.stdout == "detail\nprogress\n"
    quiet = kryon_main("run", loop, "--sandbox", "--time-limit", "0.3", env={"KRYON_LOG_LEVEL": "error"})
    assert quiet.stdout == ""
    hog = tmp_path / "hog.lua"
    hog.write_text('local t = {}\nfor i = 1, 1e8 do t[i] = string.rep("x", 100) .. i end\n')
    capped = kryon_main("run", hog, "--sandbox", "--memory-limit", "8M")
    assert capped.returncode == 70
    assert capped.stderr.startswith(f"{hog}:2: error: memory limit exceeded")


def test_cache_info_and_clear(tmp_path):
    cache = tmp_path / "cache"
    env = {"KRYON_CACHE_DIR": str(cache)}
    empty = kryon_main("cache", "info", env=env)
    assert empty.returncode == 0 and empty.stdout.splitlines()[:2] == [
        f"directory: {cache} (not created yet)", "entries:   0 (0 bytes)"]
    (cache / "lua").mkdir(parents=True)
    (cache / "lua" / "a.kc").write_bytes(b"x" * 10)
    (cache / "lua" / "b.kc").write_bytes(b"x" * 20)
    info = json.loads(kryon_main("cache", "info", "--json", env=env).stdout)
    assert info == {"directory": str(cache), "entries": 2, "bytes": 30, "languages": {"lua": {"entries": 2, "bytes": 30}}}
    cleared = kryon_main("cache", "clear", env=env)
    assert cleared.stdout == f"removed 2 compiled script(s), 30 bytes, from {cache}\n"
    assert not list(cache.glob("*/*.kc"))
    bad = kryon_main("cache", "wipe", env=env)
    assert bad.returncode == 64 and "invalid choice: 'wipe'" in bad.stderr
