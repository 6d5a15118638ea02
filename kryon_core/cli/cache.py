"""``kryon cache info`` and ``kryon cache clear``: the on-disk compilation cache.

Compiled scripts are kept per user (``KRYON_CACHE_DIR`` overrides the
place), one file per (language, engine version, source hash). Clearing it
only costs the next run a recompile.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..cache import default_cache_dir

__all__ = ["add_parser", "cmd_cache", "cache_summary"]


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("cache", parents=parents, help="show or clear the compilation cache",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("action", choices=("info", "clear"), help="info: where it is and what it holds; clear: empty it")
    p.set_defaults(func=cmd_cache)


def cache_summary(directory: Path) -> dict[str, Any]:
    """Where the cache is, and its entries and bytes per language."""
    languages: dict[str, dict[str, int]] = {}
    if directory.is_dir():
        for entry in sorted(directory.glob("*/*.kc")):
            try:
                size = entry.stat().st_size
            except OSError:
                continue
            stats = languages.setdefault(entry.parent.name, {"entries": 0, "bytes": 0})
            stats["entries"] += 1
            stats["bytes"] += size
    return {
        "directory": str(directory),
        "entries": sum(s["entries"] for s in languages.values()),
        "bytes": sum(s["bytes"] for s in languages.values()),
        "languages": languages,
    }


def _clear(directory: Path) -> int:
    removed = 0
    for entry in directory.glob("*/*.kc") if directory.is_dir() else ():
        try:
            entry.unlink()
            removed += 1
        except OSError:
            pass
    for folder in directory.iterdir() if directory.is_dir() else ():
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return removed


def cmd_cache(args: argparse.Namespace) -> int:
    directory = default_cache_dir()
    if args.action == "clear":
        before = cache_summary(directory)
        removed = _clear(directory)
        if args.json:
            print(json.dumps({"directory": str(directory), "removed": removed, "bytes_freed": before["bytes"]}))
        else:
            print(f"removed {removed} compiled script(s), {_size(before['bytes'])}, from {directory}")
        return 0
    summary = cache_summary(directory)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    state = "" if directory.is_dir() else " (not created yet)"
    print(f"directory: {directory}{state}")
    print(f"entries:   {summary['entries']} ({_size(summary['bytes'])})")
    for lang, stats in sorted(summary["languages"].items()):
        print(f"  {lang:10s} {stats['entries']:5d}  {_size(stats['bytes'])}")
    print("KRYON_CACHE_DIR moves it; `kryon cache clear` empties it.")
    return 0


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)
