"""Sandboxed Lisp: each script in a kryon_core.isolation worker, a corpus of
known escapes each refused with a clear AccessDeniedError, limits enforced,
the host and the other scripts untouched. (Workers take a moment to start:
one manager serves the module.)"""

from __future__ import annotations

import asyncio

import pytest

from kryon_core import (
    AccessDeniedError,
    CompileError,
    Document,
    ScriptManager,
    ScriptRuntimeError,
    ScriptTimeoutError,
    SecurityPolicy,
)

pytest.importorskip("kryon_core.isolation")


@pytest.fixture(scope="module")
def sandboxed():
    m = ScriptManager(cache=False, policy=SecurityPolicy.sandboxed(time_limit=2.0))
    m.load_script_from_source(
        "bystander",
        "lisp",
        """
(setv n 41)
(defn answer [] (+ n 1))
(defn greet [name] (+ "hello " name))
(defn make-adder [k] (fn [x] (+ x k)))
(defn calls-os []
  (import os)
  (os.getcwd))
(defn :async double [x] (* x 2))
(defn :async fetch [x]
  (await (double x)))
(defn spin []
  (setv i 0)
  (while True
    (+= i 1)))
""",
    )
    yield m
    m.close()


def _intact(m: ScriptManager) -> None:
    assert m.call_function("bystander.answer") == 42


def test_a_bare_manager_runs_lisp_sandboxed():
    with ScriptManager(cache=False) as m:
        assert m.policy.sandboxed
        m.load_script_from_source("plain", "lisp", "(defn add-numbers [a b] (+ a b))")
        assert m.engine("lisp")._isolated  # it runs in a worker, not in this process
        assert m.call_function("add-numbers", [2, 3]) == 5


def test_sandboxed_async(sandboxed):
    assert sandboxed.functions()["bystander.fetch"].is_async
    assert asyncio.run(sandboxed.call_function_async("bystander.fetch", [21])) == 42


def test_sandboxed_functions_keep_lisp_names(sandboxed):
    fns = sandboxed.functions()
    assert fns["bystander.make-adder"].parameter_names == ("k",)
    assert fns["bystander.calls-os"].line == 6
    adder = sandboxed.call_function("bystander.make-adder", [10])
    assert adder(5) == 15 and adder.language == "lisp" and adder.script == "bystander"
    assert sandboxed.function("bystander.greet")("kryon") == "hello kryon"


