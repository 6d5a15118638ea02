"""Each in-process script's own ``kryon`` API, bound on first use.

A script's API speaks for that script: it is bound to the script's view of
the bridge (``ScriptBridge.for_script``), so the host knows who calls (trust
between scripts, shared-data quotas, load transactions). The view and each
API function are made the first time the script uses them, so a script that
touches two API functions pays for two.

Scripts reach the API through a ``kryon`` module object (``import kryon`` or
the builtin ``kryon``), whose attributes are the dialect's spelling of the
API names, and in Lisp also as builtins (see ``Dialect.script_api``).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import errors as kryon_errors
from ..bridge import API, ApiMethod, ScriptBridge
from ..errors import ScriptRuntimeError
from ..policy import SecurityPolicy

if TYPE_CHECKING:
    from .dialect import Dialect

__all__ = ["ScriptApi", "Binder"]

#: error classes a script may catch or raise through ``kryon``
_ERRORS = ("ScriptError", "ScriptRuntimeError", "DOMError", "AccessDeniedError", "ConversionError")

#: binder(method, host function, script id, policy) -> the function a script calls
Binder = Callable[[ApiMethod, Callable[..., Any], str, SecurityPolicy], Callable[..., Any]]


class ScriptApi:
    """One script's ``kryon`` API (see the module docstring)."""

    __slots__ = ("script_id", "policy", "_bridge", "_bind", "_view", "_by_name", "_spell", "_output", "module")

    def __init__(
        self,
        script_id: str,
        policy: SecurityPolicy,
        bridge: Callable[[], ScriptBridge | None],
        bind: Binder,
        names: dict[str, ApiMethod],
        spell: Callable[[ApiMethod], str],
        output: Callable[[str], None],
    ) -> None:
        self.script_id = script_id
        self.policy = policy
        self._bridge = bridge
        self._bind = bind
        self._view: ScriptBridge | None = None
        self._by_name = names
        self._spell = spell
        self._output = output
        self.module = self._make_module()

    def view(self) -> ScriptBridge | None:
        """The script's view of the bridge (None while the engine has no bridge)."""
        if self._view is None:
            bridge = self._bridge()
            if bridge is not None:
                self._view = bridge.for_script(self.script_id, self.policy)
        return self._view

    def function(self, name: str) -> Callable[..., Any] | None:
        """The API function a script calls as ``name`` (its dialect's spelling), made now."""
        method = self._by_name.get(name)
        view = self.view()
        if view is None:
            return self._log if method is not None and method.name == "log" else None
        if method is not None:
            return self._bind(method, getattr(view, method.name), self.script_id, self.policy)
        if not view.extra:
            return None
        for plugin_method, host in view.methods():  # plugin functions, tagged with the language
            if plugin_method.name in view.extra and self._spell(plugin_method) == name:
                return self._bind(plugin_method, host, self.script_id, self.policy)
        return None

    def all(self) -> dict[str, Callable[..., Any]]:
        """Every API function under its script name (for dialects that bind them eagerly)."""
        return {name: fn for name in [*self._by_name, *self._extra_names()] if (fn := self.function(name)) is not None}

    def _extra_names(self) -> list[str]:
        view = self.view()
        if view is None:
            return []
        return [self._spell(m) for m, _ in view.methods() if m.name in view.extra]

    def _log(self, message: Any, level: str = "info") -> None:
        self._output(str(message))

    def _make_module(self) -> types.ModuleType:
        mod = types.ModuleType("kryon", "The Kryon API, bound to this script's view of the host's bridge.")
        for name in _ERRORS:
            setattr(mod, name, getattr(kryon_errors, name))
        api = self

        def __getattr__(name: str) -> Any:
            fn = api.function(name)
            if fn is None:
                raise AttributeError(f"module 'kryon' has no attribute '{name}'")
            setattr(mod, name, fn)  # made once: later look-ups are plain attribute reads
            return fn

        def __dir__() -> list[str]:
            return sorted({*api._by_name, *api._extra_names(), *_ERRORS})

        mod.__getattr__ = __getattr__  # type: ignore[method-assign]
        mod.__dir__ = __dir__  # type: ignore[method-assign]
        return mod


def api_names(dialect: "Dialect") -> dict[str, ApiMethod]:
    """Script name -> API method, in a dialect's spelling."""
    return {dialect.api_name(method): method for method in API}


def arity_error(method: ApiMethod, form: str, given: int) -> ScriptRuntimeError:
    lo, hi = method.arity
    if hi < 0:
        takes = f"at least {lo} argument{'s' if lo != 1 else ''}"
    elif lo == hi:
        takes = f"{lo} argument{'s' if lo != 1 else ''}"
    else:
        takes = f"{lo} to {hi} arguments"
    return ScriptRuntimeError(f"{form} takes {takes}, got {given}")
