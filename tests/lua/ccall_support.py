"""What the compiled-caller tests share: a manager with one Lua script ``s``
(globals set before it loads) and the cached caller of one of its functions."""

from typing import Any

from kryon_core import ScriptManager, SecurityPolicy


def lua_manager(policy: SecurityPolicy, source: str, **globals_: Any) -> ScriptManager:
    m = ScriptManager(policy=policy, cache=False, output=lambda lang, text: None)
    for name, value in globals_.items():
        m.set_global("lua", name, value)
    m.load_script_from_source("s", "lua", source)
    return m


def cached_caller(m: ScriptManager, name: str) -> Any:
    """The caller the Lua engine made for ``s.name`` (compiled or generated)."""
    engine = m.engine("lua")
    return engine.cached_caller(engine._scripts["s"], name)  # type: ignore[attr-defined]
