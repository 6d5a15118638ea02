"""Entry point of the ``kryon.engines`` group: registers the Python engine
without importing it (the manager creates it on first use). ``LANGUAGE`` is
the plugin's language id, used by every module of the package."""

from kryon_core import EngineSpec, hookimpl

#: the language id of this plugin
LANGUAGE = "python"


@hookimpl
def kryon_register_engines() -> list[EngineSpec]:
    return [
        EngineSpec(
            language=LANGUAGE,
            factory="kryon_python.engine:PythonEngine",
            extensions=(".py",),
            distribution="kryon-python",
            description="CPython: trusted scripts in-process, untrusted scripts in a sandboxed worker process",
        )
    ]
