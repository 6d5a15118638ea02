"""Script code run where the memory cap is raised or lifted, as an attacker
would place it: a state never holds more than its cap plus the overdraft's
room (``runtime._ERROR_ROOM``, 64 KiB), call after call, and the host never
panics (each attack runs in a subprocess).

- A ``<close>`` handler that allocates as the stack unwinds from an error:
  the generic path's message handler (``K.capped``) lifted the cap to build
  the traceback and left it lifted while the stack unwound, so the handler
  allocated without bound (80 MiB under a 16 MiB cap), sandboxed or trusted.
- The overdraft: a host function's error with no room under the cap is pushed
  with the cap raised (``Runtime._cap_for_error``); ``<close>`` handlers and
  finalizers run before the first handler kept what they allocated above the
  cap, call after call. The first Lua code to see the error now lowers the
  cap again, and the collector is held until then.
- Finalizers run by the host's own collections (after a call past 90% of the
  cap, or to make room for an error) ran with the cap lifted (336 MiB under
  16 MiB); those collections now run under the cap. Finalizers due while the
  cap is lifted for a host function (converting its result) ran there too
  (120 MiB), and so did those due while the host converted the arguments of
  its next call; a trusted state with a cap holds its collector whenever no
  script code runs.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("kryon_lua")

CAP = 16 * 1024 * 1024
ROOM = 64 * 1024  # kryon_lua.runtime._ERROR_ROOM

HARNESS = """\
import sys
from kryon_core import ScriptError, ScriptManager, SecurityPolicy
CAP = {cap}
m = ScriptManager(policy={policy}, cache=False, output=lambda lang, text: None)
m.load_script_from_source("s", "lua", {script!r})
engine = m._engines["lua"]
peak = 0
def used():
    global peak
    u = max(rt.lua.get_memory_used() for rt in engine._states())
    peak = max(peak, u)
    return u
def call(name, *args):
    try:
        return m.call_function("s." + name, list(args))
    except ScriptError as exc:
        return type(exc).__name__
def fill():
    # to just under the cap, from the host (a sandboxed pcall does not catch a memory error)
    chunk = 30000
    while chunk >= 64:
        if call("add", chunk) is not None:
            chunk //= 2
    used()
{body}
print("peak", peak)
"""

SCRIPT = """\
keep, fill, armed = {}, {}, {}
function add(n) fill[#fill + 1] = string.rep("f", n) .. #fill end
function free(n) for i = 1, n do fill[#fill] = nil end return 1 end
-- a <close> handler that allocates, under an error the script raised
function close_after_error()
  local x <close> = setmetatable({}, {__close = function()
    local t = {} for i = 1, 4000000 do t[i] = i end keep[#keep + 1] = t
  end})
  error("boom")
end
-- a <close> handler that keeps a little each time, under a host error at the cap (the overdraft)
function close_after_host_error()
  local x <close> = setmetatable({}, {__close = function()
    for i = 1, 300 do keep[#keep + 1] = {i} end
  end})
  kryon.call("nowhere.f")
end
-- the same inside a coroutine.wrap function (Lua 5.4 closes a failed one before the error goes on)
function wrapped_close_after_host_error()
  return coroutine.wrap(close_after_host_error)()
end
"""

#: trusted only: finalizers
FINALIZERS = """
function arm(n, each)
  for i = 1, n do
    armed[i] = setmetatable({}, {__gc = function() for j = 1, each do keep[#keep + 1] = {j} end end})
  end
  return n
end
function drop_one_and_fail()
  armed[#armed] = nil
  kryon.call("nowhere.f")
end
-- finalizers due while the host converts a large result (the cap is lifted for host code)
function host_window_finalizers(n)
  for i = 1, n do
    setmetatable({}, {__gc = function() for j = 1, 4 do keep[#keep + 1] = string.rep("g", 1024 * 1024 - 64) .. i .. j end end})
  end
  local total = 0
  for r = 1, 10 do total = total + #kryon.call("js.big", 20000) end
  return total
end
-- finalizers left due for the host's next conversion into the state (the cap is off between calls)
function arm_garbage(n)
  for i = 1, n do
    setmetatable({}, {__gc = function() for j = 1, 4 do keep[#keep + 1] = string.rep("g", 1024 * 1024 - 64) .. i .. j end end})
  end
  return n
end
function count(t) return #t end
function big_finalizers(n)
  for i = 1, n do
    setmetatable({}, {__gc = function() for j = 1, 8 do keep[#keep + 1] = string.rep("g", 1024 * 1024 - 64) .. i .. j end end})
  end
  return n
end
"""

POLICIES = {
    "trusted": "SecurityPolicy.trusted(memory_limit=CAP)",
    "sandboxed": "SecurityPolicy.sandboxed(memory_limit=CAP)",
}

ATTACKS = {
    "close_after_error": (
        "fill()\ncall('free', 4)\n[rt.collect() for rt in engine._states()]\n"
        "for _ in range(3):\n    call('close_after_error')\n    used()\n"
    ),
    "overdraft_close": (
        "fill()\nfor _ in range(60):\n    call('close_after_host_error')\n    used()\n"
    ),
    "overdraft_wrapped_close": (
        "fill()\nfor _ in range(60):\n    call('wrapped_close_after_host_error')\n    used()\n"
    ),
}

TRUSTED_ATTACKS = {
    "overdraft_finalizers": (
        "call('arm', 200, 2000)\nfill()\nfor _ in range(200):\n    call('drop_one_and_fail')\n    used()\n"
    ),
    "host_window_finalizers": (
        "m.load_script_from_source('js', 'javascript', "
        "'function big(n) { const a = []; for (let i = 0; i < n; i++) a.push(\\'s\\' + i); return a; }')\n"
        "for _ in range(3):\n    call('host_window_finalizers', 30)\n    used()\n"
    ),
    "argument_finalizers": (
        "for _ in range(3):\n    call('arm_garbage', 30)\n"
        "    for _ in range(10):\n        call('count', ['s%d' % i for i in range(20000)])\n        used()\n"
    ),
    "collection_finalizers": (
        "fill()\ncall('free', 30)\nfor _ in range(5):\n    call('big_finalizers', 20)\n    used()\n"
        "    [rt.collect() for rt in engine._states()]\n    used()\n"
    ),
}


def run(policy: str, body: str, script: str) -> int:
    program = HARNESS.format(cap=CAP, policy=POLICIES[policy], script=script, body=body)
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-3000:])
    return int(proc.stdout.split()[-1])


@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_cap_holds(attack: str, policy: str) -> None:
    peak = run(policy, ATTACKS[attack], SCRIPT)
    assert peak <= CAP + ROOM, f"{peak - CAP} bytes over the cap"


@pytest.mark.parametrize("attack", sorted(TRUSTED_ATTACKS))
def test_cap_holds_for_finalizers(attack: str) -> None:
    peak = run("trusted", TRUSTED_ATTACKS[attack], SCRIPT + FINALIZERS)
    assert peak <= CAP + ROOM, f"{peak - CAP} bytes over the cap"
