"""The hooks a Kryon plugin may implement (pluggy project name ``kryon``).

A plugin is any module or object with functions marked ``@hookimpl``; engine
distributions point to one from the entry-point group ``kryon.engines``, and
hosts pass others to ``ScriptManager(plugins=[...])``. A plugin implements
only the hooks it needs, with only the arguments it uses (pluggy passes
arguments by name). Each hook is documented here once: when it is called,
what it gets, what it returns, and what happens when an implementation
raises.
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
def kryon_register_engines() -> "list[EngineSpec] | None":
    """Return the engines this plugin provides.

    Called once when a :class:`~kryon_core.ScriptManager` is created (so it
    must be cheap: no language runtime is imported here; the engine class is
    named by import path and created on first use).

    :return: a list of :class:`~kryon_core.EngineSpec` (None: none). When two plugins
        register the same language, the one registered later wins (an
        in-process plugin over an installed distribution).

    If it raises while an installed distribution's plugin is loaded, that
    distribution is reported in ``ScriptManager.broken_plugins`` and the
    others load; raised later, the error propagates from ``ScriptManager()``.

    Example::

        @hookimpl
        def kryon_register_engines():
            return [EngineSpec(language="ruby", factory="kryon_ruby.engine:RubyEngine",
                               extensions=(".rb",), distribution="kryon-ruby")]
    """


@hookspec(firstresult=True)
def kryon_create_engine(spec: "EngineSpec", config: "EngineConfig") -> "ScriptEngine | None":
    """Create the engine for a language instead of ``spec.create()``.

    Called the first time a script of ``spec.language`` is used.

    :param spec: the engine's :class:`~kryon_core.EngineSpec`.
    :param config: the :class:`~kryon_core.EngineConfig` the engine will be
        initialized with (default policy, output, module loader).
    :return: an engine to use (the first non-None result wins), or None to
        let ``spec.create()`` make it. The manager calls ``initialize(config)``
        on whatever is used.

    If it raises, the language is unavailable: the error becomes an
    :class:`~kryon_core.errors.EngineNotFoundError` naming the distribution,
    and other languages keep working.

    Example (wrapping an engine to count its calls)::

        @hookimpl
        def kryon_create_engine(spec):
            if spec.language == "lua":
                return CountingLuaEngine()
    """


@hookspec
def kryon_engine_initialized(engine: "ScriptEngine", manager: "ScriptManager") -> None:
    """Called after an engine was created, initialized and given its bridge,
    before its first script loads.

    :param engine: the new engine.
    :param manager: the manager that owns it.

    If it raises, the error propagates to the call that first used the
    language (a load, usually) and the engine is kept: the next use of the
    language does not call this hook again.
    """


@hookspec
def kryon_engine_closing(engine: "ScriptEngine", manager: "ScriptManager") -> None:
    """Called when the manager closes, for each engine, before the engine
    frees its runtime (after every script was unloaded).

    :param engine: the engine about to close.
    :param manager: the closing manager.

    If it raises, the failure is logged on the ``kryon`` logger and kept in
    ``ScriptManager.close_errors``; the engine and every other engine still
    close.
    """


@hookspec
def kryon_setup_bridge(bridge: "ScriptBridge", language: str) -> None:
    """Add host functions to the ``kryon`` API of one language.

    Called once per language, when its engine is created, before the engine
    binds the API.

    :param bridge: the language-wide :class:`~kryon_core.ScriptBridge`; call
        ``bridge.add_function(name, fn)`` to add ``kryon.<name>``.
    :param language: the language id (``"lua"``, ``"javascript"`` ...).

    If it raises, the error propagates to the call that first used the
    language, and the language stays unavailable until it is used again.

    Example::

        @hookimpl
        def kryon_setup_bridge(bridge):
            bridge.add_function("now", lambda: time.time())
    """


@hookspec(firstresult=True)
def kryon_convert_value(value: Any, language: str) -> Any:
    """Convert a host object that is not in the value model (a ``datetime``,
    a dataclass) into one that is.

    Called when such an object is passed to a script, returned to one, or set
    as a global.

    :param value: the host object.
    :param language: the language it is going to.
    :return: a value-model value (the first non-None result wins), or None to
        leave it unconverted, which is a :class:`~kryon_core.errors.ConversionError`.

    If it raises, the error propagates to the call that passed the value.

    Example::

        @hookimpl
        def kryon_convert_value(value):
            if isinstance(value, datetime.datetime):
                return value.isoformat()
    """


@hookspec
def kryon_validate_script(name: str, language: str, source: str, policy: "SecurityPolicy") -> None:
    """Inspect a script before it compiles and loads (also a hot reload's new
    version).

    :param name: the script id.
    :param language: its language id.
    :param source: its source text.
    :param policy: the policy it will run under.

    Raise :class:`~kryon_core.errors.AccessDeniedError` (or another
    ``ScriptError``) to refuse it: the load fails with that error and nothing
    of the script is kept (a refused reload leaves the old version running).
    Return None to allow it.

    Example::

        @hookimpl
        def kryon_validate_script(name, source, policy):
            if policy.sandboxed and "eval" in source:
                raise AccessDeniedError("no eval in plugins", script=name)
    """


@hookspec
def kryon_script_loaded(manager: "ScriptManager", script_id: str, language: str, functions: list[str]) -> None:
    """Called after a script loaded, and after a successful hot reload.

    :param manager: the manager.
    :param script_id: the script's id.
    :param language: its language id.
    :param functions: the names of the functions it defines, sorted.

    If it raises, the error propagates to the caller of the load; the script
    stays loaded.
    """


@hookspec
def kryon_script_unloaded(manager: "ScriptManager", script_id: str, language: str) -> None:
    """Called after a script was unloaded (its functions and callbacks are gone).

    :param manager: the manager.
    :param script_id: the id the script had.
    :param language: its language id.

    If it raises, the error propagates to the caller of ``unload_script``;
    the script is unloaded all the same (while the manager closes, the error
    is logged and closing goes on).
    """
