"""Classic interpreter benchmarks: Kryon's Wren VM against CPython, side by side.

Each benchmark is written twice, the same way in both languages, in
``benchmarks/programs/NAME.wren`` and ``benchmarks/programs/NAME.py``. Each
program times its own main loop (``System.clock`` in Wren,
``time.perf_counter()`` in Python) and prints one or more checksum lines
followed by ``elapsed: <seconds>``.

This script runs every program in CPython (a subprocess of the current
interpreter) and in Kryon's Wren (a fresh ``kryon_wren.vm.WrenVM`` per run,
output captured, no fuel or time limit), checks that both print the same
checksums, keeps the best of N runs of each program's own ``elapsed``
(languages alternate inside each round so machine noise hits both alike),
and prints one row per program (Wren s, CPython s, ratio Wren/CPython)
and the geometric mean of the ratios. Targets: every program <= 1.0 and the
geometric mean <= 0.8.

``--cpu`` times CPU instead of the wall clock, which a shared machine
disturbs less: CPython's ``time.perf_counter`` is replaced by
``time.process_time`` before the program runs (it still times its own loop),
and the Wren run is the thread's CPU time around the whole ``interpret``
(compiling the program included, which only counts against Wren).

Usage::

    python benchmarks/wren_vs_cpython.py [--rounds N] [--cpu] [--only NAME ...]

Exit status: 0 when every program ran in both languages with matching
checksums, 1 otherwise.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from pathlib import Path

PROGRAMS_DIR = Path(__file__).resolve().parent / "programs"

# Run order; every name needs NAME.wren and NAME.py in programs/.
PROGRAMS = [
    "fib",
    "method_call",
    "binary_trees",
    "for_loops",
    "map_numeric",
    "map_string",
    "delta_blue",
    "string_equals",
]

# Wren's heap gets room to spare; the programs stay far below it.
WREN_MEMORY_LIMIT = 1024 * 1024 * 1024


class RunError(Exception):
    """A program failed to run or printed no ``elapsed:`` line."""


def parse_output(text: str) -> tuple[list[str], float]:
    """Splits a program's output into checksum lines and its elapsed time."""
    checksums: list[str] = []
    elapsed: float | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("elapsed:"):
            elapsed = float(line.split(":", 1)[1])
        else:
            checksums.append(line)
    if elapsed is None:
        raise RunError("no 'elapsed:' line in output:\n" + text)
    return checksums, elapsed


def normalize(lines: list[str]) -> list[tuple[object, ...]]:
    """Checksum lines with numbers compared by value (Python may print 5.0 where Wren prints 5)."""
    result = []
    for line in lines:
        tokens: list[object] = []
        for token in line.split():
            try:
                tokens.append(float(token))
            except ValueError:
                tokens.append(token)
        result.append(tuple(tokens))
    return result


# runs a program with its loop timer reading CPU time instead of the wall clock
_CPU_RUNNER = "import runpy, sys, time; time.perf_counter = time.process_time; runpy.run_path(sys.argv[1], run_name='__main__')"

CPU_TIME = False


def run_python(name: str) -> tuple[list[str], float]:
    path = PROGRAMS_DIR / f"{name}.py"
    command = [sys.executable, "-c", _CPU_RUNNER, str(path)] if CPU_TIME else [sys.executable, str(path)]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RunError(f"CPython exited with {proc.returncode}:\n{proc.stderr.strip()}")
    return parse_output(proc.stdout)


def run_wren(name: str) -> tuple[list[str], float]:
    from kryon_wren.vm import WrenError, WrenVM

    source = (PROGRAMS_DIR / f"{name}.wren").read_text()
    vm = WrenVM(capture=True, memory_limit=WREN_MEMORY_LIMIT)
    try:
        started = time.thread_time()
        try:
            vm.interpret(source, module="main")
        except WrenError as error:
            detail = getattr(error, "trace", "") or ""
            raise RunError(f"{type(error).__name__}: {error}\n{detail}".rstrip()) from error
        cpu = time.thread_time() - started
        lines, elapsed = parse_output("".join(vm.output))
        return lines, (cpu if CPU_TIME else elapsed)
    finally:
        try:
            vm.close()
        except Exception:
            pass


