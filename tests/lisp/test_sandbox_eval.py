"""Sandboxed Lisp evaluates Lisp: hy.eval, hy.read, hy.read-many, hy.I and
hy.R work inside the worker, and whatever they compile or import is held to
the script's guard, builtins, policy and time limit. Every escape of the
corpus in test_sandbox.py, evaluated through hy.eval, stays refused."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from kryon_core import AccessDeniedError, ScriptError, ScriptManager, ScriptRuntimeError, ScriptTimeoutError, SecurityPolicy

pytest.importorskip("kryon_core.isolation")



def _escapes() -> dict[str, str]:
    """The corpus of known escapes, from test_sandbox.py."""
    spec = importlib.util.spec_from_file_location("lisp_sandbox_escapes", Path(__file__).with_name("test_sandbox.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.ESCAPES)


ESCAPES = _escapes()

EVAL_SCRIPT = """\
(defmacro twice [x] `(* 2 ~x))
(defn quoted [] (hy.eval '(+ 1 2)))
(defn read-one [text] (hy.eval (hy.read text)))
(defn read-all [text] (list (map hy.eval (hy.read-many text))))
(defn whole [text] (hy.eval (hy.read-many text)))
(defn local-name [x] (hy.eval 'x))
(defn with-globals [] (hy.eval '(+ a b) {"a" 1 "b" 2}))
(defn with-macros [] (hy.eval '(m) :macros {"m" (fn [] 7)}))
(defn model-kinds [] [(hy.repr (hy.read "(a :b [1 2.5] {\\"c\\" #{3}})")) (. (type (hy.read "x")) __name__)])
(defn importer [] [(hy.I.math.sqrt 16) ((. (hy.I "json") dumps) [1]) (hy.I.kryon.log "from hy.I")])
(defn attack [text] (hy.eval (hy.read-many text)))
(defn attack-globals [text] (hy.eval (hy.read-many text) {}))
(defn attack-module [text] (hy.eval (hy.read-many text) :module (hy.I "math")))
(defn import-by-name [name] (hy.I name))
(defn give-importer [] hy.I)
(defn give-eval [] hy.eval)
(defn forever [] (hy.eval '(while True 1)))
(eval-when-compile (setv compile-time (hy.eval '(twice 3))))
(defn at-compile-time [] compile-time)
(hy.eval '(defn made-by-eval [y] (twice y)))
(defn defines [] (made-by-eval 4))
"""


@pytest.fixture(scope="module")
def m():
    manager = ScriptManager(cache=False, policy=SecurityPolicy.sandboxed(time_limit=2.0))
    manager.load_script_from_source("ev", "lisp", EVAL_SCRIPT)
    yield manager
    manager.close()


def test_hy_eval_read_and_read_many_work(m):
    assert m.call_function("ev.quoted") == 3
    assert m.call_function("ev.read-one", ["(twice 21)"]) == 42, "the script's macros apply"
    assert m.call_function("ev.read-all", ["(setv q 5) (+ q 1)"]) == [None, 6]
    assert m.call_function("ev.whole", ["(setv r 2)\n(twice r)"]) == 4
    assert m.call_function("ev.local-name", [7]) == 7, "the caller's local names are seen"
    assert m.call_function("ev.with-globals") == 3
    assert m.call_function("ev.with-macros") == 7
    shown, kind = m.call_function("ev.model-kinds")
    assert shown == "'(a :b [1 2.5] {\"c\" #{3}})" and kind == "Symbol"
    assert m.call_function("ev.at-compile-time") == 6, "hy.eval runs while compiling too"
    assert m.call_function("ev.defines") == 8


def test_hy_i_imports_what_the_script_may_import(m):
    assert m.call_function("ev.importer") == [4.0, "[1]", None]
    for name in ("os", "os.path", "sys", "builtins", "subprocess", "importlib", "ctypes"):
        with pytest.raises(AccessDeniedError, match="not allowed"):
            m.call_function("ev.import-by-name", [name])


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_every_known_escape_evaluated_by_hy_eval_is_refused(m, name):
    with pytest.raises(AccessDeniedError) as info:
        m.call_function("ev.attack", [ESCAPES[name]])
    assert info.value.script == "ev" and info.value.language == "lisp"
    assert info.value.line == 11, "the refusal names the line of the hy.eval call"
    assert m.call_function("ev.quoted") == 3, "the script keeps working"


@pytest.mark.parametrize(
    "code",
    [
        '(.read (open "/etc/passwd"))',  # `globals` of its own: Python would give it the real builtins
        "(import os) (os.getcwd)",
        '((get (globals) "open") "/etc/passwd")',
        "(hy.I.builtins.open \"/etc/passwd\")",
        "(hy.eval '(import os) {})",
        '(hy.eval (hy.read "(. (tuple) __class__)") {"__builtins__" None})',
    ],
)
def test_hy_eval_with_globals_of_its_own_keeps_the_sandbox(m, code):
    with pytest.raises(AccessDeniedError):
        m.call_function("ev.attack-globals", [code])


def test_hy_eval_globals_must_be_a_plain_dict(m):
    """A dict subclass could refuse the script's builtins being set in it:
    Python would then run the code with its own."""
    m.load_script_from_source(
        "sub", "lisp",
        "(defclass D [dict] (defn __setitem__ [self k v] None))\n"
        "(defn f [] (hy.eval '(.read (open \"/etc/passwd\")) (D)))\n"
        "(setv g {})\n(setv (get g \"me\") g)\n"
        "(defn popped [] (hy.eval '(do (.pop me \"__builtins__\") (defn ff [] (.read (open \"/etc/passwd\"))) (ff)) g))",
    )
    with pytest.raises(ScriptRuntimeError, match="globals must be a dict"):
        m.call_function("sub.f")
    with pytest.raises(AccessDeniedError, match="open is not allowed"):
        m.call_function("sub.popped")
    m.unload_script("sub")


def test_hy_eval_module_must_be_the_scripts(m):
    with pytest.raises(ScriptRuntimeError, match="module must be the script's own"):
        m.call_function("ev.attack-module", ["(import os)"])


def test_hy_eval_and_hy_i_called_from_the_host_refuse(m):
    """Handed out as function references and called by the host, they run
    under the worker's own frames: they refuse rather than use those."""
    importer = m.call_function("ev.give-importer")
    with pytest.raises(AccessDeniedError, match="script code only"):
        importer("os")
    evaluate = m.call_function("ev.give-eval")
    with pytest.raises(ScriptError):
        evaluate("(import os)")
    assert m.call_function("ev.quoted") == 3


def test_hy_eval_runs_under_the_time_limit(m):
    with pytest.raises(ScriptTimeoutError):
        m.call_function("ev.forever")
    assert m.call_function("ev.quoted") == 3
    with pytest.raises(ScriptTimeoutError):
        m.load_script_from_source("slow", "lisp", "(defmacro m [] (hy.eval '(while True 1)))\n(m)")
    with pytest.raises(ScriptTimeoutError):  # a macro hy.eval expands runs under the limit too
        m.load_script_from_source("slow", "lisp", "(hy.eval '(do (defmacro spin [] (while True 1)) (spin)))")
    assert "slow" not in m.scripts
    m.load_script_from_source("by-name", "lisp", "(import kryon_lisp_hy)\n(defn f [] (kryon_lisp_hy.eval '(+ 1 2)))")
    assert m.call_function("by-name.f") == 3, "the runtime imported by its own name acts for the script too"
    m.unload_script("by-name")


@pytest.mark.parametrize(
    "source, line",
    [
        ("(setv x 1)\n(eval-when-compile (hy.eval '(import os)))", 2),
        ("(setv x 1)\n(do-mac (hy.eval '(. (tuple) __class__)))", 2),
        ("(setv x 1)\n(hy.eval '(pragma :hy (do (import os) \"1.0\")))", 2),
        ("(setv x 1)\n(hy.eval '(py \"__import__('os')\"))", 2),
        ("(setv x 1)\n(hy.eval '(require hyrule [->]))", 2),
        ("(setv x 1)\n(hy.eval '(defmacro evil [] (import os) 1))\n(hy.eval '(evil))", 3),
        ("(setv x 1)\n(hy.eval '(hy.R.hyrule.-> 1))", 2),
        ("(setv x 1)\n(hy.eval (hy.read-many \"(defreader evil (import os) 1)\\n(setv y #evil)\"))", 2),
    ],
    ids=["eval-when-compile", "do-mac dunder", "pragma", "inline python", "require", "defmacro", "hy.R",
         "reader macro"],
)
def test_compile_time_forms_through_hy_eval_are_refused_and_name_the_line(m, source, line):
    with pytest.raises(AccessDeniedError) as info:
        m.load_script_from_source("bad", "lisp", source)
    assert info.value.line == line, info.value
    assert "bad" not in m.scripts
    assert m.call_function("ev.quoted") == 3


def test_hy_r_and_hy_i_reach_granted_modules(tmp_path, monkeypatch):
    (tmp_path / "kryon_test_rmacs.hy").write_text("(defmacro triple [x] `(* 3 ~x))\n(setv value 5)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    source = "(defn f [x] (hy.R.kryon_test_rmacs.triple x))\n(defn g [] hy.I.kryon_test_rmacs.value)\n" \
             "(defn h [] (hy.eval '(hy.R.kryon_test_rmacs.triple 2)))"
    policy = SecurityPolicy.sandboxed(time_limit=5, allowed_modules=("kryon_test_rmacs",))
    with ScriptManager(cache=False, policy=policy) as granted:
        granted.load_script_from_source("r", "lisp", source)
        assert granted.call_function("r.f", [4]) == 12
        assert granted.call_function("r.g") == 5
        assert granted.call_function("r.h") == 6
    with ScriptManager(cache=False, policy=SecurityPolicy.sandboxed(time_limit=5)) as withheld:
        with pytest.raises(AccessDeniedError, match="kryon_test_rmacs") as info:
            withheld.load_script_from_source("r", "lisp", source)
        assert info.value.line == 1
