"""Start-up, each figure the median of fresh processes: ``ScriptManager()``
discovery (after ``import kryon_core``), and ``kryon run hello.X`` per
language next to ``python -c "import kryon_core"`` plus that engine's own
start-up (its library imported and one runtime made), with the ratio.
Targets: discovery at most 20 ms; ``kryon run hello.X`` at most 1.5x.

``import kryon_core`` loads its names on first use, so it no longer loads the
library; the second ratio is against ``from kryon_core import ScriptManager``
plus the engine (the library loaded, what ``import kryon_core`` cost before).

``--phases`` also splits ``kryon run hello.X`` into its steps, each the
median over fresh processes of the step timed inside the process (the
interpreter's own start-up is the ``python -c 'pass'`` line).

``--cpu`` reports each command's CPU time instead of its wall time: on a
shared machine the ratios then move less with the other processes' load.

    python benchmarks/startup.py [--runs 7] [--phases] [--cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kryon_core import ScriptManager

HELLO = {
    "lua": ("hello.lua", 'print("hello")'),
    "javascript": ("hello.js", 'print("hello");'),
    "python": ("hello.py", 'print("hello")'),
    "lisp": ("hello.kl", '(print "hello")'),
    "wren": ("hello.wren", 'System.print("hello")'),
}
#: each engine's own start-up: its library imported and one runtime made
RAW = {
    "lua": "import lupa.lua54 as l; l.LuaRuntime()",
    "javascript": "import quickjs; quickjs.Context()",
    "python": "pass",
    "lisp": "import hy",
    "wren": "import wasmtime, kryon_wren, importlib.resources as r; e = wasmtime.Engine(); "
            "wasmtime.Module(e, r.files('kryon_wren').joinpath('kryon_wren.wasm').read_bytes())",
}
#: the library loaded (``import kryon_core`` alone imports none of it)
LIBRARY = "from kryon_core import ScriptManager"
#: discovery alone: the manager's module is imported before the clock starts (``import kryon_core``
#: loads its names on first use, so ``kryon_core.ScriptManager`` would time the import too)
DISCOVERY = (
    "import time; from kryon_core import ScriptManager; t = time.perf_counter(); ScriptManager(); "
    "print(time.perf_counter() - t)"
)

#: the steps of ``kryon run FILE`` (what kryon_core.cli.run does), each timed in one fresh process;
#: the engine is made before the load so that its import is a step of its own
PHASES = """
import json, sys, time
clock = time.perf_counter
t0 = clock()
from kryon_core import cli
from kryon_core.cli import run
t1 = clock()
args = cli.parse(["run", sys.argv[1]])
args.plugins = cli.load_plugins(args.plugin)
args.log_level_number = cli.configure_logging(args.log_level)
t2 = clock()
manager = run.ScriptManager(policy=run.policy_from(args), plugins=args.plugins)
manager.setup_dom_bridge(run.Document(on_log=run.script_logger(args.log_level_number)))
t3 = clock()
path = run.Path(sys.argv[1])
language = run.language_of(manager, path)
manager.engine(language)
t4 = clock()
manager.load_script_from_source("__main__" if language == "python" else path.stem, language, path.read_bytes(),
                                filename=str(path))
t5 = clock()
manager.close()
t6 = clock()
print(json.dumps([t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5]))
"""
PHASE_NAMES = ("import the command and library", "parse the command line", "ScriptManager() and document",
               "create the engine", "load and run the script", "close")


def phases(py: str, path: Path, runs: int) -> list[float]:
    """Median seconds of each step of PHASES over ``runs`` fresh processes."""
    samples = [json.loads(subprocess.run([py, "-c", PHASES, str(path)], capture_output=True, text=True, env=ENV,
                                         check=True).stdout.splitlines()[-1]) for _ in range(runs + 1)][1:]
    return [statistics.median(column) for column in zip(*samples, strict=True)]

#: the commands may write bytecode: an installed package has its modules compiled (pip compiles
#: them on install), so with PYTHONDONTWRITEBYTECODE set every edited module of a source tree
#: would be compiled again on every run, and the figures would time the compiler
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], runs: int, cpu: bool = False) -> float:
    """Median seconds of ``cmd`` over ``runs`` runs (after one warm-up, which writes bytecode):
    wall time, or with ``cpu`` the process's CPU time, which other processes on a shared
    machine disturb less (a wait is not counted; threads running at once are)."""
    subprocess.run(cmd, capture_output=True, env=ENV)
    times = []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), _children_cpu()
        subprocess.run(cmd, capture_output=True, check=False, env=ENV)
        times.append(_children_cpu() - start_cpu if cpu else time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--phases", action="store_true", help="also time each step of kryon run hello.X")
    parser.add_argument("--cpu", action="store_true", help="CPU time (user + system) instead of wall time")
    args = parser.parse_args()
    measure = "CPU" if args.cpu else "wall"
    print(f"{measure} time, median of {args.runs} runs")
    py = sys.executable
    inner = [float(subprocess.run([py, "-c", DISCOVERY], capture_output=True, text=True, env=ENV).stdout)
             for _ in range(args.runs)]
    print(f"ScriptManager() discovery: median {statistics.median(inner) * 1e3:.1f} ms (target <= 20 ms)")
    bare = timed([py, "-c", "pass"], args.runs, args.cpu)
    base = timed([py, "-c", "import kryon_core"], args.runs, args.cpu)
    library = timed([py, "-c", LIBRARY], args.runs, args.cpu)
    print(f"python -c 'pass': {bare * 1e3:.0f} ms, 'import kryon_core': {base * 1e3:.0f} ms, "
          f"'{LIBRARY}': {library * 1e3:.0f} ms")
    print(f"  {'language':12s} {'kryon run hello':>16s} {'import + engine':>16s}  ratio (target <= 1.5)"
          f" {'library + engine':>17s}  ratio")
    installed = ScriptManager(cache=False).languages
    with tempfile.TemporaryDirectory() as tmp:
        for lang, (name, source) in HELLO.items():
            if lang not in installed:
                continue
            path = Path(tmp) / name
            path.write_text(source)
            run = timed([py, "-m", "kryon_core.cli", "run", str(path)], args.runs, args.cpu)
            raw = timed([py, "-c", f"import kryon_core; {RAW[lang]}"], args.runs, args.cpu)
            loaded = timed([py, "-c", f"{LIBRARY}; {RAW[lang]}"], args.runs, args.cpu)
            print(f"  {lang:12s} {run * 1e3:13.0f} ms {raw * 1e3:13.0f} ms  {run / raw:5.2f}x"
                  f" {' ' * 20}{loaded * 1e3:11.0f} ms  {run / loaded:5.2f}x")
            if args.phases:
                steps = phases(py, path, args.runs)
                print("      " + ", ".join(f"{n} {t * 1e3:.1f}" for n, t in zip(PHASE_NAMES, steps, strict=True))
                      + f" ms (sum {sum(steps) * 1e3:.1f})")


if __name__ == "__main__":
    main()
