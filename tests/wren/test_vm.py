"""Tests of the Kryon Wren VM's Python wrapper and embedding API."""
import time

import pytest

kryon_wren = pytest.importorskip(
    "kryon_wren", reason="kryon_wren is not installed (pip install ./plugins/kryon-wren)"
)
from kryon_wren import (  # noqa: E402
    WasmInstance,
    WrenCompileError,
    WrenMemoryError,
    WrenRuntimeError,
    WrenTimeoutError,
    WrenVM,
    WrenVMClosedError,
)


def test_output_goes_to_write_callback():
    seen = []
    with WrenVM(write=seen.append) as vm:
        vm.interpret('System.print("hi")\nSystem.write(1 + 1)')
    assert "".join(seen) == "hi\n2"


def test_compile_error_reports_module_and_line():
    with WrenVM(capture=True) as vm:
        with pytest.raises(WrenCompileError) as info:
            vm.interpret("var a = 1\nvar b = (\n", module="broken")
        assert info.value.module == "broken"
        assert info.value.line == 3


def test_runtime_error_reports_message_line_and_trace():
    with WrenVM(capture=True) as vm:
        with pytest.raises(WrenRuntimeError) as info:
            vm.interpret('class A {\n  static f() { g() }\n  static g() { 1.x }\n}\nA.f()\n')
        error = info.value
        assert error.message == "Num does not implement 'x'."
        assert (error.module, error.line, error.column) == ("main", 3, 18)
        assert "[main line 3:18] in g()" in error.trace
        assert "[main line 5:3] in (script)" in error.trace


def test_vm_keeps_module_state_between_interprets():
    with WrenVM(capture=True) as vm:
        vm.interpret("var counter = 1")
        vm.interpret("counter = counter + 41\nSystem.print(counter)")
        assert "".join(vm.output) == "42\n"
        assert vm.get_variable("main", "counter") == 42


def test_variables_and_value_conversion():
    with WrenVM(capture=True) as vm:
        vm.interpret('var n = 1.5\nvar s = "héllo"\nvar l = [1, "two", [true, null]]\nvar m = {"k": [1]}\nvar b = false')
        assert vm.get_variable("main", "n") == 1.5
        assert vm.get_variable("main", "s") == "héllo"
        assert vm.get_variable("main", "l") == [1, "two", [True, None]]
        assert vm.get_variable("main", "m") == {"k": [1]}
        assert vm.get_variable("main", "b") is False
        assert vm.has_variable("main", "n")
        assert not vm.has_variable("main", "nope")
        with pytest.raises(KeyError):
            vm.get_variable("main", "nope")


def test_call_handles_with_slots():
    with WrenVM(capture=True) as vm:
        vm.interpret(
            "class Calc {\n"
            "  static add(a, b) { a + b }\n"
            "  static wrap(x) { [x, {\"x\": x}] }\n"
            "  static fail() { Fiber.abort(\"nope\") }\n"
            "}\n"
            "class Counter {\n"
            "  construct new() { _n = 0 }\n"
            "  increment(by) { _n = _n + by }\n"
            "}\n"
            "var counter = Counter.new()\n"
        )
        calc = vm.variable_handle("main", "Calc")
        add = vm.make_call_handle("add(_,_)")
        assert vm.call(calc, add, 2, 3) == 5
        assert vm.call(calc, add, "a", "b") == "ab"
        assert vm.call(calc, vm.make_call_handle("wrap(_)"), "v") == ["v", {"x": "v"}]
        with pytest.raises(WrenRuntimeError, match="nope"):
            vm.call(calc, vm.make_call_handle("fail()"))
        counter = vm.variable_handle("main", "counter")
        increment = vm.make_call_handle("increment(_)")
        for _ in range(10):
            vm.call_num(counter, increment, 2)
        assert vm.call_num(counter, increment, 0) == 20
        with pytest.raises(WrenRuntimeError, match="does not implement 'increment\\(_\\)'"):
            vm.call_num(calc, increment, 1)
        counter.release()
        increment.release()


