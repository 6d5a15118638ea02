"""kryon-tally, a third-party engine distribution, as an outside author ships it.

- in-process: the plugin module registered by hand (no installation), and
  the distribution's own contract suite run here with a temporary
  ``.dist-info`` making its entry point discoverable;
- slow: a fresh virtual environment (no system site-packages) gets
  kryon-core and kryon-tally by ``pip install``; there ``kryon engines``
  lists the engine with its distribution, ``kryon run`` runs a ``.tally``
  file, and the distribution's tests (the contract suite and its
  installation checks) pass against the installed package.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kryon_core import (
    AccessDeniedError,
    CompileError,
    DOMError,
    FunctionRef,
    ScriptManager,
    ScriptRuntimeError,
    SecurityPolicy,
)

HERE = Path(__file__).resolve().parent
DIST = HERE / "kryon-tally"
REPO = HERE.parents[1]


@pytest.fixture
def tally_importable(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The distribution directory on sys.path: kryon_tally imports, but no
    entry point exists (it is not installed)."""
    monkeypatch.syspath_prepend(str(DIST))
    import kryon_tally.plugin

    return kryon_tally.plugin


def _manager(plugin: Any, **kw: Any) -> ScriptManager:
    return ScriptManager(plugins=[plugin], discover=False, cache=False, **kw)


# -- in-process ---------------------------------------------------------------------------------
def test_plugin_registered_in_process_runs_a_script(tally_importable: Any) -> None:
    printed: list[tuple[str, str]] = []
    with _manager(tally_importable, policy=SecurityPolicy.trusted(), output=lambda lang, text: printed.append((lang, text))) as m:
        assert m.languages == ["tally"]
        assert not m.is_loaded("tally"), "discovery must not create the engine"
        spec = m.engine_specs["tally"]
        assert spec.extensions == (".tally",) and spec.distribution is None  # not installed: no metadata
        m.load_script_from_source(
            "demo",
            "tally",
            """\
; factorial, closures, lists and dicts
(fn fact (n) (if (<= n 1) 1 (* n (fact (- n 1)))))
(fn counter ()
  (let ((n 0))
    (lambda () (set! n (+ n 1)) n)))
(fn summary (xs)
  (let ((total 0) (i 0))
    (while (< i (len xs))
      (set! total (+ total (get xs i)))
      (set! i (+ i 1)))
    (dict "count" (len xs) "total" total "mean" (/ total (len xs)))))
(print "loaded" (fact 5))
""",
        )
        assert printed == [("tally", "loaded 120")]
        assert m.call_function("fact", [20]) == 2432902008176640000
        assert m.call_function("demo.summary", [[1, 2, 3, 4]]) == {"count": 4, "total": 10, "mean": 2.5}
        tick = m.call_function("counter")
        assert isinstance(tick, FunctionRef) and tick.script == "demo"
        assert [tick(), tick(), tick()] == [1, 2, 3]
        assert m.functions()["demo.fact"].parameter_names == ("n",)
        assert type(m.call_function("fact", [3])) is int and type(m.call_function("fact", [3.0])) is float


def test_errors_name_language_script_line_and_column(tally_importable: Any) -> None:
    with _manager(tally_importable) as m:
        with pytest.raises(CompileError) as compile_info:
            m.load_script_from_source("bad", "tally", '(fn f ()\n  (print "unclosed)\n')
        assert (compile_info.value.language, compile_info.value.script) == ("tally", "bad")
        assert (compile_info.value.line, compile_info.value.column) == (2, 10)
        m.load_script_from_source("s", "tally", "(fn outer (x) (inner x))\n(fn inner (x)\n    (+ x \"one\"))\n")
        with pytest.raises(ScriptRuntimeError) as info:
            m.call_function("outer", [1])
        err = info.value
        assert (err.language, err.script, err.line, err.column) == ("tally", "s", 3, 5)
        assert [(f.function, f.line) for f in err.stack] == [("inner", 3), ("outer", 1)]
        assert str(err).startswith("tally s:3:5: ")
        with pytest.raises(AccessDeniedError):
            m.load_script_from_source("files", "tally", '(read-file "notes.txt")')
        m.setup_dom_bridge()
        m.load_script_from_source("dom", "tally", "(fn poke ()\n  (kryon.setVariable 42 true))")
        with pytest.raises(DOMError) as dom_info:  # raised by the host bridge, located in the script
            m.call_function("poke")
        assert (dom_info.value.language, dom_info.value.script, dom_info.value.line) == ("tally", "dom", 2)


