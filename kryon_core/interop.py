"""Data and functions shared across languages.

:class:`CrossLanguageRegistry` is the directory of every function scripts
export (every function a loaded script defines), with metadata, and the
route of ``kryon.call``: it records per-function statistics of calls from
each language.

:class:`SharedDataManager` holds named objects any script may read or write
through ``kryon.getShared`` / ``kryon.setShared``, subject to an
:class:`AccessPolicy` per object: which languages may read, which may write,
and whether the object is read-only. Values are stored as detached copies in
the value model, so one language never aliases another's tables or arrays.
Change listeners, written in any language, run after each write.
"""

from __future__ import annotations

import copy
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from .bridge import DEFAULT_CALL_DEPTH
from .errors import AccessDeniedError, DOMError, MemoryLimitError, RecursionLimitError, ScriptError
from .policy import SecurityPolicy
from .profiling import SAMPLE_EVERY, SAMPLE_MASK, TimedSample, estimate_total
from .values import FunctionRef, approximate_size, to_host

if TYPE_CHECKING:
    from .manager import ScriptManager

__all__ = [
    "AccessPolicy",
    "SharedObject",
    "SharedDataManager",
    "HOST",
    "CrossLanguageRegistry",
    "FunctionMetadata",
    "CallStatistics",
]

log = logging.getLogger("kryon.shared")

#: the requester name for the host application itself, which every policy admits
HOST = "host"


@dataclass(frozen=True)
class AccessPolicy:
    """Who may touch a shared object, by language. ``None`` means the default
    rule: the host always; a script whose policy covers the owner's (see
    ``SecurityPolicy.covers``). A list names the languages granted explicitly."""

    read_languages: frozenset[str] | None = None
    write_languages: frozenset[str] | None = None
    is_readonly: bool = False

    @classmethod
    def of(
        cls, *, read: Iterable[str] | None = None, write: Iterable[str] | None = None, readonly: bool = False
    ) -> "AccessPolicy":
        return cls(
            frozenset(_names(read, "read")) if read is not None else None,
            frozenset(_names(write, "write")) if write is not None else None,
            readonly,
        )

    def may_read(self, language: str) -> bool:
        return language == HOST or self.read_languages is None or language in self.read_languages

    def may_write(self, language: str) -> bool:
        if self.is_readonly:
            return False
        return language == HOST or self.write_languages is None or language in self.write_languages


def _names(items: Iterable[str], what: str) -> list[str]:
    if isinstance(items, str) or not all(isinstance(i, str) for i in items):
        raise ScriptError(f"a shared object's '{what}' must be a list of language names")
    return list(items)


@dataclass
class SharedObject:
    id: str
    data: Any
    owner_language: str
    policy: AccessPolicy
    created_at: float = field(default_factory=time.time)
    last_modified: float = field(default_factory=time.time)
    access_count: int = 0
    version: int = 1
    #: the script that created it (None: the host), and that script's policy
    owner_script: str | None = None
    owner_policy: SecurityPolicy | None = None
    #: bytes of ``data`` (approximate), and the script they are charged to
    size: int = 0
    charged_to: tuple[str, str] | None = None


@dataclass
class ScriptQuota:
    """What one script holds in shared data (see ``SecurityPolicy.max_shared_*``)."""

    entries: int = 0
    bytes: int = 0


