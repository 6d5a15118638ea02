"""Macro-heavy Kryon Lisp test files (tests/lisp/macro_suite) run under the
trusted and the default (sandboxed) policy: every ``test-*`` function of each
file is called; the pass rate per file and policy is printed, with why each
failure failed. A file that fails to load fails all its tests.

    python benchmarks/lisp_macro_suite.py
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from kryon_core import ScriptError, ScriptManager, SecurityPolicy

SUITE = Path(__file__).resolve().parent.parent / "tests" / "lisp" / "macro_suite"


def run_file(manager: ScriptManager, path: Path, policy: SecurityPolicy) -> dict[str, str | None]:
    """test name -> None (passed) or the error's class and message."""
    script = f"suite_{path.stem}"
    names = [n for n in _test_names(path.read_text())]
    try:
        manager.load_script_from_source(script, "lisp", path.read_text(), policy=policy)
    except ScriptError as exc:
        return {n: f"load: {type(exc).__name__}: {exc.message}" for n in names}
    results: dict[str, str | None] = {}
    for name in names:
        try:
            manager.call_function(f"{script}.{name}")
            results[name] = None
        except ScriptError as exc:
            results[name] = f"{type(exc).__name__}: {exc.message}"
    manager.unload_script(script)
    return results


def _test_names(source: str) -> list[str]:
    out = []
    for line in source.splitlines():
        line = line.strip()
        if line.startswith("(defn test-"):
            out.append(line.split()[1])
    return out


def run_suite(policy: SecurityPolicy) -> dict[str, dict[str, str | None]]:
    with ScriptManager(cache=False, policy=policy, output=lambda lang, text: None) as m:
        return {path.name: run_file(m, path, policy) for path in sorted(SUITE.glob("*.kl"))}


def main() -> int:
    policies: dict[str, Any] = {"trusted": SecurityPolicy.trusted(), "default (sandboxed)": SecurityPolicy.sandboxed()}
    for label, policy in policies.items():
        results = run_suite(policy)
        total = sum(len(r) for r in results.values())
        passed = sum(1 for r in results.values() for v in r.values() if v is None)
        print(f"{label}: {passed} of {total} tests pass ({100 * passed / max(total, 1):.1f}%)")
        for file, r in results.items():
            ok = sum(1 for v in r.values() if v is None)
            print(f"  {file}: {ok}/{len(r)}")
            for name, why in r.items():
                if why is not None:
                    print(f"    {name}: {why[:160]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
