"""Start-up must stay cheap, counted rather than timed: what a bare
``import kryon_core`` loads, and what a plain ``kryon run hello.X`` of a
trusted script starts (modules, threads, child processes). Each probe runs in
a fresh interpreter, so nothing a test imported earlier hides a regression.

``benchmarks/startup.py`` measures the times these counts stand for."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kryon_core import ScriptManager

BARE = """
import json, sys
before = set(sys.modules)
import kryon_core
print(json.dumps(sorted(set(sys.modules) - before)))
"""

NAMES = """
import json, kryon_core, kryon_core.manager
wrong = [n for n in kryon_core.__all__ if not hasattr(kryon_core, n)]
same = kryon_core.ScriptManager is kryon_core.manager.ScriptManager and kryon_core.policy.SecurityPolicy is kryon_core.SecurityPolicy
try:
    kryon_core.NoSuchName
    missing = "no error"
except AttributeError as exc:
    missing = str(exc)
print(json.dumps({"wrong": wrong, "same": same, "listed": sorted(set(kryon_core.__all__) - set(dir(kryon_core))),
                  "missing": missing}))
"""

#: runs the command in-process, then reports what the process holds once it is done
RUN = """
import json, os, sys, threading
from kryon_core.cli import main
status = main(["run", sys.argv[1]])
tasks = "/proc/self/task"
children = [c for t in os.listdir(tasks) for c in open(f"{tasks}/{t}/children").read().split()] \\
    if os.path.isdir(tasks) else []
print(json.dumps({"status": status, "modules": sorted(sys.modules), "children": children,
                  "threads": sorted(t.name for t in threading.enumerate())}))
"""

HELLO = {
    "lua": ("hello.lua", 'print("hello")'),
    "javascript": ("hello.js", 'print("hello");'),
    "python": ("hello.py", 'print("hello")'),
    "lisp": ("hello.kl", '(print "hello")'),
}
#: what no trusted hello script needs: an event loop (only awaited calls do), the
#: worker machinery of sandboxed scripts, the slow metadata and resource readers, the
#: other commands of the CLI
NEVER = ("asyncio", "concurrent.futures.process", "subprocess", "kryon_core.isolation.host",
         "kryon_core.isolation.forkserver", "importlib.metadata", "email", "importlib.resources",
         "kryon_core.cli.repl", "kryon_core.cli.serve", "kryon_core.cli.debug", "kryon_core.cli.cache",
         # the error printer (only a failed run reports) and --call's result printer
         "kryon_core.cli.report", "kryon_core.cli.output")
#: ...and per language, what its hello run needs no more: ctypes (only a time or recursion limit
#: of a script in the host process needs it: the watchdog, the tracer), pkgutil (only an engine
#: that reads a prelude shipped as a data file: Lua and JavaScript do). The JavaScript engine's
#: own C API binding loads ctypes itself.
NEVER_BY_LANGUAGE = {"python": ("ctypes", "pkgutil"), "lisp": ("ctypes",), "lua": ("ctypes",)}
#: threads an engine's own library starts on import (quickjs-ng: its executor), and the
#: JS engine's deadline watchdog (every context gets the check: a limited call may reach it)
LIBRARY_THREADS = {"javascript": ("quickjs-worker", "kryon-js-watchdog")}
INSTALLED = ScriptManager(cache=False).languages


def _probe(code: str, *args: str) -> dict:
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_bare_import_loads_no_submodule():
    modules = _probe(BARE)
    ours = [m for m in modules if m.startswith("kryon_core.")]
    assert ours == [], f"import kryon_core loaded {ours}"
    assert not {"pluggy", "asyncio", "dataclasses", "pathlib", "typing", "logging"} & set(modules), modules


def test_every_public_name_still_resolves():
    found = _probe(NAMES)
    assert found["wrong"] == [] and found["listed"] == [] and found["same"]
    assert found["missing"] == "module 'kryon_core' has no attribute 'NoSuchName'"


@pytest.mark.parametrize("language", sorted(HELLO))
def test_kryon_run_hello_starts_nothing_it_does_not_need(language, tmp_path: Path):
    if language not in INSTALLED:
        pytest.skip(f"{language} is not installed")
    name, source = HELLO[language]
    path = tmp_path / name
    path.write_text(source)
    found = _probe(RUN, str(path))
    assert found["status"] == 0
    never = NEVER + NEVER_BY_LANGUAGE.get(language, ())
    loaded = sorted({n for n in never for m in found["modules"] if m == n or m.startswith(n + ".")})
    assert loaded == [], f"kryon run {name} imported {loaded}"
    assert found["children"] == [], "a trusted script started a process (a worker or a fork server)"
    allowed = LIBRARY_THREADS.get(language, ())
    extra = [t for t in found["threads"] if t != "MainThread" and not t.startswith(allowed)]
    assert extra == [], f"kryon run {name} left threads running: {extra}"


#: a trusted Python call under one limit, in a process that has not loaded ctypes
LIMIT = """
import json, sys
from kryon_core import ScriptManager, SecurityPolicy
SOURCE = "def spin():\\n    while True:\\n        pass\\ndef deep(n):\\n    return deep(n + 1)\\n"
with ScriptManager(policy=SecurityPolicy.trusted(), cache=False) as plain:
    plain.load_script_from_source("s", "python", SOURCE)  # no limit: no watchdog, no counting tracer
    before = "ctypes" in sys.modules
