"""Integers too long for CPython's str() (past 4,300 digits) crossing between
the host and Lua, JavaScript and Wren (issue 10, API input). Every engine's
refusal named the integer in its message, and formatting it raised a bare
ValueError; a JavaScript BigInt that long, returned or handed to a kryon
call, did the same when the host parsed it. Each is a ConversionError now,
and the engines keep working."""

from __future__ import annotations

import pytest

from kryon_core import ConversionError, ScriptManager, SecurityPolicy

pytest.importorskip("kryon_lua")
pytest.importorskip("kryon_js")
pytest.importorskip("kryon_wren")

HUGE = 10 ** 5000

SCRIPTS = {
    "j": ("javascript", "function ok(x) { return 1; } function big() { return 2n ** 20000n; }\n"
                        "function fits() { return 2n ** 64n; }"),
    "l": ("lua", "function ok(x) return 1 end\nfunction viaJs() return kryon.call('j.big') end"),
    "w": ("wren", "class W {\n  static ok(x) { 1 }\n}\n"),
}


@pytest.fixture(scope="module")
def m():
    manager = ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=5), cache=False, output=lambda lang, text: None)
    for name, (language, source) in SCRIPTS.items():
        manager.load_script_from_source(name, language, source)
    yield manager
    manager.close()


@pytest.mark.parametrize("function", ["j.ok", "l.ok", "w.W.ok"])
@pytest.mark.parametrize("shape", ["bare", "in a list", "in a dict"])
def test_a_huge_int_argument_is_a_conversion_error(m, function, shape):
    value = {"bare": HUGE, "in a list": [1, HUGE], "in a dict": {"k": HUGE}}[shape]
    with pytest.raises(ConversionError) as caught:
        m.call_function(function, [value])
    assert "bits" in str(caught.value) or "64-bit" in str(caught.value)
    assert m.call_function(function, [1]) == 1


@pytest.mark.parametrize("language", ["javascript", "lua", "wren"])
def test_a_huge_int_global_is_a_conversion_error(m, language):
    with pytest.raises(ConversionError):
        m.set_global(language, "G", HUGE)


def test_a_huge_bigint_result_is_a_conversion_error(m):
    with pytest.raises(ConversionError) as caught:
        m.call_function("j.big")
    assert caught.value.script == "j" and "BigInt of 6021 digits" in str(caught.value)
    assert m.call_function("j.fits") == 2 ** 64, "a BigInt the host can read still crosses"


def test_a_huge_bigint_handed_to_another_script_is_a_conversion_error(m):
    with pytest.raises(ConversionError):
        m.call_function("l.viaJs")
    assert m.call_function("l.ok", [2]) == 1
