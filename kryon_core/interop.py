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
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from time import perf_counter_ns
from typing import TYPE_CHECKING

from .errors import AccessDeniedError, ScriptError
from .values import FunctionRef, to_host

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
    """Who may touch a shared object. ``None`` means every language."""

    read_languages: frozenset[str] | None = None
    write_languages: frozenset[str] | None = None
    is_readonly: bool = False

    @classmethod
    def of(
        cls, *, read: Iterable[str] | None = None, write: Iterable[str] | None = None, readonly: bool = False
    ) -> "AccessPolicy":
        return cls(
            frozenset(read) if read is not None else None,
            frozenset(write) if write is not None else None,
            readonly,
        )

    def may_read(self, language: str) -> bool:
        return language == HOST or self.read_languages is None or language in self.read_languages

    def may_write(self, language: str) -> bool:
        if self.is_readonly:
            return False
        return language == HOST or self.write_languages is None or language in self.write_languages


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


class SharedDataManager:
    def __init__(self, on_error: Callable[[BaseException], None] | None = None) -> None:
        self._objects: dict[str, SharedObject] = {}
        self._listeners: dict[int, tuple[str, Callable[..., Any]]] = {}
        self._next_listener = 1
        self._lock = threading.RLock()
        self.on_error = on_error or (lambda exc: log.error("shared-data listener failed: %s", exc))

    def create(self, object_id: str, data: Any, *, owner: str = HOST, policy: AccessPolicy | None = None) -> None:
        value = _detach(data, owner)
        with self._lock:
            if object_id in self._objects:
                raise ScriptError(f"shared object '{object_id}' already exists")
            self._objects[object_id] = SharedObject(object_id, value, owner, policy or AccessPolicy())

    def _get(self, object_id: str) -> SharedObject:
        obj = self._objects.get(object_id)
        if obj is None:
            raise ScriptError(f"no shared object '{object_id}'")
        return obj

    def read(self, object_id: str, language: str = HOST) -> Any:
        with self._lock:
            obj = self._get(object_id)
            if not obj.policy.may_read(language):
                raise AccessDeniedError(
                    f"{language} may not read shared object '{object_id}'", language=language
                )
            obj.access_count += 1
            return copy.deepcopy(obj.data)

    def write(self, object_id: str, data: Any, language: str = HOST) -> None:
        value = _detach(data, language)
        with self._lock:
            obj = self._get(object_id)
            if obj.policy.is_readonly:
                raise AccessDeniedError(f"shared object '{object_id}' is read-only", language=language)
            if not obj.policy.may_write(language):
                raise AccessDeniedError(
                    f"{language} may not write shared object '{object_id}'", language=language
                )
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

    def delete(self, object_id: str, language: str = HOST) -> None:
        with self._lock:
            obj = self._get(object_id)
            if language != HOST and language != obj.owner_language:
                raise AccessDeniedError(f"only {obj.owner_language} may delete '{object_id}'", language=language)
            del self._objects[object_id]

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

    def release_script(self, language: str, script: str) -> int:
        """Drop listeners that are functions of an unloaded script."""
        with self._lock:
            doomed = [
                lid
                for lid, (_, cb) in self._listeners.items()
                if isinstance(cb, FunctionRef) and cb.language == language and cb.script == script
            ]
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


@dataclass
class CallStatistics:
    """Calls of one function that came through ``kryon.call``."""

    successful_calls: int = 0
    failed_calls: int = 0
    total_ns: int = 0
    by_caller: dict[str, int] = field(default_factory=dict)

    @property
    def average_us(self) -> float:
        calls = self.successful_calls + self.failed_calls
        return self.total_ns / calls / 1000 if calls else 0.0


class CrossLanguageRegistry:
    """Exported functions of every language, and cross-language call routing.

    Functions are exported by loading the script that defines them; the
    registry reads the manager's function table, so it is never stale."""

    def __init__(self, manager: "ScriptManager") -> None:
        self._manager = manager
        self.call_stats: dict[str, CallStatistics] = {}
        self._lock = threading.Lock()

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

    def call(self, source_language: str, target: str, args: list[Any]) -> Any:
        """Call ``target`` (any resolvable name) on behalf of a script in
        ``source_language``; arguments and result convert through the value
        model inside each engine."""
        start = perf_counter_ns()
        ok = False
        try:
            result = self._manager.call_function(target, args, caller=source_language)
            ok = True
            return result
        finally:
            elapsed = perf_counter_ns() - start
            with self._lock:
                stats = self.call_stats.get(target)
                if stats is None:
                    stats = self.call_stats[target] = CallStatistics()
                if ok:
                    stats.successful_calls += 1
                else:
                    stats.failed_calls += 1
                stats.total_ns += elapsed
                stats.by_caller[source_language] = stats.by_caller.get(source_language, 0) + 1
