"""kryon-lua against the engine contract suite, on Lua 5.4 and on LuaJIT."""

import dataclasses

import pytest

from kryon_core.testing import EngineContract, Snippets

pytest.importorskip("kryon_lua")

LIBRARY = """\
function add(a, b)
  local sum = a + b
  return sum
end
function echo(x) return x end
function apply(f, x) return f(x) end
function make_adder(n) return function(x) return x + n end end
function call_other(name, x) return kryon.call(name, x) end
function fail()
  error("boom")
end
function read_global() return shared_setting end
function shout(text) print(text) end
function spin() while true do end end
function hog() local t = {} local i = 0 while true do i = i + 1 t[i] = string.rep("x", 1024) .. i end end
function dive(n) return dive(n + 1) + 1 end
function forbidden() return io.open("/etc/hostname"):read("*a") end
"""

DOM = """\
local btn = kryon.getElementById("btn")
kryon.addEventListener(btn, "click", function(event)
  kryon.setProperty(event.target, "text", "clicked")
end)
kryon.setVariable("ready", true)
kryon.setTimeout(function() kryon.setVariable("timer", "fired") end, 100)
"""

LUA = Snippets(
    language="lua",
    library=LIBRARY,
    fail_line=10,
    dom=DOM,
    counter_v1="function version() return 1 end",
    counter_v2="function version() return 2 end",
    syntax_error="function version()\n  return = 2\nend\n",
    syntax_error_line=2,
    ident_a='ident = "a"\nfunction get_ident() return ident end',
    ident_b='ident = "b"\nfunction get_ident() return ident end',
    breakpoint_line=2,
    # a Lua list cannot hold nil: [1, None, 3] comes back as {"1": 1, "3": 3}
    skip_values=("list_with_none",),
    raise_statement='error("load fails")',
    evaluate=('x = 40', 'x + 2'),
    spin_statement="while true do end",
    nest="function nest(n) if n == 0 then return 0 end return nest(n - 1) + 1 end",
)


class TestLuaContract(EngineContract):
    snippets = LUA


class TestLuaJITContract(EngineContract):
    # LuaJIT is Lua 5.1 with 5.2 extensions: 1 and 1.0 are one number there. A
    # tail call replaces the caller's frame in LuaJIT, so a host function
    # reached by `return f(x)` cannot tell where it was called from: `apply`
    # here calls it first and returns after (see the kryon-lua README).
    snippets = dataclasses.replace(
        LUA,
        library=LIBRARY.replace("function apply(f, x) return f(x) end",
                                "function apply(f, x) local r = f(x) return r end"),
        policy_overrides={"use_jit": True},
        distinct_int_float=False,
    )
