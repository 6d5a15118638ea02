"""kryon-tally against the Kryon engine contract suite.

This is all a third-party engine needs to prove it keeps the contract:
snippets in its language, and a subclass of EngineContract. Run it where
the distribution is installed (discovery goes through its entry point):

    pip install kryon-tally pytest && python -m pytest tests
"""

from kryon_core.testing import EngineContract, Snippets

LIBRARY = """\
(fn add (a b)
  (let ((sum (+ a b)))
    sum))
(fn echo (x) x)
(fn apply (f x) (f x))
(fn make_adder (n) (lambda (x) (+ x n)))
(fn call_other (name x) (kryon.call name x))
(fn fail ()
  (error "boom"))
(fn read_global () shared_setting)
(fn shout (text) (print text))
(fn spin () (while true nil))
(fn hog ()
  (let ((hoard (list)))
    (while true (push! hoard (repeat "x" 1024)))))
(fn dive (n) (+ (dive (+ n 1)) 1))
(fn forbidden () (read-file "secrets.txt"))
"""

DOM = """\
(def btn (kryon.getElementById "btn"))
(kryon.addEventListener btn "click"
  (lambda (event) (kryon.setProperty (get event "target") "text" "clicked")))
(kryon.setVariable "ready" true)
(kryon.setTimeout (lambda () (kryon.setVariable "timer" "fired")) 100)
"""

TALLY = Snippets(
    language="tally",
    library=LIBRARY,
    fail_line=9,
    dom=DOM,
    counter_v1="(fn version () 1)",
    counter_v2="(fn version () 2)",
    syntax_error="(fn version ()\n  2))\n",
    syntax_error_line=2,
    ident_a='(def ident "a")\n(fn get_ident () ident)',
    ident_b='(def ident "b")\n(fn get_ident () ident)',
    breakpoint_line=2,
)


class TestTallyContract(EngineContract):
    snippets = TALLY