ESCAPES = {
    "import-os": "(import os)\n(os.getcwd)",
    "subprocess": "(import subprocess)",
    "open": '(setv f (open "/etc/passwd"))',
    "dunder-chain": "(. (tuple) __class__ __base__)",
    "subclasses": "(.__subclasses__ object)",
    "getattr-dunder": '(getattr (tuple) "__class__")',
    "generator-frame": "(defn g [] (yield 1))\n(. (g) gi_frame)",
    "inline-python": "(py \"__import__('os')\")",
    "eval": '(eval "1")',
    "globals": "(globals)",
    "hy-eval": "(hy.eval '(+ 1 2))",
    "hy-importer": "(hy.I.os.getcwd)",
    "hy-compiler": "(import hy.compiler)",
    "defmacro": '(defmacro evil []\n  (import os)\n  (os.system "id"))\n(evil)',
    "eval-when-compile": "(eval-when-compile (import os))",
    "reader-macro": '(defreader evil (import os) (os.getcwd))',
    "require": "(require hyrule [->])",
    "one-shot-require": "(hy.R.hyrule.-> 1)",
    "nested-defmacro": "(defn f []\n  (when True\n    (defmacro m [] 1)))",
    "before-a-reader-error": '(eval-when-compile (import os) (os.getcwd))\n(setv broken "never closed',
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_known_escapes_are_refused(sandboxed, name):
    with pytest.raises(AccessDeniedError) as info:
        sandboxed.load_script_from_source(f"escape-{name}", "lisp", ESCAPES[name])
    err = info.value
    assert err.language == "lisp" and err.script == f"escape-{name}"
    assert f"escape-{name}" not in sandboxed.scripts
    _intact(sandboxed)


def test_compile_time_forms_are_refused_with_their_line(sandboxed):
    with pytest.raises(AccessDeniedError) as info:
        sandboxed.load_script_from_source("m", "lisp", "(defn f [] 1)\n(defn g []\n  (when True\n    (defmacro m [] 1)))")
    assert (info.value.line, info.value.column) == (4, 5)
    assert "defmacro" in info.value.message


def test_import_os_at_call_time(sandboxed):
    with pytest.raises(AccessDeniedError) as info:
        sandboxed.call_function("bystander.calls-os")
    assert "os" in info.value.message and info.value.line == 7
    _intact(sandboxed)


def test_infinite_loop_hits_the_time_limit(sandboxed):
    with pytest.raises(ScriptTimeoutError) as info:
        sandboxed.call_function("bystander.spin")
    assert info.value.language == "lisp" and info.value.script == "bystander"
    _intact(sandboxed)


def test_errors_in_the_worker_are_lisp_errors(sandboxed):
    sandboxed.load_script_from_source("rt", "lisp", "(defn set-it! [x]\n  (/ x 0))")
    try:
        with pytest.raises(ScriptRuntimeError) as info:
            sandboxed.call_function("rt.set-it!", [1])
        err = info.value
        assert "ZeroDivisionError" in err.message and (err.script, err.line, err.column) == ("rt", 2, 3)
        assert err.stack[0].function == "set-it!"
    finally:
        sandboxed.unload_script("rt")
    with pytest.raises(CompileError) as info:
        sandboxed.load_script_from_source("bad", "lisp", "(defn f []\n  (+ 1 2)))")
    assert info.value.line == 2


def test_top_level_errors_carry_the_lisp_line_and_stack(sandboxed):
    with pytest.raises(ScriptRuntimeError) as info:
        sandboxed.load_script_from_source("top", "lisp", '(setv x 1)\n(setv y 2)\n(raise (ValueError "top"))\n')
    err = info.value
    assert (err.language, err.script, err.line, err.column) == ("lisp", "top", 3, 1) and "ValueError: top" in err.message
    assert [(f.function, f.script, f.line, f.column) for f in err.stack] == [("<top level>", "top", 3, 1)]
    with pytest.raises(ScriptRuntimeError) as info:
        sandboxed.load_script_from_source("inner", "lisp", "(defn f []\n  (/ 1 0))\n(f)\n")
    assert (info.value.line, info.value.column) == (2, 3)
    assert [(f.function, f.line, f.column) for f in info.value.stack] == [("f", 2, 3), ("<top level>", 3, 1)]
    with pytest.raises(AccessDeniedError) as info:
        sandboxed.load_script_from_source("imp", "lisp", "(setv x 1)\n(import os)\n")
    assert (info.value.script, info.value.line) == ("imp", 2)
    with pytest.raises(CompileError) as info:
        sandboxed.load_script_from_source("syn", "lisp", "(setv x 1)\n(setv y (+ 1 2)\n")
    assert (info.value.line, info.value.column) == (2, 1)
    assert set(sandboxed.scripts) == {"bystander"}
    _intact(sandboxed)


def test_top_level_time_limit_and_failed_reload_name_the_line():
    with ScriptManager(cache=False, policy=SecurityPolicy.sandboxed(time_limit=0.3)) as m:
        with pytest.raises(ScriptTimeoutError) as info:
            m.load_script_from_source("spin", "lisp", "(setv i 0)\n(while True\n  (+= i 1))\n")
        assert info.value.script == "spin" and info.value.line in (2, 3)
        m.load_script_from_source("c", "lisp", "(setv n 0)\n(defn inc [] (global n) (+= n 1) n)\n")
        assert m.call_function("c.inc") == 1
        with pytest.raises(ScriptRuntimeError) as info:
            m.hot_reload_script("c", '(setv n 10)\n(raise (RuntimeError "no"))\n')
        assert (info.value.script, info.value.line) == ("c", 2)
        assert m.call_function("c.inc") == 2, "the old version keeps running"


def test_sandboxed_dom_and_globals():
    with ScriptManager(cache=False) as m:
        doc = m.setup_dom_bridge(Document())
        doc.append_child(doc.root, doc.create_element("label", {"id": "title", "text": ""}))
        m.set_global("lisp", "user-name", "ada")
        m.load_script_from_source(
            "ui",
            "lisp",
            '(set-property! (get-element-by-id "title") "text" (+ "hi " user-name))\n'
            '(add-event-listener! (get-element-by-id "title") "click"\n'
            '  (fn [e] (set-variable! "clicked" (get e "targetId"))))',
        )
        assert doc.get_property("title", "text") == "hi ada"
        doc.click("title")
        assert doc.get_variable("clicked") == "title"
        m.unload_script("ui")
        assert doc.callback_counts()["listeners"] == 0


def test_a_cached_trusted_compile_never_lets_macros_into_the_sandbox():
    source = "(defmacro shout [x] `(.upper ~x))\n(defn hello [] (shout \"hi\"))"
    with ScriptManager(cache_dir=False) as m:  # one in-memory cache for both loads
        m.load_script_from_source("trusted", "lisp", source, policy=SecurityPolicy.trusted())
        assert m.call_function("trusted.hello") == "HI"
        with pytest.raises(AccessDeniedError) as info:
            m.load_script_from_source("untrusted", "lisp", source)  # same source: a cache hit
        assert "defmacro" in info.value.message and info.value.line == 1
