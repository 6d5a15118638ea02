"""Set-up of a Wren script's instance: compiled from source against restored
from the process's image (kryon_wren/snapshot.py), side by side in one run.

Each round makes N new wasm instances, each with a VM and the modules a
script's load sets up before its own code (``kryon``, and ``io``, ``random``
and ``meta``, which a script imports without the host), keeps them alive,
and measures the time and the growth of the process's PSS per instance;
the rounds alternate the two ways.

    python benchmarks/wren_warm_start.py [--count 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gc
import time
from typing import Any

from kryon_wren import snapshot
from kryon_wren.bridge import script_prelude
from kryon_wren.vm import WasmInstance, WrenVM


def pss() -> int:
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return 0


def bind(*key: Any) -> Any:
    return lambda *args: None


def round_of(count: int, restored: bool) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds, PSS bytes, compiler runs) per instance."""
    snapshot.enabled = restored
    prelude = script_prelude()
    gc.collect()
    before = pss()
    start, cpu = time.perf_counter(), time.process_time()
    vms = [WrenVM(instance=WasmInstance(memory_limit=64 << 20, timeout=10.0), bind_foreign=bind, prelude=prelude)
           for _ in range(count)]
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    grown = pss() - before
    runs = sum(vm.compiler_runs() for vm in vms)
    for vm in vms:
        vm.close()
        vm.instance.close()
    return seconds / count, cpu / count, grown / count, runs // count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    round_of(2, True)  # the image and the compiled module exist before measuring
    best: dict[bool, tuple[float, float, float, int]] = {}
    for _ in range(args.rounds):
        for restored in (False, True):
            result = round_of(args.count, restored)
            if restored not in best or result[1] < best[restored][1]:
                best[restored] = result
    print(f"instance + VM + kryon, io, random, meta, {args.count} kept alive, best CPU of {args.rounds} rounds")
    print(f"  {'set-up':10s} {'wall ms':>9s} {'CPU ms':>8s} {'PSS KiB':>9s} {'compiler runs':>14s}  (per instance)")
    for restored, name in ((False, "compiled"), (True, "restored")):
        seconds, cpu, grown, runs = best[restored]
        print(f"  {name:10s} {seconds * 1e3:9.3f} {cpu * 1e3:8.3f} {grown / 1024:9.1f} {runs:14d}")
    (fw, fc, fm, _), (rw, rc, rm, _) = best[False], best[True]
    print(f"  restored/compiled: wall {rw / fw:.2f}, CPU {rc / fc:.2f}, PSS {rm / fm:.2f}")
    image = next((i for i in snapshot._images.values() if i is not None), None)
    if image is not None:
        print(f"  the image writes {image.written_bytes / 1024:.0f} KiB of the instance's "
              f"{image.memory_size / 2**20:.2f} MiB")


if __name__ == "__main__":
    main()
