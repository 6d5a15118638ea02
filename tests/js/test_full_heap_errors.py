"""Under a memory limit the errors tell the truth: a script's own ``throw null``
(undefined, 0, "") is a ScriptRuntimeError, as without a limit, while QuickJS's
out-of-memory ``null`` stays a MemoryLimitError (oom.py); and with the heap
full, calling a function not called before is a MemoryLimitError (the look-up
needs memory), not FunctionNotFoundError, and works once memory is freed."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from kryon_core import FunctionNotFoundError, MemoryLimitError, ScriptManager, ScriptRuntimeError, SecurityPolicy

pytest.importorskip("kryon_js")

JS = "javascript"
CAP = 4 << 20
POLICIES = {
    "memory": lambda: SecurityPolicy.sandboxed(memory_limit=CAP),
    "memory+time": lambda: SecurityPolicy.sandboxed(memory_limit=CAP, time_limit=10),
}
THROWN = {"null": None, "undefined": None, "0": 0, '""': ""}


def quiet(policy: SecurityPolicy) -> ScriptManager:
    return ScriptManager(cache_dir=False, policy=policy, output=lambda lang, text: None)


def thrown_error(m: ScriptManager, call: str) -> ScriptRuntimeError:
    with pytest.raises(ScriptRuntimeError) as info:
        m.call_function(call)
    assert type(info.value) is ScriptRuntimeError, f"{type(info.value).__name__}: {info.value}"
    return info.value


@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.parametrize("value", sorted(THROWN))
def test_a_scripts_own_throw_is_a_runtime_error_under_a_memory_limit(policy, value):
    with quiet(POLICIES[policy]()) as m:
        m.load_script_from_source("thrower", JS, f"function direct() {{ throw {value}; }}\n"
                                  "function inner() { direct(); }\nfunction outer() { return inner() + 1; }")
        for fn in ("direct", "outer"):
            err = thrown_error(m, f"thrower.{fn}")
            assert err.script == "thrower" and err.language == JS
            assert err.value == THROWN[value]


@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.parametrize("value", sorted(THROWN))
def test_a_throw_at_the_top_level_is_a_runtime_error(policy, value):
    with quiet(POLICIES[policy]()) as m:
        with pytest.raises(ScriptRuntimeError) as info:
            m.load_script_from_source("top", JS, f"var x = 1;\nthrow {value};")
        assert type(info.value) is ScriptRuntimeError, f"{type(info.value).__name__}: {info.value}"
        assert info.value.script == "top"


@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.parametrize("value", sorted(THROWN))
def test_a_promise_rejected_with_a_falsy_value_is_a_runtime_error(policy, value):
    with quiet(POLICIES[policy]()) as m:
        m.load_script_from_source("p", JS, f"async function a() {{ await 1; throw {value}; }}\n"
                                  f"function r() {{ return Promise.reject({value}); }}")
        for fn in ("a", "r"):
            with pytest.raises(ScriptRuntimeError) as info:
                asyncio.run(m.call_function_async(f"p.{fn}"))
            assert type(info.value) is ScriptRuntimeError, f"{type(info.value).__name__}: {info.value}"
            assert info.value.script == "p"
        assert type(thrown_error(m, "p.r")) is ScriptRuntimeError


@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.parametrize("value", sorted(THROWN))
def test_a_throw_inside_a_kryon_call_from_another_script_is_a_runtime_error(policy, value):
    with quiet(POLICIES[policy]()) as m:
        m.load_script_from_source("callee", JS, f"function boom() {{ throw {value}; }}")
        m.load_script_from_source("caller", JS, "function via() { return kryon.call('callee.boom'); }\n"
                                  "function caught() { try { kryon.call('callee.boom'); } catch (e) { return 'caught'; } }")
        err = thrown_error(m, "caller.via")
        assert err.script in ("caller", "callee")
        assert m.call_function("caller.caught") == "caught"


FILLS = {
    "objects": "{i: i, s: 'v' + i}",
    "short strings": "'x'.repeat(16) + i",
    "strings": "'x'.repeat(100) + i",
    "typed arrays": "new Uint8Array(100)",
}


@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.parametrize("local", [False, True], ids=["global", "local"])
@pytest.mark.parametrize("fill", sorted(FILLS))
def test_running_out_of_memory_stays_a_memory_error(policy, local, fill):
    """Filled into a global (the heap stays full) or a local array (freed as the frames unwind, so the
    heap looks empty afterwards): wherever the cap falls, QuickJS's null is a MemoryLimitError."""
    decl = "var held = [];" if local else "held = held || [];"
    source = ("var held;\nfunction inner() {\n  " + decl +
              f"\n  for (var i = 0; i < 1e7; i++) held.push({FILLS[fill]});\n}}\nfunction grab() {{ inner(); }}")
    for cap_kib in range(3072, 4096 + 1, 128):
        time_limit = 30 if "time" in policy else None
        with quiet(SecurityPolicy.sandboxed(memory_limit=cap_kib << 10, time_limit=time_limit)) as m:
            m.load_script_from_source("hog", JS, source)
            with pytest.raises(MemoryLimitError) as info:
                m.call_function("hog.grab")
            assert info.value.script == "hog", cap_kib


