"""kryon-python against the engine contract suite (kryon_core.testing),
under the trusted (in-process) and sandboxed (worker process) policies."""

import pytest

from kryon_core.testing import EngineContract, Snippets

pytest.importorskip("kryon_python")

LIBRARY = """\
def add(a, b):
    total = a + b
    return total
def echo(x): return x
def apply(f, x): return f(x)
def make_adder(n): return lambda x: x + n
def call_other(name, x):
    import kryon
    return kryon.call(name, x)
def fail():
    raise ValueError("boom")
def read_global(): return shared_setting
def shout(text): print(text)
def spin():
    while True:
        pass
def hog():
    chunks = []
    while True:
        chunks.append("x" * 1048576 + str(len(chunks)))
def dive(n): return dive(n + 1) + 1
def forbidden():
    with open("/etc/hostname") as f:
        return f.read()
"""

DOM = """\
import kryon
btn = kryon.get_element_by_id("btn")
def on_click(event):
    kryon.set_property(event["target"], "text", "clicked")
kryon.add_event_listener(btn, "click", on_click)
kryon.set_variable("ready", True)
kryon.set_timeout(lambda: kryon.set_variable("timer", "fired"), 100)
"""

PYTHON = Snippets(
    language="python",
    library=LIBRARY,
    fail_line=11,
    dom=DOM,
    counter_v1="def version(_=None): return 1",
    counter_v2="def version(_=None): return 2",
    syntax_error="def version():\n    return = 2\n",
    syntax_error_line=2,
    ident_a='ident = "a"\ndef get_ident(): return ident',
    ident_b='ident = "b"\ndef get_ident(): return ident',
    breakpoint_line=2,
    raise_statement='raise RuntimeError("load fails")',
    evaluate=('x = 40', 'x + 2'),
    spin_statement="while True:\n    pass\n",
    nest="def nest(n):\n    if n == 0:\n        return 0\n    return nest(n - 1) + 1\n",
)


class TestPythonContract(EngineContract):
    snippets = PYTHON
