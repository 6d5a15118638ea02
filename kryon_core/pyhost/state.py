"""What an in-process host keeps of each script, and the table of them.

A :class:`HostedScript` is one loaded (or loading) script: a module object of
its own whose namespace holds the script's globals, its own builtins (the
``kryon`` API, the engine's globals, the policy's import checks), its policy,
the FunctionRefs handed out for its functions and the hot-path callers made
for them. Every namespace carries :data:`SCRIPT_KEY` (the script id), which is
how stacks, breakpoints and the value rules tell script frames and functions
from host code.
"""

from __future__ import annotations

import itertools
import threading
import types
import weakref
from collections.abc import Iterator
from typing import Any

from ..engine import CallerCache, CompiledScript
from ..policy import SecurityPolicy
from ..values import FunctionRef

__all__ = ["SCRIPT_KEY", "HostedScript", "ScriptTable", "new_package"]

#: the key in every script namespace naming the script it belongs to
SCRIPT_KEY = "__kryon_script__"

_serial = itertools.count(1)


def new_package() -> str:
    """A fresh package name for one script version: no import statement can
    spell it, and it has no dots (a script's relative imports resolve in it)."""
    return f"kryon-scripts#{next(_serial)}"


class HostedScript:
    """One in-process script (see the module docstring)."""

    __slots__ = (
        "id", "compiled", "policy", "module", "ns", "builtins", "package", "refs", "callers",
        "time_limit", "guarded", "spelled", "__weakref__",
    )

    def __init__(
        self, compiled: CompiledScript, policy: SecurityPolicy, builtins: dict[str, Any], package: str, name: str
    ) -> None:
        self.id = compiled.id
        self.compiled = compiled
        self.policy = policy
        self.builtins = builtins
        #: the package the script's relative imports resolve in (see :mod:`.imports`)
        self.package = package
        self.module = types.ModuleType(name)
        self.ns: dict[str, Any] = self.module.__dict__
        self.ns.update(
            {
                "__builtins__": builtins,
                "__file__": compiled.filename or compiled.id,
                "__package__": self.package,
                SCRIPT_KEY: compiled.id,
            }
        )
        self.refs: "weakref.WeakSet[FunctionRef]" = weakref.WeakSet()
        self.callers = CallerCache()
        self.time_limit = policy.time_limit
        #: whether calls need the slow path (a time, recursion or value-size limit)
        self.guarded = any(v is not None for v in (policy.time_limit, policy.max_recursion, policy.max_value_size))
        #: identifier -> the name as the source spells it (the registry's name)
        self.spelled: dict[str, str] = {}

    def release_refs(self) -> None:
        """Release every FunctionRef handed out for this script's functions."""
        for ref in list(self.refs):
            ref.release()
        self.callers.clear()


class ScriptTable:
    """The loaded scripts by id, and every live one (loading included) by
    namespace, so a function's globals name its script in one look-up."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.by_id: dict[str, HostedScript] = {}
        self.by_ns: dict[int, HostedScript] = {}

    def get(self, script_id: str) -> HostedScript | None:
        return self.by_id.get(script_id)

    def of_namespace(self, ns: dict[str, Any]) -> HostedScript | None:
        return self.by_ns.get(id(ns))

    def start(self, script: HostedScript) -> None:
        """A script whose top level is about to run (live, not yet loaded)."""
        with self.lock:
            self.by_ns[id(script.ns)] = script

    def commit(self, script: HostedScript) -> HostedScript | None:
        """Make ``script`` the loaded version of its id; returns the one it replaces."""
        with self.lock:
            old = self.by_id.get(script.id)
            self.by_id[script.id] = script
            return old

    def retire(self, script: HostedScript) -> None:
        """Forget ``script`` (unloaded, replaced, or failed to load)."""
        with self.lock:
            self.by_ns.pop(id(script.ns), None)
            if self.by_id.get(script.id) is script:
                del self.by_id[script.id]
        script.release_refs()

    def live(self) -> list[HostedScript]:
        with self.lock:
            return list(self.by_ns.values())

    def __iter__(self) -> Iterator[HostedScript]:
        return iter(list(self.by_id.values()))

    def __len__(self) -> int:
        return len(self.by_id)

    def __contains__(self, script_id: object) -> bool:
        return script_id in self.by_id
