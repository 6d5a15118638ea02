"""A foreign method whose arguments fail to resolve (a map with an object
key, a string or list over max_value_size) leaves none of the
handles the C side made for its arguments pinned: not those of the
arguments after the failing one, not those inside the failing value, and
not those the failed resolve already turned into FunctionRefs or
WrenObjects. Counted with the VM's live handles (``WrenVM.handle_count``),
on both paths out of Wren (``Kryon.call`` and the other kryon methods),
with the 'r' fast path for host objects on and off."""

from __future__ import annotations

import gc
from dataclasses import replace

import pytest

from kryon_core import ScriptError, ScriptManager, SecurityPolicy

pytest.importorskip("kryon_wren")

from wren_support import box_host  # noqa: E402

WREN = """\
import "kryon" for Kryon
class Holder {
  construct new() {}
}
class L {
  static box { Kryon.getElementById("box") }
  static bad { {Holder.new(): 1} }
  static pad { [0] * 30 }
  static repeat(n, fn) {
    var failed = 0
    for (i in 0...n) {
      var fiber = Fiber.new(fn)
      fiber.try()
      if (fiber.error != null) failed = failed + 1
    }
    return failed
  }
  static callAfter(n) { repeat(n) { Kryon.call("h.count", bad, Holder.new(), [Holder.new(), Fn.new { 1 }], {"k": Holder.new()}) } }
  static callFirstInList(n) { repeat(n) { Kryon.call("h.count", [bad, Holder.new(), Fn.new { 1 }, {"k": [Holder.new()]}]) } }
  static callLastInList(n) { repeat(n) { Kryon.call("h.count", [Holder.new(), Fn.new { 1 }, [Holder.new(), bad], Holder.new()]) } }
  static callBigList(n) { repeat(n) { Kryon.call("h.count", [Holder.new(), Fn.new { 1 }] + pad) } }
  static callBigText(n) { repeat(n) { Kryon.call("h.count", Holder.new(), [Fn.new { 1 }, "y" * 30, Holder.new()], Holder.new()) } }
  static setInList(n) { repeat(n) { Kryon.setProperty(box, "x", [Holder.new(), Fn.new { 1 }, bad, Holder.new()]) } }
  static setBigList(n) { repeat(n) { Kryon.setProperty(box, "x", [Holder.new(), Fn.new { 1 }] + pad) } }
  static setBigText(n) { repeat(n) { Kryon.setProperty(box, [Holder.new(), "y" * 30], [Holder.new()]) } }
  static setMapKey(n) { repeat(n) { Kryon.setProperty(box, "x", {Holder.new(): Holder.new(), "a": Fn.new { 1 }}) } }
  static setAfter(n) { repeat(n) { Kryon.setProperty(bad, [Holder.new()], {"k": Fn.new { 1 }}) } }
  static keep {
    __fn = Fn.new { 7 }
    __obj = Holder.new()
    return Kryon.call("h.keep", [__fn, __obj])
  }
  static failWithKept(n) { repeat(n) { Kryon.call("h.count", [__fn, __obj, bad]) } }
  static runKept { Kryon.call("h.run", []) }
}
"""

HOST = """\
kept = []
def count(*args):
    return len(args)
def keep(fn, obj):
    kept[:] = [fn, obj]
    return len(kept)
def run():
    return kept[0]()
"""

TRUSTED = SecurityPolicy.trusted()
LIMITED = replace(SecurityPolicy.trusted(), max_value_size=20)  # Kryon.call's checked branch
ALWAYS = ["callAfter", "callFirstInList", "callLastInList", "setInList", "setMapKey", "setAfter"]
SIZED = ["callBigList", "callBigText", "setBigList", "setBigText"]


def make(policy: SecurityPolicy, fast: bool) -> ScriptManager:
    return box_host(policy, HOST, WREN, id_tags=fast)


def live_handles(manager: ScriptManager) -> int:
    state = manager.engines()["wren"].script_state("w")
    gc.collect()  # FunctionRefs and WrenObjects of a failed call are garbage now
    state.drain()  # their finalizers queued their handles
    return int(state.vm.handle_count())


CASES = [(p, f, c) for p in ("trusted", "limited") for f in (True, False) for c in ALWAYS] + [
    ("limited", f, c) for f in (True, False) for c in SIZED
]


@pytest.mark.parametrize(("policy", "fast", "case"), CASES,
                         ids=[f"{p}-{'fast' if f else 'general'}-{c}" for p, f, c in CASES])
def test_failing_foreign_calls_leave_no_handles(policy: str, fast: bool, case: str) -> None:
    manager = make(TRUSTED if policy == "trusted" else LIMITED, fast)
    try:
        assert manager.call_function(f"w.L.{case}", [2]) == 2  # every call fails
        before = live_handles(manager)
        assert manager.call_function(f"w.L.{case}", [30]) == 30
        assert live_handles(manager) == before
    finally:
        manager.close()


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "general"])
def test_a_failed_call_releases_only_what_it_made(fast: bool) -> None:
    """The Fn and the object the host already holds go into failing calls
    again: those calls release their own handles, the host's FunctionRef and
    object still work afterwards."""
    manager = make(LIMITED, fast)
    try:
        assert manager.call_function("w.L.keep", []) == 2
        assert manager.call_function("w.L.failWithKept", [1]) == 1  # the callers made once
        assert manager.call_function("w.L.runKept", []) == 7
        before = live_handles(manager)
        assert manager.call_function("w.L.failWithKept", [30]) == 30
        assert live_handles(manager) == before
        assert manager.call_function("w.L.runKept", []) == 7
        assert live_handles(manager) == before
    finally:
        manager.close()


def test_the_failing_calls_fail_with_the_script_error() -> None:
    """What the leak tests count is the failing path: the error reaches the
    host caller with script, line and language when not caught in Wren."""
    manager = make(LIMITED, True)
    try:
        manager.load_script_from_source("u", "wren", """\
import "kryon" for Kryon
class U {
  static big { Kryon.call("h.count", [1] * 30) }
}
""")
        with pytest.raises(ScriptError) as info:
            manager.call_function("u.U.big", [])
        assert type(info.value).__name__ == "SizeLimitError"
        assert (info.value.script, info.value.line, info.value.language) == ("u", 3, "wren")
    finally:
        manager.close()


def test_a_function_ref_whose_handle_a_failed_call_released_is_dead() -> None:
    """A FunctionRef made during a failed resolve is garbage, but if one
    were reached: it refuses to run (a dead Fn, not a read of a freed
    handle), and passed into Wren it goes as a host callable, never as its
    released handle."""
    from kryon_wren.values import release_handles

    manager = make(TRUSTED, True)
    try:
        manager.load_script_from_source("g", "wren", "var make = Fn.new { Fn.new { 7 } }\n"
                                                     "var apply = Fn.new {|f| f.call() }\n")
        ref = manager.call_function("g.make", [])
        assert ref() == 7 and manager.call_function("g.apply", [ref]) == 7
        state, handle = manager.engines()["wren"].wren_fns[ref]
        release_handles(state, [[handle]])
        assert handle.ptr == 0
        with pytest.raises(ScriptError, match="no longer exists"):
            ref()
        with pytest.raises(ScriptError, match="no longer exists") as info:
            manager.call_function("g.apply", [ref])
        assert info.value.language == "wren"
        assert manager.call_function("w.L.keep", []) == 2  # the scripts carry on
        assert manager.call_function("g.apply", [manager.call_function("g.make", [])]) == 7
    finally:
        manager.close()
