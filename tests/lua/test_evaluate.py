"""ScriptEngine.evaluate for Lua: what `kryon eval` and `kryon repl` run."""

import pytest

pytest.importorskip("kryon_lua")

from kryon_core import (  # noqa: E402
    AccessDeniedError,
    CompileError,
    ScriptManager,
    ScriptRuntimeError,
    ScriptTimeoutError,
    SecurityPolicy,
)


@pytest.fixture
def manager():
    m = ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=0.5), cache=False, output=lambda lang, text: None)
    yield m
    m.close()


def test_expressions_statements_and_definitions(manager):
    manager.load_script_from_source("s", "lua", "count = 1\nfunction get() return count end")
    assert manager.evaluate("lua", "count + 1", script="s") == 2
    assert manager.evaluate("lua", "count = 10", script="s") is None
    assert manager.call_function("s.get") == 10, "statements change the script's own state"
    assert manager.evaluate("lua", "1, 'two'", script="s") == [1, "two"]
    manager.evaluate("lua", "function get() return -count end", script="s")
    assert manager.call_function("s.get") == -10, "a redefined function replaces the old one"
    manager.evaluate("lua", "function added(x) return x * 2 end", script="s")
    assert manager.call_function("s.added", [21]) == 42


def test_errors_name_the_script_and_line(manager):
    manager.evaluate("lua", "x = 1")
    with pytest.raises(CompileError) as info:
        manager.evaluate("lua", "x = \n = 2")
    assert info.value.script == "lua-console" and info.value.line == 2
    with pytest.raises(ScriptRuntimeError) as info:
        manager.evaluate("lua", "local y = 1\nerror('boom')")
    assert info.value.line == 2 and "boom" in str(info.value)
    assert manager.evaluate("lua", "x") == 1, "a failed evaluation changes nothing"


def test_evaluation_keeps_the_scripts_policy(manager):
    with pytest.raises(AccessDeniedError):
        manager.evaluate("lua", "os.getenv('HOME')")
    with pytest.raises(ScriptTimeoutError):
        manager.evaluate("lua", "while true do end")
    with pytest.raises(AccessDeniedError):
        manager.evaluate("lua", "load(string.dump(function() end))")
    assert manager.evaluate("lua", "1 + 1") == 2
