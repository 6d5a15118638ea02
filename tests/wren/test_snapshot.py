"""Warm start from an image of a set-up instance (kryon_wren/snapshot.py): a
restored VM compiles nothing, is byte for byte the VM a fresh set-up makes,
behaves the same afterwards, binds its prelude's foreign methods to its own
callbacks, and a memory cap below the image is a memory error. Images kept
on disk start a new process's first VM; a damaged entry is never used."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kryon_core import MemoryLimitError, ScriptManager, SecurityPolicy

pytest.importorskip("kryon_wren")
from kryon_wren import snapshot  # noqa: E402
from kryon_wren.vm import WasmInstance, WrenCompileError, WrenMemoryError, WrenVM, WrenVMClosedError  # noqa: E402

PRELUDE = (("host", """\
class Host {
  foreign static tag(x)
  static twice(x) { x * 2 }
}
var Table = {"a": [1, 2, 3], "b": "text"}
"""),)

WORKLOAD = """\
import "host" for Host, Table
class Point {
  construct new(x, y) {
    _x = x
    _y = y
  }
  x { _x }
  +(o) { Point.new(_x + o.x, _y) }
  toString { "P(%(_x), %(_y))" }
}
var p = Point.new(1, 2)
for (i in 0...200) p = p + Point.new(i, 0)
var f = Fiber.new { |x|
  Fiber.yield(x + 1)
  return Host.tag("done")
}
System.print(f.call(41))
System.print(f.call())
System.print([p, Host.twice(21), Table["a"].map { |x| x * x }.toList, Table["b"].count])
var junk = []
for (i in 0...2000) junk.add("s%(i)")
junk = null
"""


def make(memory_limit: int = 64 << 20, tag: str = "t") -> WrenVM:
    foreign = {("host", "Host", True, "tag(_)"): lambda x: f"{tag}:{x}"}
    return WrenVM(capture=True, foreign=foreign, prelude=PRELUDE, memory_limit=memory_limit)


def memory(vm: WrenVM) -> bytes:
    inst = vm.instance
    return inst.read_bytes(0, inst.memory_size())


def restored(**kw) -> WrenVM:
    before = snapshot.stats["restored"]
    vm = make(**kw)
    assert snapshot.stats["restored"] == before + 1
    return vm


def test_a_restored_vm_runs_no_compiler(fresh_images) -> None:
    first = make()  # the first set-up in a pristine instance compiles and leaves the image
    assert first.compiler_runs() == 2  # the core library and the prelude module
    vm = restored()
    assert vm.compiler_runs() == 0
    vm.interpret("System.print(1 + 1)")
    assert vm.compiler_runs() == 1 and vm.output == ["2\n"]
    first.close()
    vm.close()


def test_restored_memory_is_the_fresh_set_up_byte_for_byte(fresh_images, monkeypatch) -> None:
    make().close()
    vm = restored()
    monkeypatch.setattr(snapshot, "enabled", False)
    fresh = make()
    fresh.instance.fns["wren_compiler_runs_reset"]()  # the one word the image leaves at 0
    assert memory(vm) == memory(fresh)
    # and stays identical through the same work: symbols, classes, fibers, foreign calls, GC
    for one in (vm, fresh):
        one.interpret(WORKLOAD, module="main")
        one.collect_garbage()
    assert "".join(vm.output) == "".join(fresh.output) == "42\nt:done\n[P(19901, 2), 42, [1, 4, 9], 4]\n"
    assert (vm.bytes_allocated(), vm.gc_count()) == (fresh.bytes_allocated(), fresh.gc_count())
    assert memory(vm) == memory(fresh)
    vm.close()
    fresh.close()


def test_each_restored_vm_binds_foreign_methods_to_its_own_callbacks(fresh_images) -> None:
    make(tag="first").close()
    vms = [restored(tag=f"vm{i}") for i in range(3)]
    for i, vm in enumerate(vms):
        vm.interpret(f'import "host" for Host\nSystem.print(Host.tag("{i}"))')
        assert vm.output == [f"vm{i}:{i}\n"]
        vm.close()


def test_a_callback_that_binds_differently_gets_a_fresh_set_up(fresh_images) -> None:
    make().close()
    before = dict(snapshot.stats)
    with pytest.raises(WrenCompileError, match="tag"):  # what a fresh set-up says: no such foreign method
        WrenVM(capture=True, prelude=PRELUDE)
    assert snapshot.stats == before


def test_many_restored_instances_are_independent(fresh_images) -> None:
    make().close()
    vms = [restored() for _ in range(40)]
    sizes = {vm.instance.memory_size() for vm in vms}
    assert len(sizes) == 1
    for i, vm in enumerate(vms):
        vm.interpret(f"var mine = {i}\nclass C{i} {{ static n {{ {i} }} }}", module="main")
    for i, vm in enumerate(vms):
        assert vm.get_variable("main", "mine") == i
        assert not vm.has_variable("main", f"C{(i + 1) % 40}")
        vm.close()


def test_a_cap_smaller_than_the_image_is_a_memory_error(fresh_images) -> None:
    make().close()
    image = next(iter(snapshot._images.values()))
    assert image is not None and image.memory_size > 2 << 20
    cap = image.memory_size - 4 * snapshot.PAGE  # above the module's initial memory, below the image
    with pytest.raises(WrenMemoryError, match="memory limit"):
        make(memory_limit=cap)
    # fresh set-ups hit the same cap the same way
    snapshot.enabled = False
    with pytest.raises(WrenMemoryError, match="memory limit"):
        make(memory_limit=cap)
    # below the module's own initial memory: the same error, not wasmtime's
    with pytest.raises(WrenMemoryError, match="memory limit"):
        WasmInstance(memory_limit=1 << 20)
    snapshot.enabled = True
    vm = restored(memory_limit=image.memory_size)
    vm.interpret("System.print(7)")
    assert vm.output == ["7\n"]
    vm.close()


def test_the_failed_restore_leaves_a_dead_instance(fresh_images) -> None:
    make().close()
    image = next(iter(snapshot._images.values()))
    inst = WasmInstance(memory_limit=image.memory_size - snapshot.PAGE)
    with pytest.raises(WrenMemoryError):
        WrenVM(instance=inst, foreign={("host", "Host", True, "tag(_)"): str}, prelude=PRELUDE)
    with pytest.raises(WrenVMClosedError):
        inst.call("wren_bytes_allocated")


def test_only_pristine_instances_are_imaged_or_restored(fresh_images) -> None:
    inst = WasmInstance()
    first = WrenVM(instance=inst, capture=True)
    second = WrenVM(instance=inst, capture=True)  # the instance already holds a VM: compiled here
    assert inst.call("wren_compiler_runs") == 2
    assert snapshot.stats["captured"] >= 1
    # a prelude that prints is never imaged: its output reaches every VM
    loud = (("loud", 'System.print("hello")\n'),)
    for _ in range(2):
        vm = WrenVM(capture=True, prelude=loud)
        assert vm.output == ["hello\n"] and vm.compiler_runs() == 2
        vm.close()
    for vm in (first, second):
        vm.close()


def test_function_pointers_in_the_image_work_in_another_instance(fresh_images) -> None:
    # core primitives are stored as table indices; a restored VM calls them all
    make().close()
    vm = restored()
    vm.interpret('System.print([1.5.floor, "abc".indexOf("c"), (1..3).reduce { |a, b| a + b }, Num.fromString("8")])')
    vm.interpret('import "random" for Random\nSystem.print(Random.new(3).int(1, 2))')
    assert vm.output == ["[1, 2, 6, 8]\n", "1\n"]
    vm.close()


def test_engine_scripts_start_from_the_image(fresh_images) -> None:
    m = ScriptManager(policy=SecurityPolicy.sandboxed(), cache=False, output=lambda lang, text: None)
    try:
        m.load_script_from_source("a", "wren", 'import "kryon" for Kryon\nclass A {\n  static f(x) { x + 1 }\n}\n')
        before = snapshot.stats["restored"]
        m.load_script_from_source("b", "wren", 'import "kryon" for Kryon\nclass B {\n  static f(x) { x + 2 }\n}\n')
        engine = m.engine("wren")
        assert snapshot.stats["restored"] == before + 1
        assert engine._scripts["b"].vm.compiler_runs() == 0  # loaded from bytecode, set up from the image
        assert m.call_function("b.B.f", [1]) == 3
        assert m.call_function("a.A.f", [1]) == 2
    finally:
        m.close()


def test_engine_memory_limit_of_a_restored_script_still_fires(fresh_images) -> None:
    policy = SecurityPolicy.sandboxed(memory_limit=8 << 20)
    m = ScriptManager(policy=policy, cache=False, output=lambda lang, text: None)
    try:
        m.load_script_from_source("w", "wren", "class W {\n  static fill() {\n    var l = []\n"
                                  "    while (true) l.add([1, 2, 3])\n  }\n}\n")
        m.load_script_from_source("v", "wren", "class V {\n  static fill() {\n    var l = []\n"
                                  "    while (true) l.add([1, 2, 3])\n  }\n}\n")
        with pytest.raises(MemoryLimitError):
            m.call_function("v.V.fill")
    finally:
        m.close()


def test_image_runs_are_what_differs_from_a_pristine_instance(fresh_images) -> None:
    make().close()
    image = next(iter(snapshot._images.values()))
    inst = WasmInstance()
    base = inst.read_bytes(0, inst.memory_size())
    for offset, data in image.runs:
        assert offset % snapshot.CHUNK == 0 and len(data) % snapshot.CHUNK == 0
        assert offset >= len(base) or data[:snapshot.CHUNK] != base[offset:offset + snapshot.CHUNK]
    # far less than the whole memory is written: untouched pages stay untouched
    assert image.written_bytes < image.memory_size // 2
    inst.close()


CHILD = """
import json
from kryon_wren import snapshot
from kryon_wren.vm import WrenVM
vm = WrenVM(capture=True, foreign={("host", "Host", True, "tag(_)"): lambda x: "c:" + x},
            prelude=[("host", 'class Host {\\n  foreign static tag(x)\\n}\\nvar N = 6 * 7\\n')])
