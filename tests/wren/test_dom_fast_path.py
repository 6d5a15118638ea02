"""Host objects (DOM elements, host functions) passed to the kryon API out of
Wren: the C side names an instance of exactly HostRef or HostFn by its
registry number ('r' in csrc/slot_codec.c), so a Kryon.setProperty(el, ...)
crosses into wasm once, with no handle and no call back into wasm.
Every case here runs with that fast path on and off (the general path: a
handle, whose registry number the VM gives) and must give the same results
and errors."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from kryon_core import ScriptError, ScriptManager, SecurityPolicy

pytest.importorskip("kryon_wren")

from kryon_wren.vm_errors import WrenTrapError  # noqa: E402
from wren_support import box_host, export_calls  # noqa: E402

WREN = """\
import "kryon" for Kryon, HostRef, HostFn
class Holder {
  construct new(text) { _text = text }
}
class Fake {
  construct new(id) { _id = id }
  is(other) { true }
  hostId { _id }
}
class W {
  static box { Kryon.getElementById("box") }
  static set(v) {
    Kryon.setProperty(box, "x", v)
    return Kryon.getProperty(box, "x")
  }
  static loop(n) {
    var el = box
    for (i in 0...n) Kryon.setProperty(el, "x", i)
    return Kryon.getProperty(el, "x")
  }
  static same { box == box }
  static forged(id) { Kryon.setProperty(HostRef.make(id), "x", 1) }
  static forgedFn(id) { Kryon.call("h.kind", HostFn.make(id)) }
  static sub { Kryon.setProperty(Fake.new(box.hostId), "x", 7) }
  static subGet { Kryon.getProperty(Fake.new(box.hostId), "x") }
  static removed {
    var el = Kryon.createElement("div")
    Kryon.appendChild(box, el)
    Kryon.removeElement(el)
    Kryon.setProperty(el, "x", 1)
  }
  static inList { Kryon.call("h.kinds", [[box, box, 1, "s"]]) }
  static inMap { Kryon.call("h.kinds", [{"a": box}]) }
  static fnBack { Kryon.call("h.same_fn", Kryon.global("f")) }
  static text(n) { Kryon.setProperty(box, "x", "y" * n) }
  static failing(n) {
    for (i in 0...n) {
      var held = Holder.new("z" * 100000)
      Fiber.new { Kryon.setProperty(HostRef.make(999), "x", [held, {Holder: held}]) }.try()
    }
  }
  static grow(n) {
    var keep = []
    for (i in 0...n) {
      keep.add("z" * 100000)
      Kryon.setProperty(box, "x", "v%(i)")
    }
    return Kryon.getProperty(box, "x")
  }
}
"""

HOST = """\
def kind(x):
    return type(x).__name__
def kinds(x):
    if isinstance(x, dict):
        return {k: type(v).__name__ for k, v in x.items()}
    return [type(v).__name__ for v in x]
def same_fn(f):
    return f()
