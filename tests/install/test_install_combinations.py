"""Install like users do: fresh virtual environments with core alone, core + Lua,
core + JavaScript and everything, each exercised through the `kryon` command and the Python API.

These build real wheels, so they are marked slow (they still run in CI)."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"

pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONPATH", "VIRTUAL_ENV"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


class Venv:
    def __init__(self, path: Path) -> None:
        venv.create(path, with_pip=True, clear=True)
        self.path = path
        self.python = str(path / "bin" / "python")
        self.kryon = str(path / "bin" / "kryon")

    def pip_install(self, *targets: Path | str) -> None:
        result = subprocess.run(
            [self.python, "-m", "pip", "install", "-q", *map(str, targets)],
            capture_output=True, text=True, env=_env(), timeout=900,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), capture_output=True, text=True, env=_env(), cwd=cwd, timeout=300)

    def py(self, code: str) -> subprocess.CompletedProcess[str]:
        return self.run(self.python, "-c", code)


def _installed_plugins() -> list[Path]:
    return sorted(p for p in PLUGINS.iterdir() if (p / "pyproject.toml").exists())


def test_core_alone(tmp_path: Path) -> None:
    env = Venv(tmp_path / "venv")
    env.pip_install(ROOT)
    listing = env.run(env.kryon, "engines")
    assert listing.returncode == 0 and "no engines installed" in listing.stdout
    script = tmp_path / "hello.lua"
    script.write_text('print("hi")\n')
    ran = env.run(env.kryon, "run", str(script))
    assert ran.returncode == 69, ran.stderr
    assert "kryon-lua" in ran.stderr
    probe = env.py(
        "from kryon_core import ScriptManager, EngineNotFoundError\n"
        "m = ScriptManager()\n"
        "try:\n    m.load_script_from_source('x', 'lua', 'return 1')\n"
        "except EngineNotFoundError as e:\n    print('missing:', e)\n"
    )
    assert "missing:" in probe.stdout and "install kryon-lua" in probe.stdout, probe.stderr
    assert env.py("import lupa").returncode != 0, "core alone must not pull in lupa"


def test_core_and_lua(tmp_path: Path) -> None:
    env = Venv(tmp_path / "venv")
    env.pip_install(ROOT, PLUGINS / "kryon-lua")
    listing = env.run(env.kryon, "engines", "--json")
    engines = json.loads(listing.stdout)
    assert [e["language"] for e in engines] == ["lua"]
    assert engines[0]["distribution"] == "kryon-lua" and "sandbox" in engines[0]["capabilities"]
    script = tmp_path / "calc.lua"
    script.write_text('print("loaded")\nfunction double(x) return x * 2 end\nfunction bad()\n  error("nope")\nend\n')
    ok = env.run(env.kryon, "run", str(script), "--call", "double", "21")
    assert ok.returncode == 0 and ok.stdout.split() == ["loaded", "42"], ok.stderr
    bad = env.run(env.kryon, "run", str(script), "--call", "bad")
    assert bad.returncode == 70 and "calc.lua:4" in bad.stderr and "nope" in bad.stderr
    broken = tmp_path / "broken.lua"
    broken.write_text("x = = 1\n")
    assert env.run(env.kryon, "run", str(broken)).returncode == 65
    api = env.py(
        "import time\n"
        "start = time.perf_counter()\n"
        "from kryon_core import ScriptManager, Document\n"
        "m = ScriptManager(cache=False)\n"
        "print('discovery_ms', round((time.perf_counter() - start) * 1000, 1), m.languages, m.is_loaded('lua'))\n"
        "doc = m.setup_dom_bridge(Document())\n"
        "doc.append_child(doc.root, doc.create_element('label', {'id': 'out'}))\n"
        "m.load_script_from_source('ui', 'lua', 'kryon.setProperty(\"out\", \"text\", \"from lua\")')\n"
        "print(doc.get_property('out', 'text'))\n"
        "from kryon_lua import ccall\n"
        "print('compiled caller', ccall.enabled())\n"
    )
    assert api.returncode == 0, api.stderr
    assert "['lua'] False" in api.stdout and "from lua" in api.stdout
    assert "compiled caller True" in api.stdout  # the wheel built kryon_lua._ccall (a C compiler is present)
    print(api.stdout.splitlines()[0])


def test_core_and_js(tmp_path: Path) -> None:
    """core + kryon-js: the wheel builds the optional compiled caller (kryon_js._ccall), and a
    scalar call goes through it."""
    env = Venv(tmp_path / "venv")
    env.pip_install(ROOT, PLUGINS / "kryon-js")
    api = env.py(
        "from kryon_core import ScriptManager, SecurityPolicy\n"
        "from kryon_js import ccall\n"
        "m = ScriptManager(cache=False, policy=SecurityPolicy.sandboxed())\n"
        "print(m.languages)\n"
        "m.load_script_from_source('calc', 'javascript', 'function add(a, b) { return a + b; }')\n"
        "add = m.function('calc.add')\n"
        "print('sum', add(2, 3), m.call_function('add', ['a', 1]))\n"
        "print('compiled caller', ccall.enabled())\n"
        "state = m.engine('javascript').states['calc']\n"
        "print('compiled calls', state.callers.peek(('add', 2)).calls)\n"
    )
    assert api.returncode == 0, api.stderr
    assert "['javascript']" in api.stdout and "sum 5 a1" in api.stdout
    assert "compiled caller True" in api.stdout  # the wheel built kryon_js._ccall (a C compiler is present)
    assert "compiled calls 1" in api.stdout


def test_everything(tmp_path: Path) -> None:
    plugins = _installed_plugins()
    env = Venv(tmp_path / "venv")
    env.pip_install(ROOT, *plugins)
    listing = env.run(env.kryon, "engines", "--json")
    assert listing.returncode == 0, listing.stderr
    languages = {e["language"] for e in json.loads(listing.stdout)}
    expected = {p.name.removeprefix("kryon-") for p in plugins}
    expected = {"javascript" if n == "js" else n for n in expected}
    assert expected <= languages, (expected, languages)
    if any(p.name == "kryon-wren" for p in plugins):  # its wheel built the compiled caller (a C compiler is present)
        wren = env.py(
            "from kryon_core import ScriptManager\n"
            "from kryon_wren import ccall\n"
            "m = ScriptManager(cache=False)\n"
            "m.load_script_from_source('w', 'wren', 'class C {\\n  static add(a, b) { a + b }\\n}\\n')\n"
            "f = m.function('w.C.add')\n"
            "print('sums', f(2, 3), f(4, 5), 'compiled caller', ccall.enabled(), type(f._call).__name__)\n"
        )
        assert "sums 5 9 compiled caller True Caller" in wren.stdout, wren.stdout + wren.stderr


def test_core_compiled_core_from_its_sdist(tmp_path: Path) -> None:
    """The sdist carries the optional compiled core's C source (kryon_core/_speedups.c and its
    header), a fresh venv builds it from there (a C compiler is present), and a trusted Python
    bound handle calls it; KRYON_CORE_NO_CEXT=1 keeps the Python caller."""
    dist = tmp_path / "dist"
    env = Venv(tmp_path / "venv")
    env.pip_install("setuptools>=77")  # the build backend pyproject.toml names (a new venv's own is older)
    built = subprocess.run(
        [env.python, "-c", f"from setuptools import build_meta; print(build_meta.build_sdist({str(dist)!r}))"],
        capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=300,
    )
    assert built.returncode == 0, built.stderr
    sdist = dist / built.stdout.split()[-1]
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {"kryon_core/_speedups.c", "kryon_core/_speedups_api.h", "setup.py"} <= names
    env.pip_install(sdist, PLUGINS / "kryon-python")  # the trusted Python engine: its bound handles use the core's caller
    probe = (
        "from kryon_core import ScriptManager, SecurityPolicy, speedups\n"
        "m = ScriptManager(cache=False, policy=SecurityPolicy.trusted())\n"
        "m.load_script_from_source('s', 'python', 'def add(a, b):\\n    return a + b\\n')\n"
        "f = m.function('s.add')\n"
        "print('sum', f(2, 3), 'compiled core', speedups.enabled(), type(f._call).__name__)\n"
    )
    on = env.py(probe)
    assert "sum 5 compiled core True Caller" in on.stdout, on.stdout + on.stderr
    off = subprocess.run([env.python, "-c", probe], capture_output=True, text=True, timeout=300,
                         env={**_env(), "KRYON_CORE_NO_CEXT": "1"})
    assert "sum 5 compiled core False function" in off.stdout, off.stdout + off.stderr
