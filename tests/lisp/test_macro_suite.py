"""The macro-heavy Lisp files of tests/lisp/macro_suite (defmacro, reader
macros, do-mac, eval-when-compile, get-macro, Hy's assert) pass whole under
the trusted policy and under the default one, where they compile inside the
worker; what the default policy withholds fails at run time, refused."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from kryon_core import SecurityPolicy

pytest.importorskip("kryon_lisp")

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "lisp_macro_suite.py"
_spec = importlib.util.spec_from_file_location("lisp_macro_suite", _PATH)
assert _spec is not None and _spec.loader is not None
suite = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(suite)

#: file -> why the default policy refuses its tests (each must fail, as a refusal)
WITHHELD = {
    "forbidden.kl": "imports and files the policy does not grant",
    "forbidden_dunder.kl": "the guard's rule refuses dunder attributes (when they are read)",
    "async_code.kl": "asyncio.run makes an event loop of its own (new descriptors, a socket pair)",
}


def test_every_test_passes_trusted() -> None:
    results = suite.run_suite(SecurityPolicy.trusted())
    failed = {f"{file}:{name}": why for file, r in results.items() for name, why in r.items() if why is not None}
    assert not failed, failed
    assert sum(len(r) for r in results.values()) >= 30


def test_the_default_policy_passes_all_but_what_it_withholds() -> None:
    results = suite.run_suite(SecurityPolicy.sandboxed(time_limit=5))
    for file, r in results.items():
        for name, why in r.items():
            if file in WITHHELD:
                assert why is not None and ("AccessDeniedError" in why or "Errno" in why), (file, name, why)
            else:
                assert why is None, (file, name, why)


def test_a_directory_of_hy_test_files_is_collected_as_hys_pytest_setup_does(tmp_path, monkeypatch) -> None:
    """``--suite DIR``: test-*/test_*/hyx_test_* functions of each .hy file,
    one defined inside do-mac too; parameters mean fixtures (skipped); a
    module of the suite's own tree is found above the package folders."""
    suite_dir = tmp_path / "proj" / "kryon_suite_t" / "native"
    suite_dir.mkdir(parents=True)
    (tmp_path / "proj" / "kryon_suite_t" / "__init__.py").write_text("")
    (suite_dir / "__init__.py").write_text("")
    (tmp_path / "proj" / "kryon_suite_t" / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    (suite_dir / "basics.hy").write_text(
        "(import kryon_suite_t.helpers [double])\n"
        "(defn helper [] 1)\n"
        "(defn test-passes [] (assert (= (double 2) 4)))\n"
        "(defn test_fails [] (assert (= (helper) 2)))\n"
        "(defn test-needs-fixture [tmp-path] None)\n"
        "(defn test-odd/name? [] None)\n"
        "(do-mac '(defn test-made-by-do-mac [] None))\n"
    )
    (suite_dir / "broken.hy").write_text("(defn test-never-runs [] None)\n(import no-such-module-here)\n")
    assert suite.import_root(suite_dir) == tmp_path / "proj"
    monkeypatch.syspath_prepend(str(tmp_path / "proj"))
    results = suite.run_suite(SecurityPolicy.trusted(), suite_dir)
    basics = results["basics.hy"]
    assert set(basics) == {"test-passes", "test_fails", "test-needs-fixture", "test-odd/name?", "test-made-by-do-mac"}
    assert basics["test-passes"] is None and basics["test-odd/name?"] is None and basics["test-made-by-do-mac"] is None
    assert basics["test_fails"] is not None and "AssertionError" in basics["test_fails"]
    assert (basics["test-needs-fixture"] or "").startswith("skip:")
    assert list(results["broken.hy"]) == ["test-never-runs"] and "load:" in (results["broken.hy"]["test-never-runs"] or "")
    sandboxed = suite.run_suite(SecurityPolicy.sandboxed(time_limit=10), suite_dir)
    # its load fails (the import is withheld): the tests its source spells each fail with the refusal
    assert set(sandboxed["basics.hy"]) == {"test-passes", "test_fails", "test-needs-fixture", "test-odd/name?"}
    assert all("importing 'kryon_suite_t.helpers' is not allowed" in (why or "") for why in sandboxed["basics.hy"].values())
