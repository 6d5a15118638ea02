"""The Wren core library's hot methods against the same work in CPython, side by side.

Each case is a short loop written in Wren and in Python: string
interpolation, ``List.join``, ``toString`` of a nested list,
``System.print``, a chain of lazy sequence views, ``contains`` and
``toList`` on a list, iterating a map's entries and ``sort`` with a
comparer. Both sides time their own loop and print a checksum; the
languages alternate inside each round, the best of N is kept, and one row
per case prints Wren s, CPython s and the ratio, then the geometric mean.

Usage::

    python benchmarks/wren_core_library.py [--rounds N] [--only NAME ...]

Exit status: 0 when every case ran in both languages with matching
checksums, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import sys
import time

# name -> (Wren source, Python source). Each prints "checksum: ..." and
# leaves its loop time in `elapsed` (Wren prints it as "elapsed: s").
CASES: dict[str, tuple[str, str]] = {
    "interpolation": (
        'var n = 0\nvar t = System.clock\nfor (i in 1..200000) {\n  var s = "a%(i)b%(i * 2)c"\n'
        '  n = n + s.count\n}\nSystem.print("checksum: %(n)")\nSystem.print("elapsed: %(System.clock - t)")',
        'n = 0\nt = time.perf_counter()\nfor i in range(1, 200001):\n    s = f"a{i}b{i * 2}c"\n'
        '    n += len(s)\nprint(f"checksum: {n}")\nelapsed = time.perf_counter() - t',
    ),
    "list_join": (
        'var l = (1..50).toList\nvar n = 0\nvar t = System.clock\nfor (i in 1..20000) n = n + l.join(",").count\n'
        'System.print("checksum: %(n)")\nSystem.print("elapsed: %(System.clock - t)")',
        'l = list(range(1, 51))\nn = 0\nt = time.perf_counter()\nfor i in range(20000):\n'
        '    n += len(",".join(str(x) for x in l))\nprint(f"checksum: {n}")\nelapsed = time.perf_counter() - t',
    ),
    "list_toString": (
        'var l = [1, "two", [3, 4], null, true]\nvar n = 0\nvar t = System.clock\n'
        'for (i in 1..100000) n = n + l.toString.count\n'
        'System.print("checksum: %(n)")\nSystem.print("elapsed: %(System.clock - t)")',
        'l = [1, "two", [3, 4], None, True]\nn = 0\nt = time.perf_counter()\nfor i in range(100000):\n'
        '    n += len(str(l))\nprint(f"checksum: {n - 100000 * 2}")\nelapsed = time.perf_counter() - t',
    ),
    "print": (
        'var t = System.clock\nfor (i in 1..100000) System.print(i)\n'
        'System.print("checksum: 0")\nSystem.print("elapsed: %(System.clock - t)")',
        't = time.perf_counter()\nfor i in range(1, 100001):\n    print(i)\n'
        'print("checksum: 0")\nelapsed = time.perf_counter() - t',
    ),
    "lazy_views": (
        'var n = 0\nvar t = System.clock\nfor (i in 1..300) {\n'
        '  n = n + (1..1000).map {|x| x * 2 }.where {|x| x % 3 == 0 }.skip(5).take(100).count\n}\n'
        'System.print("checksum: %(n)")\nSystem.print("elapsed: %(System.clock - t)")',
        'import itertools\nn = 0\nt = time.perf_counter()\nfor i in range(300):\n'
        '    view = itertools.islice((x for x in (y * 2 for y in range(1, 1001)) if x % 3 == 0), 5, 105)\n'
        '    n += sum(1 for _ in view)\nprint(f"checksum: {n}")\nelapsed = time.perf_counter() - t',
    ),
    "contains_toList": (
        'var l = (1..200).toList\nvar n = 0\nvar t = System.clock\n'
        'for (i in 1..20000) if (l.contains(i % 300)) n = n + l.toList.count\n'
        'System.print("checksum: %(n)")\nSystem.print("elapsed: %(System.clock - t)")',
        'l = list(range(1, 201))\nn = 0\nt = time.perf_counter()\nfor i in range(1, 20001):\n'
        '    if (i % 300) in l:\n        n += len(list(l))\nprint(f"checksum: {n}")\nelapsed = time.perf_counter() - t',
    ),
    "map_entries": (
        'var m = {}\nfor (i in 1..1000) m[i] = i\nvar n = 0\nvar t = System.clock\n'
        'for (r in 1..100) for (e in m) n = n + e.value\n'
        'System.print("checksum: %(n)")\nSystem.print("elapsed: %(System.clock - t)")',
        'm = {i: i for i in range(1, 1001)}\nn = 0\nt = time.perf_counter()\nfor r in range(100):\n'
        '    for k, v in m.items():\n        n += v\nprint(f"checksum: {n}")\nelapsed = time.perf_counter() - t',
    ),
    "sort_comparer": (
        'var n = 0\nvar t = System.clock\nfor (r in 1..20) {\n  var l = []\n'
        '  for (i in 1..2000) l.add((i * 7919) % 2003)\n  l.sort {|a, b| a < b }\n  n = n + l[1000]\n}\n'
        'System.print("checksum: %(n)")\nSystem.print("elapsed: %(System.clock - t)")',
        'import functools\nn = 0\nt = time.perf_counter()\nfor r in range(20):\n'
        '    l = [(i * 7919) % 2003 for i in range(1, 2001)]\n'
        '    l.sort(key=functools.cmp_to_key(lambda a, b: -1 if a < b else (1 if b < a else 0)))\n'
        '    n += l[1000]\nprint(f"checksum: {n}")\nelapsed = time.perf_counter() - t',
    ),
}


def checksum(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("checksum:")]


def run_wren(source: str) -> tuple[list[str], float]:
    from kryon_wren.vm import WrenVM

    vm = WrenVM(capture=True)
    try:
        vm.interpret(source, module="main")
        text = "".join(vm.output)
    finally:
        vm.close()
    elapsed = [float(line.split(":", 1)[1]) for line in text.splitlines() if line.startswith("elapsed:")]
    return checksum(text), elapsed[-1]


def run_python(source: str) -> tuple[list[str], float]:
    scope: dict = {"time": time}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, "<case>", "exec"), scope)
    return checksum(out.getvalue()), float(scope["elapsed"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs per case and language (best is kept)")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this case (repeatable)")
    args = parser.parse_args(argv)
    names = [n for n in CASES if not args.only or n in args.only]
    print(f"Wren core library vs CPython {sys.version.split()[0]}: best of {args.rounds} run(s)")
    header = f"{'case':<18}{'Wren s':>10}{'CPython s':>12}{'Wren/CPython':>15}"
    print(header)
    print("-" * len(header))
    ratios, problems = [], []
    for name in names:
        wren_src, python_src = CASES[name]
        best = {"wren": math.inf, "python": math.inf}
        sums: dict[str, list[str]] = {}
        for index in range(args.rounds):
            order = ("wren", "python") if index % 2 == 0 else ("python", "wren")
            for lang in order:
                lines, elapsed = run_wren(wren_src) if lang == "wren" else run_python(python_src)
                sums[lang] = lines
                best[lang] = min(best[lang], elapsed)
        if sums["wren"] != sums["python"]:
            problems.append(f"{name}: checksums differ: Wren {sums['wren']} vs CPython {sums['python']}")
            print(f"{name:<18}{best['wren']:>10.4f}{best['python']:>12.4f}{'MISMATCH':>15}")
            continue
        ratio = best["wren"] / best["python"]
        ratios.append(ratio)
        print(f"{name:<18}{best['wren']:>10.4f}{best['python']:>12.4f}{ratio:>15.2f}", flush=True)
    print("-" * len(header))
    if ratios:
        geomean = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
        print(f"{'geometric mean':<40}{geomean:>15.2f}   ({len(ratios)} of {len(names)} cases)")
    for problem in problems:
        print("\n" + problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
