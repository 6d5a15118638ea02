"""Kryon.call out of Wren takes a shorter route: ``Kryon.call(name, [numbers])``
is decoded and resolved in one pass (values.resolve_call_args) and the
foreign method calls the manager's router itself (ScriptBridge.call
written out, state._call_foreign). Every case here runs with that route and
with the general one (the bridge's own ``call``, arguments decoded and then
resolved) and must give the same results and errors: type, message,
script, line, language; limits, policies and nesting depth included."""

from __future__ import annotations

import math
import struct
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest

from kryon_core import ScriptError, ScriptManager, SecurityPolicy

pytest.importorskip("kryon_wren")

import kryon_wren.state as wren_state  # noqa: E402
from kryon_wren.slot_codec import decode  # noqa: E402
from kryon_wren.values import _resolve_call_args, resolve_call_args  # noqa: E402

WREN = """\
import "kryon" for Kryon
class W {
  static one(name, x) { Kryon.call(name, [x]) }
  static many(name, args) { Kryon.call(name, args) }
  static spread(name) { Kryon.call(name, 1, "two") }
  static bare(name) { Kryon.call(name) }
  static badName { Kryon.call(7, [1]) }
  static deep(n) { n == 0 ? 0 : 1 + Kryon.call("w.W.deep", [n - 1]) }
  static text(n) { Kryon.call("h.echo", ["y" * n]) }
  static caught(name) {
    var fiber = Fiber.new { Kryon.call(name, [1]) }
    var error = fiber.try()
    return error
  }
}
"""

HOST = """\
def echo(*args):
    return args[0] if len(args) == 1 else list(args)
def count(*args):
    return len(args)
def big(*args):
    return 2 ** 60
def boom(x):
    raise ValueError("host said no")
"""

TRUSTED_FN = "def secret(x):\n    return x\n"

CASES: list[tuple[str, list[Any]]] = [
    ("w.W.one", ["h.echo", 5]), ("w.W.one", ["h.echo", -0.5]), ("w.W.one", ["h.echo", 2**53]),
    ("w.W.one", ["h.echo", 2**53 + 2]), ("w.W.one", ["h.echo", "s"]), ("w.W.one", ["h.echo", None]),
    ("w.W.one", ["h.count", 1]), ("w.W.one", ["w.W.deep", 3]), ("w.W.one", ["h.big", 1]),
    ("w.W.one", ["h.boom", 1]), ("w.W.one", ["h.missing", 1]), ("w.W.one", ["t.secret", 1]),
    ("w.W.many", ["h.echo", [1, 2.5, -3]]), ("w.W.many", ["h.echo", []]), ("w.W.many", ["h.echo", [1, "a", [2]]]),
    ("w.W.many", ["h.echo", [[1, 2]]]), ("w.W.many", ["h.count", 5]), ("w.W.many", ["h.echo", [1.5, None, True]]),
    ("w.W.spread", ["h.echo"]), ("w.W.bare", ["h.count"]), ("w.W.badName", []), ("w.W.deep", [5]),
    ("w.W.deep", [400]), ("w.W.text", [3]), ("w.W.text", [30]), ("w.W.caught", ["h.boom"]),
    ("w.W.caught", ["h.missing"]),
    ("w.W.one", ["h.echo", -0.0]), ("w.W.one", ["h.echo", math.inf]), ("w.W.one", ["h.echo", math.nan]),
    ("w.W.one", ["h.echo", 5e-324]), ("w.W.one", ["h.echo", -(2**53)]), ("w.W.one", ["h.count", 7]),
    ("w.W.one", ["h." + "e" * 30, 1]), ("w.W.one", ["h." + "e" * 30, 2]), ("w.W.one", ["h.échø", 1]),
    ("w.W.many", ["h.echo", [1, 2]]), ("w.W.one", ["h.echo", [1]]),
]


def outcome(manager: ScriptManager, name: str, args: list[Any]) -> Any:
    try:
        value = manager.call_function(name, args)
        return ("ok", type(value).__name__, repr(value))
    except ScriptError as exc:
        return ("error", type(exc).__name__, str(exc), exc.script, exc.line, exc.language)


def make(policy: SecurityPolicy, short: bool, monkeypatch: pytest.MonkeyPatch) -> ScriptManager:
    with monkeypatch.context() as patch:
        if not short:  # no bridge view is recognised: every call goes through the view's own call
            patch.setattr(wren_state, "ScriptBridge", type("NoBridge", (), {}))
        manager = ScriptManager(policy=policy, cache=False, output=lambda lang, text: None)
        manager.load_script_from_source("h", "python", HOST)
        manager.load_script_from_source("t", "python", TRUSTED_FN, policy=SecurityPolicy.trusted())
        manager.load_script_from_source("w", "wren", WREN)
        manager.call_function("w.W.bare", ["h.count"])  # Kryon.call bound now, under the patch
    return manager


POLICIES = {
    "trusted": SecurityPolicy.trusted(),
    "limited": replace(SecurityPolicy.trusted(), max_value_size=20, max_recursion=50),
    "sandboxed": replace(SecurityPolicy.sandboxed(), max_value_size=20),
}