RUNNERS = {"wren": run_wren, "python": run_python}


def bench(name: str, rounds: int) -> dict:
    """Best-of-``rounds`` elapsed per language; the order alternates per round."""
    best = {"wren": math.inf, "python": math.inf}
    checksums = {}
    errors = {}
    for index in range(rounds):
        order = ("wren", "python") if index % 2 == 0 else ("python", "wren")
        for lang in order:
            if lang in errors:
                continue
            try:
                lines, elapsed = RUNNERS[lang](name)
            except RunError as error:
                errors[lang] = str(error)
                continue
            checksums.setdefault(lang, lines)
            if normalize(lines) != normalize(checksums[lang]):
                errors[lang] = f"checksum changed between runs: {checksums[lang]} then {lines}"
                continue
            best[lang] = min(best[lang], elapsed)
    mismatch = None
    if not errors and normalize(checksums["wren"]) != normalize(checksums["python"]):
        mismatch = f"checksums differ: Wren {checksums['wren']} vs CPython {checksums['python']}"
    return {"best": best, "checksums": checksums, "errors": errors, "mismatch": mismatch}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs per program and language (best is kept)")
    parser.add_argument(
        "--only", action="append", metavar="NAME", help="run only this program (repeatable; comma lists allowed)"
    )
    parser.add_argument("--cpu", action="store_true", help="time CPU instead of the wall clock")
    args = parser.parse_args(argv)
    global CPU_TIME
    CPU_TIME = args.cpu
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    names = PROGRAMS
    if args.only:
        wanted = [n for item in args.only for n in item.split(",") if n]
        unknown = [n for n in wanted if n not in PROGRAMS]
        if unknown:
            parser.error(f"unknown program(s) {', '.join(unknown)}; known: {', '.join(PROGRAMS)}")
        names = [n for n in PROGRAMS if n in wanted]

    clock = "CPU time" if args.cpu else "wall time"
    print(f"Wren (kryon_wren) vs CPython {sys.version.split()[0]}: best of {args.rounds} run(s), "
          f"each program timing its own loop ({clock})")
    header = f"{'program':<16}{'Wren s':>10}{'CPython s':>12}{'Wren/CPython':>15}"
    print(header)
    print("-" * len(header))
    ratios = []
    over = []
    problems = []
    for name in names:
        result = bench(name, args.rounds)
        best = result["best"]
        wren = f"{best['wren']:.4f}" if best["wren"] < math.inf else "-"
        python = f"{best['python']:.4f}" if best["python"] < math.inf else "-"
        if result["errors"] or result["mismatch"]:
            status = "FAILED" if result["errors"] else "MISMATCH"
            print(f"{name:<16}{wren:>10}{python:>12}{status:>15}", flush=True)
            for lang, message in result["errors"].items():
                problems.append(f"{name} ({'Wren' if lang == 'wren' else 'CPython'}): {message}")
            if result["mismatch"]:
                problems.append(f"{name}: {result['mismatch']}")
            continue
        ratio = best["wren"] / best["python"]
        ratios.append(ratio)
        if ratio > 1.0:
            over.append(name)
        print(f"{name:<16}{wren:>10}{python:>12}{ratio:>15.2f}", flush=True)
    print("-" * len(header))
    if ratios:
        geomean = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
        print(f"{'geometric mean':<38}{geomean:>15.2f}   ({len(ratios)} of {len(names)} programs; target <= 0.8)")
        print(f"programs over 1.0: {', '.join(over) if over else 'none'} (target: none)")
    else:
        print("geometric mean: no program completed in both languages")
    for problem in problems:
        print("\n" + problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
