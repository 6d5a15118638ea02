"""Registers the Kryon Lisp engine with Kryon (entry point ``kryon.engines``).

Importing this module must stay cheap: it names the engine factory by import
path and never imports Hy; the manager creates the engine on first use.
``LANGUAGE`` is the plugin's language id, used by every module of the package.
"""

from __future__ import annotations

from kryon_core import EngineSpec, hookimpl

__all__ = ["LANGUAGE", "kryon_register_engines"]

#: the language id of this plugin
LANGUAGE = "lisp"


@hookimpl
def kryon_register_engines() -> list[EngineSpec]:
    return [
        EngineSpec(
            language=LANGUAGE,
            factory="kryon_lisp.engine:LispEngine",
            extensions=(".kl", ".hy"),
            distribution="kryon-lisp",
            description="Kryon Lisp (Hy, compiled to Python bytecode)",
        )
    ]
