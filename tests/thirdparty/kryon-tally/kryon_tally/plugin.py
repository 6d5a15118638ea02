"""The kryon-tally plugin (entry point ``kryon.engines`` -> ``tally``).

Discovery imports this module only: it names the engine class by import
path, so nothing of the interpreter loads until a Tally script is used.
The spec leaves ``distribution`` and ``version`` unset: discovery fills
them in from the installed metadata.
"""

from kryon_core import EngineSpec, hookimpl


@hookimpl
def kryon_register_engines() -> list[EngineSpec]:
    return [
        EngineSpec(
            language="tally",
            factory="kryon_tally.engine:TallyEngine",
            extensions=(".tally",),
            description="Tally, a tiny Lisp-like language in pure Python (third-party example)",
        )
    ]
