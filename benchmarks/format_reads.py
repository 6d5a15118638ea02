"""What the sandbox's checked ``str.format`` costs, side by side in one run:

- calls from the host into one sandboxed Python worker: a function that
  formats nothing, one that builds the same text with an f-string, and one
  with ``"...".format(...)`` (a checked read since the guard's rewrite);
- the same formatting done 10 000 times inside the worker (one call), per
  format: f-string, ``.format`` on one template (its check remembered), and
  ``.format`` on a template made anew each time (a new text each time:
  checked each time), and making that template alone (``%``); and the
  same loops in a worker with the Python layers off (Python's own
  ``str.format``, no rewrite: what the check adds);
- a warm load (from the compilation cache, the worker runs the cached code)
  of a small script using ``.format`` and of the same script without it.

Times are the host's wall clock (best of 5 rounds), printed with ratios.

    python benchmarks/format_reads.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable

from kryon_core import ScriptManager, SecurityPolicy
from kryon_core.isolation.testing import cached_bytecode_off, python_layers_off

SCRIPT = """\
def plain(x):
    return x
def fstring(x):
    return f"{x} and {1:>4}"
def formatted(x):
    return "{0} and {1:>4}".format(x, 1)
def loop_fstring(n):
    for i in range(n):
        f"{i} and {1:>4}"
def loop_format(n):
    for i in range(n):
        "{0} and {1:>4}".format(i, 1)
def loop_fresh(n):
    for i in range(n):
        ("{0} and {1:>%d}" % i).format(i, 1)
def loop_fresh_percent(n):
    for i in range(n):
        "{0} and {1:>%d}" % i
"""

SMALL = "def greet(name):\n    return {greeting}\ndef add(a, b):\n    return a + b\n"
LOOPS = 10_000


def best(fn: Callable[[], object], n: int, rounds: int = 5) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - start) / n)
    return min(times)


def loops(m: ScriptManager, script: str) -> dict[str, float]:
    out = {}
    for name in ("loop_fstring", "loop_format", "loop_fresh", "loop_fresh_percent"):
        fn = m.function(f"{script}.{name}")
        out[name] = best(lambda fn=fn: fn(LOOPS), 1) / LOOPS  # type: ignore[misc]
    return out


def main() -> int:
    policy = SecurityPolicy.sandboxed(time_limit=60)
    with ScriptManager(cache=False, policy=policy) as m:
        m.load_script_from_source("bench", "python", SCRIPT)
        calls = {}
        for name in ("plain", "fstring", "formatted"):
            fn = m.function(f"bench.{name}")
            calls[name] = best(lambda fn=fn: fn("x"), 300)  # type: ignore[misc]
        for name, t in calls.items():
            print(f"host call {name:<12} {t * 1e6:9.1f} us  {t / calls['plain']:6.3f}x plain")
        checked = loops(m, "bench")
    with python_layers_off(), cached_bytecode_off(), ScriptManager(cache=False, policy=policy) as m:
        m.load_script_from_source("bench", "python", SCRIPT)
        raw = loops(m, "bench")
    for name in checked:
        print(f"in worker {name:<20} checked {checked[name] * 1e9:7.0f} ns  layers off {raw[name] * 1e9:7.0f} ns  "
              f"{checked[name] / raw[name]:5.2f}x")
    with tempfile.TemporaryDirectory() as tmp:
        sources = {"format": SMALL.format(greeting="'hello {}'.format(name)"),
                   "no format": SMALL.format(greeting="'hello ' + name")}
        with ScriptManager(cache_dir=tmp, policy=policy) as m:
            for i, source in enumerate(sources.values()):
                m.load_script_from_source(f"cold{i}", "python", source)
        with ScriptManager(cache_dir=tmp, policy=policy) as m:
            warm: dict[str, list[float]] = {label: [] for label in sources}
            how = {}
            for _ in range(7):  # interleaved: the machine's drift hits both alike
                for label, source in sources.items():
                    start = time.perf_counter()
                    m.load_script_from_source("warm", "python", source)
                    warm[label].append(time.perf_counter() - start)
                    how[label] = m.engine("python").runtime.worker_info("warm")["compiled_from"]
                    m.unload_script("warm")
            for label, times in warm.items():
                print(f"warm load {label:<12} {min(times) * 1e3:8.2f} ms  ({how[label]})  "
                      f"{min(times) / min(warm['no format']):5.2f}x the script without format")
    return 0


if __name__ == "__main__":
    sys.exit(main())
