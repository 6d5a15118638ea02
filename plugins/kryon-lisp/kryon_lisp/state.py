"""What a Lisp script's module is called, and how its functions are listed.

Each in-process script is a module object of its own
(``kryon_core.pyhost.HostedScript``), listed in ``sys.modules`` while it
lives, so Hy's run-time machinery that looks up the calling module works:
``hy.eval``, and macros defined with ``defmacro`` used from ``hy.eval``. Its
name is ``<package>.__script__``, inside the package its relative imports and
requires resolve in (a name no import statement can spell), or
``"__main__"`` for the script the host runs as the program.

Functions are registered under the name as the source spells it
(``(defn set-count! ...)`` registers ``set-count!``), found from the forms
read; the mangled Python identifier is listed too when it differs
(``test_foo`` for ``test-foo``), so either spelling resolves.
"""

from __future__ import annotations

import dataclasses

import hy

from kryon_core import CompiledScript, FunctionInfo

from .compiler import display_name

__all__ = ["module_name", "listing"]


def module_name(package: str, as_main: bool) -> str:
    return "__main__" if as_main else f"{package}.__script__"


def listing(functions: dict[str, FunctionInfo], compiled: CompiledScript) -> dict[str, FunctionInfo]:
    """Functions by identifier -> by source spelling, with the identifier as
    an alias where it differs."""
    spelled = {hy.mangle(name): name for name in compiled.functions}
    out: dict[str, FunctionInfo] = {}
    for key, info in functions.items():
        name = spelled.get(key) or display_name(key)
        named = dataclasses.replace(info, name=name)
        out[name] = named
        if key != name:
            out.setdefault(key, named)
    return out
