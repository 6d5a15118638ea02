"""A host function's error raised inside a coroutine keeps its class and
message on the way out (coroutine.wrap) and as the value coroutine.resume
hands back: lupa refuses to walk the Lua stack from a host callback there,
and that refusal must not replace the error (it came out as "TypeError:
'tuple' object is not callable")."""

from __future__ import annotations

import pytest

from kryon_core import MemoryLimitError, ScriptManager, ScriptRuntimeError, SecurityPolicy

pytest.importorskip("kryon_lua")

SOURCE = """
function wrapped() return coroutine.wrap(function() return boom() end)() end
function resumed()
  local ok, e = coroutine.resume(coroutine.create(function() return boom() end))
  return tostring(e)
end
function big() return coroutine.wrap(function() return huge() end)() end
"""


@pytest.fixture(params=["sandboxed", "trusted"])
def manager(request):
    policy = (SecurityPolicy.sandboxed(memory_limit=2 << 20, time_limit=10) if request.param == "sandboxed"
              else SecurityPolicy.trusted(memory_limit=2 << 20))
    m = ScriptManager(policy=policy, cache=False, output=lambda lang, text: None)
    m.load_script_from_source("co", "lua", SOURCE)
    m.set_global("lua", "boom", lambda: 1 / 0)
    m.set_global("lua", "huge", lambda: "z" * (3 << 20))
    yield m
    m.close()


def test_a_host_error_leaves_a_coroutine_as_itself(manager):
    with pytest.raises(ScriptRuntimeError, match="ZeroDivisionError: division by zero") as info:
        manager.call_function("co.wrapped")
    assert info.value.script == "co"
    assert "ZeroDivisionError: division by zero" in manager.call_function("co.resumed")


def test_a_refused_host_value_inside_a_coroutine_is_a_memory_error(manager):
    with pytest.raises(MemoryLimitError, match="value the host hands to the script"):
        manager.call_function("co.big")