"""


def marker() -> str:
    return "host fn"


CASES: list[tuple[str, list[Any]]] = [
    ("w.W.set", [5]), ("w.W.set", [-0.5]), ("w.W.set", [2**40]), ("w.W.loop", [3]), ("w.W.same", []),
    ("w.W.forged", [999]), ("w.W.forged", [-1]), ("w.W.forged", [1.5]), ("w.W.forged", ["x"]), ("w.W.forged", [0]),
    ("w.W.forged", [2**31]), ("w.W.forgedFn", [999]), ("w.W.sub", []), ("w.W.subGet", []), ("w.W.removed", []),
    ("w.W.inList", []), ("w.W.inMap", []), ("w.W.fnBack", []), ("w.W.text", [3]), ("w.W.text", [30]),
]


def outcome(manager: ScriptManager, name: str, args: list[Any]) -> Any:
    try:
        return ("ok", manager.call_function(name, args))
    except ScriptError as exc:
        return ("error", type(exc).__name__, str(exc), exc.script, exc.line, exc.language)


def make(policy: SecurityPolicy, fast: bool) -> ScriptManager:
    manager = box_host(policy, HOST, WREN, id_tags=fast)
    manager.engines()["wren"].set_global("f", marker)
    return manager


@pytest.mark.parametrize("policy", [SecurityPolicy.trusted(), replace(SecurityPolicy.sandboxed(), max_value_size=20)],
                         ids=["trusted", "sandboxed"])
def test_the_fast_path_gives_what_the_general_path_gives(policy):
    fast, general = make(policy, True), make(policy, False)
    try:
        for name, args in CASES:
            assert outcome(fast, name, args) == outcome(general, name, args), (name, args)
        got = {f"{name}{args}": outcome(fast, name, args) for name, args in CASES}
    finally:
        fast.close()
        general.close()
    assert got["w.W.set[5]"] == ("ok", 5) and got["w.W.set[-0.5]"] == ("ok", -0.5)
    assert got["w.W.loop[3]"] == ("ok", 2) and got["w.W.same[]"] == ("ok", True)
    # an object of the script's own posing as a host object (is, hostId) is not one
    assert got["w.W.sub[]"][0] == "error" and got["w.W.subGet[]"][0] == "error"
    element = "HostObject" if policy.sandboxed else "ElementHandle"  # a sandboxed Python script runs in a worker
    assert got["w.W.inList[]"] == ("ok", [element, element, "int", "str"])
    assert got["w.W.inMap[]"] == ("ok", {"a": element})
    assert got["w.W.fnBack[]"] == ("ok", "host fn")
    # HostRef and HostFn have no constructor: a script cannot make one carrying a number
    forged = [name for name in got if name.startswith("w.W.forged")]
    assert all("does not implement 'make(_)'" in got[name][2] for name in forged), forged
    for name in [*forged, "w.W.removed[]"]:
        assert got[name][0] == "error" and got[name][3] == "w" and got[name][5] == "wren", name
    removed_line = WREN.splitlines().index('    Kryon.setProperty(el, "x", 1)') + 1
    assert got["w.W.removed[]"][1] == "DOMError" and got["w.W.removed[]"][4] == removed_line
    if policy.sandboxed:
        assert got["w.W.text[30]"][1] == "SizeLimitError" and got["w.W.text[3]"] == ("ok", None)


@pytest.mark.parametrize("policy", [SecurityPolicy.trusted(), SecurityPolicy.sandboxed()], ids=["trusted", "sandboxed"])
def test_a_dom_write_crosses_into_wasm_once(monkeypatch, policy):
    """The element of Kryon.setProperty needs no export call of its own:
    the export calls of a loop do not grow with its number of writes."""
    manager = make(policy, True)

    def run(n):
        assert manager.call_function("w.W.loop", [n]) == n - 1

    try:
        counts = export_calls(monkeypatch, run)
    finally:
        manager.close()
    assert counts[1] == counts[2]  # (the first call makes its caller)


def test_a_restarted_script_names_its_new_host_classes():
    """After a trap the script's VM is rebuilt in a new instance: the fast
    path is on again there (its classes are new objects)."""
    manager = make(SecurityPolicy.trusted(), True)
    try:
        assert manager.call_function("w.W.set", [1]) == 1
        state = manager.engines()["wren"].script_state("w")
        state.pool.rebuild()
        assert manager.call_function("w.W.set", [2]) == 2
        assert manager.call_function("w.W.inList", []) == ["ElementHandle", "ElementHandle", "int", "str"]
    finally:
        manager.close()


def test_arguments_are_read_right_after_linear_memory_grew():
    """The host reads a foreign method's arguments through a view of linear
    memory that it makes again when the wasm side reports more pages (a
    grown memory may have moved); a size beyond the memory is refused."""
    manager = make(SecurityPolicy.trusted(), True)
    try:
        instance = manager.engines()["wren"].script_state("w").vm.instance
        assert manager.call_function("w.W.set", [1]) == 1
        pages = instance._view_pages
        assert manager.call_function("w.W.grow", [60]) == "v59"
        assert instance._view_pages > pages
        assert len(instance.view(instance._view_pages)) == instance.memory_size()
        with pytest.raises(WrenTrapError):
            instance.view(instance.memory_size() // 65536 + 1)
        assert manager.call_function("w.W.set", [3]) == 3
    finally:
        manager.close()


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "general"])
def test_a_failing_call_releases_the_handles_of_arguments_it_did_not_read(fast):
    """The element is unknown, so the call fails before its last argument
    is read: the handles the C side made for the objects in it are
    released, and what they held is garbage (no memory kept per call)."""
    manager = make(SecurityPolicy.trusted(), fast)
    try:
        vm = manager.engines()["wren"].script_state("w").vm
        manager.call_function("w.W.failing", [2])
        vm.collect_garbage()
        before = vm.bytes_allocated()
        manager.call_function("w.W.failing", [40])  # 40 x 100 KB held if the handles leaked
        vm.collect_garbage()
        assert vm.bytes_allocated() - before < 1_000_000
    finally:
        manager.close()


def test_arguments_decoded_and_resolved_in_one_pass_are_what_two_passes_give():
    """values.resolve_encoded against slot_codec.decode then values.resolve,
    for numbers at every edge of the int/float rule, text and host ids."""
    import math
    import struct
    from types import SimpleNamespace

    from kryon_wren.slot_codec import decode
    from kryon_wren.values import resolve, resolve_encoded

    state = SimpleNamespace(policy=SimpleNamespace(max_value_size=None), objects={0: "zero", 7: "seven"})
    numbers = [0.0, -0.0, 5.0, -5.0, 1.5, math.nan, math.inf, -math.inf, 2.0**53, -(2.0**53), 2.0**53 + 2, 1e300, 5e-324]
    parts = [b"d" + struct.pack("<d", x) for x in numbers]
    parts += [b"s" + struct.pack("<I", len(t)) + t for t in (b"", "é€".encode(), b"\xff")]
    parts += [b"r" + struct.pack("<I", 7), b"r" + struct.pack("<I", 0)]
    data = b"".join(parts)
    one = resolve_encoded(state, data, len(parts))  # type: ignore[arg-type]
    two = [resolve(state, v) for v in decode(data, len(parts), lambda ptr: None)]  # type: ignore[arg-type]
    assert [(type(v), repr(v)) for v in one] == [(type(v), repr(v)) for v in two]
    assert one[:3] == [0, -0.0, 5] and type(one[1]) is float and one[-2:] == ["seven", "zero"]
