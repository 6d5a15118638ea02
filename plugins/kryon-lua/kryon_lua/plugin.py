"""The kryon-lua plugin: registers the Lua engine (entry point ``kryon.engines``).

Importing this module must stay cheap: it does not import lupa.
"""

from kryon_core import EngineSpec, hookimpl

#: the language id of this plugin, used by every module of the package
LANGUAGE = "lua"


@hookimpl
def kryon_register_engines() -> list[EngineSpec]:
    return [
        EngineSpec(
            language=LANGUAGE,
            factory="kryon_lua.engine:LuaEngine",
            extensions=(".lua",),
            distribution="kryon-lua",
            description="Lua 5.4 on lupa; LuaJIT 2.1 with SecurityPolicy(use_jit=True)",
        )
    ]