class SharedDataManager:
    """Named objects shared between languages; see the module docstring.

    Requests made on behalf of a script pass ``script`` and ``policy`` (the
    ``kryon`` API does): the object is charged to that script's quota and the
    trust rule applies. Requests without them come from the host."""

    def __init__(self, on_error: Callable[[BaseException], None] | None = None) -> None:
        self._objects: dict[str, SharedObject] = {}
        self._listeners: dict[int, tuple[str, Callable[..., Any]]] = {}
        self._quotas: dict[tuple[str, str], ScriptQuota] = {}
        self._next_listener = 1
        self._lock = threading.RLock()
        self.on_error = on_error or (lambda exc: log.error("shared-data listener failed: %s", exc))

    def create(
        self,
        object_id: str,
        data: Any,
        *,
        owner: str = HOST,
        policy: AccessPolicy | None = None,
        script: str | None = None,
        trust: SecurityPolicy | None = None,
    ) -> None:
        value = _detach(data, owner)
        size = approximate_size(value)
        with self._lock:
            if object_id in self._objects:
                raise ScriptError(f"shared object '{object_id}' already exists", language=_lang(owner))
            obj = SharedObject(object_id, value, owner, policy or AccessPolicy(), owner_script=script)
            if script is not None:
                obj.owner_policy = trust
                self._charge(obj, owner, script, trust, size, new_entry=True)
            else:
                obj.size = size
            self._objects[object_id] = obj

    def _get(self, object_id: str) -> SharedObject:
        obj = self._objects.get(object_id)
        if obj is None:
            raise ScriptError(f"no shared object '{object_id}'")
        return obj

    def read(
        self, object_id: str, language: str = HOST, *, script: str | None = None, trust: SecurityPolicy | None = None
    ) -> Any:
        with self._lock:
            obj = self._get(object_id)
            if not self._may(obj, language, trust, obj.policy.read_languages):
                raise AccessDeniedError(f"{_who(language, script)} may not read shared object '{object_id}'", language=_lang(language))
            obj.access_count += 1
            return copy.deepcopy(obj.data)

    def write(
        self,
        object_id: str,
        data: Any,
        language: str = HOST,
        *,
        script: str | None = None,
        trust: SecurityPolicy | None = None,
    ) -> None:
        value = _detach(data, language)
        size = approximate_size(value)
        with self._lock:
            obj = self._get(object_id)
            if obj.policy.is_readonly:
                raise AccessDeniedError(f"shared object '{object_id}' is read-only", language=_lang(language))
            if not self._may(obj, language, trust, obj.policy.write_languages):
                raise AccessDeniedError(
                    f"{_who(language, script)} may not write shared object '{object_id}'", language=_lang(language)
                )
            if script is not None:
                self._charge(obj, language, script, trust, size, new_entry=False)
            else:
                self._uncharge(obj)
                obj.size = size
            old = obj.data
            obj.data = value
            obj.last_modified = time.time()
            obj.version += 1
            obj.access_count += 1
            listeners = [cb for (oid, cb) in self._listeners.values() if oid == object_id]
        for callback in listeners:
            try:
                callback(object_id, copy.deepcopy(value), old)
            except Exception as exc:  # a broken listener never undoes the write
                self.on_error(exc)

    def _may(
        self, obj: SharedObject, language: str, trust: SecurityPolicy | None, granted: frozenset[str] | None
    ) -> bool:
        """The access rule: the host always; an explicit language list; else a
        requester whose policy covers the owner's (host-made objects are open)."""
        if language == HOST:
            return True
        if granted is not None:
            return language in granted
        if obj.owner_policy is None:
            return True
        if trust is None:
            return True  # a request that does not say who is calling (the host's own code)
        return trust.covers(obj.owner_policy)

    def _charge(
        self,
        obj: SharedObject,
        language: str,
        script: str,
        policy: SecurityPolicy | None,
        size: int,
        *,
        new_entry: bool,
    ) -> None:
        """Charge ``size`` bytes of ``obj`` (and, for a new object, one entry) to
        ``script``; MemoryLimitError past the script's quota (nothing changes)."""
        key = (language, script)
        quota = self._quotas.setdefault(key, ScriptQuota())
        held = obj.size if obj.charged_to == key else 0
        if policy is not None:
            if new_entry and policy.max_shared_entries is not None and quota.entries >= policy.max_shared_entries:
                raise MemoryLimitError(
                    f"script '{script}' may create at most {policy.max_shared_entries} shared objects "
                    "(SecurityPolicy.max_shared_entries)",
                    language=_lang(language),
                    script=script,
                )
            if policy.max_shared_bytes is not None and quota.bytes - held + size > policy.max_shared_bytes:
                raise MemoryLimitError(
                    f"shared data of script '{script}' would take {quota.bytes - held + size} bytes, over its "
                    f"quota of {policy.max_shared_bytes} (SecurityPolicy.max_shared_bytes)",
                    language=_lang(language),
                    script=script,
                )
        self._uncharge(obj)
        if new_entry:
            quota.entries += 1
        quota.bytes += size
        obj.size, obj.charged_to = size, key

    def _uncharge(self, obj: SharedObject) -> None:
        if obj.charged_to is not None:
            quota = self._quotas.get(obj.charged_to)
            if quota is not None:
                quota.bytes -= obj.size
            obj.charged_to = None

    def usage(self, language: str, script: str) -> ScriptQuota:
        """What ``script`` holds in shared data now (entries it created, bytes charged to it)."""
        with self._lock:
            quota = self._quotas.get((language, script), ScriptQuota())
            return ScriptQuota(quota.entries, quota.bytes)

    def delete(self, object_id: str, language: str = HOST, *, script: str | None = None) -> None:
        with self._lock:
            obj = self._get(object_id)
            if language != HOST and (language != obj.owner_language or (script is not None and script != obj.owner_script)):
                raise AccessDeniedError(f"only the owner may delete '{object_id}'", language=_lang(language))
            self._drop(obj)

    def _drop(self, obj: SharedObject) -> None:
        self._uncharge(obj)
        if obj.owner_script is not None:
            quota = self._quotas.get((obj.owner_language, obj.owner_script))
            if quota is not None:
                quota.entries -= 1
        del self._objects[obj.id]
        for lid in [lid for lid, (oid, _) in self._listeners.items() if oid == obj.id]:
            del self._listeners[lid]

    def on_change(self, object_id: str, callback: Callable[..., Any]) -> int:
        """``callback(id, new, old)`` after each write; returns a listener id."""
        with self._lock:
            self._get(object_id)
            lid = self._next_listener
            self._next_listener += 1
            self._listeners[lid] = (object_id, callback)
            return lid

    def remove_listener(self, listener_id: int) -> None:
        with self._lock:
            self._listeners.pop(listener_id, None)

    def snapshot(self, language: str, script: str) -> tuple[frozenset[int], frozenset[str]]:
        """The listeners and objects ``script`` has now (a load transaction's start)."""
        with self._lock:
            return (
                frozenset(lid for lid, (_, cb) in self._listeners.items() if _owned_by(cb, language, script)),
                frozenset(o.id for o in self._objects.values() if (o.owner_language, o.owner_script) == (language, script)),
            )

    def roll_back(self, language: str, script: str, before: tuple[frozenset[int], frozenset[str]]) -> None:
        """Drop what ``script`` added since ``snapshot`` (a failed load)."""
        listeners, objects = before
        with self._lock:
            for lid in [lid for lid, (_, cb) in self._listeners.items() if _owned_by(cb, language, script)]:
                if lid not in listeners:
                    del self._listeners[lid]
            for obj in [o for o in self._objects.values() if (o.owner_language, o.owner_script) == (language, script)]:
                if obj.id not in objects:
                    self._drop(obj)

    def release_script(self, language: str, script: str) -> int:
        """Drop listeners that are functions of an unloaded script."""
        with self._lock:
            doomed = [lid for lid, (_, cb) in self._listeners.items() if _owned_by(cb, language, script)]
            for lid in doomed:
                del self._listeners[lid]
            return len(doomed)

    def info(self, object_id: str) -> SharedObject:
        with self._lock:
            return copy.copy(self._get(object_id))

    def __contains__(self, object_id: str) -> bool:
        return object_id in self._objects

    def ids(self) -> list[str]:
        with self._lock:
            return sorted(self._objects)


