"""The kryon-wren plugin: registers the Wren engine (entry point ``kryon.engines``).

Importing this module must stay cheap: it imports neither wasmtime nor the VM.
It also holds :data:`LANGUAGE`, the one spelling of the language id every
module of the plugin uses.
"""

from kryon_core import EngineSpec, hookimpl

#: the language id of this plugin's engine
LANGUAGE = "wren"


@hookimpl
def kryon_register_engines() -> list[EngineSpec]:
    return [
        EngineSpec(
            language=LANGUAGE,
            factory="kryon_wren.engine:WrenEngine",
            extensions=(".wren",),
            distribution="kryon-wren",
            description="Wren on Kryon's own VM (C compiled to WebAssembly, run in wasmtime)",
        )
    ]
