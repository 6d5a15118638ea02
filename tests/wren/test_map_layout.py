"""Maps are compact tables (a sparse index of small integers into a dense
entry array): iteration, printing and the host see entries in insertion
order; removals leave tombstones that later insertions and rebuilds clean
up; and a random mix of operations over keys of every kind agrees with a
Python dict at every index width (1, 2 and 4 bytes a slot)."""

from __future__ import annotations

import pytest

kryon_wren = pytest.importorskip("kryon_wren")
from kryon_wren import WrenError, WrenVM  # noqa: E402


def run(source: str, **options: object) -> list[str]:
    with WrenVM(capture=True, **options) as vm:  # type: ignore[arg-type]
        vm.interpret(source)
        return "".join(vm.output).splitlines()


def test_iteration_follows_insertion_order():
    out = run(
        """
var m = {}
for (k in ["z", 3, "a", null, true, 1.5, -7, 1..2]) m[k] = k is String ? k.count : 0
System.print(m.keys.toList)
System.print(m)
var order = []
for (e in m) order.add(e.key)
System.print(order)
"""
    )
    assert out == [
        "[z, 3, a, null, true, 1.5, -7, 1..2]",
        "{z: 1, 3: 0, a: 1, null: 0, true: 0, 1.5: 0, -7: 0, 1..2: 0}",
        "[z, 3, a, null, true, 1.5, -7, 1..2]",
    ]


def test_reassigning_keeps_the_place_and_re_adding_goes_last():
    out = run(
        """
var m = {"a": 1, "b": 2, "c": 3}
m["a"] = 10
m.remove("b")
m["b"] = 20
m[-0] = 0
m[0] = 5
System.print(m)
m.clear()
m["x"] = 1
System.print(m)
"""
    )
    # -0 and 0 are one key: the key stays as first stored, the value changes.
    assert out == ["{a: 10, c: 3, b: 20, -0: 5}", "{x: 1}"]


def test_literal_order_and_nested_maps_reach_the_host_in_order():
    with WrenVM(capture=True) as vm:
        vm.interpret('var m = {"q": 1, "b": {"y": 1, "x": 2}, "a": [3]}\nm.remove("q")\nm["q"] = 0')
        value = vm.get_variable("main", "m")
    assert list(value) == ["b", "a", "q"]
    assert list(value["b"]) == ["y", "x"]


def test_keys_and_values_views_agree_after_many_removals():
    out = run(
        """
var m = {}
for (i in 0...1000) m["k%(i)"] = i
for (i in 0...1000) if (i % 3 != 0) m.remove("k%(i)")
var keys = m.keys.toList
var values = m.values.toList
var ok = keys.count == 334 && values.count == 334 && m.count == 334
for (i in 0...keys.count) ok = ok && keys[i] == "k%(values[i])" && values[i] == i * 3
System.print(ok)
"""
    )
    assert out == ["true"]


def test_iterator_of_a_removed_entry_is_out_of_bounds():
    with WrenVM(capture=True) as vm:
        with pytest.raises(WrenError, match="Iterator out of bounds"):
            vm.interpret('var m = {"a": 1, "b": 2}\nvar it = m.iterate(null)\nm.remove("a")\nm.iteratorValue(it)')


RANDOM_OPS = """
var seed = %(seed)d
var next = Fn.new {|n|
  seed = (seed * 16807) %% 2147483647
  return seed %% n
}
var m = {}
for (step in 0...%(steps)d) {
  var i = next.call(%(size)d)
  var kind = next.call(4)
  var key = kind == 0 ? i : kind == 1 ? "s%%(i)" : kind == 2 ? i + 0.5 : -i
  if (next.call(10) < 6) {
    m[key] = step
  } else {
    m.remove(key)
  }
}
var vs = []
for (e in m) vs.add(e.value)
System.print(vs)
System.print(m.count)
"""


@pytest.mark.parametrize("size", [40, 3000, 40000])
def test_random_operations_agree_with_a_dict(size: int) -> None:
    # size 40 stays on 1-byte index slots, 3000 reaches 2-byte ones and
    # 40000 the 4-byte ones (an index of more than 65536 slots). The same
    # Lehmer generator drives the Wren program and the dict model.
    seed, steps = 12345, size * 3
    state = seed
    model: dict[object, int] = {}

    def next_int(n: int) -> int:
        nonlocal state
        state = state * 16807 % 2147483647
        return state % n

    for step in range(steps):
        i = next_int(size)
        kind = next_int(4)
        key: object = i if kind == 0 else f"s{i}" if kind == 1 else i + 0.5 if kind == 2 else -i
        if next_int(10) < 6:
            model[key] = step
        else:
            model.pop(key, None)
    # Values are step numbers, so the value list pins both the live entries
    # and their order (a dict keeps a reassigned key's first place, as the
    # map does; -0 and 0 are one key in both).
    out = run(RANDOM_OPS % {"seed": seed, "steps": steps, "size": size})
    assert out == [str(list(model.values())), str(len(model))]


def test_insert_remove_churn_keeps_memory_bounded():
    # A million distinct keys pass through a map that never holds more than
    # ten: the tombstones are compacted away when the entry array fills, so
    # the map stays small under a 16 MiB heap.
    out = run(
        """
var m = {}
for (i in 0...1000000) {
  m["k%(i)"] = i
  if (i >= 10) m.remove("k%(i - 10)")
}
System.print(m.count)
System.print(m.keys.toList[0])
""",
        memory_limit=16 * 1024 * 1024,
    )
    assert out == ["10", "k999990"]
