"""The bytecode loader's run-time shape check (csrc/verify.c): an entry whose
checksum was recomputed over edited code is refused when it would break what
the interpreter takes on trust (stack depths on every path, a class where a
method is bound, field numbers, argument counts, locals below the stack top,
captured locals), and falls back to source; every entry the compiler writes
passes; fuzzed entries never trap the instance or corrupt the VM."""

from __future__ import annotations

import glob
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("kryon_wren")
from kryon_wren import WrenVM  # noqa: E402
from kryon_wren.vm import WrenCompileError, WrenMemoryError, WrenRuntimeError, WrenTimeoutError  # noqa: E402
from wren_support import HEADER, OPS, reseal  # noqa: E402

from kryon_core import ScriptManager  # noqa: E402

OP = OPS

CLASSES = """class Point {
  construct new(x, y) {
    _x = x
    _y = y
  }
  x { _x }
  y { _y }
  sum { Fn.new { _x + _y }.call() }
}
class Point3 is Point {
  construct new(x, y, z) {
    super(x, y)
    _z = z
  }
  sum { super.sum + _z }
}
var total = 0
for (i in 1..3) {
  var p = Point3.new(i, i, i)
  total = total + p.sum
}
var list = [1, 2, 3].map { |v| v * total }.toList
var map = {"a": list, "b": total}
System.print([total, list, map["b"]])
"""


def new_vm(**limits) -> WrenVM:
    return WrenVM(capture=True, load_module=lambda name: None, **limits)


@pytest.fixture(scope="module")
def header() -> bytes:
    return new_vm().compile_bytecode("var x = 1\n", "h#c")[:12]


def fn(code: bytes, constants: list[bytes] | None = None, slots: int = 4, arity: int = 0, upvalues: int = 0) -> bytes:
    consts = constants or []
    return (bytes([arity]) + struct.pack("<HI", upvalues, slots) + struct.pack("<I", 0)
            + struct.pack("<I", len(consts)) + b"".join(consts)
            + struct.pack("<I", len(code)) + code + positions(len(code)) + struct.pack("<I", 0))


def varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out) + bytes([n])


def zigzag(n: int) -> int:
    return n * 2 if n >= 0 else -n * 2 - 1


def positions(count: int, runs: list[tuple[int, int, int]] | None = None) -> bytes:
    """The position table (csrc/bytecode.c putPositions) of runs given as
    (count, line, column); default one run at line 1, column 0."""
    runs = [(count, 1, 0)] if runs is None else runs
    out, line, column = bytearray(), 0, 0
    for n, new_line, new_column in runs:
        out += varint((n - 1) << 1 | (new_line != line))
        if new_line != line:
            out += varint(zigzag(new_line - line))
        out += varint(zigzag(new_column - column))
        line, column = new_line, new_column
    return struct.pack("<I", len(runs)) + bytes(out)


def fn_constant(body: bytes) -> bytes:
    return b"\2" + body


def str_constant(text: str) -> bytes:
    data = text.encode()
    return b"\1" + struct.pack("<I", len(data)) + data


def entry(header: bytes, body: bytes, names: tuple[str, ...] = (), variables: tuple[str, ...] = ("Object",)) -> bytes:
    tables = struct.pack("<I", len(variables)) + b"".join(
        struct.pack("<I", len(v)) + v.encode() + b"\0" for v in variables)
    tables += struct.pack("<I", len(names)) + b"".join(struct.pack("<I", len(n)) + n.encode() for n in names)
    return reseal(header + bytes(8) + tables + body)


def loads(data: bytes) -> tuple[bool, str]:
    vm = new_vm()
    ok = vm.interpret_bytecode(data, "m")
    return ok, vm.bytecode_error()


def test_every_compiled_case_passes():
    """No false refusals: every test case, example and benchmark program the
    compiler accepts loads from its entry."""
    files = sorted(glob.glob("tests/wren/cases/*.wren")) + sorted(glob.glob("benchmarks/programs/*.wren"))
    assert len(files) > 50
    checked = 0
    for path in files + [None]:
        source = CLASSES if path is None else open(path, encoding="utf-8").read()
        try:
            data = new_vm().compile_bytecode(source, "m#c")
        except WrenCompileError:
            continue
        if data is None:
            continue
        vm = new_vm()
        try:
            ok = vm.interpret_bytecode(data, "m")
        except WrenRuntimeError:
            ok = True
        assert ok, (path, vm.bytecode_error())
        checked += 1
    assert checked > 50