FULL = """
var held = [];
function fill() { try { for (;;) held.push({i: held.length, s: 'v' + held.length}); } catch (e) {} return held.length; }
function release() { held = null; return 0; }
function reset() { held = []; return 0; }
function neverCalledBefore(a, b) { return a + b; }
function throwsNull() { throw null; }
"""


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_with_the_heap_full_a_new_function_is_a_memory_error_then_works(policy):
    with quiet(POLICIES[policy]()) as m:
        m.load_script_from_source("full", JS, FULL)
        m.call_function("full.release")  # its caller exists before the heap fills
        m.call_function("full.reset")
        assert m.call_function("full.fill") > 1000
        with pytest.raises(MemoryLimitError) as info:
            m.call_function("full.neverCalledBefore", [1, 2])
        assert not isinstance(info.value, FunctionNotFoundError)
        assert info.value.script == "full"
        with pytest.raises(FunctionNotFoundError):  # a name that is not there is still not found
            m.call_function("full.noSuchFunction", [1, 2])
        m.call_function("full.release")
        assert m.call_function("full.neverCalledBefore", [1, 2]) == 3
        assert type(thrown_error(m, "full.throwsNull")) is ScriptRuntimeError


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_a_scripts_own_internal_error_without_a_message_stays_a_runtime_error(policy):
    with quiet(POLICIES[policy]()) as m:
        m.load_script_from_source("ie", JS, "function f() { throw new InternalError(''); }")
        err = thrown_error(m, "ie.f")
        assert "InternalError" in str(err) and err.line == 1


def test_a_memory_limited_script_still_collects_its_cycles_early():
    """Watching the GC threshold must not hold garbage until the limit: cycles made well under a
    64 MiB limit are collected on QuickJS's own schedule (the heap stays a few MiB at most)."""
    with quiet(SecurityPolicy.sandboxed(memory_limit=64 << 20)) as m:
        m.load_script_from_source("cycles", JS, "function make(n) { for (var i = 0; i < n; i++) {"
                                  " var a = {}; var b = {a: a}; a.b = b; } return n; }")
        engine = m.engine(JS)
        peak = 0
        for _ in range(200):  # about 40 MiB of cyclic pairs in all
            m.call_function("cycles.make", [1000])
            peak = max(peak, engine.get_memory_usage().used_bytes)
        assert peak < 8 << 20, peak



COLD_SWEEP = """
import sys
from kryon_core import MemoryLimitError, ScriptManager, SecurityPolicy
policy = sys.argv[1]
steps = 40
FULL = \"\"\"
var held = [];
function fill() { try { for (;;) held.push({i: held.length, s: 'v' + held.length}); } catch (e) {} return held.length; }
function release() { held = null; return 0; }
function reset() { held = []; return 0; }
\"\"\"
source = (FULL + "function trim(k) { held.length = held.length - k; return held.length; }\\n"
          + "".join(f"function cold{i}(a, b) {{ return a + b; }}\\n" for i in range(steps)))
kinds = {}
for stride in (1, 2, 3, 5, 8):  # how much each step frees: the headroom lands at other points
    m = ScriptManager(cache_dir=False, output=lambda lang, text: None, policy=SecurityPolicy.sandboxed(
        memory_limit=4 << 20, time_limit=10 if policy == "memory+time" else None))
    m.load_script_from_source("full", "javascript", source)
    for warm in ("release", "reset"):
        m.call_function(f"full.{warm}")
    m.call_function("full.trim", [0])
    assert m.call_function("full.fill") > 1000
    for i in range(steps):
        m.call_function("full.trim", [stride])
        try:
            assert m.call_function(f"full.cold{i}", [1, 2]) == 3
            kind = "returned"
        except MemoryLimitError as exc:
            assert exc.script == "full" and exc.language == "javascript", exc
            kind = "full"
        kinds[kind] = kinds.get(kind, 0) + 1
    m.call_function("full.release")
    assert m.call_function("full.cold0", [1, 2]) == 3
assert kinds.get("full"), kinds
print(kinds)
print("alive")
"""


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_first_calls_at_every_headroom_near_a_full_heap_are_memory_errors(policy):
    """With the heap filled then trimmed a few bytes at a time, the first call of a function nobody
    called before needs room: its look-up is an indirect eval, a compile at run time, which crashed
    the process or looped forever inside QuickJS's compiler when an allocation failed midway (so each
    sweep runs in a subprocess). Each attempt returns or is a MemoryLimitError; QuickJS may not manage to make the
    error's text there (the binding then hands over "out of memory" with no error name, the name
    alone, or nothing), which was reported as the script's own uncaught exception."""
    done = subprocess.run([sys.executable, "-c", COLD_SWEEP, policy], capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert done.stdout.rstrip().endswith("alive"), done.stdout
