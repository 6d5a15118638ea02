"""Start-up, each figure the median of fresh processes: ``ScriptManager()``
discovery (after ``import kryon_core``), and ``kryon run hello.X`` per
language next to ``python -c "import kryon_core"`` plus that engine's own
start-up (its library imported and one runtime made), with the ratio.
Targets: discovery at most 20 ms; ``kryon run hello.X`` at most 1.5x.

``import kryon_core`` loads its names on first use, so it no longer loads the
library; the second ratio is against ``from kryon_core import ScriptManager``
plus the engine (the library loaded, what ``import kryon_core`` cost before).

    python benchmarks/startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
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


#: the commands may write bytecode: an installed package has its modules compiled (pip compiles
#: them on install), so with PYTHONDONTWRITEBYTECODE set every edited module of a source tree
#: would be compiled again on every run, and the figures would time the compiler
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str], runs: int) -> float:
    """Median wall seconds of ``cmd`` over ``runs`` runs (after one warm-up, which writes bytecode)."""
    subprocess.run(cmd, capture_output=True, env=ENV)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=False, env=ENV)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    py = sys.executable
    inner = [float(subprocess.run([py, "-c", DISCOVERY], capture_output=True, text=True, env=ENV).stdout)
             for _ in range(args.runs)]
    print(f"ScriptManager() discovery: median {statistics.median(inner) * 1e3:.1f} ms (target <= 20 ms)")
    bare = timed([py, "-c", "pass"], args.runs)
    base = timed([py, "-c", "import kryon_core"], args.runs)
    library = timed([py, "-c", LIBRARY], args.runs)
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
            run = timed([py, "-m", "kryon_core.cli", "run", str(path)], args.runs)
            raw = timed([py, "-c", f"import kryon_core; {RAW[lang]}"], args.runs)
            loaded = timed([py, "-c", f"{LIBRARY}; {RAW[lang]}"], args.runs)
            print(f"  {lang:12s} {run * 1e3:13.0f} ms {raw * 1e3:13.0f} ms  {run / raw:5.2f}x"
                  f" {' ' * 20}{loaded * 1e3:11.0f} ms  {run / loaded:5.2f}x")


if __name__ == "__main__":
    main()
