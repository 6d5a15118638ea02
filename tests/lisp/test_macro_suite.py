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
    "forbidden_dunder.kl": "the guard refuses dunder attributes at load",
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
