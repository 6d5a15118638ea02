"""The ScriptManager: one API over every installed engine.

It discovers engines (entry points and in-process plugins), creates each on
first use, compiles through the cache, loads scripts, keeps the function
registry ("script.fn" always resolves; a bare "fn" when it is unique), routes
calls with profiling, reloads and unloads scripts without leaking their
callbacks, and wires the ``kryon`` API of every engine to one document.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter_ns
from typing import Any, Callable, Iterable, Sequence

from .bridge import ScriptBridge
from .cache import CompilationCache, default_cache_dir
from .dom import Document, DOMBridge
from .engine import CompiledScript, EngineConfig, FunctionInfo, GarbageCollectionStats, MemoryUsage, ScriptEngine
from .errors import (
    AmbiguousFunctionError,
    CompileError,
    EngineNotFoundError,
    FunctionNotFoundError,
    ScriptError,
    ScriptNotFoundError,
    SizeLimitError,
)
from .interop import CrossLanguageRegistry, SharedDataManager
from .plugins import KNOWN_DISTRIBUTIONS, EngineSpec, collect_engine_specs, make_plugin_manager
from .policy import SecurityPolicy
from .profiling import Profiler
from .values import EXTENSIONS, FunctionRef, ScriptLanguage, language_for_path, normalize_language

__all__ = ["ScriptManager", "LoadedScript"]

log = logging.getLogger("kryon")



@dataclass
class LoadedScript:
    """A script the manager has loaded (the specification's LoadedScript)."""

    id: str
    language: str
    compiled: CompiledScript
    policy: SecurityPolicy
    filename: str | None = None
    functions: dict[str, FunctionInfo] = field(default_factory=dict)
    load_time: float = field(default_factory=time.time)
    reloads: int = 0

    @property
    def name(self) -> str:
        return self.id


class _Location:
    """Where a registered function lives, with its stats records at hand."""

    __slots__ = ("qualified", "script", "language", "function", "engine", "stats", "info", "call")

    def __init__(
        self, qualified: str, script: LoadedScript, function: str, engine: ScriptEngine, profiler: Profiler
    ) -> None:
        self.qualified = qualified
        self.script = script.id
        self.language = script.language
        self.function = function
        self.engine = engine
        self.info = script.functions[function]
        self.stats = profiler.stats_for(qualified, script.id, script.language)
        self.call: Callable[..., Any] | None = None  # the engine's bound callable, made on first call

    def bound_call(self) -> Callable[..., Any]:
        if self.call is None:
            self.call = self.engine.get_function(self.function, script=self.script)._call
        return self.call


class ScriptManager:
    """Loads and runs scripts in every installed language.

    Keyword options:

    - ``policy``: default :class:`SecurityPolicy` (sandboxed when omitted).
    - ``cache_dir``: on-disk compilation cache directory; None for the per-user
      default, False for memory only. ``cache=False`` turns caching off.
    - ``plugins``: in-process pluggy plugins (extra engines or hooks).
    - ``discover``: load installed engines from entry points (default True).
    - ``output``: ``output(language, text)`` receives what scripts print
      (default: written to ``sys.stdout``).
    - ``profiling``: record per-call statistics (default True).
    """

    def __init__(
        self,
        *,
        policy: SecurityPolicy | None = None,
        cache_dir: "Path | str | bool | None" = None,
        cache: bool = True,
        plugins: Iterable[Any] = (),
        discover: bool = True,
        output: Callable[[str, str], None] | None = None,
        profiling: bool = True,
        debug: bool = False,
        hot_threshold: int = 1000,
    ) -> None:
        self.policy = policy if policy is not None else SecurityPolicy.sandboxed()
        self.debug = debug
        self._pm = make_plugin_manager(plugins, discover=discover)
        self._specs: dict[str, EngineSpec] = collect_engine_specs(self._pm)
        #: installed engine plugins that failed to load: entry point -> reason
        self.broken_plugins: dict[str, str] = dict(self._pm.kryon_broken)
        self._engines: dict[str, ScriptEngine] = {}
        self._bridges: dict[str, ScriptBridge] = {}
        self._scripts: dict[str, LoadedScript] = {}
        self._loading: dict[str, LoadedScript] = {}
        self._lookup: dict[str, "_Location | list[str]"] = {}
        self._bound: dict[str, "weakref.WeakSet[FunctionRef]"] = {}
        self._lock = threading.RLock()
        self._call_depth = threading.local()
        self._output = output or _stdout_output
        self.dom: DOMBridge | None = None
        self.profiler = Profiler(enabled=profiling, hot_threshold=hot_threshold)
        self.profiler.on_hot = self._on_hot
        self.shared = SharedDataManager()
        self.interop = CrossLanguageRegistry(self)
        if not cache:
            self.cache: CompilationCache | None = None
        elif cache_dir is False:
            self.cache = CompilationCache(None)
        else:
            directory = default_cache_dir() if cache_dir in (None, True) else Path(cache_dir)  # type: ignore[arg-type]
            self.cache = CompilationCache(directory)

    # -- engines ---------------------------------------------------------------
    @property
    def languages(self) -> list[str]:
        """Ids of the installed engines (none is created by asking)."""
        return sorted(self._specs)

    @property
    def engine_specs(self) -> dict[str, EngineSpec]:
        return dict(self._specs)

    def is_loaded(self, language: "str | ScriptLanguage") -> bool:
        """Whether the engine for ``language`` has been created yet."""
        return normalize_language(language) in self._engines

    def engine(self, language: "str | ScriptLanguage") -> ScriptEngine:
        """The engine for ``language``, created and initialized on first use."""
        lang = normalize_language(language)
        engine = self._engines.get(lang)
        if engine is not None:
            return engine
        with self._lock:
            engine = self._engines.get(lang)
            if engine is None:
                engine = self._create_engine(lang)
            return engine

    def _create_engine(self, lang: str) -> ScriptEngine:
        spec = self._specs.get(lang)
        if spec is None:
            installed = ", ".join(self.languages) or "none"
            dist = KNOWN_DISTRIBUTIONS.get(lang, f"a Kryon engine for '{lang}'")
            broken = "".join(f"; failed to load: {why}" for why in self.broken_plugins.values())
            raise EngineNotFoundError(
                f"no engine for language '{lang}' is installed (installed: {installed}); install {dist}{broken}",
                language=lang,
            )
        config = EngineConfig(
            policy=self.policy,
            debug=self.debug,
            output=lambda text, _lang=lang: self._output(_lang, text),
            module_loader=lambda importer, name, _lang=lang: self._load_module(_lang, importer, name),
        )
        try:
            engine = self._pm.hook.kryon_create_engine(spec=spec, config=config) or spec.create()
            engine.initialize(config)
        except ScriptError:
            raise
        except Exception as exc:  # a broken engine distribution: say which, keep the others working
            raise EngineNotFoundError(
                f"the {lang} engine ({spec.distribution or spec.factory}) failed to start: {type(exc).__name__}: {exc}",
                language=lang,
            ) from exc
        bridge = ScriptBridge(lang, self)
        bridge.dom = self.dom
        self._pm.hook.kryon_setup_bridge(bridge=bridge, language=lang)
        engine.setup_bridge(bridge)
        self._bridges[lang] = bridge
        self._engines[lang] = engine
        self._pm.hook.kryon_engine_initialized(engine=engine, manager=self)
        return engine

    def _extensions(self) -> dict[str, str]:
        extensions = dict(EXTENSIONS)
        for spec in self._specs.values():
            for ext in spec.extensions:
                extensions[ext.lower()] = spec.language
        return extensions

    def language_for_file(self, path: "str | Path") -> str:
        lang = language_for_path(str(path), self._extensions())
        if lang is None:
            raise EngineNotFoundError(f"no language is known for the file '{path}'")
        return lang

    # -- loading -----------------------------------------------------------------
    def load_script_from_source(
        self,
        name: str,
        language: "str | ScriptLanguage",
        source: "str | bytes",
        *,
        policy: SecurityPolicy | None = None,
        filename: str | None = None,
    ) -> str:
        """Compile (through the cache) and load a script; returns its id (the name)."""
        lang = normalize_language(language)
        if not isinstance(name, str) or not name:
            raise ScriptError("a script needs a non-empty name", language=lang)
        with self._lock:
            if name in self._scripts:
                raise ScriptError(
                    f"a script named '{name}' is already loaded; use hot_reload_script to replace it",
                    language=lang,
                    script=name,
                )
            engine = self.engine(lang)
            policy = policy or self.policy
            text = self._prepare_source(name, lang, source, policy)
            compiled = self._compile(engine, name, text, policy, filename)
            script = LoadedScript(name, lang, compiled, policy, filename)
            self._loading[name] = script  # its top level may import files beside it
            try:
                engine.load_script(compiled, policy=policy)
            finally:
                del self._loading[name]
            self._scripts[name] = script
            self._register(script, engine)
        self._pm.hook.kryon_script_loaded(
            manager=self, script_id=name, language=lang, functions=sorted(script.functions)
        )
        return name

    def load_script_file(
        self,
        path: "str | Path",
        *,
        name: str | None = None,
        language: "str | ScriptLanguage | None" = None,
        policy: SecurityPolicy | None = None,
    ) -> str:
        """Load a script from a file; the language comes from its extension
        and the name from its stem unless given."""
        p = Path(path)
        lang = normalize_language(language) if language is not None else self.language_for_file(p)
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise ScriptError(f"cannot read script file: {exc}", language=lang, script=str(p)) from None
        return self.load_script_from_source(name or p.stem, lang, data, policy=policy, filename=str(p))

    def _prepare_source(self, name: str, lang: str, source: "str | bytes", policy: SecurityPolicy) -> str:
        if isinstance(source, (bytes, bytearray)):
            try:
                text = bytes(source).decode("utf-8")
            except UnicodeDecodeError as exc:
                line = bytes(source)[: exc.start].count(b"\n") + 1
                raise CompileError(
                    f"source is not valid UTF-8 (byte {exc.start})", language=lang, script=name, line=line
                ) from None
        elif isinstance(source, str):
            text = source
        else:
            raise CompileError(f"source must be str or bytes, not {type(source).__name__}", language=lang, script=name)
        if text.startswith("\ufeff"):
            text = text[1:]
        limit = policy.max_source_size
        if limit is not None and len(text.encode("utf-8", "surrogatepass")) > limit:
            raise SizeLimitError(
                f"source is larger than the policy's max_source_size ({limit} bytes)", language=lang, script=name
            )
        self._pm.hook.kryon_validate_script(name=name, language=lang, source=text, policy=policy)
        return text

    def _compile(
        self, engine: ScriptEngine, name: str, text: str, policy: SecurityPolicy, filename: str | None
    ) -> CompiledScript:
        def compile_now() -> CompiledScript:
            compiled = engine.compile(text, name, policy=policy)
            compiled.filename = filename
            return compiled

        if self.cache is None:
            return compile_now()
        compiled = self.cache.get_or_compile(engine.language, engine.version, name, text, compile_now)
        compiled.filename = filename
        return compiled

    def _register(self, script: LoadedScript, engine: ScriptEngine) -> None:
        script.functions = dict(engine.list_functions(script.id))
        for fname in script.functions:
            qualified = f"{script.id}.{fname}"
            self._lookup[qualified] = _Location(qualified, script, fname, engine, self.profiler)
        self._rebuild_bare_names()

    def _unregister(self, script: LoadedScript) -> None:
        for fname in script.functions:
            self._lookup.pop(f"{script.id}.{fname}", None)
        self._rebuild_bare_names()

    def _rebuild_bare_names(self) -> None:
        qualified: dict[str, _Location] = {}
        for key, loc in self._lookup.items():
            if isinstance(loc, _Location) and key == loc.qualified:
                qualified[key] = loc
        bare: dict[str, list[_Location]] = {}
        for loc in qualified.values():
            bare.setdefault(loc.function, []).append(loc)
        lookup: dict[str, "_Location | list[str]"] = dict(qualified)
        for fname, locs in bare.items():
            if fname in lookup:
                continue  # a qualified name wins over a bare one of the same spelling
            lookup[fname] = locs[0] if len(locs) == 1 else sorted(l.qualified for l in locs)
        self._lookup = lookup

    def _location(self, name: str) -> _Location:
        loc = self._lookup.get(name)
        if isinstance(loc, _Location):
            return loc
        if isinstance(loc, list):
            raise AmbiguousFunctionError(
                f"function '{name}' is defined by several scripts: {', '.join(loc)}; qualify it as script.function",
                candidates=loc,
            )
        known = sorted(k for k, v in self._lookup.items() if isinstance(v, _Location) and k == v.qualified)
        hint = f"; loaded: {', '.join(known[:20])}" if known else "; no script defines any function"
        raise FunctionNotFoundError(f"no loaded script defines a function '{name}'{hint}")

    # -- calls ----------------------------------------------------------------------
    def call_function(self, name: str, args: Sequence[Any] = (), *, caller: str | None = None) -> Any:
        """Call a function of a loaded script by "script.fn" or unique "fn"."""
        loc = self._lookup.get(name)
        if loc.__class__ is not _Location:
            loc = self._location(name)
        call = loc.call or loc.bound_call()
        profiler = self.profiler
        if not profiler.enabled:
            return call(*args)
        stats = loc.stats
        start = perf_counter_ns()
        try:
            result = call(*args)
        except BaseException:
            stats.errors += 1
            raise
        finally:  # inline rather than a method call: this is the per-call cost
            elapsed = perf_counter_ns() - start
            stats.calls += 1
            stats.total_ns += elapsed
            if elapsed > stats.max_ns:
                stats.max_ns = elapsed
            if stats.calls == profiler.hot_threshold:
                profiler.became_hot(stats)
        return result

    async def call_function_async(self, name: str, args: Sequence[Any] = ()) -> Any:
        """Await a function: async functions, coroutines, promises and fibers
        run cooperatively on the running loop."""
        loc = self._location(name)
        stats = loc.stats
        start = perf_counter_ns()
        try:
            return await loc.engine.call_function_async(loc.function, args, script=loc.script)
        except BaseException:
            stats.errors += 1
            raise
        finally:
            if self.profiler.enabled:
                elapsed = perf_counter_ns() - start
                stats.calls += 1
                stats.total_ns += elapsed
                stats.max_ns = max(stats.max_ns, elapsed)

    def function(self, name: str) -> FunctionRef:
        """A callable bound once to one function, for hot paths. It follows
        the function across hot reloads and raises once its script is
        unloaded. It skips the profiler's per-call timing (that is what makes
        it fast); calls through ``call_function`` are timed and counted."""
        loc = self._location(name)
        ref = self._bind(loc)
        with self._lock:
            self._bound.setdefault(loc.script, weakref.WeakSet()).add(ref)
        return ref

    def _bind(self, loc: _Location) -> FunctionRef:
        # Bound handles skip per-call timing: they are the hot path. Calls
        # through call_function are the ones the profiler times and counts.
        raw = loc.engine.get_function(loc.function, script=loc.script)
        return FunctionRef.direct(
            raw._call, name=loc.function, language=loc.language, script=loc.script, release=raw.release,
            call_async=raw._async,
        )

    def _rebind(self, script_id: str) -> None:
        """Point a script's bound handles at its new version (or release them)."""
        for ref in list(self._bound.get(script_id, ())):
            loc = self._lookup.get(f"{script_id}.{ref.name}")
            if isinstance(loc, _Location):
                fresh = loc.engine.get_function(loc.function, script=loc.script)
                ref._retarget(fresh._call, fresh._async)
            else:
                ref.release()

    # -- reload and unload ------------------------------------------------------------
    def hot_reload_script(self, script_id: str, new_source: "str | bytes") -> None:
        """Replace a script's code while the app runs. If the new version
        fails to compile or its top level fails, the old version keeps
        running with its state and callbacks; otherwise the old version's
        listeners, timers and watchers are released (the new top level
        registers its own) and bound handles follow the new functions."""
        with self._lock:
            script = self._script(script_id)
            engine = self.engine(script.language)
            text = self._prepare_source(script.id, script.language, new_source, script.policy)
            compiled = self._compile(engine, script.id, text, script.policy, script.filename)
            owned = self._owned_callbacks(script)
            engine.reload_script(script.id, compiled, policy=script.policy, previous=script.compiled)
            self._drop_callbacks(owned)
            self._unregister(script)
            script.compiled = compiled
            script.reloads += 1
            self._register(script, engine)
            self._rebind(script.id)
        self._pm.hook.kryon_script_loaded(
            manager=self, script_id=script.id, language=script.language, functions=sorted(script.functions)
        )

    def unload_script(self, script_id: str) -> None:
        """Unload a script: its functions leave the registry, its listeners,
        timers, watchers and shared-data listeners are released, bound
        handles to it raise, and the engine frees its namespace."""
        with self._lock:
            script = self._script(script_id)
            self._drop_callbacks(self._owned_callbacks(script))
            self.shared.release_script(script.language, script.id)
            self._unregister(script)
            del self._scripts[script_id]
            for ref in list(self._bound.pop(script_id, ())):
                ref.release()
            self._engines[script.language].unload_script(script_id)
            self.profiler.forget_script(script_id)
        self._pm.hook.kryon_script_unloaded(manager=self, script_id=script_id, language=script.language)

    def _owned_callbacks(self, script: LoadedScript) -> list[tuple[str, int]]:
        owned = getattr(self.dom, "owned_callbacks", None)
        if owned is None:
            return []
        return owned(lambda cb: _owner(cb) == (script.language, script.id))

    def _drop_callbacks(self, keys: list[tuple[str, int]]) -> None:
        drop = getattr(self.dom, "drop_callbacks", None)
        if drop is not None and keys:
            drop(keys)

    def _script(self, script_id: str) -> LoadedScript:
        script = self._scripts.get(script_id)
        if script is None:
            raise ScriptNotFoundError(f"no script '{script_id}' is loaded", script=script_id)
        return script

    # -- inspection ----------------------------------------------------------------------
    @property
    def scripts(self) -> dict[str, LoadedScript]:
        return dict(self._scripts)

    def functions(self) -> dict[str, FunctionInfo]:
        """Every registered function by qualified name."""
        return {
            k: v.info for k, v in self._lookup.items() if isinstance(v, _Location) and k == v.qualified
        }

    def stack_trace(self, language: "str | ScriptLanguage") -> list:
        return self.engine(language).get_stack_trace()

    # -- globals ----------------------------------------------------------------------------
    def set_global(self, language: "str | ScriptLanguage", name: str, value: Any) -> None:
        self.engine(language).set_global(name, value)

    def get_global(self, language: "str | ScriptLanguage", name: str) -> Any:
        return self.engine(language).get_global(name)

    # -- the DOM ---------------------------------------------------------------------------
    def setup_dom_bridge(self, document: DOMBridge | None = None) -> DOMBridge:
        """Attach a document (a new :class:`Document` when omitted) to the
        ``kryon`` API of every engine, now and created later."""
        doc = document if document is not None else Document()
        with self._lock:
            self.dom = doc
            for bridge in self._bridges.values():
                bridge.dom = doc
        return doc

    # -- memory --------------------------------------------------------------------------
    def collect_garbage(self) -> dict[str, GarbageCollectionStats]:
        return {lang: engine.collect_garbage() for lang, engine in list(self._engines.items())}

    def memory_usage(self) -> dict[str, MemoryUsage]:
        return {lang: engine.get_memory_usage() for lang, engine in list(self._engines.items())}

    def statistics(self) -> dict[str, Any]:
        """Per-engine memory, scripts and call statistics, and cache figures."""
        per_engine: dict[str, Any] = {}
        for lang, engine in list(self._engines.items()):
            mem = engine.get_memory_usage()
            per_engine[lang] = {
                "version": engine.version,
                "scripts": sorted(s.id for s in self._scripts.values() if s.language == lang),
                "memory_bytes": mem.used_bytes,
                "calls": sum(s.calls for s in self.profiler.functions.values() if s.language == lang),
            }
        return {
            "engines": per_engine,
            "cache": self.cache.stats.as_dict() if self.cache else None,
            "hot_functions": [h.function_name for h in self.profiler.hot_functions()],
        }

    # -- plumbing ---------------------------------------------------------------------------
    def _on_hot(self, qualified: str, language: str) -> None:
        engine = self._engines.get(language)
        loc = self._lookup.get(qualified)
        notify = getattr(engine, "on_hot_function", None)
        if notify is not None and isinstance(loc, _Location):
            notify(loc.script, loc.function)

    def _convert_value(self, value: Any, language: str) -> Any:
        return self._pm.hook.kryon_convert_value(value=value, language=language)

    def _log(self, language: str, level: str, text: str) -> None:
        logging.getLogger(f"kryon.script.{language}").log(
            {"debug": 10, "info": 20, "warn": 30, "error": 40}.get(level, 20), text
        )

    def _load_module(self, language: str, importer: str, name: str) -> str | None:
        """Source of a module a script imports: a loaded script of the same
        language named ``name``, else a file beside the importing script."""
        loaded = self._scripts.get(name)
        if loaded is not None and loaded.language == language:
            return loaded.compiled.source
        importer_script = self._scripts.get(importer) or self._loading.get(importer)
        base = importer_script.filename if importer_script is not None else None
        if base is None:
            return None
        exts = [ext for ext, lang in self._extensions().items() if lang == language]
        for ext in exts:
            candidate = Path(base).parent / f"{name}{ext}"
            if candidate.is_file():
                return candidate.read_text(encoding="utf-8")
        return None

    def close(self) -> None:
        """Unload every script and free every engine."""
        with self._lock:
            for script_id in list(self._scripts):
                try:
                    self.unload_script(script_id)
                except ScriptError as exc:
                    log.warning("unloading %s failed: %s", script_id, exc)
            for lang, engine in list(self._engines.items()):
                self._pm.hook.kryon_engine_closing(engine=engine, manager=self)
                engine.close()
            self._engines.clear()
            self._bridges.clear()

    def __enter__(self) -> "ScriptManager":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ScriptManager languages={self.languages} scripts={sorted(self._scripts)}>"


def _owner(callback: Any) -> tuple[str, str] | None:
    if isinstance(callback, FunctionRef) and callback.script is not None:
        return (callback.language, callback.script)
    return None


def _stdout_output(language: str, text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
