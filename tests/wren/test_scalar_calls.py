"""Calls into Wren with scalar arguments and results cross into wasm once
(``wren_call_scalar``, kryon_wren/vm.py ScalarCall) and give exactly what
the general path (arguments through ``KryonHost.prep``, the result through
slot 0) gives: the same values, the same errors, the same limits (issue 15)."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from typing import Any

import pytest

kryon_wren = pytest.importorskip("kryon_wren")
from kryon_wren import calls, ccall, instance  # noqa: E402
from kryon_wren import vm as vm_module  # noqa: E402

from kryon_core import (  # noqa: E402
    ConversionError,
    MemoryLimitError,
    RecursionLimitError,
    ScriptManager,
    ScriptRuntimeError,
    ScriptTimeoutError,
    SecurityPolicy,
    SizeLimitError,
)

SOURCE = """\
class T {
  static id(x) { x }
  static kind(x) { x.type.name }
  static pair(a, b) { [a, b] }
  static four(a, b, c, d) { "%(a)|%(b)|%(c)|%(d)" }
  static add(a, b) { a + b }
  static fail(x) {
    Fiber.abort("failed with %(x)")
  }
  static ret(k) {
    if (k == 0) return null
    if (k == 1) return true
    if (k == 2) return false
    if (k == 3) return "short é"
    if (k == 4) return "x" * 1024
    if (k == 5) return "y" * 1025
    if (k == 6) return -0
    if (k == 7) return 0 / 0
    if (k == 8) return 1e308 * 10
    if (k == 9) return [1, "two", null]
    if (k == 10) return 2.5
    if (k == 11) return 9007199254740992
    if (k == 12) return 9007199254740994
    if (k == 13) return {"a": 1}
    if (k == 14) return ""
    return -1e308 * 10
  }
  static get { "got" }
  static none { 1.5 }
  static sum3(a, b, c) { a + b * 2 + c * 4 }
  static sum4(a, b, c, d) { [a, b, c, d] }
  static div(a, b) { a / b }
}
var fn = Fn.new { |a, b| [a, b] }
"""

RESULTS = range(16)

SIGNALLING_NAN = struct.unpack("<d", (0x7FF4000000000003).to_bytes(8, "little"))[0]

ARGUMENTS: list[Any] = [
    0, 1, -1, 7, 2**53, -(2**53), 2**53 + 1, -(2**53) - 1, 10**400,
    0.0, -0.0, 1.5, 1e308, -1e-308, math.inf, -math.inf, math.nan, SIGNALLING_NAN,
    # positive numbers whose bits read as an int within 2**53 (the result then goes through slot 0)
    5e-324, 1e-308, 2.2250738585072014e-308, 2.0**-1021, 2.0**-1020, 2**53 - 1, 0.5,
    None, True, False,
    "", "hé", "x" * 1024, "x" * 1025, "\ud800", "nul\0byte",
    [1, 2], {"k": "v"}, b"bytes",
]


def same(a: Any, b: Any) -> bool:
    """Equal values of the same type (a NaN equals a NaN, -0 is not 0)."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if type(a) is list:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "value", fn(*args)
    except Exception as exc:  # compared between the paths: type, message, where
        return "error", (type(exc).__name__, str(exc), getattr(exc, "line", None), getattr(exc, "script", None))


