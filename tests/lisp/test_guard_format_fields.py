"""Sandboxed Kryon Lisp: ``str.format`` field names obey the guard's attribute
rule however the script reaches the method (method-call and dot forms,
``getattr``, ``str.format``, ``hy.eval`` of forms built or read at run time,
macros and reader macros run while compiling), and a warm load of code the host
compiled for the sandbox skips the worker's compiler."""

import pytest

from kryon_core import AccessDeniedError, ScriptManager, SecurityPolicy

pytest.importorskip("kryon_lisp")

#: each a form formatting a function whose globals are a worker module's (hy.eval's)
REFUSED = {
    "method call": '(.format "{0.__globals__[__name__]}" hy.eval)',
    "dot form": '((. "{0.__globals__[__name__]}" format) hy.eval)',
    "unbound": '(str.format "{0.__globals__[__name__]}" hy.eval)',
    "keyword": '(.format "{f.__globals__[__name__]}" :f hy.eval)',
    "nested spec": '(.format "{0:{1.__class__}}" 1 hy.eval)',
    "getattr": '((getattr "{0.__globals__[__name__]}" "format") hy.eval)',
    "getattr mangled": '((getattr "{0.__globals__[__name__]}" (hy.mangle "format")) hy.eval)',
    "getattr unbound": '((getattr str "format") "{0.__globals__[__name__]}" hy.eval)',
    "bound then called": '(do (setv m (. "{0.__globals__[__name__]}" format)) (m hy.eval))',
    "map": '(list (map str.format ["{0.__globals__[__name__]}"] [hy.eval]))',
    "hy.eval quoted": "(hy.eval '(.format \"{0.__globals__[__name__]}\" hy.eval))",
    "hy.eval read": '(hy.eval (hy.read "(.format \\"{0.__globals__[__name__]}\\" hy.eval)"))',
    "hy.eval built": ('(hy.eval (hy.models.Expression [(hy.models.Expression [(hy.models.Symbol ".") '
                      '(hy.models.String "{0.__globals__[__name__]}") (hy.models.Symbol "format")]) (hy.models.Symbol "g")]) '
                      '{"g" hy.eval})'),
    "UserString": '(.format (collections.UserString "{0.__globals__[__name__]}") hy.eval)',
    "update_wrapper": '(functools.update_wrapper (W) hy.eval :assigned #() :updated #("__globals__"))',
}

PRELUDE = (
    "(import collections functools)\n"
    "(defclass C [] (defn update [self d] None))\n"
    "(defclass W [] (defn __getattr__ [self name] (C)))\n"
)
LINE = PRELUDE.count("\n") + 2


@pytest.fixture(scope="module")
def manager():
    with ScriptManager(policy=SecurityPolicy.sandboxed(), cache=False) as m:
        yield m


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_format_field_reading_a_refused_attribute_is_refused_when_it_runs(manager, name):
    script = "l" + str(list(REFUSED).index(name))
    manager.load_script_from_source(script, "lisp", PRELUDE + f"(defn f []\n  {REFUSED[name]})\n")
    with pytest.raises(AccessDeniedError) as info:
        manager.call_function(f"{script}.f")
    assert "access to the attribute" in info.value.message  # the guard's refusal, not a deeper layer's
    assert (info.value.script, info.value.line, info.value.language) == (script, LINE, "lisp")


@pytest.mark.parametrize("source", [
    '(defmacro m [] (.format "{0.__globals__[__name__]}" hy.eval))\n(defn f [] (m))\n',
    '(defreader r (.format "{0.__globals__[__name__]}" hy.eval))\n(defn f [] #r)\n',
    '(eval-when-compile (.format "{0.__globals__[__name__]}" hy.eval))\n',
    '(defn f [s r]\n  (+= (. s format) r))\n',
    '(defn f [s]\n  (match s\n    (str :format m) m\n    _ 0))\n',
])
def test_refused_while_compiling_or_at_load(manager, source):
    with pytest.raises(AccessDeniedError) as info:
        manager.load_script_from_source("atload", "lisp", source)
    assert info.value.script == "atload" and info.value.line is not None
    assert "atload" not in manager.scripts


