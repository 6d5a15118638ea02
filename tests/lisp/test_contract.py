"""kryon-lisp against the engine contract suite (kryon_core.testing)."""

from __future__ import annotations

import pytest

from kryon_core.testing import EngineContract, Snippets

pytest.importorskip("kryon_lisp")

# The contract calls functions by snake_case names; Lisp scripts define them
# with those spellings (the registry keeps a function's name as written).
LIBRARY = """\
(defn add [a b]
  (setv sum (+ a b))
  sum)
(defn echo [x] x)
(defn apply [f x] (f x))
(defn make_adder [n] (fn [x] (+ x n)))
(defn call_other [name x] (kryon-call name x))
(defn fail []
  (raise (ValueError "boom")))
(defn read_global [] shared_setting)
(defn shout [text] (print text))
(defn spin [] (setv i 0) (while True (+= i 1)))
(defn hog []
  (setv chunks [])
  (while True (.append chunks (* "x" 1048576))))
(defn dive [n] (+ 1 (dive (+ n 1))))
(defn forbidden [] (with [f (open "/etc/hostname")] (.read f)))
"""

DOM = """\
(setv btn (get-element-by-id "btn"))
(add-event-listener! btn "click"
  (fn [event] (set-property! (get event "target") "text" "clicked")))
(set-variable! "ready" True)
(set-timeout! (fn [] (set-variable! "timer" "fired")) 100)
"""

LISP = Snippets(
    language="lisp",
    library=LIBRARY,
    fail_line=9,
    dom=DOM,
    counter_v1="(defn version [[_ None]] 1)",  # kryon-call passes one argument
    counter_v2="(defn version [[_ None]] 2)",
    syntax_error="(defn version []\n  (+ 1 2)))\n",
    syntax_error_line=2,
    ident_a='(setv ident "a")\n(defn get_ident [] ident)',
    ident_b='(setv ident "b")\n(defn get_ident [] ident)',
    breakpoint_line=2,
    raise_statement='(raise (RuntimeError "load fails"))',
    evaluate=('(setv x 40)', '(+ x 2)'),
    spin_statement="(while True)",
    nest="(defn nest [n] (if (= n 0) 0 (+ (nest (- n 1)) 1)))",
)



class TestLispContract(EngineContract):
    snippets = LISP
