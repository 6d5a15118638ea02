"""The optional compiled core (``kryon_core._speedups``, a C extension built
when a compiler is present) and the switch that keeps it off.

Without it (no compiler at install, another Python implementation, or the
environment variable ``KRYON_CORE_NO_CEXT=1``) the pure-Python paths run, and
they are what the compiled ones must agree with. What the extension holds:

- the engine gate's lock taken and given back from C, exported to engine
  extensions through a capsule (``kryon_core/_speedups_api.h``; the layout
  checks are :func:`kryon_core.threads.direct_lock`);
- the trusted in-process Python and Lisp caller (``pyhost/fastcall.py``);
- the bound-handle type those callers name (``ScriptManager.function``);
- ``ScriptManager.call_function``'s common case (``manager._compiled_call_function``),
  decided when ``kryon_core.manager`` is imported.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

__all__ = ["ENV_OFF", "enabled", "handle_type", "module"]

#: set to 1 to keep the compiled core off (the pure-Python paths then do everything)
ENV_OFF = "KRYON_CORE_NO_CEXT"

_ext: Any
try:
    _ext = importlib.import_module("._speedups", __package__)
except ImportError:  # installed without a compiler
    _ext = None


def enabled() -> bool:
    """Whether the compiled core may be used now (built, and not turned off)."""
    return _ext is not None and os.environ.get(ENV_OFF, "") in ("", "0")


def module() -> Any:
    """The extension module when :func:`enabled`, else None."""
    return _ext if enabled() else None


def handle_type() -> Any:
    """The ``FunctionRef`` subclass whose instances vectorcall their ``_call``
    slot (made once, from ``FunctionRef`` and the slot's offset), for any
    compiled caller to name as its ``handle_type`` (``ScriptManager._bind``);
    None when the core is off or the type cannot be made."""
    ext = module()
    if ext is None:
        return None
    from .values import FunctionRef

    try:
        return ext.make_handle_type(FunctionRef, ext.slot_offset(vars(FunctionRef)["_call"]))
    except (KeyError, TypeError, ValueError):
        return None
