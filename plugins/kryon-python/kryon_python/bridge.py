"""The ``kryon`` module trusted Python scripts import.

``import kryon`` in a script gives that script's own API module (bound to its
view of the host's bridge, ``kryon_core.pyhost.api``), with every
:data:`kryon_core.API` method under its snake_case name
(``kryon.get_element_by_id``), the functions plugins add with
``ScriptBridge.add_function``, and the error classes a script may catch or
raise (``kryon.ScriptError``...). The module exists only for scripts: the
host's ``sys.modules`` never holds a ``kryon``. Nothing else is put in a
script's builtins.
"""

from __future__ import annotations

from typing import Any

from kryon_core import ApiMethod
from kryon_core.pyhost.api import ScriptApi

__all__ = ["build_kryon_api", "api_name", "api_form"]


def build_kryon_api(api: ScriptApi) -> dict[str, Any]:
    """Builtins a script gets for its API: none (it imports ``kryon``)."""
    return {}


def api_name(method: ApiMethod) -> str:
    return method.name


def api_form(method: ApiMethod) -> str:
    return f"kryon.{method.name}()"
