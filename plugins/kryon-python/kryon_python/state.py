"""What a trusted Python script's module is called.

Each trusted script is a module of its own (``kryon_core.pyhost.HostedScript``
holds it, with its builtins, policy and handed-out references). Its
``__name__`` is the script id, or ``"__main__"`` for the script the host runs
as the program (``EngineConfig.options["main"]``), so ``if __name__ ==
"__main__":`` works as it does under ``python file.py``. The module is not
listed in ``sys.modules``: the host's ``__main__`` stays the host's.
"""

from __future__ import annotations

__all__ = ["module_name"]


def module_name(script_id: str, as_main: bool) -> str:
    return "__main__" if as_main else script_id