def test_fast_path_returns_non_numbers_and_errors():
    with WrenVM(capture=True) as vm:
        vm.interpret('class T {\n  static s(x) { "n%(x)" }\n  static e(x) { x.boom }\n}')
        t = vm.variable_handle("main", "T")
        assert vm.call_num(t, vm.make_call_handle("s(_)"), 3) == "n3"
        with pytest.raises(WrenRuntimeError, match="Num does not implement 'boom'."):
            vm.call_num(t, vm.make_call_handle("e(_)"), 1)
        # The VM keeps working after a Wren error.
        assert vm.call_num(t, vm.make_call_handle("s(_)"), 4) == "n4"


def test_call_fn_values():
    with WrenVM(capture=True) as vm:
        vm.interpret("var twice = Fn.new {|x| x * 2 }")
        fn = vm.variable_handle("main", "twice")
        assert vm.call_num(fn, vm.make_call_handle("call(_)"), 21) == 42


def test_foreign_methods_reach_the_host():
    calls = []

    def get_element(element_id):
        calls.append(element_id)
        return {"id": element_id, "tag": "div"}

    def fail(message):
        raise ValueError(message)

    foreign = {
        ("kryon", "Kryon", True, "getElementById(_)"): get_element,
        ("kryon", "Kryon", True, "fail(_)"): fail,
    }
    sources = {
        "kryon": "class Kryon {\n  foreign static getElementById(id)\n  foreign static fail(message)\n}\n"
    }
    with WrenVM(capture=True, foreign=foreign, load_module=sources.get) as vm:
        vm.interpret(
            'import "kryon" for Kryon\n'
            'var el = Kryon.getElementById("app")\n'
            'System.print(el["tag"])\n'
            'System.print(Fiber.new { Kryon.fail("bad input") }.try())\n'
        )
        assert "".join(vm.output) == "div\nbad input\n"
        assert calls == ["app"]


def test_unknown_foreign_method_is_a_compile_error():
    # Foreign methods are bound as they are compiled: one the host does not
    # provide is reported at its declaration, before anything runs.
    with WrenVM(capture=True) as vm:
        with pytest.raises(WrenCompileError, match="no foreign static method 'f\\(\\)' for class K") as info:
            vm.interpret("System.print(1)\nclass K {\n  foreign static f()\n}")
        assert info.value.line == 3
        assert vm.output == []


def test_imports_load_modules_from_the_host():
    modules = {
        "util": 'var greeting = "hi"\nclass Util {\n  static twice(x) { x * 2 }\n}\nSystem.print("util loaded")',
    }
    loaded = []

    def load(name):
        loaded.append(name)
        return modules.get(name)

    with WrenVM(capture=True, load_module=load) as vm:
        vm.interpret('import "util" for Util, greeting as hello\nimport "util"\nSystem.print(Util.twice(21))\nSystem.print(hello)')
        assert "".join(vm.output) == "util loaded\n42\nhi\n"
        assert loaded == ["util"]
        with pytest.raises(WrenRuntimeError, match="Could not load module 'missing'."):
            vm.interpret('import "missing"')
        with pytest.raises(WrenRuntimeError, match="Could not find a variable named 'Nope' in module 'util'."):
            vm.interpret('import "util" for Nope')


def test_memory_stays_flat_over_many_vms():
    instance = WasmInstance()
    source = 'var Items = []\nfor (i in 1..50) Items.add("s%(i)")\nclass A {\n  construct new() { _x = Items }\n}\nvar a = A.new()\n'

    def cycle():
        vm = WrenVM(instance=instance, capture=True)
        vm.interpret(source)
        vm.close()

    for _ in range(50):
        cycle()
    baseline = instance.memory_size()
    for _ in range(1000):
        cycle()
    assert instance.memory_size() == baseline


def test_garbage_is_collected_inside_one_vm():
    with WrenVM(capture=True) as vm:
        vm.interpret("class Node {\n  construct new() { _other = null }\n  other=(o) { _other = o }\n}")
        vm.collect_garbage()
        before = vm.bytes_allocated()
        vm.interpret(
            "for (i in 1..20000) {\n"
            "  var a = Node.new()\n"
            "  var b = Node.new()\n"
            "  a.other = b\n"
            "  b.other = a\n"
            "}\n"
        )
        vm.collect_garbage()
        assert vm.gc_count() >= 1
        assert vm.bytes_allocated() < before + 64 * 1024


