"""A Lua table of shared references (a DAG) crossing to the host (issue 10).

The host's value model has no shared references, so a table converts once per
reference to it: 21 levels of ``t = {t, t}`` are 43 tables in Lua and four
million lists in the host. Every route a table takes to the host (a result,
several results, a ``kryon`` call's arguments, an evaluated expression)
charges each copy to the call's deadline (half the time limit more for a
result read after its call returned), to the memory cap, and to the
expansion bound every value crossing between languages has. The host stays
small, a bystander in another language keeps its state, and the next call
works."""

from __future__ import annotations

import resource
import time

import pytest

pytest.importorskip("kryon_lua")

from kryon_core import (  # noqa: E402
    ConversionError,
    MemoryLimitError,
    ScriptManager,
    ScriptTimeoutError,
    SecurityPolicy,
)
from kryon_core.values import MAX_EXPANDED_ELEMENTS  # noqa: E402

LIMIT = 0.5
#: CPU seconds an attack may take (generous: the limits fire in well under one)
CPU_BOUND = 6.0
DAG = "function dag(n) local t = {1} for i = 1, n do t = {t, t} end return t end\n"
ROUTES = {
    "result": "function f() return dag(21) end",
    "map result": "function f() local t = {a = 1} for i = 1, 21 do t = {x = t, y = t} end return t end",
    "second result": "function f() return 1, dag(21) end",
    "many small results": "function f() local t = dag(12) local r = {} for i = 1, 2000 do r[i] = t end "
                          "return table.unpack(r) end",
    "kryon.call argument": "function f() return kryon.call('by.ok', dag(21)) end",
    "kryon.log argument": "function f() kryon.log(dag(21)) end",
    "caught kryon.call": "function f() return pcall(kryon.call, 'by.ok', dag(21)) end",
}


def _manager(**limits: object) -> ScriptManager:
    m = ScriptManager(policy=SecurityPolicy.sandboxed(**limits), cache=False, output=lambda lang, text: None)  # type: ignore[arg-type]
    m.load_script_from_source("by", "javascript", "var n = 0; function ok() { return ++n; }")
    return m


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_a_table_of_shared_references_stops_at_the_deadline(route):
    m = _manager(time_limit=LIMIT)
    try:
        m.load_script_from_source("a", "lua", DAG + ROUTES[route] + "\nfunction ok() return 7 end")
        before = m.call_function("by.ok")
        start = time.process_time()
        with pytest.raises(ScriptTimeoutError) as caught:
            m.call_function("a.f")
        assert time.process_time() - start < CPU_BOUND
        err = caught.value
        assert (err.script, err.language) == ("a", "lua"), err
        assert m.call_function("a.ok") == 7
        assert m.call_function("by.ok") == before + 1
    finally:
        m.close()


def test_a_deep_dag_is_no_slower_to_refuse():
    """40 levels would be 2^41 lists: the charge stops it at the deadline all the same."""
    m = _manager(time_limit=LIMIT)
    try:
        m.load_script_from_source("a", "lua", DAG + "function f() return dag(40) end")
        start = time.process_time()
        with pytest.raises(ScriptTimeoutError):
            m.call_function("a.f")
        with pytest.raises(ScriptTimeoutError):
            m.evaluate("lua", "dag(40)", script="a")
        assert time.process_time() - start < 2 * CPU_BOUND
    finally:
        m.close()


def test_without_a_time_limit_the_memory_cap_refuses_it():
    m = _manager(time_limit=None, memory_limit=8 * 1024 * 1024)
    try:
        m.load_script_from_source("a", "lua", DAG + "function f() return dag(21) end\nfunction g() return dag(4) end")
        grown = _rss_mib()
        start = time.process_time()
        with pytest.raises(MemoryLimitError) as caught:
            m.call_function("a.f")
        assert time.process_time() - start < CPU_BOUND
        assert caught.value.script == "a" and caught.value.language == "lua"
        assert _rss_mib() - grown < 64, "the copies were refused before the host held them"
        expected: list = [1]
        for _ in range(4):
            expected = [expected, expected]
        assert m.call_function("a.g") == expected
        assert m.call_function("by.ok") == 1
    finally:
        m.close()


def test_without_any_limit_the_expansion_bound_refuses_it():
    """A sandboxed policy with neither a time limit nor a memory cap still has
    the bound on elements every value crossing between languages has."""
    m = _manager(time_limit=None, memory_limit=None)
    try:
        m.load_script_from_source("a", "lua", DAG + "function f() return dag(40) end")
        with pytest.raises(ConversionError) as caught:
            m.call_function("a.f")
        assert str(MAX_EXPANDED_ELEMENTS) in str(caught.value) and caught.value.script == "a"
    finally:
        m.close()


def test_shared_references_that_fit_still_convert():
    m = _manager(time_limit=LIMIT)
    try:
        m.load_script_from_source("a", "lua", DAG + "function f() local t = dag(10) return t, {k = t} end")
        first, second = m.call_function("a.f")
        assert first == second["k"]
        leaves, stack = 0, [first]
        while stack:
            v = stack.pop()
            if isinstance(v, list):
                stack.extend(v)
            else:
                leaves += 1
        assert leaves == 2 ** 10
    finally:
        m.close()

