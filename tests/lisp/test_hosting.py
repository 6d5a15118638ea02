"""Kryon Lisp on the shared in-process hosting: evaluate, reload that keeps
state, relative requires and imports inside the script's root, the policies
in-process Lisp can and cannot keep, and a script run as the program."""

from __future__ import annotations

import sys

import pytest

from kryon_core import (
    AccessDeniedError,
    CompileError,
    Document,
    RecursionLimitError,
    ScriptManager,
    ScriptRuntimeError,
    SecurityPolicy,
    UnsupportedPolicyError,
)


def test_evaluate_runs_lisp_in_a_script_with_its_macros(manager):
    manager.load_script_from_source(
        "calc", "lisp", "(setv base 40)\n(defmacro twice [x] `(* 2 ~x))\n(defn add [a b] (+ a b))"
    )
    assert manager.evaluate("lisp", "(+ base 2)", script="calc") == 42
    assert manager.evaluate("lisp", "(twice base)", script="calc") == 80, "the script's own macros apply"
    assert manager.evaluate("lisp", "(setv my-count 5) (defn triple [x] (* 3 x))", script="calc") is None
    assert manager.call_function("calc.triple", [3]) == 9
    assert manager.evaluate("lisp", "my-count", script="calc") == 5
    assert manager.evaluate("lisp", ":keyword") == "keyword"  # the console script, results as host values
    manager.evaluate("lisp", '(setv seen "kept")')
    assert manager.evaluate("lisp", "seen") == "kept"


def test_evaluate_errors_name_the_script_and_the_line_within_the_code(manager):
    manager.load_script_from_source("calc", "lisp", "(setv value 1)")
    with pytest.raises(ScriptRuntimeError) as info:
        manager.evaluate("lisp", '(setv x 1)\n(raise (KeyError "no"))', script="calc")
    assert (info.value.script, info.value.line, info.value.language) == ("calc", 2, "lisp")
    with pytest.raises(CompileError) as compile_info:
        manager.evaluate("lisp", "(+ 1", script="calc")
    assert compile_info.value.script == "calc" and compile_info.value.line == 1
    assert manager.evaluate("lisp", "value", script="calc") == 1


COUNTER = """
(setv count None)
(setv item-names ["a"])
(defn bump []
  (global count)
  (setv count (+ (or count 0) 1))
  count)
"""


def test_reload_carries_data_the_new_version_leaves_undefined(manager):
    manager.load_script_from_source("c", "lisp", COUNTER)
    manager.call_function("c.bump")
    manager.hot_reload_script("c", COUNTER.replace("(or count 0) 1", "(or count 0) 10"))
    assert manager.call_function("c.bump") == 11


def test_reload_hook_uses_lisp_names(manager):
    manager.load_script_from_source("c", "lisp", COUNTER)
    manager.call_function("c.bump")
    manager.hot_reload_script(
        "c",
        COUNTER + '(setv received None)\n(defn on-reload [old]\n  (global received)\n  (setv received (sorted old))\n'
        '  {"count" (* 7 (get old "count")) "item-names" (+ (get old "item-names") ["b"])})\n',
    )
    assert manager.evaluate("lisp", "received", script="c") == ["count", "item-names"]
    assert manager.call_function("c.bump") == 8
    assert manager.evaluate("lisp", "item-names", script="c") == ["a", "b"]


def test_a_failing_reload_hook_leaves_the_old_version_running(dom):
    manager, doc = dom
    listening = COUNTER + '(add-event-listener! (get-element-by-id "btn") "click" (fn [e] (bump)))\n'
    manager.load_script_from_source("c", "lisp", listening)
    doc.click("btn")
    with pytest.raises(ScriptRuntimeError, match="hook broke"):
        manager.hot_reload_script("c", listening + '(defn on-reload [old] (raise (ValueError "hook broke")))\n')
    doc.click("btn")
    assert manager.call_function("c.bump") == 3, "the old version kept its state and its one listener"


def test_relative_require_and_import_resolve_beside_the_script(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "macros.kl").write_text("(defmacro twice [x] `(* 2 ~x))\n")
    (app / "helpers.hy").write_text("(defn scale [x] (* 3 x))\n")
    (app / "main.kl").write_text(
        "(require .macros [twice])\n(import .helpers [scale])\n(defn run [x] (twice (scale x)))\n"
        "(defn again [x] (hy.eval `(twice ~x)))\n"
    )
    (tmp_path / "secret.kl").write_text("(setv secret 1)\n")
    (app / "leak.kl").symlink_to(tmp_path / "secret.kl")
    (app / "escape.kl").write_text("(require .leak)\n")
    for cache in (False, True):  # a cached entry of such a script is compiled at load, inside its root
        with ScriptManager(policy=SecurityPolicy.trusted(), cache_dir=tmp_path / "cache" if cache else False) as m:
            m.load_script_file(app / "main.kl")
            assert m.call_function("main.run", [2]) == 12
            assert m.call_function("main.again", [5]) == 10, "required macros reach hy.eval at run time"
            with pytest.raises(AccessDeniedError, match="outside"):
                m.evaluate("lisp", "(import .leak [secret])", script="main")
            with pytest.raises((AccessDeniedError, CompileError), match="outside"):
                m.load_script_file(app / "escape.kl")
            assert not any(name.startswith("kryon_lisp.") and "macros" in name for name in sys.modules)