def _name(target: Any) -> str:
    """A ``kryon.call`` target as a name (what the API says of a non-str name)."""
    if isinstance(target, str):
        return target
    raise DOMError(f"function name must be a string, not {type(target).__name__}")


def _owned_by(callback: Any, language: str, script: str) -> bool:
    return isinstance(callback, FunctionRef) and callback.language == language and callback.script == script


def _lang(language: str) -> str | None:
    return None if language == HOST else language


def _who(language: str, script: str | None) -> str:
    return f"script '{script}' ({language})" if script else language


def _detach(data: Any, language: str) -> Any:
    value = to_host(data, language=language)
    return copy.deepcopy(value) if isinstance(value, (list, dict)) else value


@dataclass(frozen=True)
class FunctionMetadata:
    """The specification's FunctionMetadata for an exported function."""

    name: str
    qualified_name: str
    language: str
    script: str
    parameter_names: tuple[str, ...]
    parameter_count: int
    is_async: bool
    is_variadic: bool
    documentation: str | None


class _Count:
    """Calls of one function from one language: the counter a resolved route
    bumps (one slot write per call instead of dictionary updates)."""

    __slots__ = ("calls", "failed")

    def __init__(self) -> None:
        self.calls = 0  # failed ones included
        self.failed = 0


class CallStatistics(TimedSample):
    """Calls of one function that came through ``kryon.call``. Counts are
    exact; times are of a sample (see :mod:`kryon_core.profiling`; with the
    profiler on, the first SAMPLE_EVERY calls and then the function's own
    periodic sample), and ``total_ns`` is estimated from it."""

    __slots__ = ("_by_language",)

    def __init__(self) -> None:
        super().__init__()
        self._by_language: dict[str, _Count] = {}

    def count_for(self, language: str) -> _Count:
        count = self._by_language.get(language)
        if count is None:
            count = self._by_language.setdefault(language, _Count())
        return count

    @property
    def by_caller(self) -> dict[str, int]:
        """Calls (failed ones included) by the caller's language."""
        return {lang: c.calls for lang, c in list(self._by_language.items())}

    @property
    def successful_calls(self) -> int:
        return sum(c.calls - c.failed for c in list(self._by_language.values()))

    @property
    def failed_calls(self) -> int:
        return sum(c.failed for c in list(self._by_language.values()))

    @property
    def total_ns(self) -> int:
        calls = sum(c.calls for c in list(self._by_language.values()))
        return estimate_total(calls, self.timed, self.timed_ns, self.steady, self.steady_ns)

    @property
    def average_us(self) -> float:
        calls = sum(c.calls for c in list(self._by_language.values()))
        return self.total_ns / calls / 1000 if calls else 0.0

    def __repr__(self) -> str:
        return (f"CallStatistics(successful_calls={self.successful_calls}, failed_calls={self.failed_calls}, "
                f"by_caller={self.by_caller})")