def agree(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    if a[0] != b[0]:
        return False
    return same(a[1], b[1]) if a[0] == "value" else a[1] == b[1]


def manager(policy: SecurityPolicy | None = None) -> ScriptManager:
    m = ScriptManager(cache=False, policy=policy or SecurityPolicy.trusted(), output=lambda lang, text: None)
    m.load_script_from_source("s", "wren", SOURCE)
    return m


class General:
    """A manager whose callers take the general path for every call: each
    caller is made (when its handle is made, or on its first call) with
    FAST_ARGS = -1."""

    def __init__(self, m: ScriptManager) -> None:
        self.m = m

    def function(self, name: str) -> Any:
        ref = self.general(self.m.function, name)
        return lambda *args: self.general(ref, *args)

    @staticmethod
    def general(fn: Any, *args: Any) -> Any:
        saved, calls.FAST_ARGS = calls.FAST_ARGS, -1
        try:
            return fn(*args)
        finally:
            calls.FAST_ARGS = saved


@pytest.fixture
def both() -> Iterator[tuple[ScriptManager, General]]:
    """A manager whose callers take the scalar path, and one whose take the general path."""
    fast, general = manager(), manager()
    try:
        yield fast, General(general)
    finally:
        fast.close()
        general.close()


@pytest.mark.parametrize("value", ARGUMENTS, ids=[repr(v)[:24] for v in ARGUMENTS])
def test_each_argument_kind_gives_what_the_general_path_gives(both: Any, value: Any) -> None:
    fast, general = both
    for name in ("s.T.id", "s.T.kind"):
        got, wanted = outcome(fast.function(name), value), outcome(general.function(name), value)
        assert agree(got, wanted), (name, got, wanted)
    got, wanted = outcome(fast.function("s.T.pair"), value, "two"), outcome(general.function("s.T.pair"), value, "two")
    assert agree(got, wanted), (got, wanted)


@pytest.mark.parametrize("k", RESULTS)
def test_each_result_kind_gives_what_the_general_path_gives(both: Any, k: int) -> None:
    fast, general = both
    got, wanted = outcome(fast.function("s.T.ret"), k), outcome(general.function("s.T.ret"), k)
    assert agree(got, wanted), (got, wanted)


def test_several_strings_together_past_the_text_buffer_take_the_general_path(both: Any) -> None:
    fast, general = both
    for args in (("a" * 600, "b" * 600, None, 1), ("é" * 300, "ü" * 300, True, "z"), ("", "", "", ""),
                 (1, 2.5, False, "x" * 1021)):
        got, wanted = outcome(fast.function("s.T.four"), *args), outcome(general.function("s.T.four"), *args)
        assert agree(got, wanted), (got, wanted)
        assert got[1] == "|".join("null" if a is None else str(a).lower() if type(a) is bool else
                                  str(a) for a in args)


def test_errors_name_the_same_script_line_and_language(both: Any) -> None:
    fast, general = both
    for value in (1, "text", None, True, 2.5):
        got, wanted = outcome(fast.function("s.T.fail"), value), outcome(general.function("s.T.fail"), value)
        assert got == wanted and got[0] == "error"
        kind, message, line, script = got[1]
        assert kind == "ScriptRuntimeError" and line == 8 and script == "s"
        with pytest.raises(ScriptRuntimeError) as info:
            fast.function("s.T.fail")(value)
        assert info.value.language == "wren"
        assert any(frame.line == 8 for frame in info.value.stack), "the Wren frame of the failing method"


def test_wrong_arity_getters_and_fns_agree(both: Any) -> None:
    fast, general = both
    for name, args in (("s.T.get", ()), ("s.fn", (1, "b")), ("s.fn", (None,)), ("s.T.add", ("a", "b")),
                       ("s.T.add", (1, "b")), ("s.T.add", (True, 1))):
        got, wanted = outcome(fast.function(name), *args), outcome(general.function(name), *args)
        assert agree(got, wanted), (name, args, got, wanted)


NUMBERS = [0, -0.0, 1, -7, 2.5, 2**53, -(2**53), 2**53 + 1, 1e308, math.inf, math.nan, True, None, 5e-324,
           2.0**-1021, 2.0**-1020]


@pytest.mark.parametrize("first", NUMBERS, ids=[repr(v) for v in NUMBERS])
def test_numbers_of_every_arity_agree_with_the_general_path(both: Any, first: Any) -> None:
    """Each function called twice with numbers first (the second call takes
    the inline path of the arity its caller met first), then with ``first``."""
    fast, general = both
    for name, args in (("s.T.none", ()), ("s.T.id", (first,)), ("s.T.div", (first, 2)), ("s.T.div", (1, first)),
                       ("s.T.sum3", (first, 1, 2)), ("s.T.sum4", (1, 2, 3, first)), ("s.T.sum4", (first, -0.0, 0, 1))):
        plain = tuple(3 for _ in args)
        for call_args in (plain, plain, args, args):
            got = outcome(fast.function(name), *call_args)
            wanted = outcome(general.function(name), *call_args)
            assert agree(got, wanted), (name, call_args, got, wanted)


class Crossings:
    """Counts raw wasm calls: instance.py's typed unchecked call (every
    export call) and vm.py's by-objects one (ScalarCall)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.python = 0
        self.compiled_at = _compiled_crossings()
        typed, by_objects = instance._UNCHECKED, vm_module._UNCHECKED_BY_OBJECTS

        def count_typed(*args: Any) -> Any:
            self.python += 1
            return typed(*args)

        def count_by_objects(*args: Any) -> Any:
            self.python += 1
            return by_objects(*args)

        monkeypatch.setattr(instance, "_UNCHECKED", count_typed)
        monkeypatch.setattr(vm_module, "_UNCHECKED_BY_OBJECTS", count_by_objects)

    @property
    def count(self) -> int:
        """Crossings since the last reset, through ctypes or a compiled caller (kryon_wren/_ccall.c)."""
        return self.python + _compiled_crossings() - self.compiled_at

    @count.setter
    def count(self, value: int) -> None:
        self.python, self.compiled_at = value, _compiled_crossings()


def _compiled_crossings() -> int:
    return int(ccall._ccall.crossings()) if ccall._ccall is not None else 0


@pytest.mark.parametrize("args", [(2, 3), (2.5, -0.0), (None, True), (False, "é"), ("a", "b")])
def test_a_scalar_call_crosses_into_wasm_once(monkeypatch: pytest.MonkeyPatch, args: tuple[Any, ...]) -> None:
    crossings = Crossings(monkeypatch)  # before the callers exist: they keep the function they found
    m = manager()
    try:
        pair = m.function("s.T.pair")
        ret = m.function("s.T.ret")
        pair(*args)
        ret(3)
        for k, wanted in ((0, None), (1, True), (2, False), (3, "short é"), (10, 2.5), (11, 2**53)):
            crossings.count = 0
            assert same(ret(k), wanted)
            assert crossings.count == 1, (k, crossings.count)
        crossings.count = 0
        pair(*args)  # a list result: the call, then slot 0 read in one more
        assert crossings.count <= 3
        general = General(m).function("s.T.id")  # a caller of its own, made now
        general(args[0])
        crossings.count = 0
        general(args[0])
        assert crossings.count > 3, "the general path sets slots, calls and reads the result"
    finally:
        m.close()


def test_an_integral_result_comes_back_as_that_integer() -> None:
    """wren_call_scalar's result word: an integral number within 2**53 (not
    -0) is the integer itself, any other number its bits, and a positive
    number so small that its bits would read as such an integer waits in
    slot 0 (status 3)."""
    from kryon_wren.vm import IN_SLOT, NON_NUMBER_RESULT, WrenVM

    vm = WrenVM(capture=True)
    try:
        vm.interpret("class T {\n  static id(x) { x }\n}\n", module="m")
        sc = vm.scalar_call(vm.variable_handle("m", "T"), vm.make_call_handle("id(_)"))
        for value, word in ((7, 7), (-3.0, -3), (2**53, 2**53), (-(2**53), -(2**53)), (0, 0),
                            (2.5, struct.unpack("<q", struct.pack("<d", 2.5))[0]),
                            (-0.0, struct.unpack("<q", struct.pack("<d", -0.0))[0]),
                            (2.0**54, struct.unpack("<q", struct.pack("<d", 2.0**54))[0]),
                            (5e-324, 0x7FF4000000000000 | NON_NUMBER_RESULT),
                            (2.0**-1021, 0x7FF4000000000000 | NON_NUMBER_RESULT),
                            (2.0**-1020, struct.unpack("<q", struct.pack("<d", 2.0**-1020))[0])):
            sc.f64[0] = value
            assert sc.call(*sc.call_args) is None and not sc.trap.value
            assert sc.i64[0] == word, (value, hex(sc.i64[0]))
        sc.f64[0] = 2.0**-1021
        sc.call(*sc.call_args)
        assert sc.status_result(sc.i64[0]) is IN_SLOT
        vm.ensure_slots(1)
        assert vm.get_slot(0) == 2.0**-1021
    finally:
        vm.close()


def test_a_kryon_call_into_wren_crosses_into_wasm_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The router's call of a Wren function is the function's cached caller
    (the bound handle's): a number call from another script's loop is one
    wasm crossing each, the result an int."""
    crossings = Crossings(monkeypatch)
    m = manager()
    try:
        m.load_script_from_source("caller", "python", "import kryon\n"
                                  "def go(n):\n    return [kryon.call('s.T.add', i, 1) for i in range(n)]\n")
        assert m.call_function("caller.go", [3]) == [1, 2, 3]
        crossings.count = 0
        result = m.call_function("caller.go", [50])
        assert result == list(range(1, 51)) and all(type(r) is int for r in result)
        assert crossings.count == 50
    finally:
        m.close()