def test_infinite_loop_is_stopped_by_fuel():
    with WrenVM(capture=True, fuel=5_000_000) as vm:
        vm.interpret("var x = 0\nfor (i in 1..10) x = x + i")
        with pytest.raises(WrenTimeoutError, match="fuel"):
            vm.interpret("while (true) {}")
        with pytest.raises(WrenVMClosedError):
            vm.interpret("System.print(1)")


def test_infinite_loop_is_stopped_by_timeout():
    vm = WrenVM(capture=True, timeout=0.2)
    start = time.monotonic()
    with pytest.raises(WrenTimeoutError, match="time limit"):
        vm.interpret("var i = 0\nwhile (true) { i = i + 1 }")
    assert time.monotonic() - start < 5
    vm.close()


def test_memory_bomb_hits_the_cap_and_next_vm_works():
    vm = WrenVM(capture=True, memory_limit=32 * 1024 * 1024)
    with pytest.raises(WrenMemoryError, match="memory limit"):
        vm.interpret('var l = []\nvar s = "xxxxxxxxxxxxxxxx"\nwhile (true) {\n  s = s + s\n  l.add(s)\n}')
    with pytest.raises(WrenVMClosedError):
        vm.interpret("System.print(1)")
    vm.close()
    with WrenVM(capture=True, memory_limit=32 * 1024 * 1024) as fresh:
        fresh.interpret("System.print(6 * 7)")
        assert "".join(fresh.output) == "42\n"


def test_list_growth_bomb_hits_the_cap():
    with WrenVM(capture=True, memory_limit=24 * 1024 * 1024) as vm:
        with pytest.raises(WrenMemoryError):
            vm.interpret("var l = []\nwhile (true) l.add([1, 2, 3])")


def test_closed_vm_raises():
    vm = WrenVM(capture=True)
    vm.close()
    with pytest.raises(WrenVMClosedError):
        vm.interpret("System.print(1)")


def test_slots_round_trip_python_values():
    with WrenVM(capture=True) as vm:
        vm.interpret("class Id {\n  static of(x) { x }\n  static kind(x) { x.type.name }\n}")
        ident = vm.variable_handle("main", "Id")
        of = vm.make_call_handle("of(_)")
        kind = vm.make_call_handle("kind(_)")
        for value in [None, True, False, 0, -2.5, "", "ünïcode ✓", [], [1, [2, [3]]], {}, {"a": {"b": [None]}}, {1: "one", False: "f"}]:
            assert vm.call(ident, of, value) == value
        assert vm.call(ident, kind, (1, 2)) == "List"
        assert vm.call(ident, kind, {"k": 1}) == "Map"
        handle = vm.call(ident, of, ident)
        assert vm.call(ident, kind, handle) == "Id metaclass"
        with pytest.raises(TypeError):
            vm.call(ident, of, object())
        assert vm.has_module("main") and not vm.has_module("nope")


def test_host_call_into_fiber_code_and_nested_host_calls():
    holder = {}

    def outer(x):
        vm = holder["vm"]
        return vm.call(vm.variable_handle("main", "Helper"), vm.make_call_handle("double(_)"), x) + 1

    foreign = {("main", "Helper", True, "viaHost(_)"): outer}
    with WrenVM(capture=True, foreign=foreign) as vm:
        holder["vm"] = vm
        vm.interpret(
            "class Helper {\n"
            "  static double(x) { x * 2 }\n"
            "  foreign static viaHost(x)\n"
            "  static gen() {\n"
            "    var f = Fiber.new {\n"
            "      Fiber.yield(1)\n"
            "      Fiber.yield(2)\n"
            "    }\n"
            "    return [f.call(), f.call(), Helper.viaHost(20)]\n"
            "  }\n"
            "}\n"
        )
        helper = vm.variable_handle("main", "Helper")
        assert vm.call(helper, vm.make_call_handle("gen()")) == [1, 2, 41]


def test_write_callback_exception_propagates_and_kills_instance():
    def boom(text):
        raise RuntimeError("host write failed")

    vm = WrenVM(write=boom)
    with pytest.raises(RuntimeError, match="host write failed"):
        vm.interpret('System.print("x")')
    with pytest.raises(WrenVMClosedError):
        vm.interpret("1")
    vm.close()


def test_compile_error_in_imported_module_is_reported():
    modules = {"bad": "var x = (\n"}
    with WrenVM(capture=True, load_module=modules.get) as vm:
        with pytest.raises(WrenRuntimeError, match="Could not compile module 'bad'.") as info:
            vm.interpret('import "bad"')
        assert "[bad line 2] Error" in info.value.trace


