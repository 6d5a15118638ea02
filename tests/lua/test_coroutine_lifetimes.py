"""What lupa holds for the host must not outlive the Lua thread it belongs to,
and the thread a coroutine's resumer waits on must keep it: each of these
crashed the host process (SIGSEGV), so each runs in a subprocess.

- A host call into Lua made from inside a coroutine (here ``kryon.call`` to a
  Lua function) emptied the main thread's current frame, where Lua's
  ``coroutine.resume`` kept the coroutine it was resuming: a coroutine that
  was itself resuming another was collected while it waited.
- A Lua function handed to the host from inside a coroutine (an event
  listener) was wrapped on the coroutine's thread; called after the coroutine
  was collected, it ran on freed memory. The host now keeps the function as
  made on its own thread (``K.source_of``).
- A host error raised to a script from inside a coroutine kept, in its
  traceback, lupa's wrappers of the call's Lua arguments; freed after the
  coroutine was collected (the script dropped the caught error), they touched
  freed memory. The frames' locals are cleared (``runtime.forget_locals``).

Also in this file: a coroutine's ``<close>`` handler run by
``coroutine.close``, and a function run by ``call_function_async``, calling
host functions that read Lua tables (both resumed through the prelude's
resumers)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

pytest.importorskip("kryon_lua")

from kryon_core import Document, ScriptManager, SecurityPolicy  # noqa: E402

POLICIES = {
    "trusted": "SecurityPolicy.trusted()",
    "jit-trusted": "SecurityPolicy.trusted(use_jit=True)",
    "trusted-cap": "SecurityPolicy.trusted(memory_limit=256 * 1024 * 1024)",
}

PRELUDE = """\
import gc, sys
from kryon_core import Document, ScriptManager, SecurityPolicy
m = ScriptManager(policy={policy}, cache=False, output=lambda lang, text: None)
doc = m.setup_dom_bridge(Document())
doc.append_child(doc.root, doc.create_element("div", {{"id": "root"}}))
"""

#: Lua that leaves freed coroutines' memory to other objects (trusted states may collect)
CHURN = """
function churn()
  collectgarbage(); collectgarbage()
  local junk = {} for j = 1, 20000 do junk[j] = coroutine.create(print) end
  junk = nil
  collectgarbage()
  local junk2 = {} for j = 1, 20000 do junk2[j] = {j, j} end
  return 1
end
"""

CASES = {
    "resumer_kept": (
        'm.load_script_from_source("lib", "lua", "function noop() return 1 end")\n'
        'm.load_script_from_source("s", "lua", """\n'
        'function run(n)\n'
        '  kryon.call("lib.noop")\n'
        '  for i = 1, n do\n'
        '    local ok, v = coroutine.resume(coroutine.create(function()\n'
        '      local ok2, v2 = coroutine.resume(coroutine.create(function()\n'
        '        kryon.call("lib.noop")\n'
        '        collectgarbage(); collectgarbage()\n'
        '        local junk = {} for j = 1, 2000 do junk[j] = coroutine.create(print) end\n'
        '        return 5\n'
        '      end))\n'
        '      return v2\n'
        '    end))\n'
        '    assert(ok and v == 5, v)\n'
        '  end\n'
        '  return n\n'
        'end\n'
        '""")\n'
        'print(m.call_function("s.run", [200]))\n',
        "200",
    ),
    "listener_outlives_coroutine": (
        'm.load_script_from_source("s", "lua", """\n'
        'function setup(n)\n'
        '  for i = 1, n do\n'
        '    local co = coroutine.create(function(k)\n'
        '      local v = {k = k}\n'
        '      kryon.addEventListener(kryon.getElementById("root"), "click",\n'
        '        function() clicks = (clicks or 0) + v.k end)\n'
        '      coroutine.yield()\n'
        '    end)\n'
        '    assert(coroutine.resume(co, i))\n'
        '  end\n'
        'end\n'
        'function total() return clicks end\n'
        '""" + CHURN)\n'
        'm.call_function("s.setup", [50])\n'
        'm.call_function("s.churn")\n'
        'for _ in range(3):\n'
        '    doc.click(doc.get_element_by_id("root"))\n'
        'print(m.call_function("s.total"))\n',
        str(3 * 50 * 51 // 2),
    ),
    "caught_error_outlives_coroutine": (
        'm.load_script_from_source("s", "lua", """\n'
        'kept = {}\n'
        'function setup(n)\n'
        '  for i = 1, n do\n'
        '    local co = coroutine.create(function(k)\n'
        '      local ok, e = pcall(kryon.call, "nowhere.f", {[true] = k, {k}})\n'
        '      kept[#kept + 1] = e\n'
        '      local ok2, e2 = pcall(kryon.setProperty, {[true] = k}, "x", 1)\n'
        '      kept[#kept + 1] = e2\n'
        '    end)\n'
        '    assert(coroutine.resume(co, i))\n'
        '  end\n'
        '  return #kept\n'
        'end\n'
        'function drop() kept = nil; collectgarbage(); collectgarbage(); return 1 end\n'
        '""" + CHURN)\n'
        'n = m.call_function("s.setup", [200])\n'
        'm.call_function("s.churn")\n'
        'm.call_function("s.drop")\n'
        'gc.collect()\n'
        'm.close()\n'
        'gc.collect()\n'
        'print(n)\n',
        "400",
    ),
}


