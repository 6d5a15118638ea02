"""The kryon-wren plugin: registers the Wren engine (entry point ``kryon.engines``).

Importing this module must stay cheap: it imports neither wasmtime nor the VM.
"""

from kryon_core import EngineSpec, hookimpl


@hookimpl
def kryon_register_engines() -> list[EngineSpec]:
    return [
        EngineSpec(
            language="wren",
            factory="kryon_wren.engine:WrenEngine",
            extensions=(".wren",),
            distribution="kryon-wren",
            description="Wren on Kryon's own VM (C compiled to WebAssembly, run in wasmtime)",
        )
    ]
