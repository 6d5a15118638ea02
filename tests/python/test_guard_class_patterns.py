"""A class pattern (`case C(attr=p)`) reads attributes by name with no
attribute expression in the source: the guard applies its attribute rule to
those names too, in source and in cached code, for sandboxed Python and Lisp."""

import marshal

import pytest

from kryon_core import AccessDeniedError, ScriptManager, SecurityPolicy
from kryon_core.isolation import guard

REFUSED_PATTERNS = [
    "case object(__globals__=g): return 1",
    "case object(__class__=c): return 1",
    "case object(_secret=s): return 1",
    "case object(gi_frame=f): return 1",
    "case object(real=r, __dict__=d): return 1",
    "case [object(__globals__=g)]: return 1",
    "case {'k': object(__code__=c)}: return 1",
    "case object(real=object(__class__=c)): return 1",
]


def _script(pattern: str, subject: str = "kryon.call") -> str:
    return f"import kryon\ndef f():\n    match {subject}:\n        {pattern}\n    return 0\n"


@pytest.fixture(scope="module")
def manager():
    with ScriptManager(policy=SecurityPolicy.sandboxed(), cache=False) as m:
        yield m


@pytest.mark.parametrize("pattern", REFUSED_PATTERNS)
def test_a_class_pattern_naming_a_refused_attribute_is_refused_at_load(manager, pattern):
    with pytest.raises(AccessDeniedError) as info:
        manager.load_script_from_source("p", "python", _script(pattern))
    assert info.value.line == 4 and info.value.script == "p"
    assert "p" not in manager.scripts


def test_allowed_names_in_class_patterns_still_match(manager):
    manager.load_script_from_source("ok", "python", (
        "def f(x):\n    match x:\n        case float(real=r, imag=i): return [r, i]\n"
        "        case object(__name__=n): return n\n    return None\n"))
    assert manager.call_function("ok.f", [1.5]) == [1.5, 0.0]


def test_cached_code_with_such_a_pattern_is_refused():
    code = compile(_script("case object(__globals__=g): return 1"), "p", "exec")
    with pytest.raises(guard.GuardViolation):
        guard.check_code(marshal.loads(marshal.dumps(code)))
    plain = compile(_script("case complex(real=r): return 1") + "T = ('_x', 1)\n", "p", "exec")
    guard.check_code(plain)  # a refused name in a tuple alone, or an allowed pattern alone, passes


def test_a_lisp_class_pattern_naming_a_refused_attribute_is_refused():
    pytest.importorskip("kryon_lisp")
    with ScriptManager(policy=SecurityPolicy.sandboxed(), cache=False) as m:
        with pytest.raises(AccessDeniedError):
            m.load_script_from_source("lp", "lisp", (
                "(import kryon)\n(defn f []\n  (match kryon.call\n    (object :__globals__ g) 1\n    _ 0))\n"))
        m.load_script_from_source("lok", "lisp", "(defn f [x]\n  (match x\n    (float :real r) r\n    _ 0))\n")
        assert m.call_function("lok.f", [2.5]) == 2.5
