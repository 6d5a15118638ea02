"""Every installed language calls every other (issue: polyglot acceptance).

For each ordered pair (A calls B): values of the value model there and back;
a callback round trip (A hands B one of its functions, B calls it); an error
raised in B reaching A as A's own error and carrying B's language, script and
line; a FunctionRef made in B and released in the host no longer callable
from A. The matrix adapts to the engines installed.
"""

from __future__ import annotations

import itertools
import math

import pytest

from kryon_core import FunctionRef, ScriptError, ScriptManager, SecurityPolicy

SNIPPETS: dict[str, tuple[str, str, int]] = {
    # language: (source, prefix of its function names, line where fail() raises)
    "lua": (
        """\
function echo(x) return x end
function relay(name, x) return kryon.call(name, x) end
function apply(f, x) return f(x) end
function offer(name) return kryon.call(name, function(x) return x * 2 end, 21) end
function fail(x)
  error("boom from lua")
end
function trap(name)
  local ok, err = pcall(kryon.call, name)
  if ok then return "no error" end
  return tostring(err)
end
function keeper() return function(x) return x + 100 end end
function bounce(target, back) return kryon.call(target, back, target) end
""",
        "",
        6,
    ),
    "javascript": (
        """\
function echo(x) { return x; }
function relay(name, x) { return kryon.call(name, x); }
function apply(f, x) { return f(x); }
function offer(name) { return kryon.call(name, (x) => x * 2, 21); }
function fail(x) {
  throw new Error("boom from javascript");
}
function trap(name) {
  try { kryon.call(name); return "no error"; } catch (e) { return String((e && e.message) || e); }
}
function keeper() { return (x) => x + 100; }
function bounce(target, back) { return kryon.call(target, back, target); }
""",
        "",
        6,
    ),
    "python": (
        """\
import kryon
def echo(x): return x
def relay(name, x): return kryon.call(name, x)
def apply(f, x): return f(x)
def offer(name): return kryon.call(name, lambda x: x * 2, 21)
def fail(x=None):
    raise ValueError("boom from python")
def trap(name):
    try:
        kryon.call(name)
    except Exception as e:
        return str(e)
    return "no error"
def keeper(): return lambda x: x + 100
def bounce(target, back): return kryon.call(target, back, target)
""",
        "",
        7,
    ),
    "lisp": (
        """\
(defn echo [x] x)
(defn relay [name x] (kryon-call name x))
(defn apply [f x] (f x))
(defn offer [name] (kryon-call name (fn [x] (* x 2)) 21))
(defn fail [[x None]]
  (raise (ValueError "boom from lisp")))
(defn trap [name]
  (try (kryon-call name) "no error" (except [e Exception] (str e))))
(defn keeper [] (fn [x] (+ x 100)))
(defn bounce [target back] (kryon-call target back target))
""",
        "",
        6,
    ),
    # Wren functions are static methods of a class; fail has two arities
    # because Wren, unlike the others, is strict about argument counts.
    "wren": (
        """\
import "kryon" for Kryon
class M {
  static echo(x) { x }
  static relay(name, x) { Kryon.call(name, [x]) }
  static apply(f, x) { f.call(x) }
  static offer(name) { Kryon.call(name, Fn.new { |x| x * 2 }, 21) }
  static fail() {
    Fiber.abort("boom from wren")
  }
  static fail(x) { fail() }
  static trap(name) {
    var fiber = Fiber.new { Kryon.call(name) }
    fiber.try()
    if (fiber.error == null) return "no error"
    return fiber.error.toString
  }
  static keeper() { Fn.new { |x| x + 100 } }
  static bounce(target, back) { Kryon.call(target, back, target) }
}
""",
        "M.",
        8,
    ),
}

VALUES = [None, True, 7, -2.5, "", "héllo ✓ 𝄞", [1, "a", [2.5]], {"k": [1, 2], "nested": {"deep": "yes"}}]


def _installed() -> list[str]:
    m = ScriptManager(cache=False)
    return [lang for lang in SNIPPETS if lang in m.languages]