def test_a_well_shaped_entry_runs(header):
    ok, why = loads(entry(header, fn(bytes([OP["NULL"], OP["RETURN"], OP["END"]]), slots=2)))
    assert ok, why


A_FN = fn(bytes([OP["NULL"], OP["RETURN"], OP["END"]]), slots=2)


@pytest.mark.parametrize("what, body, names, words", [
    ("underflow", fn(bytes([OP["POP"], OP["POP"], OP["NULL"], OP["RETURN"], OP["END"]])), (), "underflow"),
    ("deeper than the slots", fn(bytes([OP["NULL"], OP["NULL"], OP["RETURN"], OP["END"]]), slots=2), (), "deeper"),
    ("depths differ at a join",
     fn(bytes([OP["TRUE"], OP["JUMP_IF_FALSE"], 0, 1, OP["NULL"], OP["NULL"], OP["RETURN"], OP["END"]])), (), "differs"),
    ("a loop that grows the stack",
     fn(bytes([OP["NULL"], OP["LOOP"], 0, 4, OP["END"]]), slots=64), (), "differs"),
    ("local above the top", fn(bytes([OP["LOAD_LOCAL"], 2, OP["RETURN"], OP["END"]])), (), "above the stack top"),
    ("store above the top", fn(bytes([OP["NULL"], OP["STORE_LOCAL"], 3, OP["RETURN"], OP["END"]])), (), "above"),
    ("append to a non-list", fn(bytes([OP["NULL"], OP["NULL"], OP["LIST_APPEND"], OP["RETURN"], OP["END"]])), (), "list"),
    ("insert into a non-map",
     fn(bytes([OP["NULL"], OP["NULL"], OP["NULL"], OP["MAP_INSERT"], OP["RETURN"], OP["END"]])), (), "map"),
    ("call with the wrong argument count", fn(bytes([OP["NULL"], OP["CALL"], 0, 0, 0, OP["RETURN"], OP["END"]])),
     ("f(_)",), "argument count"),
    ("operator with a two-argument name", fn(bytes([OP["NULL"], OP["NULL"], OP["ADD"], 0, 0, OP["RETURN"], OP["END"]])),
     ("f(_,_)",), "operator"),
    ("construct in a free function", fn(bytes([OP["CONSTRUCT"], OP["NULL"], OP["RETURN"], OP["END"]])), (), "construct"),
    ("field of this in a free function", fn(bytes([OP["LOAD_FIELD_THIS"], 0, OP["RETURN"], OP["END"]])), (), "field"),
    ("field of any value", fn(bytes([OP["NULL"], OP["LOAD_FIELD"], 0, OP["RETURN"], OP["END"]])), (), "field"),
    ("super on any value", fn(bytes([OP["NULL"], OP["SUPER"], 0, 0, 0, OP["RETURN"], OP["END"]])), ("f",), "super"),
    ("class without a name", fn(bytes([OP["NULL"], OP["NULL"], OP["CLASS"], 0, OP["RETURN"], OP["END"]])), (), "name"),
    ("method without a class",
     fn(bytes([OP["NULL"], OP["CLOSURE"], 0, 0, OP["METHOD_INSTANCE"], 0, 0, OP["RETURN"], OP["END"]]),
        constants=[fn_constant(A_FN)]), ("f",), "without a class"),
    ("foreign method without a class",
     fn(bytes([OP["NULL"], OP["FOREIGN_STATIC"], 0, 0, 0, 0, OP["RETURN"], OP["END"]]),
        constants=[b"\0" + struct.pack("<d", -1.0)]), ("f()",), "foreign method bound without a class"),
    ("class attributes on a non-class", fn(bytes([OP["NULL"], OP["NULL"], OP["END_CLASS"], OP["RETURN"], OP["END"]])),
     (), "class attributes"),
    ("a captured local popped without closing",
     fn(bytes([OP["NULL"], OP["CLOSURE"], 0, 0, 1, 1, OP["POP"], OP["POP"], OP["NULL"], OP["RETURN"], OP["END"]]),
        constants=[fn_constant(fn(bytes([OP["NULL"], OP["RETURN"], OP["END"]]), slots=2, upvalues=1))]), (), "captured"),
])
def test_shape_errors_are_refused(header, what, body, names, words):
    ok, why = loads(entry(header, body, names))
    assert not ok, what
    assert words in why, (what, why)


