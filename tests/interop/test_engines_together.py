"""Engines sharing one host process must not disturb each other."""

import subprocess
import sys

import pytest

from kryon_core import ScriptManager

AFTER_LISP_TIMEOUT = """
from kryon_core import ScriptManager, SecurityPolicy, ScriptTimeoutError
m = ScriptManager(policy=SecurityPolicy.trusted(), cache=False, output=lambda lang, text: None)
m.load_script_from_source("loop", "lisp", "(defn spin []\\n  (while True (setv x 1)))",
                          policy=SecurityPolicy.trusted(time_limit=0.2))
try:
    m.call_function("loop.spin")
except ScriptTimeoutError:
    pass
m.load_script_from_source("lib", "python", "def add(a, b):\\n    total = a + b\\n    return total\\n")
engine = m.engine("python")
hits = []
engine.set_breakpoint_handler(hits.append)
engine.set_breakpoint("lib", 2)
print(m.call_function("lib.add", [2, 3]), len(hits))
"""


def test_lisp_time_limit_leaves_no_pending_interrupt_for_other_engines():
    # The Lisp watchdog interrupts a script with an asynchronous exception.
    # It once cleared a pending one in a way that left CPython's eval breaker
    # set, and a traced call in the Python engine then spun forever.
    langs = ScriptManager(cache=False).languages
    if not {"lisp", "python"} <= set(langs):
        pytest.skip("needs the lisp and python engines")
    result = subprocess.run([sys.executable, "-c", AFTER_LISP_TIMEOUT], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["5", "1"]
