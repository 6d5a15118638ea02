"""What a sandboxed Lua state adds to the prelude.

``sandbox.lua`` holds bounded versions of the library functions that could
otherwise run for a long time in C, out of reach of the count hook that
enforces time limits (pattern matching, ``string.rep``, the table
functions); the prelude puts them in every sandboxed script's ``string`` and
``table`` and in the string metatable.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

BOUNDED_NAME = "=kryon-sandbox"


@cache
def bounded_source() -> str:
    return resources.files("kryon_lua").joinpath("sandbox.lua").read_text(encoding="utf-8")


def load_bounded(lua: Any, memory_limit: int | None) -> Any:
    """The table of bounded functions for one state (``memory_limit``: its cap)."""
    return lua.execute(bounded_source(), memory_limit, name=BOUNDED_NAME)