def test_a_string_result_past_the_text_buffer_is_read_from_the_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    crossings = Crossings(monkeypatch)
    m = manager()
    try:
        ret = m.function("s.T.ret")
        assert ret(4) == "x" * 1024 and ret(5) == "y" * 1025
        crossings.count = 0
        assert ret(4) == "x" * 1024
        assert crossings.count == 1
        crossings.count = 0
        assert ret(5) == "y" * 1025
        assert crossings.count > 1
    finally:
        m.close()


def test_calls_nested_through_the_host_keep_their_strings() -> None:
    """Wren calls the host, which calls Wren with strings while the outer
    call's strings and result share the text buffer."""
    m = manager()
    try:
        ident, pair = m.function("s.T.id"), m.function("s.T.pair")
        m.load_script_from_source("outer", "wren", 'var run = Fn.new { |cb, s|\n  var inner = cb.call(s + "!")\n'
                                                      '  return s + "/" + inner\n}\n')
        assert m.call_function("outer.run", [lambda s: ident(s * 2) + str(pair("in", None)), "ab"]) == \
            "ab/ab!ab!['in', None]"
    finally:
        m.close()


def test_size_limits_still_fire_on_strings_in_and_out() -> None:
    policy = SecurityPolicy.sandboxed(max_value_size=8)
    m = manager(policy)
    try:
        ident = m.function("s.T.id")
        assert ident("12345678") == "12345678"
        with pytest.raises(SizeLimitError):
            ident("123456789")
        with pytest.raises(SizeLimitError):
            m.function("s.T.ret")(4)  # 1024 characters: in the text buffer, still too large
        assert ident(None) is None and ident(False) is False
    finally:
        m.close()


