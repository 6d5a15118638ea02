"""The compiled caller (``_ccall``, optional C extension) and the checks that
let it be used.

The extension does in C what ``calls.make_caller``'s generated caller does
for a call with 0-4 int32/float/bool/None arguments, at the top level or
nested in a host callback (see ``_ccall.c``). It reaches into the quickjs-ng binding: the QuickJS C API the
binding's module exports, the JSValue inside a binding Object and the Context
object's thread-state slot. None of that is public API, so every fact is
checked on live objects before a compiled caller is made, and any mismatch
(another binding build, another Python, a build without the extension, the
environment variable ``KRYON_JS_NO_CEXT=1``) leaves the Python caller in place.
The gate's lock it takes through kryon-core's compiled core (the capsule of
``kryon_core/_speedups_api.h``, on a lock ``kryon_core.threads.direct_lock``
accepted); without that (a core built without a compiler, ``KRYON_CORE_NO_CEXT=1``,
a failed layout check) no compiled caller is made either.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import quickjs

from kryon_core import speedups, threads

from . import capi, cutoff
from .runtime import BINDING_ERRORS

if TYPE_CHECKING:
    from .state import ScriptState

_ccall: Any
try:
    _ccall = importlib.import_module("._ccall", __package__)
except ImportError:  # installed without a compiler: the Python callers do everything
    _ccall = None

#: set to 1 to keep the compiled caller off (the Python callers then do every call)
ENV_OFF = "KRYON_JS_NO_CEXT"
#: the most declared parameters a compiled caller takes (the C side keeps its arguments on the stack)
MAX_PARAMS = 4
_checked: bool | None = None
_lock = threading.Lock()

# JSValue tags of quickjs-ng on 64-bit builds (what _ccall.c assumes; checked by _tags_hold)
_TAGS = {"object": -1, "string": -7, "int": 0, "bool": 1, "null": 2, "undefined": 3, "exception": 6, "float": 8}


def enabled() -> bool:
    """Whether compiled callers may be made at all (built, not turned off, kryon-core's gate
    capsule found and its compiled core on, and every set-up check holds)."""
    global _checked
    if _ccall is None or os.environ.get(ENV_OFF, "") not in ("", "0"):
        return False
    if not _ccall.has_gate_api() or not speedups.enabled():
        return False
    if _checked is None:
        with _lock:
            if _checked is None:
                try:
                    _checked = _verify()
                except Exception:  # noqa: BLE001 - any surprise means: not this build, use the Python caller
                    _checked = False
    return _checked


def _verify() -> bool:
    """The facts _ccall.c relies on, each checked on live objects."""
    if (sys.implementation.name != "cpython" or sys.version_info[:2] != (3, 11) or sys.maxsize != 2**63 - 1
            or platform.machine() not in ("x86_64", "AMD64", "aarch64", "arm64")):
        return False
    if not capi.available():  # the Context layout (runtime, context, thread-state slot) and the Object's value offset
        return False
    if quickjs.Object.__basicsize__ != capi._OFF_OBJ_VALUE + 16:  # [header][Context *][16-byte JSValue]
        return False
    import _quickjs

    _ccall.load_api(_quickjs.__file__)
    return _tags_hold()


def _tags_hold() -> bool:
    """Arguments go in and results come out with the tags _ccall.c assumes."""
    assert _ccall is not None
    ctx = quickjs.Context()
    obj = ctx.eval("({})")
    if _ccall.value_words(obj)[0] != _TAGS["object"]:
        return False
    f = ctx.eval("(a, b, c, d) => a === 7 && b === 2.5 && c === true && d === null ? 1 : 0")
    results = {
        "int": (_ccall.probe(ctx, f, (7, 2.5, True, None)), 1),
        "float": (_ccall.probe(ctx, ctx.eval("(a) => a * 2"), (1.25,)), 2.5),
        "bool": (_ccall.probe(ctx, ctx.eval("(a) => !a"), (False,)), 1),
        "null": (_ccall.probe(ctx, ctx.eval("() => null"), ()), None),
        "undefined": (_ccall.probe(ctx, ctx.eval("() => {}"), ()), None),
        "string": (_ccall.probe(ctx, ctx.eval("() => 'a' + 'b'"), ()), None),
        "object": (_ccall.probe(ctx, ctx.eval("() => []"), ()), None),
        "exception": (_ccall.probe(ctx, ctx.eval("() => { throw 1; }"), ()), None),
    }
    for kind, ((tag, i32, f64), want) in results.items():
        if tag != _TAGS[kind]:
            return False
        if kind in ("int", "bool") and i32 != want or kind == "float" and f64 != want:
            return False
    # a host function called from JavaScript finds the thread state the caller saved
    seen: list[int] = []

    def probe_host(x: int) -> int:
        seen.append(x)
        return x + 1

    ctx.add_callable("probeHost", probe_host)
    tag, i32, _ = _ccall.probe(ctx, ctx.eval("(a) => probeHost(a)"), (41,))
    return tag == _TAGS["int"] and i32 == 42 and seen == [41]


def _slot(cls: type, name: str) -> int | None:
    """The offset of ``__slots__`` member ``name`` of ``cls`` (an object slot), checked: a value
    written through Python is the one _ccall.c reads there, on a fresh instance of ``cls``."""
    assert _ccall is not None
    descr = cls.__dict__.get(name)
    if descr is None or type(descr).__name__ != "member_descriptor":
        return None
    offset, kind = _ccall.slot_offset(descr)
    if kind not in (_T_OBJECT, _T_OBJECT_EX) or not 16 <= offset <= cls.__basicsize__ - 8:
        return None
    return int(offset)


#: structmember.h: T_OBJECT and T_OBJECT_EX, the member types of __slots__
_T_OBJECT, _T_OBJECT_EX = 6, 16
_slots: dict[str, int | None] = {}


def _slots_hold(state: "ScriptState") -> tuple[int, int, int] | None:
    """(Chain.deadline, EngineGate._waiting, Chain.nesting) offsets, once each is checked on live objects."""
    if "deadline" not in _slots:
        from .runtime import Chain

        probe = Chain()
        for name, marker in (("deadline", 1234.5), ("nesting", 10**6 + 3)):
            offset = _slot(Chain, name)
            if offset is not None:
                setattr(probe, name, marker)
                if _ccall.slot_read(probe, offset) is not marker:
                    offset = None
            _slots[name] = offset
        gate_type = type(state.gate)
        gate_slot = _slot(gate_type, "_waiting")
        if gate_slot is not None:
            gate = gate_type("ccall-probe")
            gate._waiting = marker2 = 10**6 + 7
            if _ccall.slot_read(gate, gate_slot) is not marker2:
                gate_slot = None
        _slots["_waiting"] = gate_slot
    deadline, waiting, nesting = _slots["deadline"], _slots["_waiting"], _slots["nesting"]
    return None if deadline is None or waiting is None or nesting is None else (deadline, waiting, nesting)


def compiled(state: "ScriptState", wrapper: Any, nparams: int, stack_for: tuple[int, ...],
             generic: Callable[..., Any]) -> Callable[..., Any] | None:
    """The compiled caller of the script function behind the prelude's JS ``wrapper`` (a binding
    Object) of ``nparams`` declared parameters, or None when the extension is off or a check fails.
    ``stack_for``: the stack of a call nested ``depth`` deep through the host, by depth (as the
    generated caller has it); ``generic`` (the generated Python caller) takes every call the
    compiled path does not."""
    if nparams > MAX_PARAMS or not state.host.capi or not enabled():
        return None
    if type(wrapper) is not quickjs.Object or type(state.ctx) is not quickjs.Context:
        return None
    # checked inside the gate (direct_lock must not race another thread holding it)
    lock = state.run(threads.direct_lock, state.gate)
    if lock is None:
        return None
    slots = _slots_hold(state)
    if slots is None:
        return None
    target = state.run(state.target, wrapper)
    if type(target) is not quickjs.Object:
        return None
    assert _ccall is not None
    host = state.host
    from .runtime import Chain

    def fail(exc: BaseException) -> None:
        raise host.binding_error(state, exc) from None

    caller: Callable[..., Any] = _ccall.make_caller(
        state.ctx, target, state.settle, state.box_error, lock, nparams, float(state.time_limit or 0.0),
        -1 if state.max_value is None else int(state.max_value), *BINDING_ERRORS, Chain, *slots, stack_for,
        state.gate, threads.wake_waiters, host, host.chains, host.graced, host.fresh_chain,
        state.pending_release, threads.tracking, cutoff.LOWERED, cutoff.uncut, state,
        state.unbox, state.too_big, fail, generic,
    )
    return caller
