"""The ``kryon`` object: the host side of its functions.

``prelude.js`` builds a frozen ``kryon`` object in every script context with
one JS function per :data:`kryon_core.bridge.API` method (camelCase) plus the
bridge's plugin functions (``bridge.extra``). Each calls the host with an
index into :func:`api_table`; the engine dispatches it to the bridge method.
"""

from __future__ import annotations

from typing import Any, Callable

from kryon_core import AccessDeniedError, ScriptBridge, ScriptRuntimeError, SecurityPolicy
from kryon_core.bridge import API

#: index of the internal ``require`` entry in the table
REQUIRE = 0


def build_kryon_api(bridge: ScriptBridge | None) -> list[tuple[str, tuple[int, int], Callable[..., Any] | None]]:
    """(camelCase name, (min, max) arity, host function) for every kryon function;
    entry 0 is the internal ``require``."""
    table: list[tuple[str, tuple[int, int], Callable[..., Any] | None]] = [("__require__", (1, 1), None)]
    if bridge is not None:
        for method, fn in bridge.methods():
            table.append((method.camel, method.arity, fn))
    else:
        for method in API:
            table.append((method.camel, method.arity, None))
    return table


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
                language="javascript", script=script,
            )
    if not policy.may_import(name):
        raise AccessDeniedError(f"require('{name}'): imports are not granted by the script's policy",
                                language="javascript", script=script)
    raise ScriptRuntimeError(f"require('{name}'): kryon-js provides no module '{name}'", language="javascript",
                             script=script)
