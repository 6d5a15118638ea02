"""Host calls nested inside a Wren VM (Wren -> host -> the same VM, as a
``Kryon.call`` of the script's own function): each nesting level runs on a
fiber the VM keeps (csrc/vm.c acquireApiFiber) instead of a new one per
call, and that stays right past the kept levels, after errors, across
collections, and when the script holds a host call's fiber (``Fiber.current``:
such a fiber is never given to a later call; a finished one hands its stack
and frames to the level's next fiber, so taking it in every call costs a
fiber header, which the collector frees once the script drops it). Host calls
are a safe point for the collector, and closures made by a call keep their
values when its fiber's stack is reused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("kryon_wren")

from kryon_core import ScriptError, ScriptManager, SecurityPolicy  # noqa: E402

SOURCE = """\
import "kryon" for Kryon
class R {
  static noop(x) { x }
  static many(n) {
    var sum = 0
    for (i in 1..n) sum = sum + Kryon.call("r.R.noop", i)
    return sum
  }
  static collect(x) {
    System.gc()
    return x
  }
  static depth(n) {
    if (n == 0) return Kryon.call("r.R.collect", 0)
    var list = [n]
    var inner = Kryon.call("r.R.depth", [n - 1])
    return inner + list[0] - n + 1
  }
  static failing(x) { Fiber.abort("inner failed %(x)") }
  static catchNested() {
    var f = Fiber.new { Kryon.call("r.R.failing", [3]) }
    f.try()
    return f.error
  }
  static keep(x) {
    __kept = Fiber.current
    return x
  }
  static resumeKept(x) {
    var same = __kept == Fiber.current
    var f = Fiber.new { __kept.transfer() }
    f.try()
    return [same, f.error]
  }
  static holdThenResume() {
    Kryon.call("r.R.keep", 1)
    return Kryon.call("r.R.resumeKept", 2)
  }
  static take(x) {
    var f = Fiber.current
    return x
  }
  static store(i) {
    var f = Fiber.current
    if (__stored == null) __stored = []
    if (i % 200 == 0) __stored.add([i, f])
    return f.isDone
  }
  static storedFine() {
    // each stored fiber is still the one its call had: distinct, finished,
    // and neither the running call's fiber nor another call's
    var me = Fiber.current
    var seen = {}
    for (pair in __stored) {
      var f = pair[1]
      if (f == me || !f.isDone || f.error != null) return "bad %(pair[0])"
      var g = Fiber.new { f.transfer() }
      g.try()
      if (g.error != "Cannot transfer to a finished fiber.") return "resumed %(pair[0]): %(g.error)"
      seen[pair[0]] = f
    }
    for (a in __stored) {
      for (b in __stored) {
        if (a[0] != b[0] && a[1] == b[1]) return "shared %(a[0]) %(b[0])"
      }
    }
    return seen.count
  }
  static nestedTake(n) {
    var sum = 0
    for (i in 1..n) sum = sum + Kryon.call("r.R.take", i)
    return sum
  }
  static failKept(x) {
    __failed = Fiber.current
    Fiber.abort("failed %(x)")
  }
  static failedState() {
    var g = Fiber.new { __failed.call() }
    g.try()
    return [__failed.isDone, __failed.error, g.error]
  }
  static capture(x) {
    var local = "kept %(x)"
    __closure = Fn.new { local }
    Fiber.abort("after capture")
  }
  static captureSuspend(x) {
    var local = "suspended %(x)"
    __closure = Fn.new { local }
    Fiber.suspend()
  }
  static closure { __closure.call() }
  static overwrite(a, b, c) {
    var list = [a, b, c, a, b, c]
    return list.count
  }
  static orphan() {
    // a closure over a local of a fiber that stays suspended and is dropped
    var f = Fiber.new {
      var local = "orphan"
      __orphan = Fn.new { local }
      Fiber.yield()
    }
    f.call()
    return 0
  }
  static churn() {
    var keep = []
    for (i in 0...50) {
      var g = Fiber.new { |v|
        var a = v
        var b = v
        Fiber.yield()
      }
      g.call(i)
      keep.add(g)
    }
    return keep.count
  }
  static orphanValue { __orphan.call() }
  static box(x) { [x, x, x, x].count }
}
"""


@pytest.fixture
def m() -> Iterator[ScriptManager]:
    manager = ScriptManager(cache=False, policy=SecurityPolicy.trusted(), output=lambda lang, text: None)
    manager.load_script_from_source("r", "wren", SOURCE)
    yield manager
    manager.close()


def allocated(m: ScriptManager) -> int:
    state = m.engine("wren").script_state("r")
    return int(state.pool.gate.run(state.vm.bytes_allocated))


def test_nested_calls_allocate_no_fiber(m: ScriptManager) -> None:
    """A nested call used to make a fiber (and its stack and frames) each
    time: 200 of them grew the heap by ~130 KiB; now by nothing."""
    assert m.call_function("r.R.many", [10]) == 55
    before = allocated(m)
    assert m.call_function("r.R.many", [200]) == 20100
    assert allocated(m) - before < 1024


@pytest.mark.parametrize("levels", [1, 7, 8, 9, 30])
def test_nesting_past_the_kept_levels_gives_every_result(m: ScriptManager, levels: int) -> None:
    assert m.call_function("r.R.depth", [levels]) == levels
    before = allocated(m)
    assert m.call_function("r.R.many", [50]) == 1275, "every level was given back"
    assert allocated(m) - before < 1024


def test_an_error_in_a_nested_call_gives_its_level_back(m: ScriptManager) -> None:
    for _ in range(3):
        error = m.call_function("r.R.catchNested")
        assert "inner failed 3" in error
    before = allocated(m)
    assert m.call_function("r.R.many", [50]) == 1275
    assert allocated(m) - before < 1024


def test_a_fiber_the_script_holds_is_not_given_to_a_later_call(m: ScriptManager) -> None:
    """``Fiber.current`` inside one nested call, then a transfer to it from
    the next nested call at the same level: it must find the first call's
    fiber, finished, not the running call's."""
    for _ in range(2):
        same, error = m.call_function("r.R.holdThenResume")
        assert same is False
        assert error == "Cannot transfer to a finished fiber."
    assert m.call_function("r.R.many", [5]) == 15, "the VM goes on"


