"""Wren's memory over load, reload and unload cycles (issue 11 item 3), and
what ``get_memory_usage`` reports. Not timed: the figures are the VM's
linear memory (exact) and the process RSS (with a bound far below the old
leak of about 12 KiB per cycle)."""

from __future__ import annotations

import gc

import pytest

from kryon_core import ScriptManager, SecurityPolicy

SOURCE = ('import "kryon" for Kryon\nclass C {\n  static v() { %d }\n}\n'
          'var data = (1..200).map { |i| "item %%(i)" }.toList\nvar get = Fn.new { data.count }\n')
CHECKER_BOUND = 16 << 20


def _rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 // 1024


def _cycles(m: ScriptManager, n: int) -> None:
    engine = m.engine("wren")
    for _ in range(n):
        m.load_script_from_source("cycled", "wren", SOURCE % 1)
        assert m.call_function("cycled.C.v") == 1
        m.hot_reload_script("cycled", SOURCE % 2)
        assert m.call_function("cycled.get") == 200
        m.unload_script("cycled")
        checker = engine._checker
        assert checker is None or checker.instance.memory_size() <= CHECKER_BOUND


def _linear_memory(m: ScriptManager) -> int:
    return m.engine("wren").get_memory_usage().used_bytes


def _check_flat(policy: SecurityPolicy, cycles: int) -> None:
    with ScriptManager(policy=policy, cache=False, output=lambda lang, text: None) as m:
        m.load_script_from_source("bystander", "wren", SOURCE % 3)
        _cycles(m, 50)  # warm-up: caches, the checker VM, Python's own pools
        gc.collect()
        memory, rss = _linear_memory(m), _rss_kib()
        _cycles(m, cycles)
        gc.collect()
        assert _linear_memory(m) == memory, "the VMs' linear memory grew over load/reload/unload cycles"
        grown = _rss_kib() - rss
        # the old leak was about 12 KiB a cycle: this bound is a quarter of it
        assert grown < cycles * 3 + 1024, f"RSS grew {grown} KiB over {cycles} cycles"
        assert m.call_function("bystander.C.v") == 3


@pytest.mark.parametrize("policy", ["sandboxed", "trusted"])
def test_cycles_leave_linear_memory_and_rss_flat(policy: str) -> None:
    _check_flat(SecurityPolicy.sandboxed() if policy == "sandboxed" else SecurityPolicy.trusted(), 200)


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["sandboxed", "trusted"])
def test_two_thousand_cycles_leave_linear_memory_and_rss_flat(policy: str) -> None:
    _check_flat(SecurityPolicy.sandboxed() if policy == "sandboxed" else SecurityPolicy.trusted(), 2000)


def test_memory_usage_reports_what_the_vms_hold() -> None:
    with ScriptManager(policy=SecurityPolicy.sandboxed(memory_limit=64 << 20), cache=False) as m:
        engine = m.engine("wren")
        assert engine.get_memory_usage().used_bytes == 0
        m.load_script_from_source("small", "wren", "var x = 1\n")
        small = engine.get_memory_usage()
        assert small.used_bytes > 0 and small.scripts == 1 and small.limit == 64 << 20
        m.load_script_from_source("big", "wren", 'var keep = (1..40).map { |i| "x" * 262144 + i.toString }.toList\n')
        big = engine.get_memory_usage()
        assert big.used_bytes >= small.used_bytes + (10 << 20), "a script holding 10 MiB of strings must show"
        assert big.limit == 128 << 20 and big.scripts == 2
        m.unload_script("big")
        after = engine.get_memory_usage()
        assert after.used_bytes == small.used_bytes, "an unloaded script's memory is freed whole"
        assert after.peak_bytes is not None and after.peak_bytes >= big.used_bytes
