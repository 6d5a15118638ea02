"""The serialized form of compiled Wren modules (csrc/bytecode.c): a cached
module behaves as its source does, skips the Wren compiler, keeps debugging
working, and a corrupt, truncated or foreign entry is refused, never run."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kryon_core import BreakpointHit, ScriptManager, SecurityPolicy

pytest.importorskip("kryon_wren")
from kryon_wren import WrenVM  # noqa: E402
from kryon_wren.vm import WrenCompileError, WrenError, WrenRuntimeError  # noqa: E402
from wren_support import HEADER, OPS, reseal  # noqa: E402

UTIL = "class Util {\n  static twice(x) { x * 2 }\n}\n"

PROGRAM = """\
import "util" for Util
var counter = 0
class Point {
  construct new(x, y) {
    _x = x
    _y = y
  }
  x { _x }
  +(o) { Point.new(_x + o.x, _y) }
  static made { __made }
  static made=(v) { __made = v }
}
#!tag = "v"
class Tagged {}
var adders = []
for (i in 1..3) {
  var k = i * 10
  adders.add(Fn.new {|v| v + k + counter })
}
counter = 5
System.print(adders.map {|f| f.call(1) }.toList)
Point.made = 7
System.print([(Point.new(1, 2) + Point.new(3, 4)).x, Point.made])
System.print(Util.twice(21))
var useLater = Fn.new { Later.name }
class Later {
  static name { "later" }
}
System.print("str %(1 + 2) %(useLater.call())")
var f = Fiber.new {
  Fiber.yield(1)
  return 2
}
System.print([f.call(), f.call(), f.isDone])
System.print(Tagged.attributes.self)
var t = true && false || 3 > 2 ? "yes" : "no"
var i = 0
while (i < 3) {
  i = i + 1
  if (i == 2) continue
  System.print("w%(i)")
}
System.print(t)
"""


def new_vm() -> WrenVM:
    return WrenVM(capture=True, load_module={"util": UTIL}.get)


@pytest.fixture(scope="module")
def entry() -> bytes:
    data = new_vm().compile_bytecode(PROGRAM, "main#c")
    assert data is not None and data[:4] == b"KWBC"
    return data


def source_output() -> list[str]:
    vm = new_vm()
    vm.interpret(PROGRAM, "main")
    return vm.output


def test_cached_module_runs_like_its_source_without_the_compiler(entry: bytes) -> None:
    vm = new_vm()
    before = vm.compiler_runs()
    assert vm.interpret_bytecode(entry, "main")
    assert vm.output == source_output()
    # only the imported module "util" was compiled from source
    assert vm.compiler_runs() - before == 1


def test_module_variables_match_a_source_load(entry: bytes) -> None:
    cached, plain = new_vm(), new_vm()
    cached.interpret_bytecode(entry, "main")
    plain.interpret(PROGRAM, "main")
    for name in ("counter", "Point", "Tagged", "adders", "useLater", "Later", "t", "i", "Util", "System"):
        assert cached.has_variable("main", name) and plain.has_variable("main", name), name
    assert cached.get_variable("main", "counter") == plain.get_variable("main", "counter") == 5
    assert cached.get_variable("main", "t") == "yes"
    assert not cached.has_variable("main", "nothing")
    # another module imports the cached one's variables and calls its methods
    cached.interpret('import "main" for Point, Later\nSystem.print([Point.new(2, 0).x, Later.name])', "other")
    assert "".join(cached.output).endswith("[2, later]\n")


def test_same_entry_loads_twice_in_one_vm_and_in_a_vm_with_other_symbols(entry: bytes) -> None:
    vm = new_vm()
    # a VM that already knows other method names gives them other symbol ids
    vm.interpret("class Q {\n  construct new() {}\n  zz(a, b, c) { a }\n  yy { 1 }\n}\nSystem.print(Q.new().zz(4, 5, 6))\n", "pre")
    assert vm.interpret_bytecode(entry, "a")
    assert vm.interpret_bytecode(entry, "b")
    out = "".join(vm.output)
    assert out.count("[16, 26, 36]") == 2 and out.startswith("4\n")


def test_runtime_errors_keep_module_and_line() -> None:
    data = new_vm().compile_bytecode('var a = 1\nvar b = "x"\nSystem.print(a + b)\n', "e#c")
    vm = new_vm()
    with pytest.raises(WrenRuntimeError) as info:
        vm.interpret_bytecode(data, "e")
    assert (info.value.module, info.value.line) == ("e", 3)


def test_compile_errors_come_from_compile_bytecode() -> None:
    with pytest.raises(WrenCompileError) as info:
        new_vm().compile_bytecode("var x = \nclass {", "bad#1")
    assert info.value.line == 2


FOREIGN = "class Host {\n  foreign static twice(x)\n  foreign scale(x)\n  construct new() {}\n}\n" \
          "var a = Host.twice(4)\nvar b = Host.new().scale(5)\n"


def test_foreign_methods_are_bound_by_the_loading_vms_host() -> None:
    """The entry holds no host ids: each loading VM's own host binds the
    methods, by module, class and signature, when the class is defined."""
    writer = WrenVM(capture=True, foreign={("f", "Host", True, "twice(_)"): lambda x: x * 2,
                                           ("f", "Host", False, "scale(_)"): lambda x: x * 10,
                                           ("pad", "Pad", True, "one()"): lambda: 1})
    writer.interpret("class Pad {\n  foreign static one()\n}\n", "pad")  # shift the writer's ids
    data = writer.compile_bytecode(FOREIGN, "f")
    assert data is not None and data[:4] == b"KWBC", writer.bytecode_error()
    asked: list[tuple[str, str, bool, str]] = []

    def bind(module: str, class_name: str, is_static: bool, signature: str):
        asked.append((module, class_name, is_static, signature))
        return {"twice(_)": lambda x: x + 1000, "scale(_)": lambda x: -x}.get(signature)

    vm = WrenVM(capture=True, bind_foreign=bind)
    before = vm.compiler_runs()
    assert vm.interpret_bytecode(data, "f"), vm.bytecode_error()
    assert vm.compiler_runs() == before
    assert (vm.get_variable("f", "a"), vm.get_variable("f", "b")) == (1004, -5)
    assert sorted(asked) == [("f", "Host", False, "scale(_)"), ("f", "Host", True, "twice(_)")]


def test_a_cached_foreign_method_the_host_lacks_is_an_error_where_the_class_is_made() -> None:
    writer = WrenVM(capture=True, foreign={("f", "Host", True, "twice(_)"): lambda x: x * 2,
                                           ("f", "Host", False, "scale(_)"): lambda x: x * 10})
    data = writer.compile_bytecode(FOREIGN, "f")
    vm = WrenVM(capture=True)
    with pytest.raises(WrenRuntimeError, match="Could not find foreign method 'twice\\(_\\)' for class Host"):
        vm.interpret_bytecode(data, "f")
    vm.interpret("System.print(1)", "after")
    assert vm.output == ["1\n"]


def test_a_foreign_class_made_again_and_again_binds_once() -> None:
    """A class made in a function body binds its foreign methods each time it
    is made when it comes from an entry; the host keeps one id per method, so
    a loop cannot grow the host's table."""
    source = "var make = Fn.new {\n  class Host {\n    foreign static twice(x)\n  }\n  return Host\n}\n" \
             "var n = 0\nfor (i in 0...500) n = n + make.call().twice(i)\n"
    foreign = {("g", "Host", True, "twice(_)"): lambda x: x * 2}
    data = WrenVM(capture=True, foreign=foreign).compile_bytecode(source, "g")
    assert data is not None
    vm = WrenVM(capture=True, foreign=foreign)
    assert vm.interpret_bytecode(data, "g"), vm.bytecode_error()
    assert vm.get_variable("g", "n") == 2 * sum(range(500))
    assert len(vm._foreign_methods) == 1


