"""EngineGate: re-entrance, and threads calling across runtimes in opposite
orders finish instead of deadlocking (a watchdog fails the test rather than
hanging the run)."""

from __future__ import annotations

import itertools
import threading

import pytest

from kryon_core.testing.concurrency import run_threads
from kryon_core.threads import EngineGate


class Runtime:
    """A stand-in runtime guarded by a library lock that cannot be
    interrupted (as lupa's and QuickJS's cannot): entering it while another
    thread is inside blocks for good unless the gate keeps us out."""

    def __init__(self, name: str) -> None:
        self.gate = EngineGate(name)
        self.library_lock = threading.RLock()
        self.inside = 0

    def enter(self, fn, *args):
        return self.gate.run(self._inside, fn, args)

    def _inside(self, fn, args):
        with self.library_lock:
            self.inside += 1
            try:
                return fn(*args)
            finally:
                self.inside -= 1


def test_reentrant_on_one_thread():
    rt = Runtime("a")
    assert rt.enter(lambda: rt.enter(lambda: rt.enter(lambda: 7))) == 7
    assert rt.gate.held() is False


def test_errors_and_results_cross_back():
    a, b = Runtime("a"), Runtime("b")
    def boom():
        raise ValueError("from b")
    with pytest.raises(ValueError, match="from b"):
        a.enter(lambda: b.enter(boom))
    assert a.enter(lambda: b.enter(lambda: 3)) == 3


def test_opposite_nested_calls_from_two_threads_finish():
    a, b = Runtime("a"), Runtime("b")
    barrier = threading.Barrier(2)
    results = []

    def a_then_b():
        def in_a():
            barrier.wait()  # both threads are inside one runtime each
            return b.enter(lambda: "b-from-a")
        results.append(a.enter(in_a))

    def b_then_a():
        def in_b():
            barrier.wait()
            return a.enter(lambda: "a-from-b")
        results.append(b.enter(in_b))

    run_threads([a_then_b, b_then_a])
    assert sorted(results) == ["a-from-b", "b-from-a"]


def test_every_ordered_pair_from_eight_threads():
    runtimes = [Runtime(name) for name in "abcde"]
    pairs = list(itertools.permutations(runtimes, 2))
    counter = itertools.count()
    done = []

    def worker(seed):
        def body():
            for i in range(300):
                src, dst = pairs[(seed * 7 + i) % len(pairs)]
                # src calls dst, which calls back into src half of the time
                def in_dst(src=src, i=i):
                    if i % 2:
                        return src.enter(lambda: next(counter))
                    return next(counter)
                src.enter(lambda dst=dst, f=in_dst: dst.enter(f))
            done.append(seed)
        return body

    run_threads([worker(s) for s in range(8)], timeout=120)
    assert sorted(done) == list(range(8))
    assert all(rt.inside == 0 for rt in runtimes)


def test_three_runtime_cycle():
    a, b, c = Runtime("a"), Runtime("b"), Runtime("c")
    barrier = threading.Barrier(3)
    out = []

    def chain(x, y):
        def body():
            def inside():
                barrier.wait()
                return y.enter(lambda: x.gate.name + y.gate.name)
            out.append(x.enter(inside))
        return body

    run_threads([chain(a, b), chain(b, c), chain(c, a)])
    assert sorted(out) == ["ab", "bc", "ca"]


def test_caller_cache_makes_each_callable_once():
    from kryon_core import CallerCache

    made = []
    cache = CallerCache()
    for _ in range(3):
        assert cache.get(("add", 2), lambda: made.append(1) or (lambda a, b: a + b))(1, 2) == 3
    assert len(made) == 1 and len(cache) == 1 and cache.peek(("add", 2)) is not None
    cache.drop(("add", 2))
    assert cache.peek(("add", 2)) is None
    cache.get("x", lambda: print)
    cache.clear()
    assert len(cache) == 0
