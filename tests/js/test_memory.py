"""No script takes memory from the host: values handed into a context are
refused before they are built when they would not fit its limits (a small
shared-reference DAG stands for a huge tree), shared-data loops are charged
to the script, each sandboxed script's memory limit is its own, and one
script's fault (memory, time, stack) never resets another's state."""

from __future__ import annotations

import pytest

from kryon_core import (
    LimitExceededError,
    MemoryLimitError,
    RecursionLimitError,
    ScriptError,
    ScriptManager,
    ScriptTimeoutError,
    SecurityPolicy,
    SizeLimitError,
)

pytest.importorskip("kryon_js")

JS = "javascript"


def quiet(policy: SecurityPolicy) -> ScriptManager:
    return ScriptManager(cache_dir=False, policy=policy, output=lambda lang, text: None)


def dag(levels: int) -> list:
    node: list = ["x" * 64]
    for _ in range(levels):
        node = [node, node]  # 2**levels leaves, a few hundred bytes of host memory
    return node


@pytest.mark.parametrize("route", ["argument", "host result", "list of them"])
def test_a_value_that_would_not_fit_is_refused_before_it_is_built(route):
    m = quiet(SecurityPolicy.sandboxed(memory_limit=8 * 1024 * 1024, time_limit=5))
    m.load_script_from_source("s", JS, """
        function len(x) { return JSON.stringify(x).length; }
        function viaHost(f) { return len(f()); }
        function viaShared() { return len(kryon.getShared("big")); }
        function ok() { return 1; }
    """)
    huge = dag(40)
    with pytest.raises(SizeLimitError):
        if route == "argument":
            m.call_function("s.len", [huge])
        elif route == "host result":
            m.call_function("s.viaHost", [lambda: huge])
        else:
            m.call_function("s.len", [[dag(20)] * 64])
    assert m.call_function("s.len", [dag(3)]) > 0 and m.call_function("s.ok") == 1
    m.close()


def test_shared_data_loops_cannot_grow_the_host():
    m = quiet(SecurityPolicy.sandboxed(max_shared_entries=50, max_shared_bytes=64 * 1024))
    m.load_script_from_source("s", JS, """
        function many() { for (let i = 0; ; i++) kryon.createShared("k" + i, i); }
        function heavy() { for (let i = 0; ; i++) kryon.setShared("h", "x".repeat(1024 * (i + 1))); }
        function count() { return 1; }
    """)
    m.load_script_from_source("bystander", JS, "function ok() { return 2; }")
    with pytest.raises(ScriptError) as info:
        m.call_function("s.many")
    assert isinstance(info.value, (LimitExceededError, ScriptError)) and len(m.shared.list()) <= 50 \
        if hasattr(m.shared, "list") else True
    m.call_function("s.count")
    with pytest.raises(ScriptError):
        m.call_function("s.heavy")
    assert m.call_function("bystander.ok") == 2
    m.close()


def test_each_scripts_memory_limit_is_its_own():
    m = quiet(SecurityPolicy.sandboxed(time_limit=20))
    small = SecurityPolicy.sandboxed(memory_limit=4 * 1024 * 1024, time_limit=20)
    large = SecurityPolicy.sandboxed(memory_limit=64 * 1024 * 1024, time_limit=20)
    source = "function take(mb) { globalThis.keep = new Uint8Array(mb * 1024 * 1024); return keep.length; }"
    m.load_script_from_source("small", JS, source, policy=small)
    m.load_script_from_source("large", JS, source, policy=large)
    assert m.call_function("large.take", [32]) == 32 * 1024 * 1024
    with pytest.raises(MemoryLimitError):
        m.call_function("small.take", [8])
    assert m.call_function("small.take", [1]) == 1024 * 1024
    m.close()


FAULTS = {
    "memory": ("function fault() { const a = []; for (;;) a.push(new Array(1e5).fill(1)); }", MemoryLimitError),
    "time": ("function fault() { for (;;) {} }", ScriptTimeoutError),
    "stack": ("function fault() { return fault() + 1; }", RecursionLimitError),
    "builtin": ("function fault() { return [].join.call({length: 2 ** 32 - 1}); }", ScriptTimeoutError),
}


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_one_scripts_fault_never_resets_another_scripts_state(kind):
    # the memory fault gets time to reach its limit on a loaded machine; the others must be cut short
    time_limit = 20 if kind == "memory" else 0.3
    m = quiet(SecurityPolicy.sandboxed(memory_limit=32 * 1024 * 1024, time_limit=time_limit, max_recursion=200))
    m.load_script_from_source("bystander", JS, "let n = 0; const data = { list: [] };\n"
                              "function bump() { n++; data.list.push(n); return [n, data.list.length]; }")
    m.call_function("bystander.bump")
    source, error = FAULTS[kind]
    m.load_script_from_source("faulty", JS, "let mine = 41;\n" + source + "\nfunction mineNow() { return ++mine; }")
    with pytest.raises(error):
        m.call_function("faulty.fault")
    assert m.call_function("bystander.bump") == [2, 2], "the bystander's state must be untouched"
    assert m.call_function("faulty.mineNow") == 42, "the faulty script keeps its own state too"
    m.close()


@pytest.mark.parametrize("cap_kib", range(3584, 4608 + 1, 128))
@pytest.mark.parametrize("chunk", [4096, 65536])
def test_filling_the_cap_is_a_memory_error_wherever_the_allocation_fails(cap_kib, chunk):
    """Wherever the cap falls, even inside the prelude's own catch (QuickJS then
    throws null past it: it cannot allocate its out-of-memory error), the host
    reports a MemoryLimitError naming the script."""
    source = ("var held = [];\nfunction grab() {\n"
              f"  for (var i = 0; i < 100000; i++) held.push('x'.repeat({chunk}) + i);\n  return held.length;\n}}\n")
    with quiet(SecurityPolicy.sandboxed(memory_limit=cap_kib << 10)) as m:
        m.load_script_from_source("hog", JS, source)
        with pytest.raises(MemoryLimitError) as info:
            m.call_function("hog.grab")
        assert info.value.script == "hog"