def test_output_before_a_timeout_is_not_lost():
    vm = WrenVM(capture=True, fuel=300_000)
    with pytest.raises(WrenTimeoutError):
        vm.interpret('System.print("progress")\nwhile (true) {}')
    assert "".join(vm.output) == "progress\n"
    vm.close()


def test_output_is_batched_but_ordered_with_host_calls():
    seen = []

    def note(text):
        seen.append(("host", text))
        return None

    vm = WrenVM(write=lambda text: seen.append(("wren", text)), foreign={("main", "H", True, "note(_)"): note})
    vm.interpret('class H {\n  foreign static note(x)\n}\nSystem.print("a")\nH.note("b")\nSystem.print("c")')
    assert seen == [("wren", "a\n"), ("host", "b"), ("wren", "c\n")]
    vm.close()


def test_call_result_survives_a_foreign_method_run_during_the_call():
    # A foreign method resets the slot count; wren_call must still leave its
    # result in slot 0 for the host to read.
    foreign = {("main", "Host", True, "ping()"): lambda: 1}
    with WrenVM(capture=True, foreign=foreign) as vm:
        vm.interpret(
            "class Host {\n"
            "  foreign static ping()\n"
            "}\n"
            "class T {\n"
            "  static run(s) {\n"
            "    Host.ping()\n"
            '    return s + "!"\n'
            "  }\n"
            "}\n"
        )
        t = vm.variable_handle("main", "T")
        assert vm.call(t, vm.make_call_handle("run(_)"), "hi") == "hi!"


# ---- recursion limit and debugging --------------------------------------------

RECURSE = (
    "class R {\n"
    "  static down(n) {\n"
    "    if (n == 0) return 0\n"
    "    return down(n - 1) + 1\n"
    "  }\n"
    "  static inFiber(n) { Fiber.new { down(n) }.call() }\n"
    "}\n"
)


def test_max_frames_bounds_each_fiber_and_the_vm_keeps_working():
    with WrenVM(capture=True, max_frames=50) as vm:
        assert vm.max_frames == 50
        vm.interpret(RECURSE)
        r = vm.variable_handle("main", "R")
        down, in_fiber = vm.make_call_handle("down(_)"), vm.make_call_handle("inFiber(_)")
        assert vm.call(r, down, 40) == 40
        with pytest.raises(WrenRuntimeError) as info:
            vm.call(r, down, 60)
        assert info.value.message == "Stack overflow." and info.value.line == 4
        # a new fiber gets its own 50 frames, not one more than its caller
        assert vm.call(r, in_fiber, 40) == 40
        with pytest.raises(WrenRuntimeError, match="Stack overflow"):
            vm.call(r, in_fiber, 60)
        assert vm.call(r, down, 45) == 45
        vm.set_max_frames(None)
        assert vm.max_frames == 100000
        assert vm.call(r, down, 5000) == 5000


def test_breakpoint_reports_stack_and_locals_then_runs_the_line():
    hits = []

    def on_break(module, line):
        hits.append((module, line, vm.stack(), vm.frame_locals(vm.stack()[0][0])))

    with WrenVM(capture=True, breakpoint=on_break) as vm:
        assert vm.add_breakpoint("main", 3) == 0  # nothing compiled yet: applies to later code
        vm.interpret(
            "var add = Fn.new { |a, b|\n"
            "  var sum = a + b\n"
            "  return sum\n"
            "}\n"
            "var r = 0\n"
            "for (i in 1..2) {\n"
            "  var s = \"x%(i)\"\n"
            "  r = r + add.call(i, 10)\n"
            "}\n"
        )
        assert vm.get_variable("main", "r") == 23
        assert [(m, ln) for m, ln, _, _ in hits] == [("main", 3), ("main", 3)]
        _, _, stack, local_vars = hits[0]
        assert [(m, ln, f) for _, m, ln, f in stack] == [("main", 3, "Fn (line 1)"), ("main", 8, "(script)")]
        assert local_vars == {"a": 1, "b": 10, "sum": 11}
        hits.clear()
        vm.remove_breakpoint("main", 3)
        assert vm.add_breakpoint("main", 8) == 1  # the compiled top level, patched in place
        caller_locals = []
        vm.breakpoint = lambda m, ln: caller_locals.append((m, ln, vm.frame_locals(vm.stack()[0][0])))
        vm.add_breakpoint("other", 2)
        vm.interpret('import "main" for add\nvar x = add.call(1, 2)\nfor (i in 1..2) {\n  var k = add.call(i, i)\n}\n',
                     module="other")
        assert caller_locals == [("other", 2, {})] and hits == []
        vm.add_breakpoint("other", 4)
        vm.interpret('import "main" for add\nfor (j in 1..1) {\n  var q = j\n  var k = add.call(q, q)\n}\n', module="third")
        assert len(caller_locals) == 1  # "other" ran already; line 4 of "third" has no breakpoint
        assert vm.remove_breakpoint("main", 8) and not vm.remove_breakpoint("main", 8)


