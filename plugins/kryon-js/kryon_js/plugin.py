"""The kryon-js plugin: registers the JavaScript engine (entry point ``kryon.engines``).

Importing this module must stay cheap: it does not import quickjs.
"""

from kryon_core import EngineSpec, hookimpl


@hookimpl
def kryon_register_engines() -> list[EngineSpec]:
    return [
        EngineSpec(
            language="javascript",
            factory="kryon_js.engine:JSEngine",
            extensions=(".js", ".mjs"),
            distribution="kryon-js",
            description="JavaScript (ES2023) on QuickJS-ng through the quickjs-ng binding",
        )
    ]
