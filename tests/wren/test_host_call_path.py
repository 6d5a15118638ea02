"""Kryon.call out of Wren in one wasm crossing: the C side encodes the
arguments before it calls the host, and the host replies with a number,
null, true or false directly, a short string through the result buffer, and
anything else through slot 0 (csrc/slot_codec.c, kryon_wren/vm.py)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from kryon_core import ScriptError, ScriptManager, SecurityPolicy

pytest.importorskip("kryon_wren")

from kryon_wren.vm import RESULT_CAPACITY  # noqa: E402
from wren_support import export_calls  # noqa: E402

WREN = """\
import "kryon" for Kryon
class W {
  static relay(name) { Kryon.call(name) }
  static kind(name) { Kryon.call(name).type.name }
  static loop(name, n) {
    for (i in 0...n) Kryon.call(name, [i, 2.5])
    return n
  }
  static count(name, args) { Kryon.call(name, args) }
  static two(name) { Kryon.call(name, "a", "b") }
  static text(name) { Kryon.call(name) + "!" }
  static cyclic(name) {
    var a = [1]
    a.add(a)
    return Kryon.call(name, [a])
  }
}
"""

HOST = """\
import kryon
def echo(*args):
    return args[0] if len(args) == 1 else list(args)
def count(*args):
    return len(args)
def add(a, b):
    return a + b
def nested():
    return "<" + kryon.call("w.W.text", "h.short") + ">"
def short():
    return "abc"
def surrogate():
    return "\\ud800"
def boom():
    raise ValueError("host said no")
"""

RESULTS = {
    "none": None, "true": True, "false": False, "zero": 0, "negzero": -0.0, "half": 1.5, "big": 2 ** 53,
    "inf": math.inf, "nan": math.nan, "empty": "", "accent": "é", "fits": "x" * (RESULT_CAPACITY - 5),
    "over": "x" * (RESULT_CAPACITY - 4), "wide": "€" * 100, "list": [1, "a", None], "map": {"k": [True]},
}


@pytest.fixture
def m():
    manager = ScriptManager(policy=SecurityPolicy.trusted(), cache=False, output=lambda lang, text: None)
    literal = {"nan": "float('nan')", "inf": "float('inf')"}
    source = HOST + "".join(f"def r_{name}():\n    return {literal.get(name, repr(value))}\n"
                            for name, value in RESULTS.items())
    manager.load_script_from_source("h", "python", source)
    manager.load_script_from_source("w", "wren", WREN)
    yield manager
    manager.close()


def test_results_of_every_kind_come_back_as_they_were(m):
    for name, value in RESULTS.items():
        got = m.call_function("w.W.relay", [f"h.r_{name}"])
        if name == "nan":
            assert math.isnan(got)
        elif name == "negzero":
            assert got == 0 and math.copysign(1.0, got) < 0
        else:
            assert got == value and type(got) is type(value), name
    kinds = {name: m.call_function("w.W.kind", [f"h.r_{name}"]) for name in ("none", "true", "half", "wide", "map")}
    assert kinds == {"none": "Null", "true": "Bool", "half": "Num", "wide": "String", "map": "Map"}


def test_arguments_are_spread_by_the_documented_rule(m):
    assert m.call_function("w.W.count", ["h.count", [1, 2, 3]]) == 3
    assert m.call_function("w.W.count", ["h.count", [[1, 2]]]) == 1
    assert m.call_function("w.W.count", ["h.echo", [[1, 2]]]) == [1, 2]
    assert m.call_function("w.W.count", ["h.count", 5]) == 1
    assert m.call_function("w.W.count", ["h.echo", [1.5, "s", None, True]]) == [1.5, "s", None, True]
    assert m.call_function("w.W.two", ["h.echo"]) == ["a", "b"]


def test_a_string_result_survives_a_nested_call_that_used_the_buffer(m):
    assert m.call_function("w.W.text", ["h.nested"]) == "<abc!>!"


def test_a_host_call_crosses_into_wasm_once(m, monkeypatch):
    """Arguments and scalar results need no export call of their own: the
    export calls of a loop do not grow with its number of Kryon.calls."""
    def run(n):
        assert m.call_function("w.W.loop", ["h.add", n]) == n

    counts = export_calls(monkeypatch, run)
    assert counts[1] == counts[2] < counts[0]  # the first call makes its caller


def test_errors_reach_the_caller_with_the_script_and_the_script_keeps_working(m):
    with pytest.raises(ScriptError) as info:
        m.call_function("w.W.relay", ["h.boom"])
    assert "host said no" in str(info.value)
    with pytest.raises(ScriptError) as info:
        m.call_function("w.W.relay", ["h.surrogate"])
    assert "surrogate" in str(info.value) and info.value.language in ("wren", "python")
    with pytest.raises(ScriptError) as info:
        m.call_function("w.W.cyclic", ["h.echo"])
    assert "nested too deeply (or cyclic)" in str(info.value)
    assert info.value.script == "w" and info.value.line == 15
    assert m.call_function("w.W.relay", ["h.r_accent"]) == "é"


def test_results_beyond_max_value_size_are_still_refused():
    policy = replace(SecurityPolicy.trusted(), max_value_size=7)  # "h.short" fits, 8 elements do not
    manager = ScriptManager(policy=policy, cache=False, output=lambda lang, text: None)
    try:
        manager.load_script_from_source("h", "python", HOST)
        manager.load_script_from_source("w", "wren", WREN)
        assert manager.call_function("w.W.relay", ["h.short"]) == "abc"
        with pytest.raises(ScriptError):
            manager.call_function("w.W.count", ["h.count", list(range(8))])
        assert manager.call_function("w.W.count", ["h.count", list(range(7))]) == 7
    finally:
        manager.close()


def test_a_kryon_call_made_on_another_thread_shows_in_that_threads_stack():
    """The scripts running a host function are kept per thread: a
    Kryon.call made by a call from a thread other than the one that loaded
    the script is on that thread's stack trace (and on no other)."""
    import threading

    manager = ScriptManager(policy=SecurityPolicy.trusted(), cache=False, output=lambda lang, text: None)
    try:
        manager.load_script_from_source("inner", "wren", "var run = Fn.new { |audit| audit.call(1) }\n")
        manager.load_script_from_source(
            "outer", "wren", 'import "kryon" for Kryon\nvar go = Fn.new { |audit|\n  return Kryon.call("inner.run", [audit])\n}\n')
        engine = manager.engine("wren")
        seen = []
        here = []

        def audit(x):
            seen.append([(f.script, f.line) for f in engine.get_stack_trace()])
            return x

        def worker() -> None:
            here.append(manager.call_function("outer.go", [audit]))

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        assert here == [1]
        assert seen == [[("inner", 1), ("outer", 3)]]
        assert engine.get_stack_trace() == []
    finally:
        manager.close()