class _Route:
    """A ``kryon.call`` target resolved for one caller (one bridge view): where
    it lives and its engine's bound callable, that the caller may call it, its
    counters (the route's, and the profiler's record of the function) and the
    caller's nesting limit. Valid while the manager's ``routes_version`` is the
    one it was made at (loads, reloads, unloads, exports and a function moved
    to a faster tier move it)."""

    __slots__ = ("version", "loc", "call", "stats", "count", "pstats", "limit", "low", "admit")

    def __init__(self, version: int, loc: Any, stats: CallStatistics, count: _Count, limit: int, admit: bool) -> None:
        self.version, self.loc, self.stats, self.count = version, loc, stats, count
        self.call: Callable[..., Any] = loc.call or loc.bound_call()
        self.pstats = loc.stats
        self.limit, self.admit = limit, admit
        #: nesting up to this deep passes both depth tests without reading the recursion limit
        self.low = min(limit, 4)


class _Depth:
    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0


class _Depths(threading.local):
    """Each thread's :class:`_Depth`: one thread-local look-up per call, then
    slot reads and writes (a thread-local attribute costs twice a slot)."""

    def __init__(self) -> None:
        self.depth = _Depth()


#: results a sandboxed caller receives as they are (nothing in them to check)
_PLAIN = frozenset({type(None), bool, int, float, str, bytes})


