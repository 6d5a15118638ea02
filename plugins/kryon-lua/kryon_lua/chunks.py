"""Kryon's own Lua chunks (the prelude, the sandbox's bounded functions)
compiled once per Lua implementation: every sandboxed script gets a state of
its own, and compiling these texts again for each was half of making one.
The bytecode keeps its debug information (the chunk's name is how stack
walks and error positions tell Kryon's frames from a script's)."""

from __future__ import annotations

import threading
from typing import Any

_dumped: dict[tuple[str, str], bytes] = {}
_lock = threading.Lock()


def run_chunk(lua: Any, module: Any, source: str, name: str, *args: Any) -> Any:
    """Run one of Kryon's own chunks in ``lua`` (a runtime of lupa ``module``)
    with ``args``, from bytecode compiled on first use."""
    key = (module.__name__, name)
    code = _dumped.get(key)
    if code is None:
        with _lock:
            code = _dumped.get(key)
            if code is None:
                code = _dumped[key] = _compile(module, source, name)
    return lua.execute(code, *args, name=name, mode="b")


def _compile(module: Any, source: str, name: str) -> bytes:
    compiler = module.LuaRuntime(encoding=None, register_eval=False, register_builtins=False)
    dump = compiler.eval("function(src, name) return string.dump(assert(load(src, name, 't'))) end")
    return bytes(dump(source.encode("utf-8"), name.encode("utf-8")))