def test_closing_a_captured_local_passes(header):
    body = fn(bytes([OP["NULL"], OP["CLOSURE"], 0, 0, 1, 1, OP["POP"], OP["CLOSE_UPVALUE"], OP["NULL"], OP["RETURN"],
                     OP["END"]]), constants=[fn_constant(fn(bytes([OP["NULL"], OP["RETURN"], OP["END"]]), slots=2,
                                                          upvalues=1))])
    ok, why = loads(entry(header, body))
    assert ok, why


def _class_entry(fields: int, getter_field: int, arity: int = 0, name: str = "a") -> bytes:
    """class P (own fields `fields`) with a getter reading field `getter_field`."""
    getter = fn(bytes([OP["LOAD_FIELD_THIS"], getter_field, OP["RETURN"], OP["END"]]), slots=2 + arity, arity=arity)
    code = bytes([OP["CONSTANT"], 0, 0, OP["LOAD_MODULE_VAR"], 0, 0, OP["CLASS"], fields,
                  OP["CLOSURE"], 0, 1, OP["METHOD_INSTANCE"], 0, 0, OP["POP"], OP["NULL"], OP["RETURN"], OP["END"]])
    return fn(code, constants=[str_constant("P"), fn_constant(getter)])


def test_field_numbers_are_checked_against_the_class(header):
    ok, why = loads(entry(header, _class_entry(2, 1), ("a",)))
    assert ok, why
    ok, why = loads(entry(header, _class_entry(1, 1), ("a",)))
    assert not ok and "field index past" in why
    ok, why = loads(entry(header, _class_entry(2, 0, arity=1), ("a",)))
    assert not ok and "arity" in why


def test_a_method_bound_inside_a_method_is_refused_and_runs_from_source():
    source = ("class Outer {\n  static make() {\n    class Inner {\n      construct new() { _v = 5 }\n"
              "      v { _v }\n    }\n    return Inner.new().v\n  }\n}\nSystem.print(Outer.make())\n")
    data = new_vm().compile_bytecode(source, "m#c")
    vm = new_vm()
    assert not vm.interpret_bytecode(data, "m")
    assert "inside another method" in vm.bytecode_error()
    vm.interpret(source, "m")
    assert vm.output == ["5\n"]


def test_a_refused_entry_falls_back_to_source_in_the_engine(tmp_path):
    from kryon_core import SecurityPolicy

    with ScriptManager(policy=SecurityPolicy.sandboxed(), cache_dir=tmp_path) as m:
        engine = m.engine("wren")
        compiled = engine.compile(CLASSES.replace("System.print", "var shown = "), "s")
        assert compiled.bytecode
        damaged = bytearray(compiled.bytecode)
        at = damaged.index(bytes([OP["CLASS"], 2]), HEADER)  # Point's own field count, 2 -> 1
        damaged[at + 1] = 1
        vm = new_vm()
        assert not vm.interpret_bytecode(reseal(bytes(damaged)), "m")
        import dataclasses

        engine.load_script(dataclasses.replace(compiled, bytecode=reseal(bytes(damaged))))
        assert engine.call_function("Point.new", [1, 2], script="s") is not None
        assert engine.evaluate("s", "total") == 18


@pytest.fixture(scope="module")
def classes_entry() -> bytes:
    return new_vm().compile_bytecode(CLASSES, "m#c")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_entries_never_trap_or_corrupt(classes_entry: bytes, data: st.DataObject) -> None:
    """Bytes of the payload replaced (checksum recomputed): the entry is
    refused, or it runs to a Wren error or a limit; never a wasm trap of the
    instance (a fault of the VM), and the VM works afterwards, its heap
    intact through a full collection."""
    damaged = bytearray(classes_entry)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(HEADER, len(damaged) - 1))
        damaged[at] = data.draw(st.integers(0, 255))
    vm = new_vm(fuel=20_000_000, memory_limit=32 << 20)
    try:
        vm.interpret_bytecode(reseal(bytes(damaged)), "m")
    except (WrenRuntimeError, WrenCompileError):
        pass
    except (WrenTimeoutError, WrenMemoryError):  # a limit: the host survives
        return
    vm.collect_garbage()
    vm.interpret("System.print([1, 2].map { |x| x * 21 }.toList[1])", "after")
    vm.collect_garbage()
    assert vm.output[-1] == "42\n"