def test_out_of_range_and_unencodable_arguments_are_refused() -> None:
    m = manager()
    try:
        ident = m.function("s.T.id")
        with pytest.raises(ConversionError, match="2\\*\\*53"):
            ident(2**53 + 1)
        with pytest.raises(ConversionError, match="surrogate"):
            ident("\ud800")
        assert ident("fine") == "fine", "the engine is usable afterwards"
    finally:
        m.close()


LIMITED = """\
class L {
  static spin(x) {
    while (true) {}
  }
  static deep(x) { deep(x) + 1 }
  static grow(s) {
    var t = []
    while (true) t.add(s * 1048576 + t.count.toString)
  }
  static ok(x) { x }
  static spinIf(x) {
    while (x > 0) {}
    return x
  }
  static deepIf(x) { x > 0 ? deepIf(x) + 1 : x }
}
"""


@pytest.mark.parametrize("arg", [1, 2.5, None, True, "s"])
def test_time_recursion_and_memory_limits_fire_on_scalar_calls(arg: Any) -> None:
    limits = (SecurityPolicy.sandboxed(time_limit=0.3, max_recursion=50),
              SecurityPolicy.sandboxed(time_limit=30.0, memory_limit=32 * 1024 * 1024))
    for policy in limits:
        m = ScriptManager(cache=False, policy=policy, output=lambda lang, text: None)
        try:
            m.load_script_from_source("lim", "wren", LIMITED)
            ok = m.function("lim.L.ok")
            assert same(ok(arg), arg)
            if policy.time_limit and policy.time_limit < 1:
                with pytest.raises(ScriptTimeoutError):
                    m.function("lim.L.spin")(arg)
                assert same(ok(arg), arg)
                with pytest.raises(RecursionLimitError):
                    m.function("lim.L.deep")(arg)
                # the second call of a number function takes call()'s inline path
                spin, deep = m.function("lim.L.spinIf"), m.function("lim.L.deepIf")
                assert spin(0) == 0 and deep(-1) == -1
                with pytest.raises(ScriptTimeoutError):
                    spin(1)
                with pytest.raises(RecursionLimitError):
                    deep(1)
                assert spin(-2) == -2 and deep(0) == 0
            else:
                with pytest.raises(MemoryLimitError):
                    m.function("lim.L.grow")(str(arg))
            assert same(ok(arg), arg), "the script answers again (restarted after a trap)"
        finally:
            m.close()


def test_a_reloaded_script_is_called_through_its_new_code() -> None:
    m = manager()
    try:
        ident = m.function("s.T.id")
        assert ident("a") == "a" and ident(None) is None
        m.hot_reload_script("s", SOURCE.replace("static id(x) { x }", 'static id(x) { "new %(x)" }'))
        assert ident("a") == "new a" and ident(True) == "new true" and ident(2) == "new 2"
        assert m.function("s.T.id")(None) == "new null"
    finally:
        m.close()


def test_a_breakpoint_inside_the_called_function_stops_every_path() -> None:
    m = manager()
    try:
        engine = m.engine("wren")
        hits: list[Any] = []
        engine.set_breakpoint_handler(hits.append)
        ident = m.function("s.T.id")
        assert ident(1) == 1 and not hits
        breakpoint = engine.set_breakpoint("s", 2)  # T.id's body
        assert ident(2) == 2  # the caller's inline path
        assert ident("a") == "a" and ident(None) is None and ident([1]) == [1]  # scalar kinds, general path
        assert len(hits) == 4
        engine.remove_breakpoint(breakpoint)
        assert ident(3) == 3 and len(hits) == 4
    finally:
        m.close()
