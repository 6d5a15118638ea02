"""The kryon-js plugin: registers the JavaScript engine (entry point ``kryon.engines``).

Importing this module must stay cheap: it does not import quickjs. It also
holds :data:`LANGUAGE`, the one spelling of the language id every module of
the plugin uses.
"""

from kryon_core import EngineSpec, hookimpl

#: the language id of this plugin's engine
LANGUAGE = "javascript"


@hookimpl
def kryon_register_engines() -> list[EngineSpec]:
    return [
        EngineSpec(
            language=LANGUAGE,
            factory="kryon_js.engine:JSEngine",
            extensions=(".js", ".mjs"),
            distribution="kryon-js",
            description="JavaScript (ES2023) on QuickJS-ng through the quickjs-ng binding",
        )
    ]