limit, call, args = {"time": ({"time_limit": 0.2}, "spin", []), "recursion": ({"max_recursion": 40}, "deep", [0])}[sys.argv[1]]
with ScriptManager(policy=SecurityPolicy.trusted(**limit), cache=False) as m:
    m.load_script_from_source("t", "python", SOURCE)
    try:
        m.call_function(f"t.{call}", args)
        error = None
    except Exception as exc:
        error = type(exc).__name__
print(json.dumps({"before": before, "error": error, "after": "ctypes" in sys.modules}))
"""


@pytest.mark.parametrize(("limit", "error"), [("time", "ScriptTimeoutError"), ("recursion", "RecursionLimitError")])
def test_trusted_limits_load_ctypes_when_first_needed(limit: str, error: str):
    """The watchdog (time limit) and the counting tracer (recursion limit)
    load ctypes when a limit is first set, not on import: a trusted run
    without limits never has it, and a limit still fires in a process that
    never loaded it."""
    if "python" not in INSTALLED:
        pytest.skip("python is not installed")
    assert _probe(LIMIT, limit) == {"before": False, "error": error, "after": True}


DOCUMENT = """
import json, sys
from kryon_core.dom import Document
Document()
before = "random" in sys.modules
numbers = [Document(seed=7).get_random() for _ in range(2)]
import random
expected = random.Random(7).random()
print(json.dumps({"before": before, "same": numbers == [expected, expected]}))
"""


def test_a_document_makes_its_random_generator_on_first_use():
    """``Document()`` does not import random (the CLI makes one per run); a
    seeded document still draws the sequence ``random.Random(seed)`` gives."""
    assert _probe(DOCUMENT) == {"before": False, "same": True}


CANCEL = """
import sys
from kryon_core import ScriptManager, SecurityPolicy
m = ScriptManager(policy=SecurityPolicy.trusted(), cache=False)
m.load_script_from_source("s", "python", "async def wait():\\n    while True:\\n        await pause()\\n"
                          "class pause:\\n    def __await__(self):\\n        yield\\n")
assert "asyncio" not in sys.modules  # loaded only below, after the engine and the script
import asyncio

async def main():
    task = asyncio.ensure_future(m.call_function_async("s.wait"))
    await asyncio.sleep(0.01)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        return "cancelled"
    except Exception as exc:
        return f"translated: {type(exc).__name__}: {exc}"
    return "finished"

print(asyncio.run(main()))
"""


def test_a_cancellation_passes_through_trusted_python_loaded_before_asyncio():
    """asyncio's CancelledError is left untranslated even when asyncio was
    imported after the engine (which no longer imports it itself)."""
    if "python" not in INSTALLED:
        pytest.skip("python is not installed")
    result = subprocess.run([sys.executable, "-c", CANCEL], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "cancelled"


def test_distribution_version_reads_the_metadata_folder_name(tmp_path: Path):
    from kryon_core.plugins import distribution_version

    first, second = tmp_path / "a", tmp_path / "b"
    (first / "quick_js.ng-1.2.3.dist-info").mkdir(parents=True)
    (second / "quick_js.ng-9.9.9.dist-info").mkdir(parents=True)
    (second / "other-0.1.dist-info").mkdir()
    path = [str(first), str(second), str(tmp_path / "absent")]
    assert distribution_version("Quick-JS_ng", path) == "1.2.3"  # normalized names; the first on the path wins
    assert distribution_version("other", path) == "0.1"
    assert distribution_version("nothing", path) is None


@pytest.mark.parametrize("zipped", [False, True])
def test_package_text_reads_files_and_zip_imports(tmp_path: Path, monkeypatch, zipped: bool):
    import zipfile

    from kryon_core.plugins import package_text

    name = f"kryon_text_probe_{int(zipped)}"
    text = "-- prélude ✓\n"
    if zipped:
        archive = tmp_path / "probe.zip"
        with zipfile.ZipFile(archive, "w") as z:
            z.writestr(f"{name}/__init__.py", "")
            z.writestr(f"{name}/prelude.lua", text.encode("utf-8"))
        monkeypatch.syspath_prepend(str(archive))
    else:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
        (tmp_path / name / "prelude.lua").write_bytes(text.encode("utf-8"))
        monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert package_text(name, "prelude.lua") == text
        with pytest.raises(OSError):
            package_text(name, "missing.lua")
    finally:
        sys.modules.pop(name, None)
