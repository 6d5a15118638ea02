"""Bad input: each a clear Kryon error naming the .kl file's line and column;
the host and every other script keep working."""

from __future__ import annotations

import pytest

from kryon_core import (
    AccessDeniedError,
    CompileError,
    DOMError,
    RecursionLimitError,
    ScriptError,
    ScriptManager,
    ScriptRuntimeError,
    ScriptTimeoutError,
    SecurityPolicy,
)


@pytest.fixture
def bystander(manager):
    manager.load_script_from_source("bystander", "lisp", "(setv n 41) (defn answer [] (+ n 1))")
    return manager


def _intact(m: ScriptManager) -> None:
    assert m.call_function("bystander.answer") == 42


def _load_error(m: ScriptManager, source: str, name: str = "bad") -> ScriptError:
    with pytest.raises(ScriptError) as info:
        m.load_script_from_source(name, "lisp", source)
    assert name not in m.scripts
    _intact(m)
    return info.value


def test_unclosed_parenthesis_points_at_the_opener(bystander):
    err = _load_error(bystander, "(defn ok [] 1)\n(defn f [x]\n  (+ x 1)\n")
    assert isinstance(err, CompileError)
    assert (err.language, err.script, err.line, err.column) == ("lisp", "bad", 2, 1)
    assert "unbalanced parentheses" in err.message and "never closed" in err.message
    assert err.stack and err.stack[0].line == 2


def test_mismatched_bracket_names_the_opener(bystander):
    err = _load_error(bystander, "(defn f [x]\n  (let [y (+ x 1)\n    y)")
    assert isinstance(err, CompileError)
    assert (err.line, err.column) == (3, 6)
    assert "'[' opened at line 2, column 8 needs ']'" in err.message


def test_inner_unclosed_form(bystander):
    err = _load_error(bystander, "(defn f [x]\n  (let [y 1]\n    (+ x y)\n")
    assert isinstance(err, CompileError)
    assert (err.line, err.column) == (2, 3)


def test_extra_closing_parenthesis(bystander):
    err = _load_error(bystander, "(defn f [x]\n  (+ x 1)))")
    assert isinstance(err, CompileError)
    assert (err.line, err.column) == (2, 11)
    assert "unbalanced parentheses" in err.message


def test_unterminated_string(bystander):
    err = _load_error(bystander, '(setv greeting "hello)\n')
    assert isinstance(err, CompileError)
    assert (err.line, err.column) == (1, 16)
    assert "string" in err.message


def test_reader_errors(bystander):
    err = _load_error(bystander, "(setv x 1)\n(setv y #!!nope)")
    assert isinstance(err, CompileError) and err.line == 2
    err = _load_error(bystander, "(setv x {1 2 3})")
    assert isinstance(err, CompileError) and err.line == 1


def test_syntax_errors_from_hy_and_python(bystander):
    err = _load_error(bystander, "(defn f []\n  (setv 1 2))")
    assert isinstance(err, CompileError) and err.line == 2 and "constant" in err.message
    err = _load_error(bystander, "(setv x 1)\n\n(return x)")  # Python's own check, on Lisp lines
    assert isinstance(err, CompileError) and err.line == 3


def test_macro_expansion_error(bystander):
    source = ('(defmacro checked [x]\n  (if (isinstance x int) x (raise (ValueError "needs a literal int"))))\n'
              '(setv a (checked 1))\n(setv b (checked "two"))')
    err = _load_error(bystander, source)
    assert isinstance(err, CompileError)
    assert (err.line, err.column) == (4, 9)
    assert "macro expansion failed" in err.message and "needs a literal int" in err.message


def test_deeply_nested_source(bystander):
    err = _load_error(bystander, "(+ " * 5000 + "1" + ")" * 5000)
    assert isinstance(err, CompileError) and "nested too deeply" in err.message


RUNTIME = """\
(defn divide [a b]
  (/ a b))

(defn compute [x]
  (setv y (* x 2))
  (divide y 0))

(defn missing []
  (no-such-function 1))

(defn raises []
  (raise (ValueError "bad value")))

(defn bad-dom []
  (set-property! 42 "text" "x"))

(defn wrong-arity []
  (set-property! "only-one"))
"""


def test_runtime_error_points_at_lisp_lines(bystander):
    bystander.load_script_from_source("rt", "lisp", RUNTIME)
    with pytest.raises(ScriptRuntimeError) as info:
        bystander.call_function("rt.compute", [1])
    err = info.value
    assert "ZeroDivisionError" in err.message
    assert (err.language, err.script, err.line, err.column) == ("lisp", "rt", 2, 3)
    assert [(f.function, f.line) for f in err.stack] == [("divide", 2), ("compute", 6)]
    assert all(f.language == "lisp" and f.script == "rt" for f in err.stack)
    assert "rt:2:3 in divide" in err.format_stack()
    _intact(bystander)


def test_runtime_error_messages(bystander):
    bystander.load_script_from_source("rt", "lisp", RUNTIME)
    with pytest.raises(ScriptRuntimeError, match="name 'no-such-function' is not defined") as info:
        bystander.call_function("rt.missing")
    assert info.value.line == 9
    with pytest.raises(ScriptRuntimeError, match="ValueError: bad value") as info:
        bystander.call_function("rt.raises")
    assert info.value.line == 12


