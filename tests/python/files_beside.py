"""The checks a sandboxed language's files beside the script share
(tests/python/test_sandbox_files.py and tests/lisp/test_sandbox_files.py):
both run in the Python workers, whose host hands a script the source of a
file beside it by module path and nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kryon_core import AccessDeniedError, ScriptManager, ScriptRuntimeError, SecurityPolicy
from kryon_core.isolation.testing import python_layers_off

SANDBOX = SecurityPolicy.sandboxed(time_limit=5)

#: what a worker may ask for that is no module path of the script's folder: a path with dots or
#: slashes of its own, an absolute path, a NUL, an empty or overlong name, no string at all
NOT_MODULE_PATHS: tuple[Any, ...] = ("../secret", "/etc/passwd", "a\x00b", "", "a//b", ".", 7, None, "x" * 600)


def sandboxed_runtime(m: ScriptManager, language: str) -> Any:
    """The worker runtime of ``language``'s sandboxed scripts (Python's sits behind its trusted engine)."""
    engine = m.engine(language)
    return engine.sandboxed.runtime if language == "python" else engine.runtime


def host_answers_only_module_paths(main: Path, language: str, answers: dict[str, str | None],
                                   refused: tuple[Any, ...] = ()) -> None:
    """Loaded from ``main``, the script's worker is refused every name of
    :data:`NOT_MODULE_PATHS` (and ``refused``); each module path of
    ``answers`` is answered with a source starting so (None: no such file)."""
    with ScriptManager(cache=False, policy=SANDBOX) as m:
        m.load_script_file(main)
        runtime = sandboxed_runtime(m, language)
        proc = runtime._script(main.stem).proc
        for name in NOT_MODULE_PATHS + refused:
            with pytest.raises(AccessDeniedError):
                runtime.serve_module(proc, name)
        for name, start in answers.items():
            source = runtime.serve_module(proc, name)
            assert source is None if start is None else source.startswith(start), (name, source)


def refused_at_load(m: ScriptManager, path: Path, message: str, line: int) -> None:
    """Loading ``path`` is refused (an AccessDeniedError matching ``message``)
    naming the script and the ``line`` of the import that was refused."""
    with pytest.raises(AccessDeniedError, match=message) as info:
        m.load_script_file(path)
    assert (info.value.script, info.value.line) == (path.stem, line)


def nothing_beside_a_script_without_a_file(language: str, source: str, message: str) -> None:
    """A script loaded from a string whose ``f`` imports ``helpers`` from
    beside it finds no module there (an error matching ``message``)."""
    with ScriptManager(cache=False, policy=SANDBOX) as m:
        m.load_script_from_source("nofile", language, source)
        with pytest.raises(ScriptRuntimeError, match=message):
            m.call_function("nofile.f")


def load_with_python_layers_off(m: ScriptManager, main: Path, language: str) -> None:
    """Load ``main`` with the kernel's confinement alone (no guard, Python's
    builtins) and check its worker runs so."""
    with python_layers_off():
        m.load_script_file(main)
    assert sandboxed_runtime(m, language).worker_info(main.stem)["hardening"]["guard"] is False
