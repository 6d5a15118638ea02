"""Lisp test files run under the trusted and the default (sandboxed) policy:
every test function of each file is called; the pass rate per policy and file
is printed, with why each failure failed. A file that fails to load fails all
its tests.

    python benchmarks/lisp_macro_suite.py                  # tests/lisp/macro_suite (*.kl)
    python benchmarks/lisp_macro_suite.py --suite DIR      # any directory of Hy test files
    python benchmarks/lisp_macro_suite.py --suite DIR --grant pytest --grant tests

``--suite DIR`` runs the ``*.hy`` (and ``*.kl``) files of DIR the way Hy's
own test suite is collected by pytest: each file is a module, and its tests
are the module-level functions whose mangled names match ``test_*``,
``is_test_*``, ``hyx_test_*`` or ``hyx_is_test_*`` (Hy's pytest
configuration; ``test-fn/a`` mangles to ``hyx_test_fnXsolidusXa``). A test
that takes parameters wants pytest fixtures or ``parametrize``, which this
runner does not provide: it is listed as skipped, as is one that calls
``pytest.skip``. Modules the files import from their own tree (Hy's
``tests.resources``) are found as pytest's default import mode finds them:
the first folder above DIR without an ``__init__.py`` goes on ``sys.path``.

Besides the two policies it runs the default policy again with the grants
given by ``--grant MODULE`` (``allowed_modules``), ``--allow-imports``,
``--allow-files`` and ``--allow-network``, to show what a test needs beyond
the refused grant; ``--time-limit`` sets both sandboxed runs' limit. Each test
passing trusted but failing a sandboxed run is listed with its error. The
names collected are the script's functions (``ScriptManager.functions``), so
a test defined inside ``do-mac`` counts; a file that fails to load lists the
``(defn test-...`` forms its source spells at the start of a line.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from kryon_core import ScriptError, ScriptManager, SecurityPolicy

SUITE = Path(__file__).resolve().parent.parent / "tests" / "lisp" / "macro_suite"

#: Hy's pytest ``python_functions`` patterns, matched against mangled names
_TEST_NAME = re.compile(r"^(hyx_)?(is_)?test_")


def _counts(tests: dict[str, str | None]) -> tuple[int, int, int]:
    """(passed, ran, skipped) of one file's results."""
    passed = sum(1 for v in tests.values() if v is None)
    skipped = sum(1 for v in tests.values() if v is not None and v.startswith("skip:"))
    return passed, len(tests) - skipped, skipped


def _mangle(name: str) -> str:
    import hy  # imported late: only a run needs Hy

    return str(hy.mangle(name))


def _source_test_names(source: str) -> list[str]:
    """Test names as a failed load still lists them: each top-level
    ``(defn test-...`` / ``(defn [decorators] test-...`` of the source."""
    out: list[str] = []
    for match in re.finditer(r"^\(defn\s+(?:\[[^\]]*\]\s+)?(?::async\s+)?([^\s\[\]()]+)", source, re.M):
        name = match.group(1)
        if _TEST_NAME.match(_mangle(name)) and name not in out:
            out.append(name)
    return out


def _collect(manager: ScriptManager, script: str) -> list[tuple[str, tuple[str, ...], bool]]:
    """(name as the source spells it, parameter names, variadic) of each test
    function the loaded script defines, in source order, once per mangled name."""
    seen: dict[str, tuple[int, str, tuple[str, ...], bool]] = {}
    prefix = script + "."
    for qualified, info in manager.functions().items():
        if not qualified.startswith(prefix):
            continue
        name = qualified[len(prefix):]
        mangled = _mangle(name)
        if not _TEST_NAME.match(mangled):
            continue
        line = info.line or 0
        known = seen.get(mangled)
        # prefer the spelling the source used (it differs from the mangled one)
        if known is None or (name != mangled and known[1] == mangled):
            seen[mangled] = (line, name, info.parameter_names, info.is_variadic)
    return [(n, p, v) for _, n, p, v in sorted(seen.values())]


def run_file(manager: ScriptManager, path: Path, policy: SecurityPolicy) -> dict[str, str | None]:
    """test name -> None (passed), ``skip: why`` or the error's class and message."""
    script = "suite_" + re.sub(r"\W", "_", path.stem)
    source = path.read_text()
    try:
        manager.load_script_from_source(script, "lisp", source, policy=policy, filename=str(path))
    except ScriptError as exc:
        return {n: f"load: {type(exc).__name__}: {exc.message}" for n in _source_test_names(source)}
    results: dict[str, str | None] = {}
    try:
        for name, params, variadic in _collect(manager, script):
            if params and not variadic:
                results[name] = f"skip: takes pytest fixtures or parametrize ({', '.join(params)})"
                continue
            try:
                manager.call_function(f"{script}.{name}")
                results[name] = None
            except ScriptError as exc:
                why = f"{type(exc).__name__}: {exc.message}"
                results[name] = f"skip: {why}" if "Skipped" in why.split(":", 2)[1] else why
    finally:
        manager.unload_script(script)
    return results


