"""``kryon.call`` made from inside a Lua coroutine, to a function nobody has
called before (its caller is made during the call), under both policies.

A sandboxed script's ``coroutine.wrap`` is the prelude's own (it hooks each
coroutine for the time limit); the first ``kryon.call`` from inside one failed
with ``TypeError: 'tuple' object is not callable``: reading a field of a Lua
table from the host callback came back as a tuple through lupa.
"""

from __future__ import annotations

import pytest

from kryon_core import ScriptManager, SecurityPolicy

SHAPES = {
    "wrap": 'return coroutine.wrap(function() return kryon.call(NAME, 20) + 1 end)()',
    "resume": 'local co = coroutine.create(function() return kryon.call(NAME, 20) + 1 end)\n'
              'local ok, v = coroutine.resume(co)\nassert(ok, v)\nreturn v',
    "nested": 'return coroutine.wrap(function()\n'
              '  return coroutine.wrap(function() return kryon.call(NAME, 20) + 1 end)()\nend)()',
    "after_yield": 'local co = coroutine.wrap(function() coroutine.yield(0); return kryon.call(NAME, 20) + 1 end)\n'
                   'co()\nreturn co()',
}
CALLEES = {"own": "caller.twice", "other_lua": "lib.twice", "javascript": "js.twice"}


@pytest.mark.parametrize("policy", ["sandboxed", "trusted"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("callee", sorted(CALLEES))
def test_a_first_kryon_call_from_a_coroutine(policy: str, shape: str, callee: str) -> None:
    pol = SecurityPolicy.sandboxed() if policy == "sandboxed" else SecurityPolicy.trusted()
    m = ScriptManager(policy=pol, cache=False)
    try:
        m.load_script_from_source("lib", "lua", "function twice(x) return 2 * x end\n")
        if "javascript" in m.languages:
            m.load_script_from_source("js", "javascript", "function twice(x) { return 2 * x; }\n")
        elif callee == "javascript":
            pytest.skip("kryon-js is not installed")
        body = SHAPES[shape].replace("NAME", repr(CALLEES[callee]).replace("'", '"'))
        m.load_script_from_source("caller", "lua", f"function twice(x) return 2 * x end\nfunction run()\n{body}\nend\n")
        for _ in range(2):  # the first call makes the callee's caller; the second finds it made
            assert m.call_function("caller.run") == 41
    finally:
        m.close()
