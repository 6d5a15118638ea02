"""Reload that keeps state, for in-process scripts.

The new version's top level has run in a fresh namespace beside the old one.
Then:

- if it defines the reload hook (Python ``on_reload``, Lisp ``on-reload``), the
  hook is called with the old version's state: a map of its module-level data
  (variables holding value-model data, as copies; functions, classes, modules
  and other objects are left out), under the language's spelling of the names.
  It returns the new state (a map of names to set) or sets the state itself
  (returning nothing); anything else is an error;
- without a hook, module-level data the new version leaves undefined or None
  carries over from the old version (the very objects).

A hook that fails fails the reload: the caller retires the new version and
the old one keeps running with its state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import ScriptRuntimeError
from ..values import UserData
from .dialect import Dialect
from .state import SCRIPT_KEY, HostedScript

__all__ = ["old_state", "carry_state"]

_SCALARS = (type(None), bool, int, float, str, bytes)

#: run(script, fn, args) -> the raw result, inside the engine
Run = Callable[[HostedScript, Callable[..., Any], tuple[Any, ...]], Any]


def is_data(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` is value-model data: scalars, element handles, and
    lists and string-keyed maps of data (at most 100 levels deep)."""
    t = type(value)
    if t in _SCALARS or isinstance(value, UserData):
        return True
    if depth > 100:
        return False
    if t is list or t is tuple:
        return all(is_data(v, depth + 1) for v in value)
    if t is dict:
        return all(type(k) is str and is_data(v, depth + 1) for k, v in value.items())
    return False


def old_state(script: HostedScript, dialect: Dialect) -> dict[str, Any]:
    """A script's module-level data by the language's spelling of the names."""
    return {
        dialect.spelling(name): value
        for name, value in list(script.ns.items())
        if not (name.startswith("__") and name.endswith("__")) and name != SCRIPT_KEY and is_data(value)
    }


def carry_state(old: HostedScript, new: HostedScript, dialect: Dialect, run: Run, copy: Callable[[Any], Any]) -> None:
    """Hand ``old``'s state to ``new`` (see the module docstring). ``copy``
    makes a detached copy of a value for the hook."""
    state = old_state(old, dialect)
    hook = new.ns.get(dialect.identifier(dialect.reload_hook))
    if callable(hook) and getattr(hook, "__globals__", None) is new.ns:
        given = {name: copy(value) for name, value in state.items()}
        returned = run(new, hook, (given,))
        if returned is None:
            return
        if type(returned) is not dict or not all(isinstance(k, str) for k in returned):
            raise ScriptRuntimeError(
                f"{dialect.reload_hook} must return a map of names to set, or nothing; it returned "
                f"a {type(returned).__name__}",
                language=dialect.language,
                script=new.id,
            )
        for name, value in returned.items():
            new.ns[dialect.identifier(name)] = value
        return
    for name, value in state.items():
        key = dialect.identifier(name)
        if new.ns.get(key) is None:
            new.ns[key] = value