def suite_files(suite: Path) -> list[Path]:
    return sorted(p for p in [*suite.glob("*.hy"), *suite.glob("*.kl")] if p.name != "__init__.hy")


def import_root(suite: Path) -> Path:
    """The folder pytest's default (prepend) import mode puts on sys.path for
    a test file in ``suite``: the first one up without an ``__init__.py``."""
    root = suite.resolve()
    while (root / "__init__.py").exists() or (root / "__init__.hy").exists():
        root = root.parent
    return root


def run_suite(policy: SecurityPolicy, suite: Path = SUITE) -> dict[str, dict[str, str | None]]:
    files = suite_files(suite)
    with ScriptManager(cache=False, policy=policy, output=lambda lang, text: None) as m:
        return {path.name: run_file(m, path, policy) for path in files}


def _summary(label: str, results: dict[str, dict[str, str | None]]) -> None:
    per_file = {f: _counts(r) for f, r in results.items()}
    passed, ran, skipped = (sum(c[i] for c in per_file.values()) for i in range(3))
    print(f"{label}: {passed} of {ran} tests pass ({100 * passed / max(ran, 1):.1f}%), {skipped} skipped")
    for file, (ok, n, skip) in per_file.items():
        print(f"  {file}: {ok}/{n}" + (f" ({skip} skipped)" if skip else ""))


def _regressions(
    trusted: dict[str, dict[str, str | None]], other: dict[str, dict[str, str | None]]
) -> Iterable[tuple[str, str, str]]:
    """(file, test, why) of each test passing trusted and failing in ``other``."""
    for file, tests in trusted.items():
        for name, why in tests.items():
            if why is None:
                theirs = other.get(file, {}).get(name, "not collected")
                if theirs is not None:
                    yield file, name, theirs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", type=Path, help="a directory of Hy test files (default: the macro suite)")
    parser.add_argument("--grant", action="append", default=[], metavar="MODULE",
                        help="a module the granted run may import (allowed_modules); repeatable")
    parser.add_argument("--allow-imports", action="store_true", help="the granted run may import any module")
    parser.add_argument("--allow-files", action="store_true", help="the granted run may use the file system")
    parser.add_argument("--allow-network", action="store_true",
                        help="the granted run may use sockets (asyncio.run's event loop needs a socket pair)")
    parser.add_argument("--time-limit", type=float, default=None,
                        help="seconds per call under the sandboxed policies (default: the policy's)")
    parser.add_argument("--width", type=int, default=200, help="characters of each error printed")
    args = parser.parse_args(argv)
    suite = args.suite.resolve() if args.suite else SUITE
    if args.suite:
        sys.path.insert(0, str(import_root(suite)))
    limits = {"time_limit": args.time_limit} if args.time_limit else {}
    runs: dict[str, SecurityPolicy] = {
        "trusted": SecurityPolicy.trusted(),
        "default (sandboxed)": SecurityPolicy.sandboxed(**limits),
    }
    if args.grant or args.allow_imports or args.allow_files or args.allow_network:
        grants = ", ".join([*args.grant, *(["any import"] if args.allow_imports else []),
                            *(["files"] if args.allow_files else []), *(["network"] if args.allow_network else [])])
        runs[f"default + grants ({grants})"] = SecurityPolicy.sandboxed(
            allowed_modules=frozenset(args.grant), allow_imports=args.allow_imports,
            allow_file_system=args.allow_files, allow_network=args.allow_network, **limits,
        )
    results = {label: run_suite(policy, suite) for label, policy in runs.items()}
    for label, r in results.items():
        _summary(label, r)
    trusted = results["trusted"]
    for file, tests in trusted.items():
        for name, why in tests.items():
            if why is not None and not why.startswith("skip:"):
                print(f"  trusted fails {file}:{name}: {why[:args.width]}")
    for label, r in results.items():
        if label == "trusted":
            continue
        lost = list(_regressions(trusted, r))
        print(f"{label}: {len(lost)} tests pass trusted and fail here")
        for file, name, why in lost:
            print(f"  {file}:{name}: {why[:args.width]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
