"""The interpreter's fast paths do exactly what the slow paths do: accessor
inlining (getters and setters run without a frame, still stopping at a
breakpoint), the fused for-in step over lists and ranges (a list changed
inside its loop, a breakpoint on the loop line), == and != without dispatch
(strings, null, booleans, numbers; other classes still call their own ==),
string keys of maps (which keep their hashes) and sequence views whose step
functions run in place of a primitive."""

from __future__ import annotations

import pytest

kryon_wren = pytest.importorskip("kryon_wren")
from kryon_wren import WrenRuntimeError, WrenVM  # noqa: E402


def run(source: str) -> list[str]:
    with WrenVM(capture=True) as vm:
        vm.interpret(source)
        return "".join(vm.output).splitlines()


ACCESSORS = """\
class Base {
  construct new(a) { _a = a }
  a { _a }
  a=(v) { _a = v }
}
class Point is Base {
  construct new(a, x) {
    super(a)
    _x = x
  }
  x { _x }
  x=(v) { _x = v }
  both { a + x }
}
var p = Point.new(1, 2)
System.print(p.x = 5)
p.a = 7
System.print(p.both)
System.print([p.a, p.x, Base.new(3).a])
"""


def test_getters_and_setters_read_and_write_their_own_fields():
    # Inherited accessors reach the superclass's fields, a subclass's its own,
    # and a setter's value is the call's value.
    assert run(ACCESSORS) == ["5", "12", "[7, 5, 3]"]


def test_accessor_of_a_non_instance_receiver_fails_like_any_method():
    with WrenVM(capture=True) as vm:
        vm.interpret("class A {\n  construct new() { _f = 1 }\n  f { _f }\n}\n")
        with pytest.raises(WrenRuntimeError, match="Num does not implement 'f'"):
            vm.interpret("System.print(3.f)", module="other")


def test_breakpoint_in_a_getter_and_a_setter_still_stops():
    # Bound before the breakpoints exist (so inlined), patched afterwards.
    hits: list[int] = []
    with WrenVM(capture=True, breakpoint=lambda module, line: hits.append(line)) as vm:
        vm.interpret(
            "class A {\n"
            "  construct new() { _f = 1 }\n"
            "  f { _f }\n"
            "  f=(v) { _f = v }\n"
            "}\n"
            "var a = A.new()\n"
            "System.print(a.f)\n"
        )
        assert hits == []
        vm.add_breakpoint("main", 3)
        vm.add_breakpoint("main", 4)
        vm.interpret("a.f = a.f + 1\nSystem.print(a.f)\n")
        assert hits == [3, 4, 3]
        assert "".join(vm.output) == "1\n2\n"


def test_accessor_bound_under_a_breakpoint_runs_in_full_after_it_is_removed():
    hits: list[int] = []
    with WrenVM(capture=True, breakpoint=lambda module, line: hits.append(line)) as vm:
        vm.add_breakpoint("main", 3)
        vm.interpret("class A {\n  construct new() { _f = 4 }\n  f { _f }\n}\nvar a = A.new()\nvar r = a.f\n")
        vm.remove_breakpoint("main", 3)
        vm.interpret("r = r + a.f", module="main")
        assert hits == [3]
        assert vm.get_variable("main", "r") == 8


def test_fused_loop_step_follows_a_list_changed_inside_the_loop():
    assert run(
        "var l = [1, 2, 3]\n"
        "var seen = []\n"
        "for (x in l) {\n"
        "  seen.add(x)\n"
        "  if (x == 1) l.add(10)\n"
        "  if (x == 2) l.removeAt(0)\n"
        "}\n"
        "System.print(seen)\n"
        "var sum = 0\n"
        "for (i in 3..1) sum = sum * 10 + i\n"
        "for (i in 0...0) sum = -1\n"
        "for (i in []) sum = -1\n"
        "System.print(sum)\n"
    ) == ["[1, 2, 10]", "321"]


def test_fused_loop_step_leaves_other_sequences_to_their_methods():
    assert run(
        "class Three is Sequence {\n"
        "  construct new() {}\n"
        "  iterate(i) { i == null ? 0 : (i < 2 ? i + 1 : false) }\n"
        "  iteratorValue(i) { i * 100 }\n"
        "}\n"
        "var out = []\n"
        "for (x in Three.new()) out.add(x)\n"
        "for (c in \"ab\") out.add(c)\n"
        "for (e in {1: 2}) out.add(e.value)\n"
        "System.print(out)\n"
    ) == ["[0, 100, 200, a, b, 2]"]


def test_breakpoint_on_a_for_line_stops_once_and_the_loop_runs():
    hits: list[int] = []
    with WrenVM(capture=True, breakpoint=lambda module, line: hits.append(line)) as vm:
        vm.add_breakpoint("main", 2)
        vm.interpret("var n = 0\nfor (i in [5, 6, 7]) {\n  n = n + i\n}\n")
        assert vm.get_variable("main", "n") == 18
        assert hits == [2]  # the line's first instruction, before the loop


def test_equality_without_dispatch_matches_the_methods():
    assert run(
        'var a = "ab" + "c"\n'
        "System.print([a == \"abc\", a != \"abc\", a == \"abd\", a == 1, a == null])\n"
        "System.print([null == null, null == false, true == true, true != false, 1 == \"1\", 1 != null])\n"
        "System.print([0 == -0, (0/0) == (0/0), 2 == 2.0])\n"
    ) == [
        "[true, false, false, false, false]",
        "[true, false, true, true, false, true]",
        "[true, false, true]",
    ]


def test_equality_of_other_classes_still_calls_their_operator():
    assert run(
        "class V {\n"
        "  construct new(n) { _n = n }\n"
        "  n { _n }\n"
        "  ==(other) { other is V && other.n == _n }\n"
        "}\n"
        "System.print([V.new(1) == V.new(1), V.new(1) != V.new(1), V.new(1) == V.new(2)])\n"
    ) == ["[true, true, false]"]  # != is its own method: Object's, identity


def test_string_keys_survive_growth_removal_and_reinsertion():
    assert run(
        "var m = {}\n"
        "for (i in 0...2000) m[\"k%(i)\"] = i\n"
        "for (i in 0...2000) if (i % 3 == 0) m.remove(\"k%(i)\")\n"
        "var sum = 0\n"
        "for (i in 0...2000) if (m.containsKey(\"k\" + i.toString)) sum = sum + m[\"k%(i)\"]\n"
        "for (i in 0...2000) m[\"k%(i)\"] = 1\n"
        "System.print([m.count, sum, m[\"k3\"], m[\"nope\"]])\n"
        "var n = {}\n"
        "n[0] = 1\n"
        "n[-0] = 2\n"
        "n[0/0] = 3\n"
        "n[0/0] = 4\n"
        "System.print([n.count, n[0], n[0/0]])\n"
    ) == [
        f"[2000, {sum(i for i in range(2000) if i % 3)}, 1, null]",
        "[3, 2, null]",
    ]


def test_view_steps_run_in_place_of_the_primitive():
    assert run(
        "var v = (1..1000).map {|x| x * 2 }.where {|x| x % 3 == 0 }.skip(5).take(100)\n"
        "System.print([v.count, v.toList[0], v.toList[-1]])\n"
        "var bad = (1..3).where {|a, b| true }\n"
        "System.print(Fiber.new { bad.toList }.try())\n"
    ) == ["[100, 36, 630]", "Function expects more arguments."]