def test_an_entry_cannot_carry_a_host_id() -> None:
    writer = WrenVM(capture=True, foreign={("f", "Host", True, "twice(_)"): lambda x: x * 2,
                                           ("f", "Host", False, "scale(_)"): lambda x: x * 10})
    data = writer.compile_bytecode(FOREIGN, "f")
    minus_one = struct.pack("<d", -1.0)
    at = data.rindex(b"\0" + minus_one)  # the module body's extra constant (tag 0, f64 -1)
    for forged in (0.0, 1.0, 7.0, -2.0):
        damaged = reseal(data[:at + 1] + struct.pack("<d", forged) + data[at + 9:])
        vm = WrenVM(capture=True, foreign={("f", "Host", True, "twice(_)"): lambda x: x})
        assert not vm.interpret_bytecode(damaged, "f")
        assert "foreign method operand" in vm.bytecode_error()


@pytest.mark.parametrize("damage, reason", [
    (lambda e: b"XWBC" + e[4:], "not a Kryon Wren bytecode entry"),
    (lambda e: e[:4] + struct.pack("<H", struct.unpack("<H", e[4:6])[0] + 1) + e[6:], "format version"),
    (lambda e: e[:4] + struct.pack("<H", 1) + e[6:], "format version"),  # per-byte positions, before the run table
    (lambda e: e[:8] + struct.pack("<I", struct.unpack("<I", e[8:12])[0] ^ 1) + e[12:], "another VM build"),
    (lambda e: e[:-1], "payload length"),
    (lambda e: e + b"\0", "payload length"),
    (lambda e: e[:HEADER + 40] + bytes([e[HEADER + 40] ^ 0x10]) + e[HEADER + 41:], "checksum"),
    (lambda e: e[:7], "shorter than its header"),
    (lambda e: b"", "shorter than its header"),
])
def test_foreign_or_damaged_headers_are_refused(entry: bytes, damage, reason: str) -> None:
    vm = new_vm()
    assert not vm.interpret_bytecode(damage(entry), "main")
    assert reason in vm.bytecode_error()
    assert vm.output == [] or vm.output == [""]
    vm.interpret("System.print(40 + 2)", "after")  # the VM keeps working
    assert "42" in "".join(vm.output)


