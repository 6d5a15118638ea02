"""``kryon engines`` (what is installed, with capabilities) and ``kryon --version``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .. import __version__
from ..manager import ScriptManager

__all__ = ["add_parser", "cmd_engines", "version_text"]

NONE_INSTALLED = "no engines installed (pip install kryon-lua, kryon-js, kryon-python, kryon-wren or kryon-lisp)"


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("engines", parents=parents, help="list installed engines, their versions and capabilities")
    p.set_defaults(func=cmd_engines)


def _rows(manager: ScriptManager) -> list[dict[str, Any]]:
    rows = []
    for lang, spec in sorted(manager.engine_specs.items()):
        row: dict[str, Any] = {"language": lang, "distribution": spec.distribution or "(in-process)",
                               "distribution_version": spec.version or "", "extensions": list(spec.extensions)}
        try:
            engine = manager.engine(lang)
            row["engine_version"] = engine.version
            row["capabilities"] = [k.removeprefix("supports_") for k, v in engine.capabilities.as_dict().items() if v]
        except Exception as exc:  # a broken engine is reported, the others still listed
            row["engine_version"] = "?"
            row["capabilities"] = []
            row["error"] = f"unavailable: {exc}"
        rows.append(row)
    for name, why in sorted(manager.broken_plugins.items()):
        rows.append({"language": name, "distribution": "(failed to load)", "distribution_version": "",
                     "extensions": [], "engine_version": "?", "capabilities": [], "error": why})
    return rows


def cmd_engines(args: argparse.Namespace) -> int:
    manager = ScriptManager(cache=False, plugins=args.plugins)
    try:
        rows = _rows(manager)
    finally:
        manager.close()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(NONE_INSTALLED)
        return 0
    table = [(r["language"], r["distribution"], r["distribution_version"], r["engine_version"],
              r.get("error") or ", ".join(r["capabilities"])) for r in rows]
    header = ("language", "distribution", "version", "engine", "capabilities")
    widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(4)]
    for r in [header, *table]:
        print("  ".join(f"{r[i]:{widths[i]}}" for i in range(4)) + "  " + r[4])
    return 0


def version_text(plugins: list[object] = ()) -> str:  # type: ignore[assignment]
    """kryon-core's version and each installed engine distribution's, without starting any engine."""
    manager = ScriptManager(cache=False, plugins=plugins)
    lines = [f"kryon-core {__version__}"]
    for lang, spec in sorted(manager.engine_specs.items()):
        lines.append(f"{spec.distribution or '(in-process)'} {spec.version or '?'} ({lang})")
    for name, why in sorted(manager.broken_plugins.items()):
        lines.append(f"{name}: failed to load ({why})")
    if len(lines) == 1:
        lines.append(NONE_INSTALLED)
    return "\n".join(lines)
