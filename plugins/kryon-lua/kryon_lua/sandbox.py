"""What a sandboxed Lua state adds to the prelude.

``sandbox.lua`` holds bounded versions of the library functions that could
otherwise run for a long time in C, out of reach of the count hook that
enforces time limits (pattern matching, ``string.rep``, the table
functions); the prelude puts them in every sandboxed script's ``string`` and
``table`` and in the string metatable.

It also answers a sandboxed script's ``require`` (``module_resolver``):
``allowed_modules`` grants modules by name.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from kryon_core.plugins import package_text

from .chunks import run_chunk
from .plugin import LANGUAGE

BOUNDED_NAME = "=kryon-sandbox"


@cache
def bounded_source() -> str:
    return package_text("kryon_lua", "sandbox.lua")


def load_bounded(lua: Any, module: Any, memory_limit: int | None) -> Any:
    """The table of bounded functions for one state of lupa ``module``
    (``memory_limit``: its cap)."""
    return run_chunk(lua, module, bounded_source(), BOUNDED_NAME, memory_limit)


#: standard libraries a granted ``require`` returns (the script's own copies)
STANDARD_MODULES = frozenset({"string", "table", "math", "utf8", "coroutine", "os"})
#: names that are capabilities of the policy, never modules to grant
CAPABILITIES = {
    "io": "allow_file_system=True",
    "package": "allow_imports=True",
    "debug": "a trusted policy",
}


def module_resolver(engine: Any, script: str, policy: Any) -> Callable[[Any], str]:
    """What a sandboxed script's ``require(name)`` asks (see the README): a
    name the policy does not grant (``allowed_modules``) is AccessDeniedError;
    a granted standard library answers ``"std:"``; any other granted name is
    a Lua module found by the manager's module loader (a loaded Lua script of
    that name, or ``name.lua`` next to the script, inside its root), answered
    as ``"src:" + source``, or ``"big:"`` when the source is larger than the
    policy's ``max_source_size`` (the prelude raises the SizeLimitError, so it
    names the line that called ``require``)."""
    from kryon_core import AccessDeniedError, ScriptRuntimeError, SizeLimitError

    limit = policy.max_source_size

    def resolve(name: Any) -> str:
        if not isinstance(name, str) or not name:
            raise AccessDeniedError(f"require: a module name must be a non-empty string, not {name!r}", language=LANGUAGE)
        if not policy.may_import(name):
            raise AccessDeniedError(
                f"require('{name}'): module '{name}' is not granted to this script (SecurityPolicy.allowed_modules)",
                language=LANGUAGE,
            )
        if name in STANDARD_MODULES:
            return "std:"
        if name in CAPABILITIES:
            raise AccessDeniedError(
                f"require('{name}'): '{name}' is a capability, not a module to grant; it needs {CAPABILITIES[name]}",
                language=LANGUAGE,
            )
        loader = engine.config.module_loader
        try:
            source = loader(script, name.replace(".", "/")) if loader is not None else None
        except SizeLimitError:  # the manager reads a file no further than the limit: the same answer
            return "big:"
        if source is None:
            raise ScriptRuntimeError(f"require('{name}'): module '{name}' not found", language=LANGUAGE)
        text = str(source)
        if limit is not None and len(text.encode("utf-8", "surrogatepass")) > limit:
            return "big:"  # Lua's parser runs in C, out of the time limit's reach: refused as a `load` would be
        return "src:" + text

    return resolve
