"""The ``kryon`` API in Kryon Lisp's idiom.

Every :data:`kryon_core.API` method is bound under its kebab-case name
(``get-element-by-id``, ``set-property!``, ``kryon-call``, ``log``...) as a
plain function a script calls without importing anything: the names are put
in each script's builtins under their Hy-mangled spelling (``hy.mangle``), so
``(set-property! el "text" "hi")`` resolves whatever Hy mangles ``!`` to. The
same functions are attributes of a ``kryon`` object: ``(kryon.log "hi")``.
A script's own definition of a name shadows the API name within that script.

Each script's functions are bound to its own view of the host's bridge
(``kryon_core.pyhost.api``), so the host knows which script calls. Wrong
argument counts are an error naming the Lisp form
(``(set-property! ...) takes 3 arguments, got 1``); arguments cross as host
values (a Lisp function handed to ``add-event-listener!`` arrives as a
FunctionRef owned by the script that defined it).
"""

from __future__ import annotations

import functools
from typing import Any

import hy

from kryon_core import ApiMethod
from kryon_core.pyhost.api import ScriptApi

__all__ = ["build_kryon_api", "api_name", "api_form", "api_names"]


def build_kryon_api(api: ScriptApi) -> dict[str, Any]:
    """The builtins a script gets for its API: every function under its
    mangled kebab-case name, and ``kryon``."""
    table: dict[str, Any] = dict(api.all())
    table["kryon"] = api.module
    return table


@functools.lru_cache(maxsize=1024)
def _mangled(kebab: str) -> str:
    return str(hy.mangle(kebab))


def api_name(method: ApiMethod) -> str:
    return _mangled(method.kebab)


def api_form(method: ApiMethod) -> str:
    return f"({method.kebab} ...)"


def api_names(methods: list[tuple[ApiMethod, Any]]) -> dict[str, str]:
    """Name in a worker script (the mangled kebab-case name) -> bridge method."""
    return {api_name(method): method.name for method, _ in methods}
