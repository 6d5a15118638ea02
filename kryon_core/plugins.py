"""Engine discovery: entry points, pluggy, and lazily created engines.

Installed engine distributions register a plugin module in the entry-point
group ``kryon.engines``; its ``kryon_register_engines`` hook returns
:class:`EngineSpec` objects naming a factory by import path, so discovery
imports only small plugin modules and never a language runtime.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pluggy

from . import hookspecs
from .engine import ScriptEngine

__all__ = [
    "EngineSpec",
    "ENTRY_POINT_GROUP",
    "Plugins",
    "make_plugin_manager",
    "collect_engine_specs",
    "KNOWN_DISTRIBUTIONS",
]

ENTRY_POINT_GROUP = "kryon.engines"

log = logging.getLogger("kryon")

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
        engine = factory()
        if not isinstance(engine, ScriptEngine):
            raise TypeError(f"engine factory for {self.language} returned {type(engine).__name__}, not a ScriptEngine")
        return engine


@dataclass
class Plugins:
    """The pluggy manager with the kryon hookspecs, and what discovery learned
    beside it: installed plugins that failed to load (entry point -> why), and
    the distribution each loaded plugin came from."""

    pm: pluggy.PluginManager
    broken: dict[str, str] = field(default_factory=dict)
    #: id(plugin) -> (distribution name, version)
    dists: dict[int, tuple[str, str]] = field(default_factory=dict)

    @property
    def hook(self) -> Any:
        return self.pm.hook


def make_plugin_manager(plugins: Iterable[Any] = (), *, discover: bool = True) -> Plugins:
    """The installed entry points (unless ``discover`` is false) and the given
    in-process plugins, registered with the kryon hookspecs."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    found = Plugins(pm)
    if discover:
        load_entry_points(found)
    for plugin in plugins:
        if not pm.is_registered(plugin):
            pm.register(plugin)
    return found


@dataclass(frozen=True)
class _EntryPoint:
    name: str
    value: str  # "module" or "module:attribute"
    distribution: str
    version: str

    def load(self) -> Any:
        module_name, _, attr = self.value.partition(":")
        obj: Any = importlib.import_module(module_name.strip())
        for part in attr.strip().split(".") if attr.strip() else ():
            obj = getattr(obj, part)
        return obj


def _distributions(path: list[str] | None = None) -> Iterator[tuple[str, str, str]]:
    """(metadata folder, distribution name, version) of every distribution on
    ``path`` (default ``sys.path``), the first of a name only, as the import
    system's order says; read from the ``*.dist-info`` / ``*.egg-info``
    folder names alone."""
    seen: set[str] = set()
    for entry in sys.path if path is None else path:
        try:
            names = sorted(n for n in os.listdir(entry or ".") if n.endswith((".dist-info", ".egg-info")))
        except OSError:
            continue
        for folder in names:
            dist, _, rest = folder.rpartition(".")[0].partition("-")
            dist = dist.replace("_", "-")
            version = rest.split("-")[0] if rest else ""
            key = _normalized(dist)
            if key in seen:
                continue
            seen.add(key)
            yield os.path.join(entry or ".", folder), dist, version


def _normalized(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def find_entry_points(group: str = ENTRY_POINT_GROUP, path: list[str] | None = None) -> list[_EntryPoint]:
    """The entry points of ``group`` of every distribution on ``path``
    (default ``sys.path``),
    read straight from each ``*.dist-info/entry_points.txt`` (the first
    distribution of a name wins, as the import system's order says).

    ``importlib.metadata`` finds the same, but importing it costs more than
    the whole of the rest of discovery (its e-mail header parsing), and
    ``ScriptManager()`` is meant to start in a few milliseconds."""
    found: list[_EntryPoint] = []
    for folder, dist, version in _distributions(path):
        try:
            with open(os.path.join(folder, "entry_points.txt"), encoding="utf-8") as f:
                text = f.read()
        except OSError:
            continue
        found += [_EntryPoint(name, value, dist, version) for name, value in _section(text, group)]
    return found


def distribution_version(name: str, path: list[str] | None = None) -> str | None:
    """The installed version of distribution ``name`` (None when none is
    found), from its metadata folder's name: what an engine puts in its
    ``version`` without importing ``importlib.metadata`` (see
    :func:`find_entry_points`), which would cost a ``kryon run`` more than
    the engine's own start-up."""
    key = _normalized(name)
    for _folder, dist, version in _distributions(path):
        if _normalized(dist) == key and version:
            return version
    return None


def package_text(package: str, name: str) -> str:
    """The UTF-8 text of the data file ``name`` a package ships (an engine's
    prelude): read by the package's own loader (``pkgutil.get_data``: files
    and zip imports alike), where ``importlib.resources`` would first import
    tempfile, zipfile and shutil, several milliseconds of every ``kryon run``."""
    import pkgutil  # engines without a prelude never need it

    data = pkgutil.get_data(package, name)
    if data is None:
        raise FileNotFoundError(f"package {package} ships no {name}: its loader cannot read data files")
    return data.decode("utf-8")


def _section(text: str, group: str) -> list[tuple[str, str]]:
    """``name = value`` lines of one ``[group]`` of an entry_points.txt."""
    out, inside = [], False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            inside = line.strip("[]").strip() == group
        elif inside and "=" in line:
            name, _, value = line.partition("=")
            out.append((name.strip(), value.strip()))
    return out


def load_entry_points(plugins: Plugins) -> None:
    """Register every installed plugin of the ``kryon.engines`` group. One
    broken distribution (an import error, a bad hook) is recorded in
    ``plugins.broken`` and logged; the others still load."""
    pm = plugins.pm
    for ep in find_entry_points():
        if pm.get_plugin(ep.name) or pm.is_blocked(ep.name):
            continue
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except Exception as exc:  # a broken plugin must not take the others down
            plugins.broken[ep.name] = f"{ep.distribution}: {type(exc).__name__}: {exc}"
            log.warning("kryon engine plugin %s (%s) failed to load: %s", ep.name, ep.distribution, exc)
            continue
        plugins.dists[id(plugin)] = (ep.distribution, ep.version)


def collect_engine_specs(plugins: Plugins) -> dict[str, EngineSpec]:
    """language id -> EngineSpec; an in-process plugin registered later wins
    over an installed one for the same language."""
    dists = plugins.dists
    specs: dict[str, EngineSpec] = {}
    for impl in plugins.pm.hook.kryon_register_engines.get_hookimpls():  # registration order
        result = cast("list[EngineSpec] | None", impl.function())
        for spec in result or ():
            dist = dists.get(id(impl.plugin))
            if dist is not None and (spec.distribution is None or spec.version is None):
                spec = dataclasses.replace(spec, distribution=spec.distribution or dist[0], version=spec.version or dist[1])
            specs[spec.language] = spec
    return specs
