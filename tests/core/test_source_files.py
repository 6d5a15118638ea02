"""Script files an app or a script names are read no further than the
policy's max_source_size, and only when they are regular files (issue 10).

A sandboxed app's folder is as untrusted as its scripts. A sparse file costs
no disk: 8 GiB of one, named as a script in app.json, took 8 GiB of host
memory before the size check saw it; a named pipe blocked the host at
``open``. Each case runs in a subprocess, which measures its own peak memory
and cannot hang the test run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kryon_core.cli import exits

pytest.importorskip("kryon_lua")

GiB = 1 << 30
#: peak RSS a refused load may reach (the interpreter and the engines take well under it)
RSS_BOUND_MIB = 250

#: the process's own peak RSS in MiB: VmHWM belongs to the memory map exec made, whereas ru_maxrss
#: keeps the high-water mark of the test process that spawned it (Linux carries it across exec)
PEAK = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) // 1024"

PROBE = """
import json, sys
from kryon_core import ScriptManager, SecurityPolicy
m = ScriptManager(policy=SecurityPolicy.sandboxed(), cache=False, output=lambda lang, text: None)
m.load_script_from_source("by", "javascript", "var n = 0; function ok() {{ return ++n; }}")
try:
    {action}
    outcome = ["loaded", None, None, None]
except Exception as exc:
    outcome = [type(exc).__name__, str(exc), exc.script, exc.language]
print(json.dumps({{"outcome": outcome, "rss": {peak},
                  "bystander": m.call_function("by.ok")}}))
"""


def probe(action: str, path: Path) -> dict:
    code = PROBE.format(action=action, peak=PEAK)
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def test_a_huge_sparse_script_file_is_refused_before_it_is_read(tmp_path):
    big = sparse(tmp_path / "big.lua", GiB)
    seen = probe("m.load_script_file(sys.argv[1])", big)
    kind, message, script, language = seen["outcome"]
    assert (kind, script, language) == ("SizeLimitError", "big", "lua") and "max_source_size" in message
    assert seen["rss"] < RSS_BOUND_MIB, f"the host read the file: peak {seen['rss']} MiB"
    assert seen["bystander"] == 1


def test_an_import_of_a_huge_sparse_file_is_refused_before_it_is_read(tmp_path):
    pytest.importorskip("kryon_wren")
    sparse(tmp_path / "big.wren", GiB)
    main = tmp_path / "main.wren"
    main.write_text('import "big" for X\nvar y = 1\n')
    seen = probe("m.load_script_file(sys.argv[1])", main)
    kind, message, script, _ = seen["outcome"]
    assert kind == "SizeLimitError" and "max_source_size" in message and script == "main"
    assert seen["rss"] < RSS_BOUND_MIB, f"the host read the file: peak {seen['rss']} MiB"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_is_not_a_script_file(tmp_path):
    pipe = tmp_path / "pipe.lua"
    os.mkfifo(pipe)
    seen = probe("m.load_script_file(sys.argv[1])", pipe)
    kind, message, script, language = seen["outcome"]
    assert (kind, script, language) == ("ScriptError", "pipe", "lua") and "not a regular file" in message
    assert seen["bystander"] == 1


def test_kryon_run_sandbox_refuses_an_app_with_a_huge_sparse_script(tmp_path):
    (tmp_path / "app.json").write_text(json.dumps({"scripts": ["main.lua", "ok.lua"]}))
    sparse(tmp_path / "main.lua", GiB)
    (tmp_path / "ok.lua").write_text('kryon.log("ok loaded")\n')
    code = ("import sys\nfrom kryon_core.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            f"print('peak', {PEAK})")
    result = subprocess.run([sys.executable, "-c", code, "run", "--sandbox", str(tmp_path)], capture_output=True,
                            text=True, timeout=60)
    assert "max_source_size" in result.stderr and "main.lua" in result.stderr, result.stderr
    assert "ok loaded" in result.stdout, "the app's other script still loads"
    peak = int(result.stdout.split("peak")[-1])
    assert peak < RSS_BOUND_MIB, f"the host read the file: peak {peak} MiB"


@pytest.mark.parametrize("kind", ["huge", "fifo"])
def test_kryon_run_of_a_file_it_refuses_reports_the_script(tmp_path, kind):
    """`kryon run --sandbox FILE` reads FILE itself: past max_source_size, or not a regular file, it ends
    with the error printed, naming the script (EX_SOFTWARE, as other limits), not a traceback of the command."""
    script = tmp_path / "main.lua"
    if kind == "huge":
        sparse(script, GiB)
    else:
        os.mkfifo(script)
    result = subprocess.run([sys.executable, "-m", "kryon_core", "run", "--sandbox", str(script)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == exits.SOFTWARE, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "main" in result.stderr and ("max_source_size" if kind == "huge" else "not a regular file") in result.stderr


def test_files_within_the_limit_still_load(tmp_path):
    script = tmp_path / "small.lua"
    script.write_bytes(b"\xef\xbb\xbf" + b"x = 1\n" + b"-" * 100)  # a byte-order mark is not counted
    seen = probe("m.load_script_file(sys.argv[1])", script)
    assert seen["outcome"][0] == "loaded"
