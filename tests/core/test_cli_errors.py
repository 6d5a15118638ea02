"""Every user mistake the `kryon` command meets ends in a message (no traceback)
naming path:line:column, and a sysexits status; run as a subprocess like a user would."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

KNOWN = ".hy .js .kl .lua .mjs .py .wren"


def kryon(*args, cwd=None, stdin=None, env=None, python=("-m", "kryon_core")):
    full_env = {**os.environ, **(env or {})}
    full_env.pop("KRYON_DEBUG", None) if not (env and "KRYON_DEBUG" in env) else None
    return subprocess.run([sys.executable, *python, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          input=stdin, env=full_env, timeout=120)


def installed(module: str) -> bool:
    return subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True).returncode == 0


needs_lua = pytest.mark.skipif(not installed("kryon_lua"), reason="kryon-lua is not installed")
needs_js = pytest.mark.skipif(not installed("kryon_js"), reason="kryon-js is not installed")
needs_python = pytest.mark.skipif(not installed("kryon_python"), reason="kryon-python is not installed")


def no_traceback(result):
    assert "Traceback" not in result.stderr, result.stderr
    return result


def test_missing_inputs_exit_66(tmp_path):
    missing = no_traceback(kryon("run", "nothere.lua", cwd=tmp_path))
    assert (missing.returncode, missing.stderr) == (66, "error: nothere.lua: no such file or directory\n")
    no_dir = no_traceback(kryon("run", "nodir/", cwd=tmp_path))
    assert (no_dir.returncode, no_dir.stderr) == (66, "error: nodir/: no such file or directory\n")
    (tmp_path / "empty").mkdir()
    not_app = no_traceback(kryon("run", "empty", cwd=tmp_path))
    expected = ("error: empty: not an app: no app.json in it (an app directory holds app.json and its scripts; "
                "see examples/todo)\n")
    assert (not_app.returncode, not_app.stderr) == (66, expected)
    served = no_traceback(kryon("serve", "empty", "--port", "0", cwd=tmp_path))
    assert (served.returncode, served.stderr) == (66, expected)
    serve_missing = no_traceback(kryon("serve", "nowhere", cwd=tmp_path))
    assert (serve_missing.returncode, serve_missing.stderr) == (66, "error: nowhere: no such directory\n")


def test_unknown_extension_lists_the_known_ones(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    (tmp_path / "Makefile").write_text("all:")
    result = no_traceback(kryon("run", "notes.txt", cwd=tmp_path))
    assert result.returncode == 69
    assert result.stderr == (f"error: notes.txt: no language is known for the extension '.txt' (known: {KNOWN}); "
                             "give one with --lang\n")
    bare = no_traceback(kryon("run", "Makefile", cwd=tmp_path))
    assert bare.returncode == 69 and "for the file without an extension (known:" in bare.stderr


def test_usage_errors_exit_64(tmp_path):
    (tmp_path / "f.lua").write_text("function twice(x) return x * 2 end\n")
    cases = {
        ("run",): "error: kryon run: give a script file, - (stdin) or an app directory (see kryon run --help)\n",
        ("bogus",): "error: unknown command 'bogus': use one of engines, run, eval, repl, serve, debug, cache\n",
        (): "error: no command given: one of engines, run, eval, repl, serve, debug, cache (see kryon --help)\n",
        ("run", "f.lua", "--frobnicate"): "error: unrecognized arguments: --frobnicate (see kryon run --help)\n",
        ("run", "-"): "error: kryon run -: give the script's language with --lang (for example --lang lua)\n",
        ("run", "f.lua", "1"): "error: unexpected argument '1': arguments follow --call NAME\n",
        ("run", "f.lua", "--time-limit", "1"): "error: --time-limit applies to sandboxed runs: add --sandbox\n",
        ("run", "f.lua", "--sandbox", "--memory-limit", "lots"):
            "error: argument --memory-limit: not a size: 'lots' (use bytes, or a number with K, M or G) "
            "(see kryon run --help)\n",
        ("run", "f.lua", "--log-level", "loud"):
            "error: argument --log-level: invalid choice: 'loud' (choose from 'debug', 'info', 'warning', 'error') "
            "(see kryon run --help)\n",
        ("run", ".", "--call", "f"): "error: --call applies to script files, not app directories\n",
    }
    for argv, message in cases.items():
        result = no_traceback(kryon(*argv, cwd=tmp_path))
        assert (result.returncode, result.stderr.replace('"', "'")) == (64, message.replace('"', "'")), argv


@needs_lua
def test_call_of_an_unknown_function_is_a_usage_error(tmp_path):
    (tmp_path / "f.lua").write_text("function twice(x) return x * 2 end\nfunction half(x) return x / 2 end\n")
    result = no_traceback(kryon("run", "f.lua", "--call", "thrice", "2", cwd=tmp_path))
    assert result.returncode == 64
    assert result.stderr == "error: --call thrice: the script defines no function 'thrice' (it defines: half, twice)\n"


@needs_lua
def test_script_errors_name_the_file_line_and_column(tmp_path):
    (tmp_path / "greet.lua").write_text('function boom()\n  error("bad")\nend\n')
    (tmp_path / "broken.lua").write_text("x = = 1\n")
    runtime = no_traceback(kryon("run", "greet.lua", "--call", "boom", cwd=tmp_path))
    assert runtime.returncode == 70
    assert runtime.stderr.splitlines() == ["greet.lua:2: error: bad [lua]", "  at greet.lua:2 in function <greet.lua:1>"]
    compile_error = no_traceback(kryon("run", tmp_path / "broken.lua"))
    assert compile_error.returncode == 65
    assert compile_error.stderr == f"{tmp_path / 'broken.lua'}:1:3: error: unexpected symbol near '=' [lua]\n"


@needs_js
def test_a_dotted_file_name_is_reported_as_the_file(tmp_path):
    (tmp_path / "se.lua.js").write_text("function f() {\n  let x = ;\n}\n")
    result = no_traceback(kryon("run", "se.lua.js", cwd=tmp_path))
    assert result.returncode == 65
    first = result.stderr.splitlines()[0]
    assert first.startswith("se.lua.js:2:") and first.endswith("[javascript]") and "SyntaxError" in first


@needs_lua
def test_json_errors_are_one_object(tmp_path):
    (tmp_path / "greet.lua").write_text('function boom()\n  error("bad")\nend\n')
    result = kryon("--json", "run", "greet.lua", "--call", "boom", cwd=tmp_path)
    assert result.returncode == 70
    report = json.loads(result.stderr)
    assert report == {
        "error": "ScriptRuntimeError", "language": "lua", "file": "greet.lua", "line": 2, "column": None,
        "message": "bad", "exit_status": 70,
        "stack": [{"function": "function <greet.lua:1>", "file": "greet.lua", "line": 2, "column": None,
                   "language": "lua"}],
    }
    usage = kryon("run", "nothere.lua", "--json", cwd=tmp_path)
    assert usage.returncode == 66
    assert json.loads(usage.stderr)["message"] == "nothere.lua: no such file or directory"


@needs_python
def test_unbounded_recursion_prints_a_short_stack(tmp_path):
    (tmp_path / "rec.py").write_text("def f(n):\n    return f(n + 1)\nf(0)\n")
    result = no_traceback(kryon("run", "rec.py", cwd=tmp_path))
    assert result.returncode == 70
    lines = result.stderr.splitlines()
    assert lines[0] == "rec.py:2:12: error: maximum recursion depth exceeded [python]"
    assert lines[1] == "  at rec.py:2:12 in f"
    assert lines[2].startswith("  ... ") and lines[2].endswith(" more frames of f at rec.py:2:12")
    assert int(lines[2].split()[1]) > 50  # the error keeps the innermost frames and the outermost few
    assert lines[3:] == ["  at rec.py:3:1 in <module>"]


@needs_lua
def test_mutual_recursion_collapses_as_a_cycle(tmp_path):
    (tmp_path / "pingpong.lua").write_text(
        "function ping(n) return pong(n) + 1 end\nfunction pong(n) return ping(n) + 1 end\nping(0)\n")
    result = no_traceback(kryon("run", "pingpong.lua", cwd=tmp_path))
    assert result.returncode == 70
    assert len(result.stderr.splitlines()) < 12, result.stderr
    assert result.stderr.splitlines()[1:3] == ["  at pingpong.lua:2 in global 'pong'",
                                               "  at pingpong.lua:1 in global 'ping'"]
    assert result.stderr.splitlines()[3].endswith(
        " more frames of global 'pong' at pingpong.lua:2, global 'ping' at pingpong.lua:1"), result.stderr


@needs_lua
def test_apps_exit_non_zero_when_their_scripts_fail(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "app.json").write_text(json.dumps({"tree": {"type": "panel", "id": "p"},
                                              "scripts": ["a.lua", "b.lua"]}))
    (app / "a.lua").write_text("x = = 1\n")
    (app / "b.lua").write_text("if then\n")
    result = no_traceback(kryon("run", app))
    assert result.returncode == 65
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: loading a.lua: {app / 'a.lua'}:1:3: unexpected symbol near '=' [lua]",
                      f"error: loading b.lua: {app / 'b.lua'}:1:4: unexpected symbol near 'then' [lua]"]
    assert "== 2 error(s); see above" in result.stdout
    (app / "a.lua").write_text("function go() error('step failed') end\n")
    (app / "b.lua").write_text("")
    (app / "app.json").write_text(json.dumps({"scripts": ["a.lua", "b.lua"], "events": [{"call": ["go"]}]}))
    stepped = no_traceback(kryon("run", app))
    assert stepped.returncode == 70 and f"{app / 'a.lua'}:1: step failed [lua]" in stepped.stderr
    (app / "app.json").write_text('{"scripts": ["a.lua",]}')
    invalid = no_traceback(kryon("run", app))
    assert invalid.returncode == 65
    assert invalid.stderr.startswith(f"{app / 'app.json'}:1:22: error: invalid JSON: Expecting value")
    (app / "app.json").write_text(json.dumps({"scripts": ["gone.lua"]}))
    missing = no_traceback(kryon("run", app))
    assert missing.returncode == 66 and f"error: {app / 'gone.lua'}: no such script file" in missing.stderr


@needs_lua
def test_watch_without_watchfiles_says_what_to_install(tmp_path):
    (tmp_path / "app.json").write_text(json.dumps({"scripts": []}))
    code = ("import sys; sys.modules['watchfiles'] = None; from kryon_core.cli import main; "
            f"sys.exit(main(['run', {str(tmp_path)!r}, '--watch']))")
    result = no_traceback(kryon(python=("-c", code)))
    assert result.returncode == 69
    assert result.stderr == "error: --watch needs the watchfiles package: pip install 'kryon-core[watch]'\n"


def test_busy_port_is_a_message(tmp_path):
    (tmp_path / "app.json").write_text(json.dumps({"scripts": []}))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = no_traceback(kryon("serve", tmp_path, "--port", port))
    assert result.returncode == 69
    assert result.stderr == (f"error: port {port} on 127.0.0.1 is in use: pick another with --port N "
                             "(--port 0 picks a free one)\n")


def test_debug_shows_the_traceback(tmp_path):
    result = kryon("run", "nothere.lua", cwd=tmp_path, env={"KRYON_DEBUG": "1"})
    assert result.returncode == 66
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.endswith("error: nothere.lua: no such file or directory\n")