def test_bridge_errors_get_the_lisp_location(bystander):
    bystander.setup_dom_bridge()
    bystander.load_script_from_source("rt", "lisp", RUNTIME)
    with pytest.raises(DOMError) as info:
        bystander.call_function("rt.bad-dom")
    assert (info.value.language, info.value.script, info.value.line) == ("lisp", "rt", 15)
    with pytest.raises(ScriptRuntimeError, match=r"\(set-property! \.\.\.\) takes 3 arguments, got 1") as info:
        bystander.call_function("rt.wrong-arity")
    assert info.value.line == 18


def test_top_level_error_fails_the_load(bystander):
    err = _load_error(bystander, "(setv x 1)\n(setv y (/ x 0))")
    assert isinstance(err, ScriptRuntimeError)
    assert (err.line, err.stack[0].function) == (2, "<top level>")


def test_errors_across_scripts_carry_both_stacks(bystander):
    bystander.load_script_from_source("callee", "lisp", "(defn explode []\n  (raise (RuntimeError \"inner\")))")
    bystander.load_script_from_source("caller", "lisp", '(defn run []\n  (+ 1 (kryon-call "callee.explode")))')
    with pytest.raises(ScriptRuntimeError) as info:
        bystander.call_function("caller.run")
    frames = [(f.script, f.function, f.line) for f in info.value.stack]
    assert frames == [("callee", "explode", 2), ("caller", "run", 2)]
    assert info.value.script == "callee"


def test_lisp_catches_errors_from_other_scripts(bystander):
    bystander.load_script_from_source("callee", "lisp", '(defn explode [] (raise (RuntimeError "inner")))')
    bystander.load_script_from_source(
        "caller",
        "lisp",
        '(defn safe []\n  (try (kryon-call "callee.explode")\n    (except [e Exception] (+ "caught: " (str e)))))',
    )
    assert bystander.call_function("caller.safe") == "caught: lisp callee:1:18: RuntimeError: inner"


def test_infinite_loop_hits_the_time_limit(bystander):
    policy = SecurityPolicy.trusted(time_limit=0.2)
    bystander.load_script_from_source(
        "loop", "lisp", "(defn spin []\n  (setv i 0)\n  (while True\n    (+= i 1)))\n(defn ok [] :fine)", policy=policy
    )
    with pytest.raises(ScriptTimeoutError) as info:
        bystander.call_function("loop.spin")
    err = info.value
    assert (err.language, err.script) == ("lisp", "loop") and err.line in (3, 4)
    assert "time limit of 0.2 s" in err.message
    assert bystander.call_function("loop.ok") == "fine"
    _intact(bystander)


def test_time_limit_fires_again_after_a_script_swallows_it(bystander):
    policy = SecurityPolicy.trusted(time_limit=0.2)
    source = """(setv swallowed 0)
(defn stubborn []
  (global swallowed)
  (setv i 0)
  (try
    (setv i 1)
    (while True (+= i 1))
    (except [] (+= swallowed 1)))
  (while True
    (+= i 1)))
(defn get-swallowed [] swallowed)"""
    bystander.load_script_from_source("loop", "lisp", source, policy=policy)
    with pytest.raises(ScriptTimeoutError) as info:
        bystander.call_function("loop.stubborn")
    assert info.value.line in (9, 10)  # stopped in the second loop, by the repeated interrupt
    assert bystander.call_function("loop.get-swallowed") == 1
    _intact(bystander)


def test_infinite_loop_at_top_level(bystander):
    policy = SecurityPolicy.trusted(time_limit=0.2)
    with pytest.raises(ScriptTimeoutError):
        bystander.load_script_from_source("loop", "lisp", "(setv i 0) (while True (+= i 1))", policy=policy)
    assert "loop" not in bystander.scripts
    _intact(bystander)


def test_deep_recursion(bystander):
    bystander.load_script_from_source("deep", "lisp", "(defn dive [n]\n  (+ 1 (dive (+ n 1))))")
    with pytest.raises(RecursionLimitError) as info:
        bystander.call_function("deep.dive", [0])
    err = info.value
    assert (err.language, err.script, err.line) == ("lisp", "deep", 2)
    assert 0 < len(err.stack) <= 64  # the innermost frames, not thousands
    _intact(bystander)


def test_exit_does_not_stop_the_host(bystander):
    bystander.load_script_from_source("ex", "lisp", "(import sys)\n(defn quit [] (sys.exit 3))")
    with pytest.raises(ScriptRuntimeError, match="exit"):
        bystander.call_function("ex.quit")
    _intact(bystander)


def test_trusted_policy_without_imports_or_files(bystander):
    policy = SecurityPolicy.trusted(allow_imports=False, allow_file_system=False, allowed_modules={"math"})
    bystander.load_script_from_source(
        "guarded",
        "lisp",
        '(import math)\n(defn root [x] (math.sqrt x))\n(defn sneaky []\n  (import os))\n(defn peek []\n  (open "x.txt"))',
        policy=policy,
    )
    assert bystander.call_function("guarded.root", [9]) == 3.0  # granted, and Hy's own runtime import works
    with pytest.raises(AccessDeniedError, match="import of 'os'") as info:
        bystander.call_function("guarded.sneaky")
    assert (info.value.script, info.value.line) == ("guarded", 4)
    with pytest.raises(AccessDeniedError, match="file access"):
        bystander.call_function("guarded.peek")
    _intact(bystander)