def test_every_truncation_is_refused(entry: bytes) -> None:
    vm = new_vm()
    for cut in range(HEADER, len(entry), 7):
        assert not vm.interpret_bytecode(reseal(entry[:cut]), "main"), cut
    assert vm.output in ([], [""])


def test_structural_checks_catch_bad_operands(entry: bytes) -> None:
    """Hand-made payloads with one bad field each (checksum fixed up)."""
    def fn(code: bytes, constants: bytes = b"\0\0\0\0", slots: int = 1, locals_: bytes = b"\0\0\0\0") -> bytes:
        lines = struct.pack("<I", 1) + bytes([(len(code) - 1) << 1 | 1, 2, 0])  # one position run: line 1, column 0
        return (bytes([0]) + struct.pack("<HI", 0, slots) + struct.pack("<I", 0) + constants
                + struct.pack("<I", len(code)) + code + lines + locals_)

    header = entry[:12]
    tables = struct.pack("<I", 0) + struct.pack("<I", 0)  # no module variables, no method names

    def make(body: bytes) -> bytes:
        return reseal(header + bytes(8) + tables + body)

    op = OPS
    good = make(fn(bytes([op["NULL"], op["RETURN"], op["END"]]), slots=2))  # the closure and the null
    vm = new_vm()
    assert vm.interpret_bytecode(good, "ok1"), vm.bytecode_error()
    cases = {
        "unknown opcode": fn(bytes([200, op["END"]])),
        "breakpoint": fn(bytes([op["BREAKPOINT"], op["END"]])),
        "no END": fn(bytes([op["NULL"], op["RETURN"]])),
        "operand past code": fn(bytes([op["CONSTANT"], 0])),
        "constant index": fn(bytes([op["CONSTANT"], 0, 3, op["END"]])),
        "local slot": fn(bytes([op["LOAD_LOCAL"], 1, op["END"]]), slots=1),
        "upvalue": fn(bytes([op["LOAD_UPVALUE"], 0, op["END"]])),
        "module var": fn(bytes([op["LOAD_MODULE_VAR"], 0, 0, op["END"]])),
        "method name": fn(bytes([op["CALL"], 0, 0, 0, op["END"]])),
        "too many args": fn(bytes([op["CALL"], 17, 0, 0, op["END"]])),
        "jump past": fn(bytes([op["JUMP"], 0, 5, op["END"]])),
        "jump into": fn(bytes([op["JUMP"], 0, 1, op["CONSTANT"], 0, 0, op["END"]]),
                        constants=struct.pack("<IB", 1, 0) + struct.pack("<d", 1.0)),
        "loop before": fn(bytes([op["LOOP"], 0, 9, op["END"]])),
        "closure of a number": fn(bytes([op["CLOSURE"], 0, 0, op["END"]]),
                                  constants=struct.pack("<IB", 1, 0) + struct.pack("<d", 1.0)),
        "constant tag": fn(bytes([op["END"]]), constants=struct.pack("<IB", 1, 9)),
        "local record": fn(bytes([op["END"]]), locals_=struct.pack("<I", 1) + struct.pack("<I", 1) + b"x"
                           + struct.pack("<IIi", 5, 0, 1)),
        "huge count": fn(bytes([op["END"]]), constants=struct.pack("<I", 0xFFFFFFF0)),
    }
    for what, body in cases.items():
        assert not vm.interpret_bytecode(make(body), "bad"), what
    assert not vm.interpret_bytecode(make(fn(bytes([op["END"]])) + b"\0"), "bad")  # trailing bytes


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_bit_flips_are_refused_or_harmless(entry: bytes, data: st.DataObject) -> None:
    """A flipped bit is refused by the checksum; with the checksum fixed up the
    VM either refuses the entry or runs it without escaping its sandbox
    (a Wren error at worst), and stays usable."""
    position = data.draw(st.integers(HEADER, len(entry) - 1))
    bit = data.draw(st.integers(0, 7))
    flipped = bytearray(entry)
    flipped[position] ^= 1 << bit
    vm = new_vm()
    assert not vm.interpret_bytecode(bytes(flipped), "main")
    assert "checksum" in vm.bytecode_error()
    resealed = reseal(bytes(flipped))
    # a flip can make an endless loop the verifier has no reason to refuse: a fuel budget ends it
    vm = WrenVM(capture=True, load_module={"util": UTIL}.get, fuel=200_000_000)
    try:
        vm.interpret_bytecode(resealed, "main")
    except (WrenRuntimeError, WrenCompileError):
        pass
    except WrenError:  # a trap of the instance (limits): acceptable, the host survives
        return
    vm.interpret("System.print(6 * 7)", "after")
    assert "42" in "".join(vm.output)


