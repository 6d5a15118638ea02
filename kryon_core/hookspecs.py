"""The hooks a Kryon plugin may implement (pluggy project name ``kryon``).

A plugin is any module or object with functions marked ``@hookimpl``; engine
distributions point to one from the entry-point group ``kryon.engines``, and
hosts pass others to ``ScriptManager(plugins=[...])``. Only the hooks a
plugin needs are implemented; each is documented here once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .bridge import ScriptBridge
    from .engine import EngineConfig, ScriptEngine
    from .manager import ScriptManager
    from .plugins import EngineSpec
    from .policy import SecurityPolicy

PROJECT = "kryon"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def kryon_register_engines() -> "list[EngineSpec]":
    """Return the engines this plugin provides.

    Called once when a :class:`~kryon_core.ScriptManager` is created. Return a
    list of :class:`~kryon_core.EngineSpec`; creating the engine itself is
    deferred until a script of that language is first used, so this hook
    must not import the language runtime.
    """


@hookspec(firstresult=True)
def kryon_create_engine(spec: "EngineSpec", config: "EngineConfig") -> "ScriptEngine | None":
    """Create the engine for ``spec`` (first non-None result wins).

    Called the first time a language is used. Return an engine instance to
    replace or wrap the default (``spec.create()``), or None to let it be.
    The manager calls ``initialize(config)`` on whatever is returned.
    """


@hookspec
def kryon_engine_initialized(engine: "ScriptEngine", manager: "ScriptManager") -> None:
    """Called after an engine was created and initialized, before any script loads."""


@hookspec
def kryon_engine_closing(engine: "ScriptEngine", manager: "ScriptManager") -> None:
    """Called when the manager closes, before each engine frees its runtime."""


@hookspec
def kryon_setup_bridge(bridge: "ScriptBridge", language: str) -> None:
    """Called before an engine binds the ``kryon`` API.

    Add host functions for scripts with ``bridge.add_function(name, fn)``;
    they appear as ``kryon.<name>`` in every language.
    """


@hookspec(firstresult=True)
def kryon_convert_value(value: Any, language: str) -> Any:
    """Convert a host object an engine does not know into a script value.

    Called when a value outside the value model (say a ``datetime``) is
    passed to a script. Return a value-model value (first non-None wins), or
    None to leave it unconverted (a ConversionError).
    """


@hookspec
def kryon_validate_script(name: str, language: str, source: str, policy: "SecurityPolicy") -> None:
    """Inspect a script before it compiles and loads.

    Raise :class:`~kryon_core.errors.AccessDeniedError` (or another
    ``ScriptError``) to refuse it; return None to allow it.
    """


@hookspec
def kryon_script_loaded(manager: "ScriptManager", script_id: str, language: str, functions: list[str]) -> None:
    """Called after a script loaded (also after a successful hot reload)."""


@hookspec
def kryon_script_unloaded(manager: "ScriptManager", script_id: str, language: str) -> None:
    """Called after a script was unloaded."""