def test_ordinary_formatting_still_works(manager):
    manager.load_script_from_source("fine", "lisp", (
        "(import collections)\n"
        "(defclass Own [] (defn format [self x] (+ \"own \" x)))\n"
        "(defn f [x]\n"
        "  [(.format \"{0.real} {y[1]} {1.__name__}\" x f :y [7 8])\n"
        "   (str.format \"{:>3}\" 1)\n"
        "   ((getattr \"{}!\" \"format\") 2)\n"
        "   (.format (Own) \"x\")\n"
        "   f\"{x} {(+ 1 1)}\"\n"
        "   (% \"%s-%s\" #(1 2))\n"
        "   (.format (collections.UserString \"{0.real}\") 4)\n"
        "   (hy.eval '(.format \"{}\" 5))])\n"))
    assert manager.call_function("fine.f", [2.5]) == ["2.5 8 f", "  1", "2!", "own x", "2.5 2", "1-2", "4", "5"]


def test_a_warm_sandboxed_load_of_format_code_skips_the_compiler(tmp_path):
    source = '(defn f [x]\n  (+ (.format "{0.real}|{y}" x :y 1) (str.format "{}" 2)))\n'
    attack = '(defn f []\n  (.format "{0.__globals__[__name__]}" f))\n'  # no `hy`: its runtime is bound by the worker's compile
    policy = SecurityPolicy.sandboxed(time_limit=10)
    with ScriptManager(cache_dir=tmp_path, policy=policy) as m:
        m.load_script_from_source("cold", "lisp", source)
        m.load_script_from_source("cold_attack", "lisp", attack)
    with ScriptManager(cache_dir=tmp_path, policy=policy) as m:
        m.load_script_from_source("warm", "lisp", source)
        m.load_script_from_source("warm_attack", "lisp", attack)
        runtime = m.engine("lisp").runtime
        assert m.scripts["warm"].compiled.from_cache
        assert runtime.worker_info("warm")["compiled_from"] == "bytecode"
        assert runtime.worker_info("warm_attack")["compiled_from"] == "bytecode"
        assert m.call_function("warm.f", [1.5]) == "1.5|12"
        with pytest.raises(AccessDeniedError) as info:
            m.call_function("warm_attack.f")
        assert (info.value.script, info.value.line) == ("warm_attack", 2)
    with ScriptManager(cache_dir=tmp_path, policy=SecurityPolicy.trusted()) as m:  # the sandbox's compile, trusted
        m.load_script_from_source("t", "lisp", source)
        assert m.scripts["t"].compiled.from_cache and m.call_function("t.f", [1.5]) == "1.5|12"


def test_code_a_trusted_compile_cached_is_compiled_from_source_in_the_worker():
    attack = '(defn f []\n  (.format "{0.__globals__[__name__]}" hy.eval))\n'
    with ScriptManager(cache_dir=False) as m:
        m.load_script_from_source("t", "lisp", attack, policy=SecurityPolicy.trusted())
        m.load_script_from_source("s", "lisp", attack, policy=SecurityPolicy.sandboxed(time_limit=10))
        assert m.scripts["s"].compiled.from_cache
        assert m.engine("lisp").runtime.worker_info("s")["compiled_from"] == "source"
        with pytest.raises(AccessDeniedError):
            m.call_function("s.f")


def test_a_str_subclass_as_an_attribute_name_is_judged_by_its_string(manager):
    """``getattr`` judges the string Python's lookup uses, not what a subclass's
    ``startswith`` answers."""
    manager.load_script_from_source("sly", "lisp", (
        "(defclass N [str] (defn startswith [self #* a] False))\n"
        "(defn f []\n  (get (getattr hy.eval (N \"__globals__\")) \"__name__\"))\n"))
    with pytest.raises(AccessDeniedError) as info:
        manager.call_function("sly.f")
    assert "__globals__" in info.value.message and info.value.line == 3


@pytest.mark.parametrize("source", [
    ("(defclass M [type] (defn __instancecheck__ [cls obj] True))\n"
     "(setv X (M \"X\" #() {\"__match_args__\" #(\"__globals__\")}))\n"
     "(defn f []\n  (match hy.eval\n    (X g) (get g \"__name__\")\n    _ 0))\n"),
    "(defn f [x]\n  (match x\n    (int n) n\n    _ 0))\n",
])
def test_a_positional_class_pattern_is_refused_at_load(manager, source):
    with pytest.raises(AccessDeniedError) as info:
        manager.load_script_from_source("lpos", "lisp", source)
    assert "positional" in info.value.message and info.value.line == source.count("\n") - 1


def test_keyword_and_as_patterns_still_match_in_lisp(manager):
    manager.load_script_from_source("lkw", "lisp", (
        "(defn f [x]\n  (match x\n    (float :real r) r\n    (int) :as n n\n    _ 0))\n"))
    assert manager.call_function("lkw.f", [2.5]) == 2.5 and manager.call_function("lkw.f", [3]) == 3
