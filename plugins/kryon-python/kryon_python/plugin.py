"""Entry point of the ``kryon.engines`` group: registers the Python engine
without importing it (the manager creates it on first use)."""

from kryon_core import EngineSpec, hookimpl


@hookimpl
def kryon_register_engines() -> list[EngineSpec]:
    return [
        EngineSpec(
            language="python",
            factory="kryon_python.engine:PythonEngine",
            extensions=(".py",),
            distribution="kryon-python",
            description="CPython: trusted scripts in-process, untrusted scripts in a sandboxed worker process",
        )
    ]