def test_reload_is_atomic_and_unload_releases_closures(tally_importable: Any) -> None:
    with _manager(tally_importable) as m:
        m.load_script_from_source("counter", "tally", "(def n 0)\n(fn bump () (set! n (+ n 1)) n)\n")
        assert [m.call_function("bump"), m.call_function("bump")] == [1, 2]
        with pytest.raises(ScriptRuntimeError) as info:
            m.hot_reload_script("counter", '(fn bump () 0)\n(error "top level fails")\n')
        assert info.value.line == 2
        assert m.call_function("bump") == 3, "a failed reload keeps the old version and its state"
        m.hot_reload_script("counter", "(def n 100)\n(fn bump () (set! n (+ n 1)) n)\n")
        assert m.call_function("bump") == 101
        m.load_script_from_source("maker", "tally", "(fn make () (lambda () 42))")
        f = m.call_function("make")
        assert f() == 42
        m.unload_script("maker")
        with pytest.raises(ScriptRuntimeError, match="unloaded"):
            f()


def test_host_plugins_extend_the_kryon_api(tally_importable: Any) -> None:
    from kryon_core import hookimpl

    class Doubler:
        @hookimpl
        def kryon_setup_bridge(self, bridge: Any, language: str) -> None:
            bridge.add_function("double", lambda x: x * 2)

    with ScriptManager(plugins=[tally_importable, Doubler()], discover=False, cache=False) as m:
        m.load_script_from_source("p", "tally", "(fn quad (x) (kryon.double (kryon.double x)))")
        assert m.call_function("quad", [5]) == 20


def test_discovery_imports_only_the_plugin_module() -> None:
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(DIST)!r})\n"
        "import kryon_tally.plugin as plugin\n"
        "from kryon_core import ScriptManager\n"
        "m = ScriptManager(plugins=[plugin], discover=False, cache=False)\n"
        "assert m.languages == ['tally']\n"
        "print(sorted(name for name in sys.modules if name.startswith('kryon_tally')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "['kryon_tally', 'kryon_tally.plugin']"


def test_files_extension_maps_to_tally(tally_importable: Any, tmp_path: Path) -> None:
    script = tmp_path / "hello.tally"
    script.write_text('(fn greet (who) (str "hello, " who))\n', encoding="utf-8")
    with _manager(tally_importable) as m:
        assert m.load_script_file(script) == "hello"
        assert m.call_function("hello.greet", ["kryon"]) == "hello, kryon"