# ---- instruction-aware fuzzing ------------------------------------------------------

OPERANDS = [2, 0, 0, 0, 1, 1, 1, 1, 2, 2, 1, 1, 1, 1, 0, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0,
            0, 2, 0, 1, 2, 2, 4, 4, 0, 0, 0, 0, 0, 2, 2, 0, 0, 0]
SWAPPABLE = [op for op in range(len(OPERANDS)) if op not in (OP["FOREIGN_INSTANCE"], OP["FOREIGN_STATIC"],
                                                             OP["BREAKPOINT"], OP["CLOSURE"])]


#: (code bytes, position-table bytes) of each function of the last entry instructions() walked
position_bytes: list[tuple[int, int]] = []


def instructions(data: bytes) -> list[tuple[int, int]]:
    """(offset, opcode) of every instruction of every function in an entry
    (the format of csrc/bytecode.c), so mutations keep the structure valid
    and reach the shape check rather than the structural one."""
    pos = HEADER
    out: list[tuple[int, int]] = []
    position_bytes.clear()

    def u32() -> int:
        nonlocal pos
        pos += 4
        return struct.unpack_from("<I", data, pos - 4)[0]

    def skip_str() -> None:
        nonlocal pos
        length = u32()
        pos += length

    for _ in range(u32()):
        skip_str()
        pos += 1
        if data[pos - 1] == 2:
            pos += 8
    for _ in range(u32()):
        skip_str()

    def read_fn() -> int:
        nonlocal pos
        upvalues = struct.unpack_from("<H", data, pos + 1)[0]
        pos += 7
        skip_str()
        children: dict[int, int] = {}
        for k in range(u32()):
            tag = data[pos]
            pos += 1
            if tag == 0:
                pos += 8
            elif tag == 1:
                skip_str()
            else:
                children[k] = read_fn()
        length = u32()
        start, ip = pos, 0
        while ip < length:
            op = data[start + ip]
            out.append((start + ip, op))
            size = 1 + OPERANDS[op]
            if op == OP["CLOSURE"]:
                size += 2 * children[struct.unpack_from(">H", data, start + ip + 1)[0]]
            ip += size
        pos = start + length
        def skip_varint() -> int:
            nonlocal pos
            first = data[pos]
            while data[pos] & 0x80:
                pos += 1
            pos += 1
            return first

        for _ in range(u32()):  # position runs: a head, the line's change if flagged, the column's
            if skip_varint() & 1:
                skip_varint()
            skip_varint()
        position_bytes.append((length, pos - start - length))
        for _ in range(u32()):
            skip_str()
            pos += 12
        return upvalues

    read_fn()
    return out


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_instruction_level_mutations_never_trap_or_corrupt(classes_entry: bytes, data: st.DataObject) -> None:
    """Opcodes swapped for others of the same operand size and operand bytes
    changed (checksum recomputed): what passes the structural check must be
    refused by the shape check or run without faulting the VM."""
    damaged = bytearray(classes_entry)
    code = instructions(classes_entry)
    for _ in range(data.draw(st.integers(1, 3))):
        at, op = code[data.draw(st.integers(0, len(code) - 1))]
        if OPERANDS[op] and data.draw(st.booleans()):
            damaged[at + data.draw(st.integers(1, OPERANDS[op]))] = data.draw(st.integers(0, 255))
        else:
            same = [o for o in SWAPPABLE if OPERANDS[o] == OPERANDS[op]]
            damaged[at] = data.draw(st.sampled_from(same))
    vm = new_vm(fuel=20_000_000, memory_limit=32 << 20)
    try:
        vm.interpret_bytecode(reseal(bytes(damaged)), "m")
    except (WrenRuntimeError, WrenCompileError):
        pass
    except (WrenTimeoutError, WrenMemoryError):
        return
    vm.collect_garbage()
    vm.interpret("System.print([1, 2].map { |x| x * 21 }.toList[1])", "after")
    vm.collect_garbage()
    assert vm.output[-1] == "42\n"


