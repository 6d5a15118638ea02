"""allowed_modules in Lua: `require` of a granted module works, anything else
is an AccessDeniedError at the script's line."""

import pytest

pytest.importorskip("kryon_lua")

from kryon_core import AccessDeniedError, ScriptError, ScriptManager, SecurityPolicy, SizeLimitError  # noqa: E402


def _manager(*modules):
    policy = SecurityPolicy.sandboxed(time_limit=5, allowed_modules=frozenset(modules))
    return ScriptManager(policy=policy, cache=False, output=lambda lang, text: None)


def test_granted_modules_load_and_others_are_denied(tmp_path):
    (tmp_path / "util.lua").write_text("local M = {}\nfunction M.twice(x) return x * 2 end\nreturn M\n")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "deep.lua").write_text("return {answer = 42}\n")
    (tmp_path / "secret.lua").write_text("return 'secret'\n")
    main = tmp_path / "main.lua"
    main.write_text(
        "function twice(x) return require('util').twice(x) end\n"
        "function deep() return require('lib.deep').answer end\n"
        "function same() return require('util') == require('util') end\n"
        "function std() return require('string').upper('x') end\n"
        "function secret() local s = require('secret') return s end\n"
        "function io_lib() return require('io') end\n"
        "function bad_name() return require(42) end\n"
    )
    m = _manager("util", "lib", "string", "io")
    try:
        m.load_script_file(str(main))
        assert m.call_function("main.twice", [21]) == 42
        assert m.call_function("main.deep") == 42, "a granted package grants its submodules"
        assert m.call_function("main.same") is True, "a module runs once per script"
        assert m.call_function("main.std") == "X"
        with pytest.raises(AccessDeniedError, match="not granted") as info:
            m.call_function("main.secret")
        assert info.value.script == "main" and info.value.line == 5
        with pytest.raises(AccessDeniedError, match="capability"):
            m.call_function("main.io_lib")
        with pytest.raises(AccessDeniedError):
            m.call_function("main.bad_name")
    finally:
        m.close()


def test_nothing_granted_means_no_modules():
    m = _manager()
    try:
        m.load_script_from_source("s", "lua", "function f() return require('string') end")
        with pytest.raises(AccessDeniedError, match="allowed_modules"):
            m.call_function("s.f")
    finally:
        m.close()


def test_a_loaded_script_is_a_module_and_paths_stay_inside(tmp_path):
    outside = tmp_path / "outside.lua"
    outside.write_text("return 'escaped'\n")
    app = tmp_path / "app"
    app.mkdir()
    (app / "main.lua").write_text("function up() return require('..outside') end\n")
    m = _manager("shapes", "..outside", ".")
    try:
        m.load_script_from_source("shapes", "lua", "return {sides = 4}")
        m.load_script_from_source("user", "lua", "function sides() return require('shapes').sides end")
        assert m.call_function("user.sides") == 4
        m.load_script_file(str(app / "main.lua"))
        with pytest.raises(ScriptError) as info:
            m.call_function("main.up")
        assert "escaped" not in str(info.value)
    finally:
        m.close()


def test_a_granted_module_over_max_source_size_is_refused(tmp_path):
    """Lua's parser runs in C, out of the time limit's reach: a granted
    module's source is bounded by max_source_size as a sandboxed `load` is
    (a SizeLimitError naming the line that required it; a script may catch it)."""
    (tmp_path / "small.lua").write_text("return {n = 1}\n" + "-- pad\n" * 10)
    (tmp_path / "big.lua").write_text("return {n = 2}\n" + "x = 1\n" * 200)
    main = tmp_path / "main.lua"
    main.write_text(
        "function small() return require('small').n end\n"
        "function big()\n  return require('big').n\nend\n"
        "function caught() local ok, err = pcall(require, 'big') return ok, err end\n"
        "function nested() return require('wraps_big') end\n"
    )
    (tmp_path / "wraps_big.lua").write_text("local x = 1\nreturn require('big')\n")
    policy = SecurityPolicy.sandboxed(time_limit=5, max_source_size=1000,
                                      allowed_modules=frozenset({"small", "big", "wraps_big"}))
    m = ScriptManager(policy=policy, cache=False, output=lambda lang, text: None)
    try:
        m.load_script_file(str(main))
        assert m.call_function("main.small") == 1, "a module under the limit loads"
        with pytest.raises(SizeLimitError, match=r"require\('big'\).*max_source_size \(1000 bytes\)") as info:
            m.call_function("main.big")
        assert (info.value.script, info.value.language, info.value.line) == ("main", "lua", 3)
        ok, message = m.call_function("main.caught")
        assert ok is False and "max_source_size" in message
        with pytest.raises(SizeLimitError, match="max_source_size"):
            m.call_function("main.nested")
        assert m.call_function("main.small") == 1, "the script keeps working"
    finally:
        m.close()