def test_breakpoint_in_a_method_loop_and_inside_a_fiber():
    lines = []
    with WrenVM(capture=True) as vm:
        vm.breakpoint = lambda m, ln: lines.append((ln, [f[3] for f in vm.stack()]))
        vm.interpret(
            "class C {\n"
            "  static loop(n) {\n"
            "    var t = 0\n"
            "    while (t < n) t = t + 1\n"
            "    return t\n"
            "  }\n"
            "  static viaFiber() { Fiber.new { C.loop(2) }.call() }\n"
            "}\n"
        )
        vm.add_breakpoint("main", 4)
        c = vm.variable_handle("main", "C")
        assert vm.call(c, vm.make_call_handle("loop(_)"), 3) == 3
        # the loop's line is reached once per iteration plus the last test
        assert [ln for ln, _ in lines] == [4, 4, 4, 4]
        lines.clear()
        assert vm.call(c, vm.make_call_handle("viaFiber()")) == 2
        assert lines[0][1] == ["loop(_)", "Fn (line 7)", "viaFiber()"]


def test_breakpoint_handler_error_is_a_runtime_error_at_that_line():
    def fail(module, line):
        raise ValueError("stop here")

    with WrenVM(capture=True, breakpoint=fail) as vm:
        vm.add_breakpoint("main", 2)
        with pytest.raises(WrenRuntimeError) as info:
            vm.interpret("var a = 1\nvar b = 2\n")
        assert info.value.message == "stop here" and info.value.line == 2
        vm.remove_breakpoint("main", 2)
        vm.interpret("var c = 3\n", module="later")
        assert vm.get_variable("later", "c") == 3


def test_stack_inside_a_foreign_method_sees_frames_below_host_calls():
    seen = []
    holder = {}

    def probe():
        seen.append([(m, ln, f) for _, m, ln, f in holder["vm"].stack()])
        return 0

    def outer():
        vm = holder["vm"]
        return vm.call(vm.variable_handle("main", "T"), vm.make_call_handle("inner()"))

    foreign = {("main", "T", True, "probe()"): probe, ("main", "T", True, "outer()"): outer}
    with WrenVM(capture=True, foreign=foreign) as vm:
        holder["vm"] = vm
        assert vm.stack() == []
        vm.interpret(
            "class T {\n"
            "  foreign static probe()\n"
            "  foreign static outer()\n"
            "  static inner() { probe() }\n"
            "  static start() { outer() }\n"
            "}\n"
        )
        vm.call(vm.variable_handle("main", "T"), vm.make_call_handle("start()"))
        assert seen == [[("main", 4, "inner()"), ("main", 5, "start()")]]


def test_engine_imports_only_public_names_of_the_vm_module():
    import ast
    import inspect

    from kryon_wren import engine

    tree = ast.parse(inspect.getsource(engine))
    private = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "vm"
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert private == []


