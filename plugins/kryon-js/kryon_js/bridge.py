"""The ``kryon`` object: the host side of its functions.

``prelude.js`` builds a frozen ``kryon`` object in every script context with
one JS function per :data:`kryon_core.bridge.API` method (camelCase) plus the
bridge's plugin functions (``bridge.extra``). Each calls the host with an
index into the table :func:`build_kryon_api` makes.

Each script's calls act through its own view of the bridge
(``bridge.for_script(script, policy)``), so the host knows who calls. The
table is the same for every script: API methods are kept unbound and called
with the script's view, which keeps the per-script cost to one small view
object instead of a table of bound methods.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from kryon_core import AccessDeniedError, ScriptBridge, ScriptError, ScriptRuntimeError, SecurityPolicy
from kryon_core.bridge import API

from .plugin import LANGUAGE

#: index of the internal ``require`` entry in the table
REQUIRE = 0

#: the API methods taking (element, name[, value]) that get their own host entry per script
#: (``inbound.element_call``): the DOM calls a UI makes over and over
ELEMENT_METHODS = frozenset({"setProperty", "getProperty", "setStyle", "getStyle", "addClass", "removeClass",
                             "hasClass", "toggleClass"})


#: the API method with its own host entry per script for scalar arguments (``inbound.routed_call``)
ROUTED_CALL = "call"


class ApiEntry(NamedTuple):
    """One function of ``kryon``: its JS name, (min, max) arity and host function;
    ``on_view`` says the function is a ScriptBridge method to call with the script's view."""

    name: str
    arity: tuple[int, int]
    fn: Callable[..., Any] | None
    on_view: bool


def build_kryon_api(bridge: ScriptBridge | None) -> list[ApiEntry]:
    """The ``kryon`` table for every script of the engine; entry 0 is the internal ``require``."""
    table = [ApiEntry("__require__", (1, 1), None, False)]
    cls = type(bridge) if bridge is not None else None
    for method in API:
        fn = getattr(cls, method.name) if cls is not None else None
        table.append(ApiEntry(method.camel, method.arity, fn, True))
    if bridge is not None:
        for name, fn in bridge.extra.items():
            table.append(ApiEntry(name, (0, -1), tagged(fn), False))
    return table


def tagged(function: Callable[..., Any]) -> Callable[..., Any]:
    """A plugin function whose errors without a language get JavaScript's."""

    def call(*args: Any) -> Any:
        try:
            return function(*args)
        except ScriptError as exc:
            if exc.language is None:
                exc.language = LANGUAGE
            raise

    return call


FILE_MODULES = frozenset({"fs", "node:fs", "fs/promises", "node:fs/promises", "qjs:std", "qjs:os", "std", "os"})
PROCESS_MODULES = frozenset({"child_process", "node:child_process"})
NETWORK_MODULES = frozenset({"net", "http", "https", "node:net", "node:http", "node:https"})


def require(name: str, policy: SecurityPolicy, script: str | None) -> Any:
    """``require(name)`` in a script: JavaScript under Kryon has no host
    modules; asking for a file, process or network module under a policy that
    does not grant it is an AccessDeniedError, anything else an error saying
    there is no such module."""
    grants = [(FILE_MODULES, policy.allow_file_system, "file system"),
              (PROCESS_MODULES, policy.allow_processes, "process"),
              (NETWORK_MODULES, policy.allow_network, "network")]
    for names, granted, what in grants:
        if name in names and not granted:
            raise AccessDeniedError(
                f"require('{name}'): {what} access is not granted by the script's policy",
                language=LANGUAGE, script=script,
            )
    if not policy.may_import(name):
        raise AccessDeniedError(f"require('{name}'): imports are not granted by the script's policy",
                                language=LANGUAGE, script=script)
    raise ScriptRuntimeError(f"require('{name}'): kryon-js provides no module '{name}'", language=LANGUAGE,
                             script=script)