class CrossLanguageRegistry:
    """Exported functions of every language, and cross-language call routing.

    Functions are exported by loading the script that defines them; the
    registry reads the manager's function table, so it is never stale."""

    def __init__(self, manager: "ScriptManager") -> None:
        self._manager = manager
        self.call_stats: dict[str, CallStatistics] = {}
        self._lock = threading.Lock()
        self._depths = _Depths()  # cross-language nesting, per thread, every engine's calls together
        self._profiler = manager.profiler

    def exported_functions(self, language: str | None = None) -> dict[str, FunctionMetadata]:
        """qualified name -> metadata, optionally for one language."""
        out = {}
        for qualified, info in self._manager.functions().items():
            script = qualified[: -len(info.name) - 1]
            lang = self._manager.scripts[script].language
            if language is not None and lang != language:
                continue
            out[qualified] = FunctionMetadata(
                name=info.name,
                qualified_name=qualified,
                language=lang,
                script=script,
                parameter_names=tuple(info.parameter_names),
                parameter_count=info.parameter_count,
                is_async=info.is_async,
                is_variadic=info.is_variadic,
                documentation=info.documentation,
            )
        return out

    def call(
        self,
        source_language: str,
        target: str,
        args: "list[Any] | tuple[Any, ...]",
        *,
        caller: str | None = None,
        policy: "SecurityPolicy | None" = None,
        routes: "dict[str, _Route] | None" = None,
    ) -> Any:
        """Call ``target`` (any resolvable name) on behalf of script ``caller``
        of ``source_language`` running under ``policy``.

        The caller must be allowed to call the callee (``ScriptManager.check_call``),
        and a sandboxed caller receives the result only as far as it may
        (``ScriptManager.admit``). Calls that nest across languages deeper than
        the caller's ``max_recursion`` (default 200, and at most a sixteenth
        of Python's recursion limit) raise RecursionLimitError instead of
        overflowing the host's stack.

        ``routes`` is the caller's cache of resolved targets (a bridge view
        keeps one): a target resolved and checked once is called straight
        through its engine's bound callable until the manager's
        ``routes_version`` moves. The call is counted in :attr:`call_stats`
        and in the manager's profiler (one timing, sampled, feeds both)."""
        return self.call_routed(source_language, target, args, caller, policy, routes)

    def call_routed(
        self,
        source_language: str,
        target: str,
        args: "list[Any] | tuple[Any, ...]",
        caller: str | None,
        policy: "SecurityPolicy | None",
        routes: "dict[str, _Route] | None",
    ) -> Any:
        """:meth:`call` with positional arguments. A caller that calls again
        keeps a :meth:`router` instead (what bridge views and engines do)."""
        return self.router(source_language, caller, policy, routes)(target, *args)

    def router(
        self,
        source_language: str,
        caller: str | None,
        policy: "SecurityPolicy | None",
        routes: "dict[str, _Route] | None" = None,
    ) -> Callable[..., Any]:
        """``kryon.call(target, *args)`` of one caller: :meth:`call` with the
        caller's language, script, policy and cache of resolved targets
        (``routes``, a bridge view's) bound once, so that each call passes only
        what changes; an engine can hand it to a script as its ``kryon.call``.
        A target that is not a str is a DOMError (as every API name), and an
        error without a language gets the caller's."""
        manager = self._manager
        profiler = self._profiler
        depths = self._depths
        resolve, timed, admit = self._resolve, self._timed, manager.admit
        cache: dict[str, _Route] = routes if routes is not None else {}
        get = cache.get
        getrecursionlimit = sys.getrecursionlimit

        def route_call(target: str, *args: Any) -> Any:
            try:
                route = get(target)
                if route is None or route.version != manager.routes_version:
                    route = cache[target] = resolve(source_language, _name(target), caller, policy)
                # Each count is bumped in one statement with no call in it (so in ScriptManager.call_function),
                # which makes it exact under threads without a lock: under the GIL the interpreter lets another
                # thread run only at a function's start, a backward jump or after a call (CPython 3.10 on), and
                # a tracer (a debugger, coverage) runs between lines, so no thread runs between the read and the
                # store. Split over two lines, counts were lost while a line tracer ran (tests/core/test_call_counts.py).
                count = route.count
                count.calls = k = count.calls + 1
                depth = depths.depth
                n = depth.n + 1
                if n > route.low and (n > route.limit or n * 16 > getrecursionlimit()):
                    count.failed += 1
                    raise RecursionLimitError(
                        f"cross-language calls nested deeper than {min(route.limit, getrecursionlimit() // 16)} "
                        f"(calling '{target}')",
                        language=source_language,
                    )
                call = route.call
                depth.n = n
                try:
                    if profiler.enabled:
                        pstats = route.pstats
                        pstats.calls = pn = pstats.calls + 1
                        # timed: the first SAMPLE_EVERY calls of the route and of the function, then the
                        # function's periodic sample (kryon_core.profiling), which is the route's sample too (one
                        # timed call in SAMPLE_EVERY, not two out of phase), and the call that makes it hot
                        if k > SAMPLE_EVERY and pn > SAMPLE_EVERY and pn & SAMPLE_MASK != 1 and pn != profiler.hot_threshold:
                            try:
                                result = call(*args)
                            except BaseException:
                                pstats.errors += 1
                                raise
                        else:
                            result = timed(route, call, args, pstats, pn, k)
                    elif k > SAMPLE_EVERY and k & SAMPLE_MASK != 1:
                        result = call(*args)
                    else:
                        result = timed(route, call, args, None, 0, k)
                    if route.admit and type(result) not in _PLAIN:
                        result = admit(result, caller, policy, source=route.loc)  # type: ignore[arg-type]
                except BaseException:
                    count.failed += 1
                    raise
                finally:
                    depth.n = n - 1
                return result
            except ScriptError as exc:
                if exc.language is None:
                    exc.language = source_language
                raise
            except TypeError:
                if not isinstance(target, str):  # an unhashable target failed the look-up
                    raise DOMError(f"function name must be a string, not {type(target).__name__}",
                                   language=source_language) from None
                raise

        return route_call

    def _timed(self, route: _Route, call: Callable[..., Any], args: Any, pstats: Any, pn: int, k: int) -> Any:
        """The sampled call of :meth:`call` (already counted): one timing for the
        cross-language and the profiler's statistics; the call that makes the
        function hot reports it."""
        start = perf_counter_ns()
        try:
            return call(*args)
        except BaseException:
            if pstats is not None:
                pstats.errors += 1
            raise
        finally:
            elapsed = perf_counter_ns() - start
            route.stats.record(elapsed, k)
            if pstats is not None:
                pstats.record(elapsed, pn)
                profiler = self._profiler
                if pn == profiler.hot_threshold:
                    profiler.became_hot(pstats)

    def _resolve(
        self, source_language: str, target: str, caller: str | None, policy: "SecurityPolicy | None"
    ) -> _Route:
        """Resolve and check ``target`` for ``caller`` (a refusal or an unknown
        name is counted as a failed call of ``target`` and raised)."""
        manager = self._manager
        version = manager.routes_version
        stats = self.call_stats.get(target)
        if stats is None:
            with self._lock:
                stats = self.call_stats.setdefault(target, CallStatistics())
        with self._lock:
            count = stats.count_for(source_language)
        limit = (policy.max_recursion if policy is not None else None) or manager.policy.max_recursion or DEFAULT_CALL_DEPTH
        try:
            loc = manager.check_call(target, caller=caller, policy=policy, language=source_language)
            return _Route(version, loc, stats, count, limit, policy is not None and policy.sandboxed)
        except BaseException:
            count.calls += 1
            count.failed += 1
            raise
