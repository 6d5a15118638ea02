"""Sandboxed Lisp imports and requires files beside the script, as trusted
Lisp does: ``(require .macros [m])`` and ``(import .helpers [f])`` resolve
in the script's folder, inside its root (symlinks resolved; anything outside
is an AccessDeniedError naming the line). The worker cannot read files: the
host's module loader hands it the source, which the worker compiles with the
script's guard and runs with the script's builtins."""

from __future__ import annotations

from pathlib import Path

import pytest

from kryon_core import AccessDeniedError, ScriptManager, ScriptRuntimeError, SecurityPolicy

pytest.importorskip("kryon_core.isolation")

from files_beside import (  # noqa: E402 - tests/python, on the path by this folder's conftest
    host_answers_only_module_paths,
    load_with_python_layers_off,
    nothing_beside_a_script_without_a_file,
    refused_at_load,
)

MAIN = """\
(require .macros [twice])
(import .helpers [scale])
(import .sub.deep [nine])
(import . [helpers])
(defn run [x] (+ (twice x) (scale 1) (nine) (helpers.scale 0)))
(defn via-eval [] (hy.eval '(do (require .macros [twice]) (twice 5))))
(defn imports [name]
  (hy.eval (hy.read (+ "(do (import ." name " [value]) value)"))))
(defn logs [] (helpers.say "from a helper"))
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    (app / "sub").mkdir(parents=True)
    (app / "macros.kl").write_text("(defmacro twice [x] `(* 2 ~x))\n")
    (app / "helpers.kl").write_text('(setv SCALE 3)\n(defn scale [x] (* x SCALE))\n(defn say [text] (log text) text)\n')
    (app / "sub" / "__init__.kl").write_text("")
    (app / "sub" / "deep.kl").write_text("(import ..helpers [scale])\n(defn nine [] (scale 3))\n")
    (app / "main.kl").write_text(MAIN)
    # what a file beside the script tries is refused as the script's own code is
    (app / "imports_os.kl").write_text("(setv value 1)\n(import os)\n")
    (app / "dunder.kl").write_text("(setv value (. (tuple) __class__))\n")
    (app / "opens.kl").write_text('(setv value (.read (open "/etc/passwd")))\n')
    (app / "macro_os.kl").write_text("(defmacro m [] (import os) 1)\n(setv value (m))\n")
    (app / "evals.kl").write_text("(setv value (hy.eval '(import os)))\n")
    (app / "deeper.kl").write_text("(import .imports_os [value])\n")
    (app / "broken.kl").write_text("(setv value (+ 1 2)\n")
    (app / "slow.kl").write_text("(while True 1)\n(setv value 1)\n")
    # outside the root: a symlink out of the folder
    (tmp_path / "secret.kl").write_text('(setv value "outside the root")\n(defmacro leak [] "leaked")\n')
    (app / "leak.kl").symlink_to(tmp_path / "secret.kl")
    return app


def test_relative_requires_and_imports_resolve_beside_the_script(app: Path) -> None:
    with ScriptManager(cache=False, policy=SecurityPolicy.sandboxed(time_limit=5)) as m:
        m.load_script_file(app / "main.kl")
        assert m.engine("lisp").is_sandboxed("main")
        assert m.call_function("main.run", [2]) == 4 + 3 + 9 + 0
        assert m.call_function("main.via-eval") == 10
        assert m.call_function("main.logs") == "from a helper"
        assert m.evaluate("lisp", "(import .helpers [scale])\n(scale (twice 7))", script="main") == 42


@pytest.mark.parametrize(
    "module, message",
    [
        ("imports_os", "importing 'os' is not allowed"),
        ("dunder", "__class__"),
        ("opens", "open is not allowed"),
        ("macro_os", "importing 'os' is not allowed"),
        ("evals", "importing 'os' is not allowed"),
        ("deeper", "importing 'os' is not allowed"),
        ("leak", "outside the script's folder"),
    ],
)
def test_what_a_file_beside_the_script_tries_is_refused(app: Path, module: str, message: str) -> None:
    with ScriptManager(cache=False, policy=SecurityPolicy.sandboxed(time_limit=5)) as m:
        m.load_script_file(app / "main.kl")
        with pytest.raises(AccessDeniedError, match=message) as info:
            m.call_function("main.imports", [module])
        assert (info.value.script, info.value.language, info.value.line) == ("main", "lisp", 8)
        assert m.call_function("main.run", [1]) == 14, "the script keeps working"


def test_a_refused_require_names_the_line(app: Path) -> None:
    (app / "requires_leak.kl").write_text("(setv x 1)\n\n(require .leak [leak])\n(defn f [] (leak))\n")
    (app / "requires_evil.kl").write_text("(setv x 1)\n(require .macro_os [m])\n")
    with ScriptManager(cache=False, policy=SecurityPolicy.sandboxed(time_limit=5)) as m:
        refused_at_load(m, app / "requires_leak.kl", "outside the script's folder", 3)
        refused_at_load(m, app / "requires_evil.kl", "importing 'os'", 2)
        assert not m.scripts


def test_missing_broken_and_slow_files(app: Path) -> None:
    with ScriptManager(cache=False, policy=SecurityPolicy.sandboxed(time_limit=1)) as m:
        m.load_script_file(app / "main.kl")
        with pytest.raises(ScriptRuntimeError, match="no module 'missing'"):
            m.call_function("main.imports", ["missing"])
        with pytest.raises(ScriptRuntimeError, match="broken.*line 1"):
            m.call_function("main.imports", ["broken"])
        from kryon_core import ScriptTimeoutError

        with pytest.raises(ScriptTimeoutError):
            m.call_function("main.imports", ["slow"])
        assert m.call_function("main.run", [1]) == 14


def test_a_script_without_a_file_has_nothing_beside_it() -> None:
    nothing_beside_a_script_without_a_file("lisp", "(defn f [] (import .helpers [x]) x)",
                                           "the script has no module 'helpers' beside it")


def test_a_cached_script_with_relative_imports_is_compiled_by_its_worker(app: Path, tmp_path: Path) -> None:
    (app / "plain.kl").write_text("(import .helpers [scale])\n(defn f [x] (scale x))\n")
    for _ in range(2):  # cold, then warm: the cache never hands the worker code that imports relatively
        with ScriptManager(cache_dir=tmp_path / "cache", policy=SecurityPolicy.sandboxed(time_limit=5)) as m:
            m.load_script_file(app / "plain.kl")
            assert m.call_function("plain.f", [2]) == 6
            assert m.engine("lisp").runtime.worker_info("plain")["compiled_from"] == "source"


def test_another_loaded_script_is_not_a_file_beside_the_script(app: Path) -> None:
    """The manager's module loader hands trusted scripts a loaded script's
    source by its id; a sandboxed script gets files beside it only."""
    with ScriptManager(cache=False, policy=SecurityPolicy.sandboxed(time_limit=5)) as m:
        m.load_script_from_source("private", "lisp", '(setv value "the source of another script")',
                                  policy=SecurityPolicy.trusted())
        m.load_script_file(app / "main.kl")
        with pytest.raises(ScriptRuntimeError, match="no module 'private'"):
            m.call_function("main.imports", ["private"])
        assert m.call_function("main.run", [1]) == 14, "files beside the script still resolve"


def test_the_host_answers_only_module_paths(app: Path) -> None:
    """A worker asks for files by module path; anything else (a path with
    dots or slashes of its own, an absolute path, a NUL) is refused."""
    host_answers_only_module_paths(app / "main.kl", "lisp", {"helpers": "(setv SCALE 3)", "nothing_here": None})


def test_with_the_python_layers_off_the_same_lisp_works(app: Path) -> None:
    """The kernel's confinement alone (no guard, Python's builtins): files
    beside the script, hy.eval and hy.I still work (the worker still reads
    no file: the host sends the sources)."""
    with ScriptManager(cache=False, policy=SecurityPolicy.sandboxed(time_limit=5)) as m:
        load_with_python_layers_off(m, app / "main.kl", "lisp")
        assert m.call_function("main.run", [2]) == 16
        assert m.call_function("main.via-eval") == 10


def test_a_file_over_max_source_size_is_refused(app: Path) -> None:
    """A file beside the script is bounded by max_source_size as the
    script's own source is (the worker compiles it, partly in C)."""
    from kryon_core import SizeLimitError

    (app / "big.kl").write_text("(setv value 2)\n" + "(setv x 1)\n" * 400)
    policy = SecurityPolicy.sandboxed(time_limit=5, max_source_size=3000)
    with ScriptManager(cache=False, policy=policy) as m:
        m.load_script_file(app / "main.kl")
        with pytest.raises(SizeLimitError, match=r"'big' .*max_source_size \(3000 bytes\)") as info:
            m.call_function("main.imports", ["big"])
        assert (info.value.script, info.value.line) == ("main", 8)
        assert m.call_function("main.run", [1]) == 14
