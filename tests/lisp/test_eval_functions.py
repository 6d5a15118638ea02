"""Functions a Lisp script defines through ``hy.eval`` are functions of the
script like its ``defn`` ones, trusted and sandboxed: at its top level, and
in a call after it loaded. ``ScriptManager.functions()`` lists what the
script's namespace holds when asked, and ``call_function`` / ``function``
find a function defined since the load."""

from __future__ import annotations

import pytest

from kryon_core import FunctionNotFoundError, ScriptManager, SecurityPolicy

SOURCE = """\
(hy.eval '(defn top-eval [x] (+ x 1)))
(defn plain [] 2)
(defn define-later [] (hy.eval '(do (global later) (defn later [x] (* x 3)))) None)
(defn define-local [] (hy.eval '(defn only-local [] 1)) None)
(defn define-many [n]
  (for [i (range n)]
    (hy.eval (hy.read (+ "(do (global made-" (str i) ") (defn made-" (str i) " [] " (str i) "))"))))
  None)
"""

POLICIES = {
    "trusted": SecurityPolicy.trusted(),
    "sandboxed": SecurityPolicy.sandboxed(time_limit=10),
}


@pytest.fixture(params=sorted(POLICIES))
def m(request: pytest.FixtureRequest) -> ScriptManager:
    manager = ScriptManager(cache=False, policy=POLICIES[request.param])
    manager.load_script_from_source("s", "lisp", SOURCE)
    assert manager.engine("lisp").is_sandboxed("s") is (request.param == "sandboxed")
    yield manager
    manager.close()


def test_a_top_level_hy_eval_defn_is_listed_and_callable(m: ScriptManager) -> None:
    assert {"s.top-eval", "s.plain", "s.define-later"} <= set(m.functions())
    assert m.functions()["s.top-eval"].parameter_names == ("x",)
    assert m.call_function("s.top-eval", [41]) == 42
    assert m.call_function("top-eval", [1]) == 2


def test_a_function_a_call_defined_is_listed_and_callable(m: ScriptManager) -> None:
    assert "s.later" not in m.functions()
    with pytest.raises(FunctionNotFoundError):
        m.call_function("s.later", [1])
    m.call_function("s.define-later")
    assert m.call_function("s.later", [2]) == 6, "found without listing first"
    assert m.call_function("later", [3]) == 9, "by its bare name too"
    assert "s.later" in m.functions()
    assert m.function("s.later")(4) == 12


def test_the_listing_is_what_the_namespace_holds_when_asked(m: ScriptManager) -> None:
    m.call_function("s.define-many", [5])
    listed = m.functions()
    assert {f"s.made-{i}" for i in range(5)} <= set(listed)
    assert [m.call_function(f"s.made-{i}") for i in range(5)] == [0, 1, 2, 3, 4]
    assert m.interop.exported_functions("lisp")["s.made-3"].name == "made-3"


def test_a_defn_hy_eval_keeps_local_is_not_a_function_of_the_script(m: ScriptManager) -> None:
    """Without ``global``, ``hy.eval`` in a function defines in the call's
    locals (as Python's ``exec`` does): the script's namespace never holds it."""
    m.call_function("s.define-local")
    assert "s.only-local" not in m.functions()
    with pytest.raises(FunctionNotFoundError):
        m.call_function("s.only-local")


def test_a_reload_lists_the_new_version_only(m: ScriptManager) -> None:
    m.call_function("s.define-later")
    assert m.call_function("s.later", [1]) == 3
    m.hot_reload_script("s", "(defn plain [] 5)")
    assert m.call_function("s.plain") == 5
    assert "s.later" not in m.functions() and "s.top-eval" not in m.functions()
    with pytest.raises(FunctionNotFoundError):
        m.call_function("s.later", [1])


def test_a_qualified_name_names_its_own_script(m: ScriptManager) -> None:
    m.load_script_from_source("other", "lisp", "(defn g [] 1)")
    m.call_function("s.define-later")
    assert m.call_function("s.later", [1]) == 3
    with pytest.raises(FunctionNotFoundError):
        m.call_function("other.later")
