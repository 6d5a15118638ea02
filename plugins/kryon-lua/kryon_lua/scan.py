"""Reading Lua source without running it: the functions a script defines
(a regular-expression scan, good enough to list them before the top level
runs; after loading, the engine reads the real ones from the script's
environment) and the script id a file name gives."""

from __future__ import annotations

import re

from kryon_core import FunctionInfo

__all__ = ["scan_functions", "script_id_of"]

FUNCTION_DEF = re.compile(
    r"^[ \t]*(?:local[ \t]+)?function[ \t]+([A-Za-z_][\w.:]*)[ \t]*\(([^)]*)\)"
    r"|^[ \t]*(?:local[ \t]+)?([A-Za-z_][\w.]*)[ \t]*=[ \t]*function[ \t]*\(([^)]*)\)",
    re.M,
)


def scan_functions(text: str) -> dict[str, FunctionInfo]:
    """Functions a static scan of the source finds (before it runs)."""
    found: dict[str, FunctionInfo] = {}
    for m in FUNCTION_DEF.finditer(text):
        name = m.group(1) or m.group(3)
        params_text = m.group(2) if m.group(1) else m.group(4)
        params = tuple(p.strip() for p in (params_text or "").split(",") if p.strip())
        variadic = "..." in params
        names = tuple(p for p in params if p != "...")
        line = text.count("\n", 0, m.start()) + 1
        short = name.replace(":", ".").split(".")[-1]
        found.setdefault(
            short,
            FunctionInfo(name=short, parameter_count=len(names), parameter_names=names, is_variadic=variadic, line=line),
        )
    return found


def script_id_of(file: str) -> str:
    name = file.replace("\\", "/").rsplit("/", 1)[-1]
    return name[:-4] if name.endswith(".lua") else name
