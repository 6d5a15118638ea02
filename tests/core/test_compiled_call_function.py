"""ScriptManager.call_function's common case in C (kryon_core/_speedups.c, installed by
manager._compiled_call_function): the same outcome as the Python method for every case (a table
run through both on twin managers: results, errors, counts, errors counted, timed sample), every
uncommon case handed to the Python method before anything is counted, and counts exact under
threads. Skipped with KRYON_CORE_NO_CEXT=1 or without the extension (the rest of tests/core then
covers the Python method alone)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from prog_engine import ProgPlugin

from kryon_core import ScriptManager, ScriptRuntimeError, SecurityPolicy
from kryon_core.manager import _Location
from kryon_core.profiling import SAMPLE_EVERY
from kryon_core.testing.concurrency import run_threads

COMPILED = type(vars(ScriptManager)["call_function"]).__name__ == "ManagerCall"
pytestmark = pytest.mark.skipif(not COMPILED, reason="the compiled core is not built or is turned off")
PYTHON = getattr(vars(ScriptManager)["call_function"], "__wrapped__", None)

SOURCE = """\
def f(x): return x
def g(a, b, c, d, e, f_, g_, h, i): return a
def boom(x): raise ValueError(x)
def none(): return None
"""


def _manager(**kw: Any) -> ScriptManager:
    m = ScriptManager(discover=False, plugins=[ProgPlugin()], cache=False, policy=SecurityPolicy.trusted(), **kw)
    m.load_script_from_source("lib", "prog", SOURCE)
    m.load_script_from_source("other", "prog", "def f(x): return x\n")
    return m


@pytest.fixture
def pair() -> Iterator[tuple[ScriptManager, ScriptManager]]:
    a, b = _manager(hot_threshold=SAMPLE_EVERY + 3), _manager(hot_threshold=SAMPLE_EVERY + 3)
    yield a, b
    a.close()
    b.close()


def _outcome(call: Any, *args: Any, **kw: Any) -> tuple[str, Any]:
    try:
        return "ok", call(*args, **kw)
    except BaseException as exc:
        return "error", (type(exc), str(exc))


CASES: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    (("lib.f", [1]), {}), (("lib.f", (2,)), {}), (("lib.none",), {}), (("lib.none", []), {}),
    (("lib.boom", ["x"]), {}), (("lib.f", [1, 2]), {}),  # a TypeError in the engine: counted as an error
    (("f", [1]), {}),  # ambiguous: lib.f and other.f
    (("boom", ["y"]), {}), (("missing", [1]), {}), (("lib.missing", [1]), {}), ((3, [1]), {}),
    (("lib.f", "ITER"), {}), (("lib.f", "a"), {}), (("lib.g", list(range(9))), {}),  # not a list or tuple, > 8
    (("lib.f", [1]), {"caller": "other"}), (("lib.boom", ["z"]), {"caller": "other"}),
    (("lib.f",), {"args": [7]}), (("lib.f", [1], "extra"), {}), ((), {}),
]


def test_call_function_is_the_compiled_one_and_keeps_its_signature_and_doc() -> None:
    assert PYTHON is not None and inspect.signature(ScriptManager.call_function) == inspect.signature(PYTHON)
    assert ScriptManager.call_function.__doc__ == PYTHON.__doc__ and ScriptManager.call_function.__name__ == "call_function"
    m = _manager()
    try:
        bound = m.call_function
        assert bound("lib.f", [4]) == 4 and ScriptManager.call_function(m, "lib.f", [5]) == 5
    finally:
        m.close()


def test_the_compiled_and_the_python_method_agree(pair: tuple[ScriptManager, ScriptManager]) -> None:
    compiled, python = pair
    for _ in range(2 * SAMPLE_EVERY + 5):  # into the timed sample's steady part and past the hot threshold
        for case, kw in CASES:
            def args() -> tuple[Any, ...]:  # an iterator is used up by one call
                return tuple(iter([5]) if a == "ITER" else a for a in case)  # noqa: B023 - called at once

            assert _outcome(compiled.call_function, *args(), **kw) == _outcome(PYTHON, python, *args(), **kw), (case, kw)
    for name in ("lib.f", "lib.boom", "lib.none", "lib.g", "other.f"):
        a, b = compiled.profiler.functions[name], python.profiler.functions[name]
        assert (a.calls, a.errors, a.timed, a.steady, a.hot, a.next_timed) == \
            (b.calls, b.errors, b.timed, b.steady, b.hot, b.next_timed), name
    assert compiled.profiler.functions["lib.f"].calls == (2 * SAMPLE_EVERY + 5) * 7
    assert compiled.profiler.functions["lib.boom"].errors == (2 * SAMPLE_EVERY + 5) * 3  # lib.boom, boom, caller=


def test_profiling_off_calls_and_counts_nothing() -> None:
    m = _manager(profiling=False)
    try:
        assert m.call_function("lib.f", [3]) == 3
        assert _outcome(m.call_function, "lib.boom", [1])[0] == "error"
        assert all(s.calls == 0 for s in m.profiler.functions.values())
    finally:
        m.close()


def test_the_common_case_is_taken_in_c(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Python method is never entered for the common case, and is for the others."""
    m = _manager()
    entered: list[str] = []

    def spy(self: ScriptManager, name: str, args: Any = (), **kw: Any) -> Any:
        entered.append(name)
        return PYTHON(self, name, args, **kw)

    from kryon_core import _speedups  # type: ignore[attr-defined]

    shadow = _speedups.manager_call(spy, ScriptManager, _Location, type(m.profiler),
                                    type(m.profiler.functions["lib.f"]),
                                    *[_speedups.slot_offset(vars(c)[n]) for c, n in
                                      ((_Location, "call"), (_Location, "stats"),
                                       (type(m.profiler.functions["lib.f"]), "calls"),
                                       (type(m.profiler.functions["lib.f"]), "next_timed"))])
    monkeypatch.setattr(ScriptManager, "call_function", shadow)
    try:
        assert m.call_function("lib.f", [1]) == 1  # first call: the bound callable is made in Python
        entered.clear()
        for i in range(3 * SAMPLE_EVERY):
            assert m.call_function("lib.f", (i,)) == i
        with pytest.raises(ScriptRuntimeError, match="x"):
            m.call_function("lib.boom", ["x"])
        assert entered == ["lib.boom"]  # its bound callable was not made yet
        with pytest.raises(ScriptRuntimeError, match="x"):
            m.call_function("lib.boom", ["x"])
        assert entered == ["lib.boom"]
        assert m.profiler.functions["lib.boom"].errors == 2 and m.profiler.functions["lib.f"].calls == 1 + 3 * SAMPLE_EVERY
        m.call_function("lib.f", [1], caller="other")
        m.call_function("lib.f", iter([1]))
        m.call_function("lib.g", list(range(9)))
        assert entered == ["lib.boom", "lib.f", "lib.f", "lib.g"]

        class Sub(ScriptManager):
            pass

        sub = Sub(discover=False, plugins=[ProgPlugin()], cache=False, policy=SecurityPolicy.trusted())
        sub.load_script_from_source("lib", "prog", SOURCE)
        sub.call_function("lib.f", [1])
        sub.call_function("lib.f", [1])
        assert entered[-2:] == ["lib.f", "lib.f"] and sub.profiler.functions["lib.f"].calls == 2
        sub.close()
    finally:
        m.close()


def test_counts_stay_exact_under_threads() -> None:
    m = _manager()
    try:
        per_thread, threads = 2000, 4

        def work() -> None:
            for i in range(per_thread):
                m.call_function("lib.f", [i])

        run_threads([work] * threads)
        assert m.profiler.functions["lib.f"].calls == per_thread * threads
    finally:
        m.close()

