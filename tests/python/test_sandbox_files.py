"""Sandboxed Python imports files beside the script, as trusted Python does:
``from . import helpers``, ``from .helpers import f`` and ``from .sub.deep
import g`` (a folder with an ``__init__.py``) resolve in the script's folder,
inside its root (symlinks resolved; anything outside is an AccessDeniedError
naming the importing line). The worker cannot read files: the host's module
loader hands it the source, which the worker compiles with the script's
compiler and guard and runs with the script's builtins, under the call's time
limit. ``import helpers`` (absolute) is not resolved beside the script, as
for a trusted script."""

from __future__ import annotations

import io
import json
from pathlib import Path

import escape_corpus
import pytest
from files_beside import (
    SANDBOX,
    host_answers_only_module_paths,
    load_with_python_layers_off,
    nothing_beside_a_script_without_a_file,
    refused_at_load,
)

from kryon_core import (
    AccessDeniedError,
    ScriptManager,
    ScriptRuntimeError,
    ScriptTimeoutError,
    SecurityPolicy,
    SizeLimitError,
)

pytest.importorskip("kryon_core.isolation")

@pytest.fixture
def app(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    (app / "sub").mkdir(parents=True)
    (app / "helpers.py").write_text(
        "import kryon\nSCALE = 3\ndef scale(x):\n    return x * SCALE\n"
        "def say(text):\n    kryon.log(text)\n    print(text)\n    return text\n"
    )
    (app / "sub" / "__init__.py").write_text("")
    (app / "sub" / "deep.py").write_text("from ..helpers import scale\ndef nine():\n    return scale(3)\n")
    (app / "main.py").write_text(
        "from . import helpers\nfrom .helpers import scale\nfrom .sub.deep import nine\nfrom .sub import deep\n"
        "def run(x):\n    return helpers.scale(x) + scale(1) + nine() + deep.nine()\n"
        "def logs():\n    return helpers.say('from a helper')\n"
        "def imports(name):\n    return kryon.call('probe.imports', name)\n"
    )
    # what a file beside the script tries is refused as the script's own code is
    (app / "imports_os.py").write_text("value = 1\nimport os\n")
    (app / "dunder.py").write_text("value = ().__class__\n")
    (app / "opens.py").write_text("value = open('/etc/passwd').read()\n")
    (app / "deeper.py").write_text("from .imports_os import value\n")
    (app / "escapes_up.py").write_text("from .. import value\n")
    (app / "broken.py").write_text("value = 1\nvalue = (2\n")
    (app / "slow.py").write_text("while True:\n    pass\nvalue = 1\n")
    (app / "raises.py").write_text("value = 1\nvalue = 1 / 0\n")
    # outside the root: a symlink out of the folder
    (tmp_path / "secret.py").write_text("value = 'outside the root'\n")
    (app / "leak.py").symlink_to(tmp_path / "secret.py")
    return app


def probe(app: Path, module: str) -> Path:
    """A script that imports ``value`` from ``module`` on line 3 when ``go`` is called."""
    path = app / f"probe_{module}.py"
    path.write_text(f"def go():\n    value = None\n    from .{module} import value\n    return value\n")
    return path


def test_relative_imports_resolve_beside_the_script(app: Path) -> None:
    with ScriptManager(cache=False, policy=SANDBOX) as m:
        m.load_script_file(app / "main.py")
        assert m.engine("python").is_sandboxed("main")
        assert m.call_function("main.run", [2]) == 6 + 3 + 9 + 9
        assert m.call_function("main.logs") == "from a helper"
        assert m.evaluate("python", "from .helpers import scale\nscale(14)", script="main") == 42
        assert m.evaluate("python", "from . import sub\nsub.deep.nine()", script="main") == 9


def test_the_same_file_is_one_module(app: Path) -> None:
    """Imported twice (by the script and by a file beside it), a file runs once."""
    (app / "counter.py").write_text("import kryon\nkryon.log('counter runs')\nCOUNT = []\n")
    (app / "uses_counter.py").write_text("from .counter import COUNT\nCOUNT.append(1)\n")
    (app / "twice.py").write_text(
        "from .counter import COUNT\nfrom . import uses_counter\nfrom . import counter\n"
        "def count():\n    return len(COUNT), counter.COUNT is COUNT\n"
    )
    with ScriptManager(cache=False, policy=SANDBOX) as m:
        m.load_script_file(app / "twice.py")
        assert m.call_function("twice.count") == [1, True]


@pytest.mark.parametrize(
    "module, message",
    [
        ("imports_os", "importing 'os' is not allowed"),
        ("dunder", r"probe_dunder:dunder, line 1: .*__class__"),
        ("opens", "open is not allowed"),
        ("deeper", "importing 'os' is not allowed"),
        ("escapes_up", "reaches above the script's folder"),
        ("leak", "outside the script's folder"),
    ],
)
def test_what_a_file_beside_the_script_tries_is_refused(app: Path, module: str, message: str) -> None:
    with ScriptManager(cache=False, policy=SANDBOX) as m:
        m.load_script_file(app / "main.py")
        m.load_script_file(probe(app, module))
        with pytest.raises(AccessDeniedError, match=message) as info:
            m.call_function(f"probe_{module}.go")
        assert (info.value.script, info.value.language, info.value.line) == (f"probe_{module}", "python", 3)
        assert m.evaluate("python", "1 + 1", script=f"probe_{module}") == 2, "the script's worker still answers"
        assert m.call_function("main.run", [1]) == 3 + 3 + 9 + 9, "other scripts keep working"


@pytest.mark.parametrize("attack", ["string.Formatter walk to os", "frame walk to the worker", "gc walk to os",
                                    "read secret with open", "read secret with os.open"])
def test_an_escape_from_the_corpus_inside_a_file_beside_the_script_is_refused(
    app: Path, tmp_path: Path, attack: str
) -> None:
    """The guard, the curated builtins and the import rules hold inside an
    imported file as in the script: the corpus's attacks, moved into a
    sibling, are refused with the script's importing line."""
    secret = tmp_path / "secret.txt"
    secret.write_text("the secret")
    body = escape_corpus.PY_ATTACKS[attack]
    targets = {"secret": str(secret), "dir": str(tmp_path)}
    (app / "attack.py").write_text(
        f"T = {targets!r}\ndef attack():\n" + "".join(f"    {line}\n" for line in body.splitlines())
        + "value = attack()\n"
    )
    with ScriptManager(cache=False, policy=SANDBOX) as m:
        m.load_script_file(probe(app, "attack"))
        with pytest.raises(AccessDeniedError) as info:
            m.call_function("probe_attack.go")
        assert (info.value.script, info.value.line) == ("probe_attack", 3)
        assert secret.read_text() == "the secret"


def test_a_refused_import_at_load_names_the_line(app: Path) -> None:
    (app / "loads_leak.py").write_text("x = 1\n\nfrom .leak import value\ndef f():\n    return value\n")
    (app / "loads_evil.py").write_text("x = 1\nfrom .imports_os import value\n")
    (app / "loads_up.py").write_text("from .. import helpers\n")
    with ScriptManager(cache=False, policy=SANDBOX) as m:
        refused_at_load(m, app / "loads_leak.py", "outside the script's folder", 3)
        refused_at_load(m, app / "loads_evil.py", "importing 'os'", 2)
        refused_at_load(m, app / "loads_up.py", "reaches above", 1)
        assert not m.scripts


def test_an_absolute_import_is_not_a_file_beside_the_script(app: Path) -> None:
    """As for a trusted script, ``import helpers`` is the import of a module
    the policy must grant, not of the file beside the script."""
    (app / "absolute.py").write_text("def go():\n    import helpers\n    return helpers.SCALE\n")
    with ScriptManager(cache=False, policy=SANDBOX) as m:
        m.load_script_file(app / "absolute.py")
        with pytest.raises(AccessDeniedError, match="importing 'helpers' is not allowed") as info:
            m.call_function("absolute.go")
        assert info.value.line == 2


def test_broken_missing_failing_and_slow_files(app: Path) -> None:
    with ScriptManager(cache=False, policy=SecurityPolicy.sandboxed(time_limit=1)) as m:
        m.load_script_file(app / "main.py")
        for module in ("missing", "broken", "raises", "slow"):
            m.load_script_file(probe(app, module))
        with pytest.raises(ScriptRuntimeError, match="no module 'missing'") as info:
            m.call_function("probe_missing.go")
        assert info.value.line == 3
        # the error names the file and its line; its own line is the script's importing line
        with pytest.raises(ScriptRuntimeError, match=r"cannot compile probe_broken:broken, line 2") as info:
            m.call_function("probe_broken.go")
        assert (info.value.script, info.value.line) == ("probe_broken", 3)
        with pytest.raises(ScriptRuntimeError, match="ZeroDivisionError") as info:
            m.call_function("probe_raises.go")
        assert (info.value.script, info.value.line) == ("probe_raises", 3)
        with pytest.raises(ScriptTimeoutError):
            m.call_function("probe_slow.go")
        with pytest.raises(ScriptRuntimeError, match="'helpers' .* is a module, not a folder"):
            m.evaluate("python", "from .helpers.scale import x", script="main")
        # a file that failed is not kept half-run: the next import runs it again
        with pytest.raises(ScriptRuntimeError, match="ZeroDivisionError"):
            m.call_function("probe_raises.go")
        assert m.call_function("main.run", [1]) == 24


def test_a_script_without_a_file_has_nothing_beside_it() -> None:
    nothing_beside_a_script_without_a_file("python", "def f():\n    from . import helpers\n    return helpers\n",
                                           "script 'nofile' has no module 'helpers'")


def test_another_loaded_script_is_not_a_file_beside_the_script(app: Path) -> None:
    """The manager's module loader hands trusted scripts a loaded script's
    source by its id; a sandboxed script gets files beside it only."""
    (app / "helpers_twin.py").write_text("value = 'the file'\n")
    with ScriptManager(cache=False, policy=SANDBOX) as m:
        m.load_script_from_source("private", "python", "value = 'the source of another script'",
                                  policy=SecurityPolicy.trusted())
        m.load_script_from_source("helpers_twin", "python", "value = 'the loaded script'",
                                  policy=SecurityPolicy.trusted())
        m.load_script_file(probe(app, "private"))
        m.load_script_file(probe(app, "helpers_twin"))
        with pytest.raises(ScriptRuntimeError, match="no module 'private'"):
            m.call_function("probe_private.go")
        assert m.call_function("probe_helpers_twin.go") == "the file"


def test_the_host_answers_only_module_paths(app: Path) -> None:
    """A worker asks for files by module path; anything else (a path with
    dots or slashes of its own, an absolute path, a NUL) is refused."""
    host_answers_only_module_paths(
        app / "main.py", "python",
        {"helpers": "import kryon", "sub/deep": "from ..helpers", "nothing_here": None},
        refused=("sub/../leak",),
    )


def test_reload_picks_up_a_changed_file(app: Path) -> None:
    with ScriptManager(cache=False, policy=SANDBOX) as m:
        m.load_script_file(app / "main.py")
        assert m.call_function("main.run", [1]) == 24
        (app / "helpers.py").write_text("SCALE = 10\ndef scale(x):\n    return x * SCALE\n")
        assert m.call_function("main.run", [1]) == 24, "a loaded script keeps the files it imported"
        m.hot_reload_script("main", (app / "main.py").read_text())
        assert m.call_function("main.run", [1]) == 10 + 10 + 30 + 30


def test_a_cached_script_with_relative_imports(app: Path, tmp_path: Path) -> None:
    """Cold, then warm: a warm load runs the host's cached code, whose
    relative imports resolve in the worker as the compiled source's do."""
    for _ in range(2):
        with ScriptManager(cache_dir=tmp_path / "cache", policy=SANDBOX) as m:
            m.load_script_file(app / "main.py")
            assert m.call_function("main.run", [2]) == 27


def test_with_the_python_layers_off_the_same_imports_work(app: Path) -> None:
    """The kernel's confinement alone (no guard, Python's builtins): files
    beside the script still resolve (the worker still reads no file: the
    host sends the sources)."""
    with ScriptManager(cache=False, policy=SANDBOX) as m:
        load_with_python_layers_off(m, app / "main.py", "python")
        assert m.call_function("main.run", [2]) == 27


def test_an_app_run_sandboxed_imports_inside_its_folder(tmp_path: Path) -> None:
    """``kryon run --sandbox APP``: the root is the app's folder, so a file
    may reach a shared module inside the app through a symlink, not outside."""
    from kryon_core.app import App

    app = tmp_path / "app"
    (app / "scripts").mkdir(parents=True)
    (app / "shared.py").write_text("def double(x):\n    return 2 * x\n")
    (app / "scripts" / "shared.py").symlink_to(app / "shared.py")
    (app / "scripts" / "util.py").write_text("from .shared import double\ndef quad(x):\n    return double(double(x))\n")
    (tmp_path / "outside.py").write_text("value = 'outside the app'\n")
    (app / "scripts" / "outside.py").symlink_to(tmp_path / "outside.py")
    (app / "scripts" / "main.py").write_text(
        "from .util import quad\ndef go(x):\n    return quad(x)\ndef leak():\n    from .outside import value\n    return value\n"
    )
    (app / "app.json").write_text(json.dumps({"scripts": ["scripts/main.py"]}))
    loaded = App.load(app, policy=SANDBOX, out=io.StringIO())
    try:
        assert not loaded.errors
        assert loaded.manager.engine("python").is_sandboxed("main")
        assert loaded.manager.call_function("main.go", [3]) == 12
        with pytest.raises(AccessDeniedError, match="outside the script's folder") as info:
            loaded.manager.call_function("main.leak")
        assert info.value.line == 5
    finally:
        loaded.manager.close()


def test_a_file_over_max_source_size_is_refused(app: Path) -> None:
    """The worker's parser runs in C, out of its timer's reach: a file beside
    the script is bounded by max_source_size as the script's own source is
    (the host refuses it before sending it)."""
    (app / "small.py").write_text("value = 1\n" + "# pad\n" * 100)
    (app / "big.py").write_text("value = 2\n" + "x = 1\n" * 400)
    policy = SecurityPolicy.sandboxed(time_limit=5, max_source_size=2000)
    with ScriptManager(cache=False, policy=policy) as m:
        m.load_script_file(probe(app, "small"))
        m.load_script_file(probe(app, "big"))
        assert m.call_function("probe_small.go") == 1
        with pytest.raises(SizeLimitError, match=r"'big' .*max_source_size \(2000 bytes\)") as info:
            m.call_function("probe_big.go")
        assert (info.value.script, info.value.line) == ("probe_big", 3)
        assert m.call_function("probe_small.go") == 1


@pytest.mark.parametrize(
    "code, message",
    [
        ("from .outside_dir.inner import value", "outside the script's folder"),  # a folder linked out of the root
        ("from .sub.up import value", "reaches above the script's folder"),  # `...` from a nested file
        ("from .sub.up_far import value", "reaches above the script's folder"),
    ],
)
def test_escapes_through_folders_are_refused(app: Path, tmp_path: Path, code: str, message: str) -> None:
    outside = tmp_path / "outside_dir"
    outside.mkdir()
    (outside / "__init__.py").write_text("")
    (outside / "inner.py").write_text("value = 'outside the root'\n")
    (app / "outside_dir").symlink_to(outside, target_is_directory=True)
    (app / "sub" / "up.py").write_text("from ... import helpers\nvalue = 1\n")
    (app / "sub" / "up_far.py").write_text("from ....etc import passwd\nvalue = 1\n")
    with ScriptManager(cache=False, policy=SANDBOX) as m:
        m.load_script_file(app / "main.py")
        with pytest.raises(AccessDeniedError, match=message) as info:
            m.evaluate("python", f"x = 1\n{code}", script="main")
        assert (info.value.script, info.value.line) == ("main", 2)
        assert m.call_function("main.run", [1]) == 24


def test_with_the_python_layers_off_an_import_with_forged_globals_is_refused(app: Path) -> None:
    """Arbitrary Python (no guard, Python's builtins): the script's
    ``__import__`` resolves a relative import only for the namespaces it made,
    whatever ``__package__`` the caller's globals claim."""
    from kryon_core.isolation.testing import python_layers_off

    (app / "forger.py").write_text(
        "def forged():\n"
        "    return __import__('helpers', {'__package__': 'kryon-script#1', '__name__': 'x'}, None, ['scale'], 1)\n"
        "def spoofed():\n"
        "    global __package__\n"
        "    __package__ = 'elsewhere'\n"
        "    from .helpers import scale\n"
        "    return scale(2)\n"
    )
    with ScriptManager(cache=False, policy=SANDBOX) as m:
        with python_layers_off():
            m.load_script_file(app / "forger.py")
        with pytest.raises(AccessDeniedError, match="relative imports resolve only beside a script"):
            m.call_function("forger.forged")
        assert m.call_function("forger.spoofed") == 6, "a namespace's package is the one it was given"