# ---- through the engine ------------------------------------------------------------

DEBUGGEE = """\
class Shop {
  static total(items, rate) {
    var sum = 0
    for (item in items) {
      sum = sum + item["price"]
    }
    var taxed = sum * rate
    return taxed
  }
}
var total = Fn.new { |items| Shop.total(items, 2) }
"""


def test_engine_compile_gives_bytecode_and_a_load_skips_the_compiler() -> None:
    m = ScriptManager(policy=SecurityPolicy.trusted(), cache=False, output=lambda lang, text: None)
    try:
        engine = m.engine("wren")
        compiled = engine.compile(DEBUGGEE, "shop")
        assert compiled.bytecode[:4] == b"KWBC" and engine.capabilities.supports_bytecode
        from dataclasses import replace

        # the first set-up of a process leaves the image later instances start from (snapshot.py)
        engine.load_script(replace(compiled, id="warm"))
        engine.load_script(compiled)
        with_bytecode = engine._scripts["shop"].vm.compiler_runs()
        engine.load_script(replace(compiled, id="shop2", bytecode=b""))
        from_source = engine._scripts["shop2"].vm.compiler_runs()
        # each instance sets up the same built-in modules; the script itself only from source
        assert from_source - with_bytecode == 1
        from kryon_wren import snapshot

        if snapshot.enabled:  # the core library and kryon module restored, not compiled
            assert with_bytecode == 0
        # a refused entry falls back to the source
        engine.load_script(replace(compiled, id="shop3", bytecode=compiled.bytecode[:-3]))
        assert engine._scripts["shop3"].vm.compiler_runs() == from_source
        assert engine.call_function("total", [[{"price": 1}]], script="shop3") == 2
        assert engine.call_function("total", [[{"price": 2}]], script="shop") == 4
    finally:
        m.close()