LANGS = _installed()
PAIRS = list(itertools.permutations(LANGS, 2))

pytestmark = pytest.mark.skipif(len(LANGS) < 2, reason=f"needs two engines, installed: {LANGS}")


def script_id(lang: str) -> str:
    return f"m_{lang}"


def fn(lang: str, name: str) -> str:
    """The qualified name of one of the snippet's functions."""
    return f"{script_id(lang)}.{SNIPPETS[lang][1]}{name}"


@pytest.fixture(scope="module")
def manager():
    m = ScriptManager(policy=SecurityPolicy.trusted(), cache=False, output=lambda lang, text: None)
    for lang in LANGS:
        m.load_script_from_source(script_id(lang), lang, SNIPPETS[lang][0])
    yield m
    m.close()


def _same(a, b):
    if isinstance(a, float) and isinstance(b, (int, float)):
        return math.isclose(a, b)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b and type(a) is type(b) if isinstance(a, (bool, str)) or a is None else a == b


@pytest.mark.parametrize("caller,callee", PAIRS)
def test_values_cross_there_and_back(manager, caller, callee):
    for value in VALUES:
        got = manager.call_function(fn(caller, "relay"), [fn(callee, "echo"), value])
        assert _same(value, got), f"{caller} -> {callee}: {value!r} came back as {got!r}"


@pytest.mark.parametrize("caller,callee", PAIRS)
def test_callback_round_trip(manager, caller, callee):
    # the caller hands the callee one of its own functions; the callee calls it
    assert manager.call_function(fn(caller, "offer"), [fn(callee, "apply")]) == 42


@pytest.mark.parametrize("caller,callee", PAIRS)
def test_error_in_callee_reaches_caller(manager, caller, callee):
    message = manager.call_function(fn(caller, "trap"), [fn(callee, "fail")])
    assert f"boom from {callee}" in message, message
    assert script_id(callee) in message and str(SNIPPETS[callee][2]) in message, message
    with pytest.raises(ScriptError) as info:
        manager.call_function(fn(caller, "relay"), [fn(callee, "fail"), None])
    assert f"boom from {callee}" in str(info.value)


@pytest.mark.parametrize("caller,callee", PAIRS)
def test_released_function_ref_is_dead_everywhere(manager, caller, callee):
    ref = manager.call_function(fn(callee, "keeper"))
    assert isinstance(ref, FunctionRef) and ref.language == callee
    assert manager.call_function(fn(caller, "apply"), [ref, 1]) == 101
    ref.release()
    with pytest.raises(ScriptError):
        manager.call_function(fn(caller, "apply"), [ref, 1])


def test_cross_language_statistics(manager):
    if len(LANGS) < 2:
        pytest.skip("needs two engines")
    a, b = LANGS[0], LANGS[1]
    manager.call_function(fn(a, "relay"), [fn(b, "echo"), 1])
    stats = manager.interop.call_stats[fn(b, "echo")]
    assert stats.successful_calls >= 1 and stats.by_caller.get(a, 0) >= 1
    exported = manager.interop.exported_functions(b)
    assert fn(b, "echo") in exported and exported[fn(b, "echo")].language == b


def test_endless_cycle_between_languages_is_bounded():
    if len(LANGS) < 2:
        pytest.skip("needs two engines")
    a, b = LANGS[0], LANGS[1]
    m = ScriptManager(policy=SecurityPolicy.trusted(max_recursion=60), cache=False, output=lambda lang, text: None)
    for lang in (a, b):
        m.load_script_from_source(script_id(lang), lang, SNIPPETS[lang][0])
    # a.bounce(b, a) -> b.bounce(a, b) -> a.bounce(b, a) -> ... forever, across two languages
    with pytest.raises(ScriptError) as info:
        m.call_function(fn(a, "bounce"), [fn(b, "bounce"), fn(a, "bounce")])
    assert "nested deeper than 60" in str(info.value)
    assert m.call_function(fn(a, "echo"), [5]) == 5, "the host and both engines keep working"