MAKE_CLASS = """class Small {
  construct new() {}
}
class Three {
  construct new() {
    _a = 1
    _b = 2
    _c = 3
  }
}
var make = Fn.new { |sup|
  class A is sup {
    construct new() { super() }
    x { _x }
    x=(v) { _x = v }
  }
  return A
}
var a1 = make.call(Small).new()
a1.x = 5
var again = make.call(Small).new()
again.x = 6
System.print([a1.x, again.x])
"""


def test_methods_shared_by_classes_with_other_field_bases_are_refused():
    """A class declared in a function body is made again from the same code;
    its methods' field operands are offset once per function, so binding
    them to a class with another number of inherited fields would make the
    first class's methods reach past its instances: a runtime error, and the
    same superclass again still works."""
    vm = new_vm()
    vm.interpret(MAKE_CLASS, "m")
    assert vm.output == ["[5, 6]\n"]
    with pytest.raises(WrenRuntimeError) as info:
        vm.interpret("var a3 = make.call(Three)\n", "m")
    assert "inherits 3 fields" in info.value.message
    vm.interpret("a1.x = 7\nSystem.print(a1.x)\n", "m")
    assert vm.output[-1] == "7\n"


def _with_positions(table: bytes) -> bytes:
    code = bytes([OP["NULL"], OP["RETURN"], OP["END"]])
    return (bytes([0]) + struct.pack("<HI", 0, 2) + struct.pack("<I", 0) + struct.pack("<I", 0)
            + struct.pack("<I", len(code)) + code + table + struct.pack("<I", 0))


@pytest.mark.parametrize("what, table, words", [
    ("two runs", positions(3, [(1, 1, 1), (2, 2, 7)]), None),
    ("runs on one line", positions(3, [(1, 3, 9), (1, 3, 2), (1, 3, 1023)]), None),
    ("a run past the code", positions(3, [(4, 1, 0)]), "position run"),
    ("runs short of the code", positions(3, [(2, 1, 0)]), "do not cover"),
    ("a second run past the code", positions(3, [(2, 1, 0), (2, 1, 3)]), "position run"),
    ("a line before the first", positions(3, [(3, -1, 0)]), "position run"),
    ("a line past the limit", positions(3, [(3, 1 << 21, 0)]), "position run"),
    ("a column past 1023", positions(3, [(3, 1, 1024)]), "position run"),
    ("a negative column", positions(3, [(1, 1, 5), (2, 1, -1)]), "position run"),
    ("a varint longer than 32 bits", struct.pack("<I", 1) + b"\xff\xff\xff\xff\x7f\x00", "varint"),
    ("more runs than bytes left", struct.pack("<I", 1000) + b"\x04\x00", "position runs"),
])
def test_position_tables_are_checked(header, what, table, words):
    ok, why = loads(entry(header, _with_positions(table)))
    if words is None:
        assert ok, why
    else:
        assert not ok and words in why, (what, why)


def test_positions_take_a_fraction_of_the_code_and_keep_error_places():
    source = CLASSES + "\nvar boom = Fn.new {\n  var x = 1\n  return x.nope(2)\n}\n"
    data = new_vm().compile_bytecode(source, "p#c")
    instructions(data)
    code = sum(n for n, _ in position_bytes)
    table = sum(t for _, t in position_bytes)
    assert table < code, (code, table)  # under a byte per code byte: it was 4
    from_source, cached = new_vm(), new_vm()
    from_source.interpret(source, "p")
    assert cached.interpret_bytecode(data, "p")
    errors = []
    for vm in (from_source, cached):
        with pytest.raises(WrenRuntimeError) as info:
            vm.interpret('import "p" for boom\nboom.call()', "q")
        errors.append((info.value.message, info.value.line, info.value.column, info.value.trace))
    assert errors[0] == errors[1] and errors[0][1] > 1 and errors[0][2] > 1
