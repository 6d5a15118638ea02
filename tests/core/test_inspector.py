"""Which functions the ``kryon serve`` inspector marks hot."""

from types import SimpleNamespace

from kryon_core.profiling import SAMPLE_EVERY, CallStats, Profiler
from kryon_core.serve.inspector import HOT_SHARE_MIN_CALLS, _functions


def _app(*calls_and_ns):
    profiler = Profiler()
    for i, (calls, each_ns) in enumerate(calls_and_ns):
        stats = profiler.functions[f"s.f{i}"] = CallStats(f"s.f{i}", "lua")
        for n in range(1, calls + 1):
            stats.calls = n
            if n <= SAMPLE_EVERY or n % SAMPLE_EVERY == 1:
                stats.record(each_ns, n)
    return SimpleNamespace(manager=SimpleNamespace(profiler=profiler))


def _hot(app):
    return {row["name"]: row["hot"] for row in _functions(app)}


def test_a_slow_function_called_twice_is_not_hot_beside_a_busy_one():
    # two functions: one always takes half the time, whichever is slower
    assert _hot(_app((2, 5_000_000), (999, 1_000))) == {"s.f0": False, "s.f1": False}


def test_a_function_called_often_and_taking_most_of_the_time_is_hot():
    assert _hot(_app((HOT_SHARE_MIN_CALLS, 50_000), (3, 1_000))) == {"s.f0": True, "s.f1": False}
    assert _hot(_app((HOT_SHARE_MIN_CALLS - 1, 50_000), (3, 1_000)))["s.f0"] is False


def test_a_function_past_the_threshold_is_hot_at_any_share():
    app = _app((1000, 1), (2, 5_000_000))
    app.manager.profiler.functions["s.f0"].hot = True
    assert _hot(app) == {"s.f0": True, "s.f1": False}


def test_one_function_alone_is_not_hot_by_share():
    assert _hot(_app((500, 1_000))) == {"s.f0": False}