def test_breakpoints_and_locals_on_a_cached_load() -> None:
    m = ScriptManager(policy=SecurityPolicy.trusted(), cache=False, output=lambda lang, text: None)
    try:
        engine = m.engine("wren")
        hits: list[BreakpointHit] = []
        engine.set_breakpoint_handler(hits.append)
        engine.set_breakpoint("shop", 7)
        m.load_script_from_source("shop", "wren", DEBUGGEE)
        assert m.scripts["shop"].compiled.bytecode[:4] == b"KWBC"
        runs = engine._scripts["shop"].vm.compiler_runs()
        assert m.call_function("total", [[{"price": 3}, {"price": 4}]]) == 14
        assert [(h.script, h.line) for h in hits] == [("shop", 7)]
        assert hits[0].locals == {"items": [{"price": 3}, {"price": 4}], "rate": 2, "sum": 7}
        assert [f.function for f in hits[0].stack] == ["total(_,_)", "Fn (line 11)"]
        assert engine._scripts["shop"].vm.compiler_runs() == runs
    finally:
        m.close()


CHILD = """
import json, sys
from kryon_core import ScriptManager, SecurityPolicy
m = ScriptManager(policy=SecurityPolicy.trusted(), cache_dir=sys.argv[1], output=lambda lang, text: None)
m.engine("wren")
m.load_script_from_source("prog", "wren", sys.argv[2])
engine = m.engine("wren")
print(json.dumps({"from_cache": m.scripts["prog"].compiled.from_cache,
                  "compiled_here": engine._checker is not None,
                  "runs": engine._scripts["prog"].vm.compiler_runs(),
                  "value": m.call_function("prog.total", [[{"price": 5}]])}))
m.close()
"""


def test_warm_load_in_a_fresh_process_skips_the_wren_compiler(tmp_path) -> None:
    def run() -> dict:
        out = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path), DEBUGGEE],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])

    cold, warm = run(), run()
    assert not cold["from_cache"] and warm["from_cache"]
    assert cold["value"] == warm["value"] == 10
    # the cold process compiled the script once (in the engine's compile
    # step); the warm one never did, and the script's own instance ran no
    # Wren compiler for it in either (only its built-in set-up modules)
    assert cold["compiled_here"] and not warm["compiled_here"]
    import os

    if os.environ.get("KRYON_WREN_SNAPSHOT", "1") != "0":
        # nor its set-up in the warm one: the core library and the kryon module
        # come from the image on disk the cold process left (snapshot.py)
        assert warm["runs"] == 0 and cold["runs"] in (0, 6), textwrap.shorten(str((cold, warm)), 200)
    else:
        assert warm["runs"] == cold["runs"], textwrap.shorten(str((cold, warm)), 200)
