"""The ``kryon`` API as Tally sees it: every ScriptBridge method under its
camelCase name with a ``kryon.`` prefix, e.g. ``(kryon.setVariable "x" 1)``
or ``(kryon.call "other.version")``.

The bridge methods are plain host callables, so the interpreter's host-call
path converts their arguments and results and turns their errors into
Tally errors at the calling form; nothing here is Tally-specific but the
naming.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kryon_core import ScriptBridge


def kryon_api(bridge: ScriptBridge) -> dict[str, Callable[..., Any]]:
    """Name -> host function, for every method (plugins' included), of one
    script's view of the bridge (``bridge.for_script``)."""
    return {f"kryon.{method.camel}": function for method, function in bridge.methods()}