@pytest.mark.parametrize("policy", list(POLICIES), ids=list(POLICIES))
def test_the_short_route_gives_what_the_bridge_gives(policy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    short, general = make(POLICIES[policy], True, monkeypatch), make(POLICIES[policy], False, monkeypatch)
    try:
        got = {}
        for name, args in CASES:
            a, b = outcome(short, name, args), outcome(general, name, args)
            assert a == b, (name, args)
            got[f"{name}{args}"] = a
    finally:
        short.close()
        general.close()
    assert got["w.W.one['h.echo', 5]"] == ("ok", "int", "5")
    assert got["w.W.one['w.W.deep', 3]"] == ("ok", "int", "3")
    assert got["w.W.many['h.echo', [[1, 2]]]"] == ("ok", "list", "[1, 2]")
    bad = got["w.W.badName[]"]
    assert bad[0] == "error" and (bad[3], bad[4], bad[5]) == ("w", 7, "wren")
    deep = got["w.W.deep[400]"]
    assert deep[0] == "error" and deep[1] == "RecursionLimitError" and deep[5] == "wren"
    assert got["w.W.one['h.big', 1]"][1] == "ConversionError"
    denied = got["w.W.one['t.secret', 1]"]
    if policy == "sandboxed":  # a sandboxed caller may not call into a trusted script's unexposed function
        assert denied[0] == "error" and denied[1] == "AccessDeniedError" and denied[3] == "w"
        assert got["w.W.text[30]"][1] == "SizeLimitError"
    else:
        assert denied == ("ok", "int", "1")


def test_the_short_route_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a bridge view's own call, ScriptBridge.call does not run for a
    Wren Kryon.call (the router is called straight); with the view not
    recognised, it does (so the comparison above compares two routes)."""
    from kryon_core import ScriptBridge

    counted: list[str] = []
    original = ScriptBridge.call

    def counting(self: Any, name: Any, *args: Any) -> Any:
        counted.append(name)
        return original(self, name, *args)

    monkeypatch.setattr(ScriptBridge, "call", counting)
    for short in (True, False):
        manager = make(SecurityPolicy.trusted(), short, monkeypatch)
        try:
            counted.clear()
            assert manager.call_function("w.W.one", ["h.echo", 5]) == 5
            assert counted == ([] if short else ["h.echo"])
        finally:
            manager.close()


NUMBERS = [0.0, -0.0, 5.0, -5.0, 1.5, math.nan, math.inf, -math.inf, 2.0**53, -(2.0**53), 2.0**53 + 2, 1e300, 5e-324]


def encoded_call(name: bytes, items: list[bytes]) -> bytes:
    return b"s" + struct.pack("<I", len(name)) + name + b"l" + struct.pack("<I", len(items)) + b"".join(items)


def test_one_pass_arguments_are_what_decode_then_resolve_give() -> None:
    """values.resolve_call_args's inline reading of Kryon.call(name, [numbers])
    against slot_codec.decode then the general resolve, at every edge of the
    int/float rule, for one number, several, none, a list that stops being
    numbers part way (read again the general way), under no size limit and
    under limits the name or the list reach (the same SizeLimitError)."""
    number = [b"d" + struct.pack("<d", x) for x in NUMBERS]
    text = b"s" + struct.pack("<I", 2) + b"ab"
    datas = [encoded_call("é.f".encode(), [item]) for item in number]
    datas += [encoded_call(b"h.f", number), encoded_call(b"h.f", []), encoded_call(b"h.f", number[:3] + [text]),
              encoded_call(b"h.f", [text]), encoded_call(b"", number[:1]), encoded_call("éé".encode(), number[:2])]

    def shown(values: list[Any]) -> list[tuple[type, str]]:
        return [(type(v), repr(v)) for v in values]

    for limit in (None, 0, 1, 2, 3, 4, 20):
        state = SimpleNamespace(policy=SimpleNamespace(max_value_size=limit), objects={}, script_id="w", pending=None,
                                vm=SimpleNamespace(_adopt_handle=lambda ptr: None))
        for data in datas:
            try:
                one: Any = shown(resolve_call_args(state, data, 2))  # type: ignore[arg-type]
            except RuntimeError as exc:
                one = ("error", type(state.pending).__name__, str(exc))
            try:
                two: Any = shown(_resolve_call_args(state, decode(data, 2, lambda ptr: None)))  # type: ignore[arg-type]
            except ScriptError as exc:
                two = ("error", type(exc).__name__, str(exc))
            assert one == two, (limit, data)
    state = SimpleNamespace(policy=SimpleNamespace(max_value_size=None), objects={},
                            vm=SimpleNamespace(_adopt_handle=lambda ptr: None))
    assert resolve_call_args(state, datas[1], 2) == ["é.f", -0.0]  # type: ignore[arg-type]
    assert type(resolve_call_args(state, datas[0], 2)[1]) is int  # type: ignore[arg-type]


def test_the_names_remembered_for_kryon_call_are_bounded() -> None:
    """``Kryon.call(name, [x])`` remembers the bytes before the number per
    name (values.call_prefix): a script calling ever new names keeps at
    most CALL_PREFIXES of them, and each call still reaches its own target."""
    from kryon_wren.values import CALL_PREFIXES

    manager = ScriptManager(policy=SecurityPolicy.trusted(), cache=False, output=lambda lang, text: None)
    try:
        names = [f"f{i}" for i in range(3 * CALL_PREFIXES)]
        manager.load_script_from_source("h", "python", "".join(f"def {n}(x):\n    return x + {i}\n"
                                                                for i, n in enumerate(names)))
        manager.load_script_from_source("w", "wren", WREN)
        for round_ in range(2):
            for i, name in enumerate(names):
                assert manager.call_function("w.W.one", [f"h.{name}", round_]) == round_ + i
        state = manager.engine("wren").script_state("w")
        assert 0 < len(state.call_prefixes) <= CALL_PREFIXES
    finally:
        manager.close()
