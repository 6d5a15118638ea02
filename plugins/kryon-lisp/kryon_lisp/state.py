"""What the engine keeps of each Kryon Lisp script: in-process ones
(:class:`LispScript`) and those running in an isolated worker
(:class:`IsolatedScript`)."""

from __future__ import annotations

import itertools
import types
import weakref
from typing import Any

import hy

from kryon_core import CompiledScript, FunctionRef, SecurityPolicy

from .values import SCRIPT_KEY

__all__ = ["LispScript", "IsolatedScript"]

_module_serial = itertools.count(1)


class LispScript:
    """A loaded script: its namespace, builtins, policy and handed-out refs."""

    __slots__ = ("id", "module", "ns", "builtins", "policy", "compiled", "refs", "time_limit", "spelled", "__weakref__")

    def __init__(self, compiled: CompiledScript, policy: SecurityPolicy, builtins: dict[str, Any]) -> None:
        self.id = compiled.id
        self.compiled = compiled
        self.policy = policy
        self.builtins = builtins
        # A module object of its own, listed in sys.modules under a name no
        # import statement can spell, so Hy's run-time machinery that looks
        # up the calling module (hy.eval, defmacro at run time) finds it.
        self.module = types.ModuleType(f"kryon-lisp:{compiled.id}#{next(_module_serial)}")
        self.ns: dict[str, Any] = self.module.__dict__
        self.ns.update({"__builtins__": builtins, "__file__": compiled.filename or compiled.id, SCRIPT_KEY: compiled.id})
        self.refs: "weakref.WeakSet[FunctionRef]" = weakref.WeakSet()
        self.time_limit = policy.time_limit
        #: mangled name -> the name the source spells (the registry's name)
        self.spelled = {hy.mangle(name): name for name in compiled.functions}


class IsolatedScript:
    """A script running in an isolated worker: what the host keeps of it."""

    __slots__ = ("id", "policy", "compiled", "spelled")

    def __init__(self, compiled: CompiledScript, policy: SecurityPolicy) -> None:
        self.id = compiled.id
        self.policy = policy
        self.compiled = compiled
        self.spelled = {hy.mangle(name): name for name in compiled.functions}