def state_of(m: ScriptManager):
    return m.engine("wren").script_state("r")


def vm_call(m: ScriptManager, fn, *args):
    state = state_of(m)
    return state.pool.gate.run(fn, *args)


def test_fiber_current_in_every_call_costs_a_header_not_a_fiber(m: ScriptManager) -> None:
    """Before: each such call left its fiber, stack and frames (672 bytes)
    to the script, and memory grew with calls. Now the stack and frames
    go to the next call: the heap grows by one fiber header per call."""
    state = state_of(m)
    for i in range(20):
        m.call_function("r.R.take", [i])
    vm_call(m, state.vm.collect_garbage)
    before = allocated(m)
    for i in range(1000):
        assert m.call_function("r.R.take", [i]) == i
    per_call = (allocated(m) - before) / 1000
    assert 0 < per_call <= 96, per_call  # the header (the stack alone is 64 slots of 8 bytes)
    vm_call(m, state.vm.collect_garbage)
    assert allocated(m) - before < 1024, "the dropped fibers were freed"


def test_many_calls_taking_and_storing_fibers_keep_memory_bounded(m: ScriptManager) -> None:
    """Calls alone (no loop, no call into another frame) reach no safe point
    in the interpreter: before, the collector never ran and 51,000 calls
    took the instance's memory from 2.6 to 65 MiB; the host call is a
    safe point now. Every stored fiber stays the one its call had."""
    state = state_of(m)
    memory = state.pool.instance.memory_size
    for i in range(2000):
        m.call_function("r.R.store", [i])
    start_pages, gcs = memory(), vm_call(m, state.vm._c, "wren_gc_count")
    for i in range(2000, 70000):
        assert m.call_function("r.R.store", [i]) is False  # its own fiber, running
    assert vm_call(m, state.vm._c, "wren_gc_count") > gcs, "host calls collected"
    middle = memory()
    for i in range(70000, 140000):
        assert m.call_function("r.R.store", [i]) is False
    # the collector's 4 MiB heap minimum (and the allocator's overhead) is
    # what the first half grew by; the second half grows the memory no more
    assert middle - start_pages <= 12 << 20 and memory() - middle <= 1 << 20, (start_pages, middle, memory())
    assert m.call_function("r.R.storedFine") == 700


def test_garbage_of_calls_without_fibers_is_collected_too(m: ScriptManager) -> None:
    state = state_of(m)
    for i in range(1000):
        m.call_function("r.R.box", [i])
    start = state.pool.instance.memory_size()
    for i in range(150000):
        m.call_function("r.R.box", [i])
    # 150,000 lists of four (about 14 MiB of objects) without a collection before
    assert state.pool.instance.memory_size() - start <= 8 << 20


def test_nested_calls_taking_fiber_current_stay_right(m: ScriptManager) -> None:
    assert m.call_function("r.R.nestedTake", [300]) == 45150
    vm_call(m, state_of(m).vm.collect_garbage)
    before = allocated(m)
    assert m.call_function("r.R.nestedTake", [300]) == 45150
    assert allocated(m) - before < 300 * 96


def test_a_kept_fiber_of_a_failed_call_stays_aborted(m: ScriptManager) -> None:
    with pytest.raises(ScriptError, match="failed 1"):
        m.call_function("r.R.failKept", [1])
    for i in range(5):  # its level's stack now serves other calls
        m.call_function("r.R.take", [i])
    assert m.call_function("r.R.failedState") == [True, "failed 1", "Cannot call an aborted fiber."]


@pytest.mark.parametrize("entry", ["capture", "captureSuspend"])
def test_a_closure_keeps_its_value_when_the_calls_stack_is_reused(m: ScriptManager, entry: str) -> None:
    """A call that fails (or suspends) leaves the closures it made with
    upvalues open on its fiber's stack; the next call reuses that stack.
    Before, the closure then read the next call's slots (20 here)."""
    try:
        m.call_function(f"r.R.{entry}", [1])
    except ScriptError:
        pass
    assert m.call_function("r.R.overwrite", [10, 20, 30]) == 6
    expected = "kept 1" if entry == "capture" else "suspended 1"
    assert m.call_function("r.R.closure") == expected
    for i in range(3):
        m.call_function("r.R.take", [i])
    assert m.call_function("r.R.closure") == expected


def test_an_upvalue_keeps_the_suspended_fiber_it_points_into(m: ScriptManager) -> None:
    """A fiber left suspended and dropped, with a closure over one of its
    locals kept: the collector used to free the fiber's stack under the
    open upvalue, and later fibers' stacks took its place."""
    assert m.call_function("r.R.orphan") == 0
    vm_call(m, state_of(m).vm.collect_garbage)
    assert m.call_function("r.R.churn") == 50
    assert m.call_function("r.R.orphanValue") == "orphan"
