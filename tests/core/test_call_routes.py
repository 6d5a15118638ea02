"""``kryon.call`` keeps the targets it resolved per caller (bridge view) and
the profiler times only a sample of calls: neither may change what a call
does. A cached target follows reloads, unloads, new scripts that make a
bare name ambiguous, and exports given or taken back; counts stay exact."""

from __future__ import annotations

import pytest
from prog_engine import ProgEngine, prog_manager

from kryon_core import (
    AccessDeniedError,
    AmbiguousFunctionError,
    DOMError,
    EngineSpec,
    FunctionNotFoundError,
    FunctionRef,
    RecursionLimitError,
    ScriptBridge,
    ScriptError,
    ScriptManager,
    SecurityPolicy,
    hookimpl,
)
from kryon_core.profiling import SAMPLE_EVERY

TRUSTED = SecurityPolicy.trusted()
SANDBOXED = SecurityPolicy.sandboxed()


@pytest.fixture
def m():
    manager = prog_manager(policy=TRUSTED)
    yield manager
    manager.close()


def load(m, name, source, policy=TRUSTED):
    return m.load_script_from_source(name, "prog", source, policy=policy)


CALLER = "def ask(name, *args): return kryon.call(name, *args)"


def test_a_cached_target_follows_reload_and_unload(m):
    load(m, "lib", "def f(x): return x + 1")
    load(m, "app", CALLER)
    assert m.call_function("app.ask", ["lib.f", 1]) == 2
    assert m.call_function("app.ask", ["f", 1]) == 2
    m.hot_reload_script("lib", "def f(x): return x + 100")
    assert m.call_function("app.ask", ["lib.f", 1]) == 101
    assert m.call_function("app.ask", ["f", 1]) == 101
    m.unload_script("lib")
    for name in ("lib.f", "f"):
        with pytest.raises(FunctionNotFoundError):
            m.call_function("app.ask", [name, 1])
    load(m, "lib", "def f(x): return x * 3")
    assert m.call_function("app.ask", ["f", 2]) == 6


def test_a_cached_bare_name_becomes_ambiguous(m):
    load(m, "one", "def g(): return 1")
    load(m, "app", CALLER)
    assert m.call_function("app.ask", ["g"]) == 1
    load(m, "two", "def g(): return 2")
    with pytest.raises(AmbiguousFunctionError):
        m.call_function("app.ask", ["g"])
    assert m.call_function("app.ask", ["two.g"]) == 2


def test_a_cached_target_loses_its_export(m):
    load(m, "api", "kryon.expose('add')\ndef add(a, b): return a + b")
    load(m, "plugin", CALLER, SANDBOXED)
    assert m.call_function("plugin.ask", ["api.add", 2, 3]) == 5
    m.hot_reload_script("api", "def add(a, b): return a + b")  # the new version exports nothing
    with pytest.raises(AccessDeniedError):
        m.call_function("plugin.ask", ["api.add", 2, 3])
    m.expose("api.add", to=["plugin"])
    assert m.call_function("plugin.ask", ["api.add", 2, 3]) == 5
    m.unexpose("api.add")
    with pytest.raises(AccessDeniedError):
        m.call_function("plugin.ask", ["api.add", 2, 3])


def test_a_cached_target_still_checks_results_for_a_sandboxed_caller(m):
    load(m, "api", "def secret(): return 1\ndef give(): return ref(secret)")
    m.expose("api.give")
    load(m, "plugin", CALLER, SANDBOXED)
    for _ in range(3):  # the route is cached after the first: the result is still admitted every time
        with pytest.raises(AccessDeniedError, match="api.secret"):
            m.call_function("plugin.ask", ["api.give"])


def test_nesting_through_cached_targets_hits_the_limit(m):
    policy = SecurityPolicy.trusted(max_recursion=12)
    load(m, "deep", "def down(n): return n if n == 0 else kryon.call('deep.down', n - 1)", policy)
    assert m.call_function("deep.down", [5]) == 0
    with pytest.raises(RecursionLimitError, match="nested deeper than 12"):
        m.call_function("deep.down", [50])
    assert m.call_function("deep.down", [5]) == 0, "the depth counter is back to zero after the error"


def test_counts_are_exact_and_times_sampled(m):
    load(m, "lib", "def f(x): return x\ndef bad(): raise ValueError('no')")
    load(m, "app", CALLER)
    calls = 3 * SAMPLE_EVERY + 5
    for i in range(calls):
        assert m.call_function("lib.f", [i]) == i
        m.call_function("app.ask", ["lib.f", i])
    for _ in range(3):
        with pytest.raises(Exception, match="no"):
            m.call_function("app.ask", ["lib.bad"])
    stats = m.profiler.functions["lib.f"]
    assert stats.calls == 2 * calls and stats.errors == 0
    assert SAMPLE_EVERY < stats.timed < stats.calls, "the first calls are timed, then only a sample"
    assert stats.total_ns >= stats.timed_ns and stats.max_ns <= stats.timed_ns
    assert m.profiler.functions["lib.bad"].errors == 3
    cross = m.interop.call_stats["lib.f"]
    assert (cross.successful_calls, cross.failed_calls, cross.by_caller) == (calls, 0, {"prog": calls})
    assert SAMPLE_EVERY <= cross.timed < calls and cross.total_ns >= cross.timed_ns
    assert m.interop.call_stats["lib.bad"].failed_calls == 3
    assert m.profiler.scripts["lib"].calls == 2 * calls + 3


