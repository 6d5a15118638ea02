"""Engine discovery: entry points, pluggy, and lazily created engines.

Installed engine distributions register a plugin module in the entry-point
group ``kryon.engines``; its ``kryon_register_engines`` hook returns
:class:`EngineSpec` objects naming a factory by import path, so discovery
imports only small plugin modules and never a language runtime.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import pluggy

from . import hookspecs
from .engine import ScriptEngine

__all__ = ["EngineSpec", "ENTRY_POINT_GROUP", "make_plugin_manager", "collect_engine_specs", "KNOWN_DISTRIBUTIONS"]

ENTRY_POINT_GROUP = "kryon.engines"

#: where to get the engines of the specification, for "not installed" errors
KNOWN_DISTRIBUTIONS = {
    "lua": "kryon-lua",
    "javascript": "kryon-js",
    "python": "kryon-python",
    "wren": "kryon-wren",
    "lisp": "kryon-lisp",
}


@dataclass(frozen=True)
class EngineSpec:
    """An installed engine, before it is created.

    ``factory`` is a callable returning a ScriptEngine, or an import path
    ``"package.module:ClassName"`` resolved on first use.
    """

    language: str
    factory: "Callable[[], ScriptEngine] | str"
    extensions: tuple[str, ...] = ()
    distribution: str | None = None
    version: str | None = None
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict, compare=False)

    def create(self) -> ScriptEngine:
        factory = self.factory
        if isinstance(factory, str):
            module_name, _, attr = factory.partition(":")
            obj: Any = importlib.import_module(module_name)
            for part in attr.split(".") if attr else ():
                obj = getattr(obj, part)
            factory = obj
        engine = factory()  # type: ignore[operator]
        if not isinstance(engine, ScriptEngine):
            raise TypeError(f"engine factory for {self.language} returned {type(engine).__name__}, not a ScriptEngine")
        return engine


def make_plugin_manager(plugins: Iterable[Any] = (), *, discover: bool = True) -> pluggy.PluginManager:
    """A pluggy manager with the kryon hookspecs, the installed entry points
    (unless ``discover`` is false) and the given in-process plugins."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    if discover:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for plugin in plugins:
        if not pm.is_registered(plugin):
            pm.register(plugin)
    return pm


def collect_engine_specs(pm: pluggy.PluginManager) -> dict[str, EngineSpec]:
    """language id -> EngineSpec; an in-process plugin registered later wins
    over an installed one for the same language."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    specs: dict[str, EngineSpec] = {}
    for impl in pm.hook.kryon_register_engines.get_hookimpls():  # registration order
        result = impl.function()
        for spec in result or ():
            dist = dists.get(id(impl.plugin))
            if dist is not None and (spec.distribution is None or spec.version is None):
                spec = dataclasses.replace(
                    spec, distribution=spec.distribution or dist.project_name, version=spec.version or dist.version
                )
            specs[spec.language] = spec
    return specs