@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.parametrize("case", sorted(CASES))
def test_no_crash(case: str, policy: str) -> None:
    code, expected = CASES[case]
    program = PRELUDE.format(policy=POLICIES[policy]) + f"CHURN = {CHURN!r}\n" + code
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert proc.stdout.split()[-1] == expected


CLOSE = """\
function run()
  local co = coroutine.create(function()
    local guard <close> = setmetatable({}, {__close = function()
      closed = kryon.call("lib.sum", {1, 2, 3}) + (next(kryon.call("js.empty")) == nil and 10 or 0)
      kryon.addEventListener(kryon.getElementById("root"), "click", function() end)
    end})
    coroutine.yield()
  end)
  assert(coroutine.resume(co))
  assert(coroutine.close(co))
  return closed
end
"""


@pytest.fixture(params=["sandboxed", "trusted"])
def host(request: pytest.FixtureRequest) -> Iterator[tuple[ScriptManager, Document]]:
    """A manager (under each policy) with a document holding ``#root``, a Lua
    ``lib.sum`` of a list and a JavaScript ``js.empty`` returning ``{}``: the
    host functions that read Lua tables the scripts below call."""
    pol = SecurityPolicy.sandboxed() if request.param == "sandboxed" else SecurityPolicy.trusted()
    m = ScriptManager(policy=pol, cache=False)
    try:
        doc = m.setup_dom_bridge(Document())
        doc.append_child(doc.root, doc.create_element("div", {"id": "root"}))
        m.load_script_from_source("lib", "lua", "function sum(t) local s = 0 for _, v in ipairs(t) do s = s + v end return s end")
        m.load_script_from_source("js", "javascript", "function empty() { return {}; }")
        yield m, doc
    finally:
        m.close()


def test_close_handler_calls_the_host(host: tuple[ScriptManager, Document]) -> None:
    m, _ = host
    m.load_script_from_source("s", "lua", CLOSE)
    assert m.call_function("s.run") == 16
    assert m.call_function("s.run") == 16


ASYNC = """\
function run()
  kryon.sleep(0)
  local e = kryon.call("js.empty")
  kryon.addEventListener(kryon.getElementById("root"), "click", function() clicks = (clicks or 0) + 1 end)
  return kryon.call("lib.sum", {1, 2, 3}) + (next(e) == nil and getmetatable(e) ~= nil and 10 or 0)
end
function count() return clicks end
"""


def test_async_function_calls_the_host(host: tuple[ScriptManager, Document]) -> None:
    m, doc = host
    m.load_script_from_source("s", "lua", ASYNC)
    assert asyncio.run(m.call_function_async("s.run")) == 16
    doc.click(doc.get_element_by_id("root"))
    assert m.call_function("s.count") == 1


def test_resume_keeps_lua_semantics() -> None:
    """Results, errors, statuses and the traceback of a failed coroutine are
    Lua's own through the resumers."""
    m = ScriptManager(policy=SecurityPolicy.trusted(), cache=False)
    try:
        m.load_script_from_source("s", "lua", textwrap.dedent("""\
            function run()
              local out = {}
              local co = coroutine.create(function(a, b)
                local c = coroutine.yield(a + b, "y")
                error({code = c})
              end)
              local ok, s, y = coroutine.resume(co, 1, 2)
              out[#out + 1] = tostring(ok) .. s .. y .. coroutine.status(co)
              local ok2, e = coroutine.resume(co, 7)
              out[#out + 1] = tostring(ok2) .. e.code .. coroutine.status(co)
              out[#out + 1] = debug.traceback(co):find("in function", 1, true) and "tb" or "notb"
              local ok3, e3 = coroutine.resume(co)
              out[#out + 1] = tostring(ok3) .. e3
              local ok4, e4 = coroutine.resume(coroutine.running())
              out[#out + 1] = tostring(ok4) .. e4
              local ok5, e5 = pcall(coroutine.resume, 42)
              out[#out + 1] = tostring(ok5) .. (e5:find("bad argument", 1, true) and "bad" or e5)
              return table.concat(out, "|")
            end
            """))
        assert m.call_function("s.run") == (
            "true3ysuspended|false7dead|tb|falsecannot resume dead coroutine"
            "|falsecannot resume non-suspended coroutine|falsebad"
        )
    finally:
        m.close()
