"""The ScriptManager: one API over every installed engine.

It discovers engines (entry points and in-process plugins), creates each on
first use, compiles through the cache, loads scripts, keeps the function
registry ("script.fn" always resolves; a bare "fn" when it is unique), routes
calls with profiling, reloads and unloads scripts without leaking their
callbacks, and wires the ``kryon`` API of every engine to one document.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter_ns
from typing import Any, TypeVar, overload

from .bridge import ScriptBridge
from .cache import CompilationCache, default_cache_dir
from .dom import Document, DOMBridge
from .engine import CompiledScript, EngineConfig, FunctionInfo, GarbageCollectionStats, MemoryUsage, ScriptEngine
from .errors import (
    AccessDeniedError,
    AmbiguousFunctionError,
    CompileError,
    EngineNotFoundError,
    FunctionNotFoundError,
    ScriptError,
    ScriptNotFoundError,
    SizeLimitError,
    StackFrame,
)
from .interop import CrossLanguageRegistry, SharedDataManager
from .plugins import KNOWN_DISTRIBUTIONS, EngineSpec, collect_engine_specs, make_plugin_manager
from .policy import SecurityPolicy
from .profiling import SAMPLE_EVERY, SAMPLE_MASK, CallStats, Profiler
from .sourcefiles import read_source
from .values import EXTENSIONS, FunctionRef, ScriptLanguage, language_for_path, normalize_language, to_host

__all__ = ["ScriptManager", "LoadedScript"]

log = logging.getLogger("kryon")

_Doc = TypeVar("_Doc", bound=DOMBridge)



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
    #: the folder file-relative lookups (imports of files) must stay inside
    root: str | None = None

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
        self.broken_plugins: dict[str, str] = dict(self._pm.broken)
        self._engines: dict[str, ScriptEngine] = {}
        self._bridges: dict[str, ScriptBridge] = {}
        self._scripts: dict[str, LoadedScript] = {}
        self._loading: dict[str, LoadedScript] = {}
        self._lookup: dict[str, "_Location | list[str]"] = {}
        #: what _lookup is made from, kept up to date one script at a time: "script.fn" -> its
        #: location, and a bare "fn" -> every script's location of it (by qualified name)
        self._qualified: dict[str, _Location] = {}
        self._bare: dict[str, dict[str, _Location]] = {}
        self._bound: dict[str, "weakref.WeakSet[FunctionRef]"] = {}
        #: exports to less trusted callers: declared by the host ("script.fn" -> callers, None = all)
        self._host_exports: dict[str, frozenset[str] | None] = {}
        #: ... and declared by scripts (script id -> function -> callers)
        self._script_exports: dict[str, dict[str, frozenset[str] | None]] = {}
        #: bumped whenever what a name resolves to or who may call it changes (a load, reload or
        #: unload, an export): ``kryon.call`` keeps resolved targets per caller until it moves
        self.routes_version = 0
        self._lock = threading.RLock()
        self._debugger: Any = None  # a kryon_core.debug.Debugger once debugger() is asked for
        self._output = output or _stdout_output
        self.dom: DOMBridge | None = None
        self.profiler = Profiler(enabled=profiling, hot_threshold=hot_threshold)
        self.profiler.on_hot = self._on_hot
        self.profiler.has_faster_tier = self._has_faster_tier
        self.shared = SharedDataManager()
        self.interop = CrossLanguageRegistry(self)
        if not cache:
            self.cache: CompilationCache | None = None
        elif cache_dir is False:
            self.cache = CompilationCache(None)
        else:
            where = default_cache_dir if cache_dir in (None, True) else Path(cache_dir)  # type: ignore[arg-type]
            self.cache = CompilationCache(where)

    # -- engines ---------------------------------------------------------------
    @property
    def languages(self) -> list[str]:
        """Ids of the installed engines (none is created by asking)."""
        return sorted(self._specs)

    @property
    def engine_specs(self) -> dict[str, EngineSpec]:
        return dict(self._specs)

    def engines(self) -> dict[str, ScriptEngine]:
        """The engines created so far, by language (none is created by asking)."""
        return dict(self._engines)

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
            output=functools.partial(self._output, lang),
            module_loader=functools.partial(self._load_module, lang),
        )
        try:
            engine = self._pm.hook.kryon_create_engine(spec=spec, config=config) or spec.create()
            engine.initialize(config)
            engine.check_policy(self.policy)
        except ScriptError:
            raise
        except Exception as exc:  # a broken engine distribution: say which, keep the others working
            raise EngineNotFoundError(
                f"the {lang} engine ({spec.distribution or spec.factory}) failed to start: {type(exc).__name__}: {exc}",
                language=lang,
            ) from exc
        bridge = ScriptBridge(lang, self)
        bridge.dom = self.dom
        self._hook("kryon_setup_bridge", bridge=bridge, language=lang)
        engine.setup_bridge(bridge)
        self._bridges[lang] = bridge
        self._engines[lang] = engine
        self._hook("kryon_engine_initialized", engine=engine, manager=self)
        if self._debugger is not None:
            self._debugger.attach_engine(engine)
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
        root: "str | Path | None" = None,
    ) -> str:
        """Compile (through the cache) and load a script; returns its id (the name).

        ``filename`` is where the source came from (error locations use it);
        ``root`` is the folder its imports of other files must stay inside (by
        default the folder of ``filename``; an app passes the app's folder)."""
        lang = normalize_language(language)
        _check_script_name(name, lang)
        policy = _check_policy_arg(policy, lang, name)
        with self._lock:
            if name in self._scripts:
                raise ScriptError(
                    f"a script named '{name}' is already loaded; use hot_reload_script to replace it",
                    language=lang,
                    script=name,
                )
            engine = self.engine(lang)
            policy = policy or self.policy
            if policy is not self.policy:
                engine.check_policy(policy)
            text = self._prepare_source(name, lang, source, policy)
            compiled = self._compile(engine, name, text, policy, filename)
            script = LoadedScript(name, lang, compiled, policy, filename, root=_root_of(root, filename))
            self._loading[name] = script  # its top level may import files beside it
            if self._debugger is not None:  # breakpoints in its top level must be in place first
                self._debugger.script_starting(script)
            transaction = self._begin(script)
            try:
                engine.load_script(compiled, policy=policy)
            except BaseException:
                self._roll_back(transaction)
                raise
            finally:
                del self._loading[name]
            self._scripts[name] = script
            self._register(script, engine)
        if self._debugger is not None:
            self._debugger.scripts_loaded()
        self._hook(
            "kryon_script_loaded",
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
        root: "str | Path | None" = None,
    ) -> str:
        """Load a script from a file; the language comes from its extension
        and the name from its stem unless given. ``root`` as for
        :meth:`load_script_from_source`."""
        p = Path(path)
        lang = normalize_language(language) if language is not None else self.language_for_file(p)
        limit = (policy or self.policy).max_source_size
        try:
            data = read_source(p, limit, language=lang, script=name or p.stem)
        except OSError as exc:
            raise ScriptError(f"cannot read script file: {exc}", language=lang, script=str(p)) from None
        return self.load_script_from_source(name or p.stem, lang, data, policy=policy, filename=str(p), root=root)

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
        self._hook("kryon_validate_script", name=name, language=lang, source=text, policy=policy)
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

    def _register(self, script: LoadedScript, engine: ScriptEngine,
                  listed: "Mapping[str, FunctionInfo] | None" = None) -> None:
        script.functions = dict(listed if listed is not None else engine.list_functions(script.id))
        changed = set(script.functions)
        for fname in script.functions:
            qualified = f"{script.id}.{fname}"
            loc = _Location(qualified, script, fname, engine, self.profiler)
            self._qualified[qualified] = loc
            self._bare.setdefault(fname, {})[qualified] = loc
            changed.add(qualified)
        self._update_names(changed)

    def _unregister(self, script: LoadedScript) -> None:
        changed = set(script.functions)
        for fname in script.functions:
            qualified = f"{script.id}.{fname}"
            self._qualified.pop(qualified, None)
            locs = self._bare.get(fname, {})
            locs.pop(qualified, None)
            if not locs:
                self._bare.pop(fname, None)
            changed.add(qualified)
        self._update_names(changed)

    def _update_names(self, names: set[str]) -> None:
        """The lookup entries of ``names`` (the qualified and bare names of one
        script), from the others' locations: a load or unload costs what that
        script defines (rebuilding the whole table made N loads cost N²)."""
        lookup = self._lookup
        for name in names:
            if name in self._qualified:
                lookup[name] = self._qualified[name]  # a qualified name wins over a bare one of the same spelling
            elif locs := self._bare.get(name):
                lookup[name] = next(iter(locs.values())) if len(locs) == 1 else sorted(locs)
            else:
                lookup.pop(name, None)
        self.routes_version += 1  # kryon.call's cached routes resolve again (bridge views)

    def _refresh(self, scripts: "Iterable[LoadedScript]") -> None:
        """Register what each script defines now: a call may have defined
        functions since its load (Lisp's ``hy.eval`` of a ``defn``). The
        engines are asked outside the manager's lock (a sandboxed one asks
        its worker, which may be busy calling back into the manager)."""
        fresh = []
        for script in list(scripts):
            engine = self._engines.get(script.language)
            if engine is None:
                continue
            try:
                fresh.append((script, engine, engine.current_functions(script.id)))
            except ScriptError:  # unloaded meanwhile, or its worker could not answer: keep what is known
                continue
        with self._lock:
            for script, engine, listed in fresh:
                if self._scripts.get(script.id) is script and dict(listed) != script.functions:
                    self._unregister(script)
                    self._register(script, engine, listed)

    def _location(self, name: str) -> _Location:
        loc = self._lookup.get(name)
        if isinstance(loc, _Location):
            return loc
        if loc is None:  # not known: maybe defined since its script loaded
            scripts = self.scripts
            owner = [s for sid, s in scripts.items() if name.startswith(sid + ".")]
            self._refresh(owner or scripts.values())
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
        try:  # the common case in one block: a known name of one function (a list has no .call)
            loc: _Location = self._lookup[name]  # type: ignore[assignment]  # a list fails at .call
            call = loc.call
        except (KeyError, AttributeError):
            loc = self._location(name)  # or the error that says why not
            call = loc.call
        if call is None:
            call = loc.bound_call()
        if not self.profiler.enabled:
            return call(*args)
        # counted always; timed the first SAMPLE_EVERY calls, then one in SAMPLE_EVERY, and the call
        # that makes it hot (profiling.is_timed): inline, this is the per-call cost of the manager's path
        stats = loc.stats
        # one statement: the count is exact under threads (CrossLanguageRegistry.call_routed), and the
        # bound is read with it, before any other thread's call can move it (CallStats.next_timed)
        timed_from, stats.calls = stats.next_timed, (n := stats.calls + 1)
        if n < timed_from:  # one comparison for the untimed calls
            try:
                return call(*args)
            except BaseException as exc:
                self._call_failed(stats, exc, caller)
                raise
        return self._timed_call(stats, n, call, args, caller)

    def _timed_call(
        self, stats: CallStats, n: int, call: Callable[..., Any], args: Sequence[Any], caller: str | None
    ) -> Any:
        """The call of :meth:`call_function` (already counted) at or past
        ``stats.next_timed``: timed when it is in the sample, and the one that
        reports the function hot when its count reaches the threshold."""
        profiler = self.profiler
        hot = profiler.hot_threshold
        # profiling.next_timed and is_timed, written out: one call in SAMPLE_EVERY comes here, so their
        # frames were a sizeable part of the per-call average (tests/core/test_call_sampling.py checks both)
        following = n + 1 if n < SAMPLE_EVERY else ((n - 1) | SAMPLE_MASK) + 2
        stats.next_timed = hot if n < hot < following else following
        if n > SAMPLE_EVERY and n & SAMPLE_MASK != 1 and n != hot:  # the bound was stale (other threads, a reset)
            try:
                return call(*args)
            except BaseException as exc:
                self._call_failed(stats, exc, caller)
                raise
        start = perf_counter_ns()
        try:
            return call(*args)
        except BaseException as exc:
            self._call_failed(stats, exc, caller)
            raise
        finally:
            stats.record(perf_counter_ns() - start, n)
            if n == hot:  # this call's count: nested calls may have added more
                profiler.became_hot(stats)

    def _call_failed(self, stats: CallStats, exc: BaseException, caller: str | None) -> None:
        stats.errors += 1
        if self._debugger is not None and caller is None and isinstance(exc, ScriptError):
            self._debugger.uncaught(exc)

    async def call_function_async(self, name: str, args: Sequence[Any] = ()) -> Any:
        """Await a function: async functions, coroutines, promises and fibers
        run cooperatively on the running loop (every such call is timed).
        The callee's ``time_limit`` bounds the whole awaited call, the time it
        spends suspended included (``docs/security.md``, "Awaited calls"):
        past it the call raises ScriptTimeoutError and the script stays usable."""
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
                stats.calls += 1
                stats.record(perf_counter_ns() - start, 0)  # every async call is timed: none is an estimate

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
        # an engine's compiled callable may name a FunctionRef subclass of its own whose instances are
        # called straight through to their _call (vectorcall: no look-up of __call__, no argument tuple)
        handle = getattr(raw._call, "handle_type", None)
        make = handle if isinstance(handle, type) and issubclass(handle, FunctionRef) else FunctionRef.direct
        return make(
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

    def evaluate(self, language: "str | ScriptLanguage", code: str, *, script: str | None = None) -> Any:
        """Run ``code`` in a loaded script's namespace and return its value (an
        expression's value, None for statements). Without ``script``, a console
        script of the language is used, made empty on first use under the
        manager's policy: the state of ``kryon eval`` and ``kryon repl``.
        Functions the code defines become callable like any script's."""
        lang = normalize_language(language)
        if not isinstance(code, str):
            raise ScriptError(f"code must be a str, not {type(code).__name__}", language=lang)
        with self._lock:
            name = script if script is not None else f"{lang}-console"
            if script is None and name not in self._scripts:
                self.load_script_from_source(name, lang, "")
            loaded = self._script(name)
            if loaded.language != lang:
                raise ScriptError(f"script '{name}' is {loaded.language}, not {lang}", language=lang, script=name)
            engine = self.engine(lang)
        try:
            return engine.evaluate(name, code)
        finally:
            with self._lock:
                if name in self._scripts:
                    self._unregister(loaded)
                    self._register(loaded, engine)

    def debugger(self) -> Any:
        """The manager's debugger (a :class:`kryon_core.debug.Debugger`), made and
        attached to every engine that supports debugging on first use; engines
        created later attach as they start. Runs without it pay nothing."""
        with self._lock:
            if self._debugger is None:
                from .debug import Debugger

                self._debugger = Debugger(self)
                self._debugger.attach()
            return self._debugger

    # -- trust between scripts -------------------------------------------------------
    def expose(self, function: str, to: "str | Iterable[str]" = "*") -> None:
        """Let scripts whose policy does not cover ``function``'s own script call
        it (through ``kryon.call``, or a FunctionRef handed across): ``to`` is
        ``"*"`` for every script, or the script ids allowed. ``function`` is
        "script.fn" (the script need not be loaded yet) or a bare name that
        resolves now. Scripts declare their own exports with ``kryon.expose``."""
        qualified = function if "." in function else self._location(function).qualified
        with self._lock:
            self._host_exports[qualified] = _callers(to)
            self.routes_version += 1

    def unexpose(self, function: str) -> None:
        """Take back a host export made with :meth:`expose`."""
        with self._lock:
            self._host_exports.pop(function if "." in function else self._location(function).qualified, None)
            self.routes_version += 1

    def expose_from_script(self, script_id: str, function: str, to: "frozenset[str] | None") -> None:
        """A script's own ``kryon.expose(function, to)`` (``to`` None: every script)."""
        with self._lock:
            self._script_exports.setdefault(script_id, {})[function] = to
            self.routes_version += 1

    def _exported_to(self, script_id: str, function: str, caller: str | None) -> bool:
        missing = frozenset[str]()  # not exported at all
        for to in (
            self._host_exports.get(f"{script_id}.{function}", missing),
            self._script_exports.get(script_id, {}).get(function, missing),
        ):
            if to is None or caller in to:
                return True
        return False

    def check_call(
        self, target: str, *, caller: str | None, policy: SecurityPolicy | None, language: str | None = None
    ) -> "_Location":
        """Resolve ``target`` for a call by script ``caller`` under ``policy``;
        AccessDeniedError unless the caller's policy covers the callee's or the
        callee exposed the function to the caller."""
        loc = self._location(target)
        if policy is None or caller == loc.script:
            return loc
        callee = self._scripts.get(loc.script)
        if callee is None or policy.covers(callee.policy) or self._exported_to(loc.script, loc.function, caller):
            return loc
        who = f"script '{caller}'" if caller else f"a {language or 'script'} caller"
        raise AccessDeniedError(
            f"{who} ({policy.describe()}) may not call '{loc.qualified}' of a more trusted script "
            f"({callee.policy.describe()}): the callee must expose it (kryon.expose, or ScriptManager.expose)",
            language=language,
            script=caller,
        )

    def admit(self, value: Any, caller: str | None, policy: SecurityPolicy, *, source: "_Location | None" = None) -> Any:
        """``value`` as a script ``caller`` under ``policy`` may receive it: every
        function in it must belong to a script the caller's policy covers, or
        be exposed to the caller; other callables (host functions) only come
        from scripts the caller covers. AccessDeniedError otherwise."""
        if value is None or not isinstance(value, (list, dict)) and not callable(value):
            return value
        source_trusted = source is None or (
            (src := self._scripts.get(source.script)) is None or policy.covers(src.policy)
        )
        stack = [value]
        seen: set[int] = set()
        while stack:
            v = stack.pop()
            if isinstance(v, list):
                if id(v) not in seen:
                    seen.add(id(v))
                    stack.extend(v)
            elif isinstance(v, dict):
                if id(v) not in seen:
                    seen.add(id(v))
                    stack.extend(v.values())
            elif isinstance(v, FunctionRef) and v.script is not None:
                owner = self._scripts.get(v.script)
                if owner is not None and not policy.covers(owner.policy) and not self._exported_to(v.script, v.name, caller):
                    raise AccessDeniedError(
                        f"function '{v.script}.{v.name}' of a more trusted script cannot be handed to "
                        f"script '{caller}' ({policy.describe()}) unless that script exposes it",
                        script=caller,
                    )
            elif callable(v) and not isinstance(v, FunctionRef) and not source_trusted:
                raise AccessDeniedError(
                    f"a host function cannot be handed to script '{caller}' ({policy.describe()}) by a more trusted script",
                    script=caller,
                )
        return value

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
            transaction = self._begin(script)
            self._script_exports.pop(script.id, None)  # the new top level declares its own
            self.routes_version += 1
            try:
                engine.reload_script(script.id, compiled, policy=script.policy, previous=script.compiled)
            except BaseException:
                self._roll_back(transaction)
                raise
            self._drop_callbacks(owned)
            self._unregister(script)
            script.compiled = compiled
            script.reloads += 1
            self._register(script, engine)
            self._rebind(script.id)
        if self._debugger is not None:
            self._debugger.scripts_loaded()
        self._hook(
            "kryon_script_loaded",
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
            release = getattr(self.dom, "release_writer", None)
            if release is not None:
                release(script.language, script.id)
            self._script_exports.pop(script.id, None)
            self._unregister(script)  # (which moves routes_version)
            del self._scripts[script_id]
            for ref in list(self._bound.pop(script_id, ())):
                ref.release()
            self._engines[script.language].unload_script(script_id)
            self.profiler.forget_script(script_id)
        self._hook("kryon_script_unloaded", manager=self, script_id=script_id, language=script.language)

    def _begin(self, script: LoadedScript) -> "_Transaction":
        """Note what ``script`` holds before its top level runs (a load or a
        reload), so that a failure can take back everything the top level
        registered: listeners, watchers, timers, animations, shared objects
        and listeners, and exports."""
        return _Transaction(
            script=script,
            callbacks=frozenset(self._owned_callbacks(script)),
            shared=self.shared.snapshot(script.language, script.id),
            exports=dict(self._script_exports.get(script.id, {})),
        )

    def _roll_back(self, transaction: "_Transaction") -> None:
        script = transaction.script
        added = [key for key in self._owned_callbacks(script) if key not in transaction.callbacks]
        self._drop_callbacks(added)
        self.shared.roll_back(script.language, script.id, transaction.shared)
        if transaction.exports:
            self._script_exports[script.id] = transaction.exports
        else:
            self._script_exports.pop(script.id, None)
        self.routes_version += 1

    def _owned_callbacks(self, script: LoadedScript) -> list[tuple[str, int]]:
        owned = getattr(self.dom, "owned_callbacks", None)
        if owned is None:
            return []
        keys: list[tuple[str, int]] = owned(lambda cb: _owner(cb) == (script.language, script.id))
        return keys

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
        """Every function by qualified name, as the scripts define them now
        (a call may have defined some since its script loaded)."""
        self._refresh(self.scripts.values())
        return {
            k: v.info for k, v in self._lookup.items() if isinstance(v, _Location) and k == v.qualified
        }

    def stack_trace(self, language: "str | ScriptLanguage") -> list[StackFrame]:
        return self.engine(language).get_stack_trace()

    # -- globals ----------------------------------------------------------------------------
    def set_global(self, language: "str | ScriptLanguage", name: str, value: Any) -> None:
        """Set a global every script of ``language`` sees. The name must be an
        identifier and the value a value-model value (checked here, before the
        engine holds any of it, so a bad value poisons nothing)."""
        lang = normalize_language(language)
        _check_global_name(name, lang)
        value = self._checked_value(value, lang)
        self.engine(lang).set_global(name, value)

    def get_global(self, language: "str | ScriptLanguage", name: str) -> Any:
        lang = normalize_language(language)
        _check_global_name(name, lang)
        return self.engine(lang).get_global(name)

    def _checked_value(self, value: Any, language: str) -> Any:
        """``value`` in the value model, host objects converted by the
        ``kryon_convert_value`` hooks; ConversionError for anything else."""
        if value is None or type(value) in (bool, int, float, str, bytes):
            return value
        return to_host(value, language=language, convert=lambda v: self.convert_value(v, language))

    # -- the DOM ---------------------------------------------------------------------------
    @overload
    def setup_dom_bridge(self, document: None = None) -> Document: ...

    @overload
    def setup_dom_bridge(self, document: _Doc) -> _Doc: ...

    def setup_dom_bridge(self, document: DOMBridge | None = None) -> DOMBridge:
        """Attach a document (a new :class:`Document` when omitted) to the
        ``kryon`` API of every engine, now and created later; returns it."""
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
            "cache": self.cache.stats.as_dict() if self.cache is not None else None,
            "hot_functions": [h.function_name for h in self.profiler.hot_functions()],
        }

    # -- plumbing ---------------------------------------------------------------------------
    def _on_hot(self, qualified: str, language: str) -> None:
        engine = self._engines.get(language)
        loc = self._lookup.get(qualified)
        if engine is None or not isinstance(loc, _Location):
            return
        try:
            moved = engine.on_hot_function(loc.script, loc.function)
        except ScriptError as exc:  # a failed promotion leaves the function where it was
            log.warning("moving hot function %s to a faster tier failed: %s", qualified, exc)
            return
        if moved is not None:
            loc.stats.tier, loc.stats.speedup = moved
            loc.call = None  # the engine's bound callable changed: fetch it again
            self.routes_version += 1  # and kryon.call's cached routes, which keep it, resolve again
            self._rebind(loc.script)

    def _has_faster_tier(self, qualified: str, language: str) -> bool:
        engine = self._engines.get(language)
        loc = self._lookup.get(qualified)
        return engine is not None and isinstance(loc, _Location) and engine.faster_tier(loc.script, loc.function) is not None

    def _hook(self, hook: str, /, **kwargs: Any) -> Any:
        """Call plugin hook ``hook``. A ScriptError a hook raises passes as it is
        (that is how a plugin refuses a script); any other exception is a
        plugin's bug, reported as a ScriptError naming the hook."""
        try:
            return getattr(self._pm.hook, hook)(**kwargs)
        except ScriptError:
            raise
        except Exception as exc:
            language = kwargs.get("language")
            raise ScriptError(
                f"a plugin's {hook} hook failed: {type(exc).__name__}: {exc}",
                language=language if isinstance(language, str) else None,
                script=kwargs.get("script_id") or kwargs.get("name"),
            ) from exc

    def convert_value(self, value: Any, language: str) -> Any:
        """What the ``kryon_convert_value`` hooks make of a host object the
        engine does not know (None when no hook converts it)."""
        return self._hook("kryon_convert_value", value=value, language=language)

    def log_script(self, language: str, level: str, text: str) -> None:
        """Log a script's ``kryon.log`` message (when no document is attached)
        to the ``kryon.script.<language>`` logger."""
        logging.getLogger(f"kryon.script.{language}").log(
            {"debug": 10, "info": 20, "warn": 30, "error": 40}.get(level, 20), text
        )

    def _load_module(self, language: str, importer: str, name: str) -> str | None:
        """Source of a module a script imports: a loaded script of the same
        language named ``name``, else a file relative to the importing
        script's file, which must resolve (symlinks followed) inside the
        script's root; anything else is AccessDeniedError."""
        loaded = self._scripts.get(name)
        if loaded is not None and loaded.language == language:
            return loaded.compiled.source
        importer_script = self._scripts.get(importer) or self._loading.get(importer)
        if importer_script is None or importer_script.filename is None:
            return None
        base = Path(importer_script.filename).parent
        root = Path(importer_script.root or base)
        if "\x00" in name or Path(name).is_absolute():
            raise AccessDeniedError(
                f"import of '{name}': only paths relative to the script are allowed",
                language=language,
                script=importer,
            )
        exts = [ext for ext, lang in self._extensions().items() if lang == language]
        for ext in exts:
            candidate = base / f"{name}{ext}"
            if not candidate.is_file():
                continue
            if not _inside(candidate, root):
                raise AccessDeniedError(
                    f"import of '{name}' resolves outside the script's folder ({root})",
                    language=language,
                    script=importer,
                )
            try:
                shown = name[2:] if name.startswith("./") else name
                return read_source(candidate, importer_script.policy.max_source_size, language=language,
                                   script=importer, what=f"the module '{shown}' beside the script").decode("utf-8")
            except OSError as exc:
                raise ScriptError(f"cannot read '{candidate.name}': {exc}", language=language, script=importer) from None
        return None

    def close(self) -> None:
        """Unload every script and free every engine. A failing unload,
        ``kryon_engine_closing`` hook or ``engine.close()`` never stops the
        rest from closing: each failure is logged on the ``kryon`` logger and
        kept in :attr:`close_errors`. The debugger detaches first: a thread
        stopped in it holds its engine, which could not be closed."""
        with self._lock:
            self.close_errors: list[BaseException] = []
            if self._debugger is not None:
                self._debugger.detach()
            for script_id in list(self._scripts):
                try:
                    self.unload_script(script_id)
                except Exception as exc:
                    self._close_failed(f"unloading {script_id}", exc)
            for lang, engine in list(self._engines.items()):
                try:
                    self._pm.hook.kryon_engine_closing(engine=engine, manager=self)
                except Exception as exc:
                    self._close_failed(f"a kryon_engine_closing hook for {lang}", exc)
                try:
                    engine.close()
                except Exception as exc:
                    self._close_failed(f"closing the {lang} engine", exc)
            self._engines.clear()
            self._bridges.clear()
            self._debugger = None  # detached above

    def _close_failed(self, what: str, exc: BaseException) -> None:
        self.close_errors.append(exc)
        log.error("%s failed while the manager closed: %s: %s", what, type(exc).__name__, exc)

    def __enter__(self) -> "ScriptManager":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ScriptManager languages={self.languages} scripts={sorted(self._scripts)}>"


@dataclass(frozen=True)
class _Transaction:
    """What a script held before its top level ran (see ``ScriptManager._begin``)."""

    script: LoadedScript
    callbacks: frozenset[tuple[str, int]]
    shared: tuple[frozenset[int], frozenset[str]]
    exports: dict[str, "frozenset[str] | None"]


def _callers(to: "str | Iterable[str]") -> "frozenset[str] | None":
    if to == "*":
        return None
    if isinstance(to, str):
        return frozenset({to})
    names = list(to)
    if not all(isinstance(n, str) for n in names):
        raise ScriptError("expose: 'to' must be \"*\", a script id or script ids")
    return frozenset(names)


def _check_script_name(name: Any, language: str) -> None:
    if not isinstance(name, str) or not name:
        raise ScriptError(f"a script needs a non-empty name (a str), not {name!r}", language=language)
    if len(name) > 256 or any(ord(c) < 32 or c == "\x7f" for c in name):
        raise ScriptError(
            f"a script name must be at most 256 characters without control characters: {name[:40]!r}",
            language=language,
        )


def _check_global_name(name: Any, language: str) -> None:
    """A global's name: a non-empty str without spaces or control characters
    (each language may refuse more: Lisp takes kebab-case, Lua an identifier)."""
    if not isinstance(name, str) or not name or len(name) > 256 or any(c.isspace() or ord(c) < 32 for c in name):
        raise ScriptError(f"a global's name must be a word without spaces, not {name!r}", language=language)


def _check_policy_arg(policy: Any, language: str, script: str) -> SecurityPolicy | None:
    if policy is None or isinstance(policy, SecurityPolicy):
        return policy
    raise ScriptError(
        f"policy must be a SecurityPolicy, not {type(policy).__name__}", language=language, script=script
    )


def _root_of(root: "str | Path | None", filename: str | None) -> str | None:
    if root is not None:
        return str(Path(root).resolve())
    return str(Path(filename).resolve().parent) if filename else None


def _inside(path: Path, root: Path) -> bool:
    """Whether ``path``, symlinks resolved, lies inside ``root``."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a symlink loop
        return False


def _owner(callback: Any) -> tuple[str, str] | None:
    if isinstance(callback, FunctionRef) and callback.script is not None:
        return (callback.language, callback.script)
    return None


def _stdout_output(language: str, text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _compiled_call_function() -> None:
    """``ScriptManager.call_function``'s common case in C when the compiled core is there
    (``kryon_core/_speedups.c``, "ScriptManager.call_function"): a known name whose bound callable
    is made, called with a list or tuple of up to 8 arguments and no ``caller``; counted, and
    timed by ``_timed_call`` and failed through ``_call_failed`` as above. Every other call (a
    subclass of ScriptManager among them) goes to the Python method before anything is counted.
    Decided once, when this module is imported. The C code reads ``_lookup`` and ``profiler``
    from the manager's ``__dict__`` and ``enabled`` from the profiler's, and the slots of
    _Location and CallStats at their descriptors' offsets: checked here, else no C path."""
    from . import speedups

    ext = speedups.module()
    if ext is None:
        return
    shadowed = {ScriptManager: ("_lookup", "profiler"), Profiler: ("enabled",)}
    if any(name in vars(k) for cls, names in shadowed.items() for k in cls.__mro__ for name in names):
        return
    try:
        offsets = [ext.slot_offset(vars(cls)[name]) for cls, name in
                   ((_Location, "call"), (_Location, "stats"), (CallStats, "calls"), (CallStats, "next_timed"))]
        compiled = ext.manager_call(ScriptManager.call_function, ScriptManager, _Location, Profiler, CallStats, *offsets)
    except (KeyError, TypeError, ValueError):
        return
    ScriptManager.call_function = compiled  # type: ignore[method-assign]


_compiled_call_function()
