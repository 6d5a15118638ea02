"""Where a forked worker's private pages come from: load N small sandboxed
scripts (a worker each, forked by the fork server), then compare each page
a worker holds alone with the zygote's page at the same address.

- "new": the zygote has no page there (memory the worker made);
- "copied": the zygote has one (copy-on-write: the worker, or the zygote
  after the fork, wrote to a shared page), sorted by how many 8-byte words
  differ now. A copied page with 0 to 2 changed words is almost always a
  reference count written (and often restored) on a shared object: the
  cost of CPython 3.11 touching an object, not the worker's own data.
  For such words the type of the object is read from the zygote's memory.

It also prints each worker's Private_Dirty: the last worker forked is
typically a few pages below the others, which is what the zygote's own
writes after a fork cost each child (the earlier child keeps the old page).

Needs root (the page frame numbers in /proc/PID/pagemap, and the memory of
workers, which are not dumpable). Linux only.

    sudo python benchmarks/fork_pages.py [--language python] [--count 12]
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import struct
import time

from kryon_core import ScriptManager, SecurityPolicy
from kryon_core.isolation import forkserver
from kryon_core.testing.soak import COUNTERS

PAGE = 4096
_PRESENT, _EXCLUSIVE = 1 << 63, 1 << 56
_PFN = (1 << 55) - 1


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids += [int(p) for p in f.read().split()]
        except OSError:
            pass
    return kids


def _writable_maps(pid: int) -> list[tuple[int, int, str]]:
    out = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if "w" not in parts[1]:
                continue
            start, end = (int(x, 16) for x in parts[0].split("-"))
            name = parts[5].strip() if len(parts) > 5 else "[anon]"
            if name.startswith("[v"):
                continue  # vvar, vdso
            out.append((start, end, os.path.basename(name) if name.startswith("/") else name))
    return out


def _pagemap(pid: int, start: int, end: int) -> tuple[int, ...]:
    with open(f"/proc/{pid}/pagemap", "rb") as f:
        f.seek(start // PAGE * 8)
        data = f.read((end - start) // PAGE * 8)
    return struct.unpack(f"{len(data) // 8}Q", data)


def _read(pid: int, address: int, size: int) -> bytes:
    with open(f"/proc/{pid}/mem", "rb") as f:
        f.seek(address)
        return f.read(size)


class _Types:
    """The type name of an object in the zygote, from its ``ob_type`` (a guess: checked to be printable)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.names: dict[int, str | None] = {}

    def name(self, type_address: int) -> str | None:
        if type_address not in self.names:
            try:
                (tp_name,) = struct.unpack("Q", _read(self.pid, type_address + 24, 8))
                text = _read(self.pid, tp_name, 64).split(b"\0")[0].decode("ascii")
                self.names[type_address] = text if text and text.isprintable() else None
            except (OSError, UnicodeDecodeError, ValueError, OverflowError):
                self.names[type_address] = None
        return self.names[type_address]


def _bucket(changed: int) -> str:
    for limit, label in ((0, "0"), (2, "1-2"), (8, "3-8"), (64, "9-64")):
        if changed <= limit:
            return label
    return ">64"


def analyse(worker: int, zygote: int, types: _Types) -> None:
    pages: collections.Counter[tuple[str, str]] = collections.Counter()
    counts: collections.Counter[str] = collections.Counter()
    for start, end, name in _writable_maps(worker):
        mine = _pagemap(worker, start, end)
        try:
            theirs = _pagemap(zygote, start, end)
        except OSError:
            theirs = ()
        for i, entry in enumerate(mine):
            if not entry & _PRESENT or not entry & _EXCLUSIVE:
                continue
            other = theirs[i] if i < len(theirs) else 0
            if not other & _PRESENT:
                pages[(name, "new")] += 1
                continue
            address = start + i * PAGE
            try:
                a = struct.unpack("512Q", _read(worker, address, PAGE))
                b = struct.unpack("512Q", _read(zygote, address, PAGE))
            except OSError:
                continue
            changed = [k for k in range(512) if a[k] != b[k]]
            pages[(name, "copied " + _bucket(len(changed)))] += 1
            if 0 < len(changed) <= 2:
                for k in changed:
                    if k < 511 and b[k] < 1 << 32 and abs(a[k] - b[k]) < 1 << 16:
                        counts[types.name(b[k + 1]) or "?"] += 1
    print(f"  worker {worker}: pages it holds alone, by mapping (KiB)")
    for (name, kind), n in sorted(pages.items(), key=lambda item: -item[1]):
        if n * 4 >= 16:
            print(f"    {name:36s} {kind:12s} {n * 4:6d}")
    print("  reference counts changed on copied pages with 1-2 changed words, by the object's type:")
    print("    " + ", ".join(f"{name} {n}" for name, n in counts.most_common(15)))


def _private_dirty(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Private_Dirty:"):
                return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--language", default="python")
    parser.add_argument("--count", type=int, default=12)
    args = parser.parse_args()
    m = ScriptManager(policy=SecurityPolicy.sandboxed(), cache_dir=False, output=lambda lang, text: None)
    m.setup_dom_bridge()
    try:
        for i in range(args.count):
            m.load_script_from_source(f"s{i}", args.language, COUNTERS[args.language])
        time.sleep(0.5)
        zygotes = [s.pid for s in forkserver._servers.values() if s.pid]
        if len(zygotes) != 1:
            raise SystemExit(f"expected one fork server, found {zygotes}")
        zygote = zygotes[0]
        workers = sorted(p for p in _children(os.getpid()) if p != zygote)
        dirty = [_private_dirty(w) for w in workers]
        print(f"{args.language}: {len(workers)} forked workers, Private_Dirty (KiB): {dirty}")
        print(f"  median {statistics.median(dirty[:-1])}, last forked {dirty[-1]}")
        types = _Types(zygote)
        for worker in (workers[len(workers) // 2], workers[-1]):
            analyse(worker, zygote, types)
    finally:
        m.close()


if __name__ == "__main__":
    main()