def _load_distribution_contract() -> Any:
    spec = importlib.util.spec_from_file_location("kryon_tally_dist_contract", DIST / "tests" / "test_contract.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestTallyContractInProcess(_load_distribution_contract().TestTallyContract):
    """The distribution's own contract class, run in this process: a
    throwaway ``.dist-info`` (what pip would write) makes its entry point
    visible to discovery for the duration of each test. Discovery sees
    only that directory, as in a venv holding just kryon-tally, so other
    engines installed in this Python (broken or not) play no part."""

    @pytest.fixture(autouse=True)
    def _installed(self, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
        site = tmp_path_factory.getbasetemp() / "tally-site"
        info = site / "kryon_tally-0.1.0.dist-info"
        if not info.exists():
            info.mkdir(parents=True)
            (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kryon-tally\nVersion: 0.1.0\n")
            (info / "entry_points.txt").write_text("[kryon.engines]\ntally = kryon_tally.plugin\n")
        monkeypatch.syspath_prepend(str(DIST))
        from kryon_core import plugins

        find = plugins.find_entry_points
        monkeypatch.setattr(plugins, "find_entry_points", lambda group=plugins.ENTRY_POINT_GROUP: find(group, [str(site)]))


# -- a fresh virtual environment -------------------------------------------------------------------
def _copy_sources(dest: Path) -> tuple[Path, Path]:
    """Copies of kryon-core and kryon-tally to build from, so pip's in-tree
    builds write nothing into the checkout."""
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist", ".pytest_cache")
    core = dest / "kryon-core"
    core.mkdir(parents=True)
    shutil.copy2(REPO / "pyproject.toml", core)
    shutil.copytree(REPO / "kryon_core", core / "kryon_core", ignore=skip)
    for extra in ("README.md", "LICENSE"):
        if (REPO / extra).exists():
            shutil.copy2(REPO / extra, core)
    tally = dest / "kryon-tally"
    shutil.copytree(DIST, tally, ignore=skip)
    return core, tally


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "KRYON"))}
    env["PYTHONNOUSERSITE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run(args: list[Any], *, cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


#: pip's messages when it cannot reach an index (setuptools, pytest, pluggy come from there)
OFFLINE_SIGNS = ("NewConnectionError", "Temporary failure in name resolution", "Network is unreachable",
                 "No matching distribution found for setuptools")


@pytest.mark.slow
def test_pip_installed_in_a_fresh_venv(tmp_path: Path) -> None:
    timings: dict[str, float] = {}
    env = _clean_env()
    work = tmp_path / "work"  # cwd for every command: nothing importable in it
    work.mkdir()
    core, tally = _copy_sources(tmp_path / "src")
    venv = tmp_path / "venv"

    start = time.monotonic()
    _run([sys.executable, "-m", "venv", venv], cwd=work, env=env)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / ("python.exe" if os.name == "nt" else "python")
    timings["venv"] = time.monotonic() - start

    start = time.monotonic()
    install = [python, "-m", "pip", "install", "--quiet", core, tally, "pytest"]
    proc = subprocess.run([str(a) for a in install], cwd=work, env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0 and any(s in proc.stderr for s in OFFLINE_SIGNS):
        pytest.skip(f"the package index is unreachable: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, f"pip install failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    timings["pip install"] = time.monotonic() - start

    # both packages come from the venv, not from the checkout or the outer Python
    where = _run(
        [python, "-c", "import sys, kryon_core, kryon_tally; print(sys.prefix); "
         "print(kryon_core.__file__); print(kryon_tally.__file__)"],
        cwd=work, env=env,
    ).stdout.split("\n")
    prefix = Path(where[0]).resolve()
    assert prefix == venv.resolve()
    for module_file in where[1:3]:
        assert Path(module_file).resolve().is_relative_to(prefix), module_file

    start = time.monotonic()
    listing = _run([bin_dir / "kryon", "engines", "--json"], cwd=work, env=env).stdout
    engines = {row["language"]: row for row in json.loads(listing)}
    text = _run([bin_dir / "kryon", "engines"], cwd=work, env=env).stdout
    timings["kryon engines"] = time.monotonic() - start
    assert engines["tally"]["distribution"] == "kryon-tally"
    assert engines["tally"]["distribution_version"] == "0.1.0"
    assert engines["tally"]["engine_version"] == "Tally 0.1.0"
    assert set(engines["tally"]["capabilities"]) == {"debugging", "sandbox"}
    assert any(line.split()[:2] == ["tally", "kryon-tally"] for line in text.splitlines()), text

    script = work / "hello.tally"
    script.write_text('(print "loading")\n(fn greet (who) (str "hello, " who))\n', encoding="utf-8")
    ran = _run([bin_dir / "kryon", "run", script.name, "--call", "greet", "world"], cwd=work, env=env).stdout
    assert "loading" in ran and "hello, world" in ran, ran

    start = time.monotonic()
    result = _run(
        [python, "-m", "pytest", tally / "tests", "-q", "-p", "no:cacheprovider"], cwd=work, env=env
    ).stdout
    timings["contract suite"] = time.monotonic() - start
    summary = result.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, result[-3000:]
    print(f"\nkryon-tally venv: {summary}; " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