def test_trusted_lisp_refuses_what_it_cannot_keep_and_keeps_the_rest(manager):
    with pytest.raises(UnsupportedPolicyError) as info:
        manager.load_script_from_source("hog", "lisp", '(setv data (* "x" (* 200 1024 1024)))',
                                        policy=SecurityPolicy.trusted(memory_limit=50 * 1024 * 1024))
    assert info.value.limit == "memory_limit" and "lisp" in info.value.message and "sandboxed" in info.value.message
    deep = SecurityPolicy.trusted(max_recursion=40)
    manager.load_script_from_source("deep", "lisp", "(defn dive [n] (+ 1 (dive (+ n 1))))\n"
                                    "(defn depth [n] (if (= n 0) 0 (+ 1 (depth (- n 1)))))", policy=deep)
    with pytest.raises(RecursionLimitError, match=r"max_recursion \(40\)"):
        manager.call_function("deep.dive", [0])
    assert manager.call_function("deep.depth", [35]) == 35


def test_a_lisp_script_run_as_the_program_sees_main(manager):
    manager.engine("lisp").config.options["main"] = "prog"
    source = '(setv ran [])\n(when (= __name__ "__main__") (.append ran "main"))\n(defn name [] __name__)'
    manager.load_script_from_source("prog", "lisp", source)
    manager.load_script_from_source("lib", "lisp", source)
    assert manager.call_function("prog.name") == "__main__"
    assert manager.evaluate("lisp", "ran", script="prog") == ["main"]
    assert manager.evaluate("lisp", "ran", script="lib") == []


def test_each_lisp_script_has_its_own_kryon(dom):
    manager, doc = dom
    manager.load_script_from_source("a", "lisp", '(expose! "f")\n(defn f [] 1)')
    with pytest.raises(ScriptRuntimeError, match=r"\(set-property! \.\.\.\) takes 3 arguments, got 1"):
        manager.evaluate("lisp", "(set-property! 1)", script="a")
    assert manager.evaluate("lisp", '(kryon.get-element-by-id "btn")', script="a") is not None
    assert isinstance(doc, Document)


def test_a_warm_load_never_runs_hy(tmp_path, monkeypatch):
    import kryon_lisp.compiler

    source = "(defn f [] 42)\n(defn g [] (f))"
    with ScriptManager(policy=SecurityPolicy.trusted(), cache_dir=tmp_path) as first:
        first.load_script_from_source("one", "lisp", source)

    def no_compiling(*args, **kwargs):
        raise AssertionError("Hy compiled a cached script again")

    monkeypatch.setattr(kryon_lisp.compiler, "hy_compile", no_compiling)
    with ScriptManager(policy=SecurityPolicy.trusted(), cache_dir=tmp_path) as second:
        second.load_script_from_source("two", "lisp", source)
        assert second.scripts["two"].compiled.from_cache and second.call_function("two.g") == 42


SANDBOXED_PROBE = """
(defn by-name [name] (kryon-call name 1))
(defn via-ref [name] ((kryon-call name) 1))
(defn shared [] (get-shared "app-data"))
(defn listen []
  (add-event-listener! (get-element-by-id "btn") "click" (fn [event] (set-variable! "got" (get event "data")))))
"""


def test_a_sandboxed_lisp_script_reaches_trusted_functions_only_when_exposed(dom):
    manager, doc = dom
    manager.load_script_from_source(
        "app", "lisp",
        '(defn secret [x] (+ x 100))\n(defn handout [] secret)\n(create-shared! "app-data" {"f" secret})\n'
        '(defn fire [] (emit-custom-event! (get-element-by-id "btn") "click" secret))',
    )
    manager.load_script_from_source("plug", "lisp", SANDBOXED_PROBE, policy=SecurityPolicy.sandboxed())
    manager.call_function("plug.listen")
    for call, args in (("plug.by-name", ["app.secret"]), ("plug.by-name", ["secret"]),
                       ("plug.via-ref", ["app.handout"]), ("plug.shared", [])):
        with pytest.raises(AccessDeniedError):
            manager.call_function(call, args)
    manager.call_function("app.fire")
    assert doc.get_variable("got") is None, "a DOM event handed the sandboxed script a trusted function"
    manager.expose("app.secret", to=["plug"])
    manager.expose("app.handout", to=["plug"])
    assert manager.call_function("plug.by-name", ["app.secret"]) == 101
    assert manager.call_function("plug.via-ref", ["app.handout"]) == 101
    manager.load_script_from_source("app2", "lisp", '(expose! "mine" ["plug"])\n(defn mine [x] (- x))')
    assert manager.call_function("plug.by-name", ["app2.mine"]) == -1, "a script's own expose!"