def test_a_function_becomes_hot_through_kryon_call():
    m = prog_manager(policy=TRUSTED, hot_threshold=SAMPLE_EVERY + 3)
    load(m, "lib", "def f(x): return x")
    load(m, "app", CALLER)
    for i in range(SAMPLE_EVERY + 2):
        m.call_function("app.ask", ["lib.f", i])
    assert "lib.f" not in [h.function_name for h in m.profiler.hot_functions()]
    m.call_function("app.ask", ["lib.f", 0])
    assert "lib.f" in [h.function_name for h in m.profiler.hot_functions()]
    m.close()


def test_a_function_called_a_few_times_is_timed_exactly_and_a_cold_call_does_not_swell_the_estimate(m):
    load(m, "lib", "import time\ndef f(cold=False):\n    if cold:\n        time.sleep(0.05)\n    return 1")
    for _ in range(SAMPLE_EVERY - 1):
        m.call_function("lib.f")
    m.call_function("lib.f", [True])  # one slow call among the first: it stays out of the periodic sample
    stats = m.profiler.functions["lib.f"]
    assert stats.timed == stats.calls == SAMPLE_EVERY and stats.total_ns == stats.timed_ns >= 50_000_000
    for _ in range(20 * SAMPLE_EVERY):
        m.call_function("lib.f")
    assert stats.steady and stats.total_ns < stats.timed_ns + (stats.calls - stats.timed) * 1_000_000, (
        "the untimed calls are estimated from the periodic sample, not from the slow early call")


class BoundTierEngine(ProgEngine):
    """A prog engine whose bound callables keep the function they were made
    for (as a real engine's caller does), with a second tier for ``hot_*``
    functions that doubles every result: after a move, only a caller fetched
    again reaches the new tier."""

    language = "bound"

    def get_function(self, function: str, *, script: str) -> FunctionRef:
        fn = self.namespaces[script][function]
        return self._function_ref(lambda *args: self.gate.run(fn, *args), function, script)

    def faster_tier(self, script: str, function: str) -> str | None:
        return "fast" if function.startswith("hot_") else None

    def on_hot_function(self, script: str, function: str) -> tuple[str, float] | None:
        if self.faster_tier(script, function) is None:
            return None
        original = self.namespaces[script][function]
        self.namespaces[script][function] = lambda *a: 2 * original(*a)
        return "fast", 2.0


class BoundTierPlugin:
    @hookimpl
    def kryon_register_engines(self) -> list[EngineSpec]:
        return [EngineSpec(language="bound", factory=BoundTierEngine)]


def test_a_cached_route_follows_its_function_to_a_faster_tier():
    """A route keeps its callee's bound callable; the move to a faster tier
    makes the routes resolve again, so kryon.call reaches the new tier."""
    m = ScriptManager(plugins=[BoundTierPlugin()], discover=False, cache=False, policy=TRUSTED, hot_threshold=3)
    m.load_script_from_source("lib", "bound", "def hot_add(a, b): return a + b")
    m.load_script_from_source("app", "bound", CALLER)
    results = [m.call_function("app.ask", ["lib.hot_add", 1, 2]) for _ in range(5)]
    assert results == [3, 3, 3, 6, 6], "the third call made it hot; the next ones run in the faster tier"
    assert m.profiler.functions["lib.hot_add"].tier == "fast"
    m.close()


def test_a_router_refuses_names_that_are_not_strings_and_gives_errors_the_callers_language(m):
    load(m, "lib", "def f(x): return x")
    load(m, "app", "")
    route = m.interop.router("prog", "app", TRUSTED)
    assert route("lib.f", 5) == 5
    for bad in (42, None, ["lib.f"], {"a": 1}):  # hashable ones miss the cache, the others cannot be looked up
        with pytest.raises(DOMError, match="function name must be a string") as info:
            route(bad, 1)
        assert info.value.language == "prog"
    with pytest.raises(FunctionNotFoundError) as info:
        route("lib.nope")
    assert info.value.language == "prog"
    assert m.interop.call_stats["lib.nope"].failed_calls == 1
    with pytest.raises(ScriptError, match="kryon.call needs a ScriptManager"):
        ScriptBridge("prog").call("lib.f", 1)


def test_a_view_keeps_one_router_and_its_routes(m):
    load(m, "lib", "def f(x): return x + 1")
    view = m._bridges["prog"].for_script("app", TRUSTED)
    assert view.router() is view.router()
    assert view.call("lib.f", 1) == 2
    assert list(view.routes) == ["lib.f"], "the view's own method goes through its router and routes"