vm.interpret('import "host" for Host, N\\nSystem.print(Host.tag("%(N)"))')
print(json.dumps({"runs": vm.compiler_runs(), "out": vm.output, "stats": snapshot.stats}))
"""


def child(cache: str, **env: str) -> dict:
    import os

    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "KRYON_WREN_CACHE": cache, "KRYON_WREN_SNAPSHOT": "1", **env})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_new_process_starts_its_first_vm_from_the_image_on_disk(tmp_path) -> None:
    cache = str(tmp_path / "wasm")
    cold = child(cache)
    assert cold["runs"] == 2 + 1 and cold["stats"]["captured"] == 1  # core, prelude, the script
    warm = child(cache)
    assert warm["stats"] == {"captured": 0, "restored": 1, "loaded": 1}
    assert warm["runs"] == 1  # only the script itself: no core library, no prelude
    assert warm["out"] == cold["out"] == ["c:42\n"]
    assert len(list((tmp_path / "wasm").glob("*.image"))) == 1
    off = child(cache, KRYON_WREN_SNAPSHOT="0")
    assert off["runs"] == 3 and off["stats"]["restored"] == 0


def test_a_damaged_or_foreign_image_on_disk_is_removed_not_used(tmp_path) -> None:
    cache = tmp_path / "wasm"
    child(str(cache))
    [entry] = cache.glob("*.image")
    data = bytearray(entry.read_bytes())
    data[-100] ^= 0xFF  # one byte of the memory it would write
    entry.write_bytes(bytes(data))
    damaged = child(str(cache))
    assert damaged["stats"]["loaded"] == 0 and damaged["runs"] == 3 and damaged["out"] == ["c:42\n"]
    # set up from source and imaged again
    [entry] = cache.glob("*.image")
    entry.chmod(0o666)  # writable by others: never trusted
    assert child(str(cache))["stats"]["loaded"] == 0


def test_decoding_refuses_every_malformed_field() -> None:
    import struct

    def payload(**changes) -> bytes:
        meta = {"memory_size": 3 * snapshot.PAGE, "vm_ptr": 64, "host_id": 1, "binds": [["m", "C", True, "f(_)", 0]],
                "scratch": [0, 0], "runs": [[4096, 4096]]}
        meta.update(changes)
        text = json.dumps(meta).encode()
        return struct.pack("<I", len(text)) + text + b"x" * 4096

    assert snapshot._decode(payload()) is not None
    for bad in ({"memory_size": 1000}, {"vm_ptr": 10 ** 9}, {"runs": [[4096, 8192]]}, {"runs": [[3 * 65536 - 10, 4096]]},
                {"runs": [[0, 4096], [0, 4096]]}, {"binds": [["m", "C", 1, "f(_)", 0]]}, {"scratch": [-1, 0]},
                {"host_id": "1"}, {"runs": []}):
        assert snapshot._decode(payload(**bad)) is None, bad
    assert snapshot._decode(b"\xff\xff\xff\x7f{") is None