def test_foreign_arguments_of_every_kind_arrive_in_one_call():
    """All of a foreign method's arguments are read with one encoding pass
    (csrc/slot_codec.c): scalars, text with NUL and multi-byte characters,
    nested lists and maps, and objects as handles."""
    seen = []
    foreign = {("kryon", "Kryon", True, "take(_,_,_,_,_,_)"): lambda *args: seen.append(args) or len(args)}
    sources = {"kryon": "class Kryon {\n  foreign static take(a, b, c, d, e, f)\n}\n"}
    with WrenVM(capture=True, foreign=foreign, load_module=sources.get) as vm:
        vm.interpret(
            'import "kryon" for Kryon\n'
            'class Point {\n  construct new() {}\n}\n'
            'var m = {"k": [1, null, true], 2: {"x": false}}\n'
            'System.print(Kryon.take(null, -0.5, "a\\0b ✓", [[], [[3]]], m, Point.new()))\n'
        )
        assert "".join(vm.output) == "6\n"
    (args,) = seen
    assert args[:4] == (None, -0.5, "a\0b ✓", [[], [[3]]])
    assert args[4] == {"k": [1, None, True], 2: {"x": False}}
    point = args[5]
    assert isinstance(point, kryon_wren.vm.Handle)


def test_cyclic_or_deep_foreign_arguments_are_a_clear_error_not_a_crash():
    """A value no host can hold (a list containing itself, nesting past the
    bound) is refused with a ConversionError the script can catch; the VM
    and its handles stay usable and nothing leaks."""
    calls = []
    foreign = {("kryon", "Kryon", True, "take(_)"): lambda value: calls.append(value) or "ok"}
    sources = {"kryon": "class Kryon {\n  foreign static take(a)\n}\n"}
    with WrenVM(capture=True, foreign=foreign, load_module=sources.get) as vm:
        vm.interpret(
            'import "kryon" for Kryon\n'
            'class Box {\n  construct new() {}\n}\n'
            'var cyclic = [Box.new()]\ncyclic.add(cyclic)\n'
            'System.print(Fiber.new { Kryon.take(cyclic) }.try())\n'
            'var deep = []\nfor (i in 0..300) deep = [deep]\n'
            'System.print(Fiber.new { Kryon.take({"d": deep}) }.try())\n'
            'var ok = []\nfor (i in 0..150) ok = [ok]\n'
            'System.print(Kryon.take(ok))\n'
        )
        lines = "".join(vm.output).splitlines()
    assert "nested too deeply (or cyclic)" in lines[0] and "nested too deeply (or cyclic)" in lines[1]
    assert lines[2] == "ok" and len(calls) == 1
    depth, value = 0, calls[0]
    while value:
        value, depth = value[0], depth + 1
    assert depth == 151


def test_a_base_exception_in_a_foreign_method_unwinds_and_reaches_the_host():
    class Stop(BaseException):
        pass

    def stop():
        raise Stop("from the host")

    foreign = {("kryon", "Kryon", True, "stop()"): stop}
    sources = {"kryon": "class Kryon {\n  foreign static stop()\n}\n"}
    with WrenVM(capture=True, foreign=foreign, load_module=sources.get) as vm:
        with pytest.raises(Stop):
            vm.interpret('import "kryon" for Kryon\nKryon.stop()\n')


def test_a_failed_compile_leaves_the_module_s_variables_as_they_were():
    """A compile error (a REPL line, an evaluation, a reload) takes back the
    variables it declared, explicitly or by using a name before defining it,
    so the next source in the module compiles as if it had never been tried."""
    with WrenVM(capture=True) as vm:
        vm.interpret("var a = 1")
        for broken in ("var g = Fn.new { notYetDefined }", "var q = 1\nvar r = (", "class K {}\nvar s = ["):
            with pytest.raises(WrenCompileError):
                vm.interpret(broken)
        vm.interpret("var q = 2\nclass K {}\nSystem.print(a + q)")
        vm.interpret("var notYetDefined = 3\nSystem.print(notYetDefined)")
        assert "".join(vm.output) == "3\n3\n"


def test_the_vm_wrapper_runs_without_kryon_core() -> None:
    """The low-level API (WrenVM, its errors, the wasm instance) needs only
    wasmtime: the wheel test installs kryon-core without its dependencies,
    so importing it must not pull kryon_core in (conversion errors import
    it on use only)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "sys.modules['kryon_core'] = None  # any import of it fails\n"
        "from kryon_wren import WrenRuntimeError, WrenVM\n"
        "vm = WrenVM(capture=True)\n"
        "vm.interpret('System.print(6 * 7)')\n"
        "try:\n"
        "    vm.interpret('Fiber.abort(\"no\")')\n"
        "except WrenRuntimeError as exc:\n"
        "    print(''.join(vm.output).strip(), exc.message)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["42", "no"]
