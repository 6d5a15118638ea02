"""The compiled caller (``_ccall``, optional C extension) and the checks that
let it be used.

The extension does in C what ``calls.make_caller``'s ``call`` does on its
hot path: numbers in, one ``wasmtime_func_call_unchecked`` of the
``wren_call_scalar`` export, a number, null or bool out (see ``_ccall.c``). It relies on
facts that are not wasmtime-py's or this package's public API: the address
of the C function in the ``libwasmtime`` wasmtime-py loaded, the parameter
block layout of wasmtime's raw values, the clock ``time.perf_counter`` reads,
and plain instance attributes of the instance and the script state that it
reads and writes in their ``__dict__``. Each is checked once per process or
per instance on live objects before a compiled caller is made, and any
mismatch (a build without the extension, another wasmtime-py, the
environment variable ``KRYON_WREN_NO_CEXT=1``) leaves the Python caller in
place: a wrong guess must never reach the store.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wasmtime import _ffi as ffi

from kryon_core import threads

from .instance import RawExport, WasmInstance

if TYPE_CHECKING:
    from .state import ScriptState

_ccall: Any
try:
    _ccall = importlib.import_module("._ccall", __package__)
except ImportError:  # installed without a compiler: the Python caller does everything
    _ccall = None

#: set to 1 to keep the compiled caller off (the Python caller then does every call)
ENV_OFF = "KRYON_WREN_NO_CEXT"
#: bytes of one wasmtime_val_raw (the C side's bound on a block's offsets)
VALUE_SIZE = 16
#: how far apart time.perf_counter() and the C clock may read and still be the same clock (seconds)
CLOCK_TOLERANCE = 0.05

#: None: not checked yet; then whether the C function was resolved and agrees with ctypes'
_api: list[bool] = []
#: per instance: whether a probe call through C agreed with one through ctypes
_probed: "weakref.WeakKeyDictionary[WasmInstance, bool]" = weakref.WeakKeyDictionary()


def enabled() -> bool:
    """Whether compiled callers may be made at all (built, and not turned off)."""
    return _ccall is not None and os.environ.get(ENV_OFF, "") in ("", "0")


def _api_ready() -> bool:
    """Resolves ``wasmtime_func_call_unchecked`` once: the symbol found in the
    loaded library must be the very function ctypes calls, the raw value its
    size, and the C clock the one ``time.perf_counter`` reads."""
    if not _api:
        try:
            _api.append(_check_api())
        except Exception:  # any surprise means: not this wasmtime, use the Python caller
            _api.append(False)
    return _api[0]


def _check_api() -> bool:
    assert _ccall is not None
    address = _ccall.resolve(str(ffi.dll._name))
    by_ctypes = ctypes.cast(ffi.dll["wasmtime_func_call_unchecked"], ctypes.c_void_p).value
    if not address or address != by_ctypes or ctypes.sizeof(ffi.wasmtime_val_raw) != VALUE_SIZE:
        return False
    before = time.perf_counter()
    c_now = _ccall.now()
    if not before - CLOCK_TOLERANCE <= c_now <= time.perf_counter() + CLOCK_TOLERANCE:
        return False
    _ccall.use_api(address)
    return True


def _direct_lock(gate: threads.EngineGate) -> Any:
    """The gate's lock when the compiled caller may take it through
    kryon-core's gate capsule (``kryon_core.threads.direct_lock`` checks its
    layout; docs/plugins.md, "The gate from C"), else None: the caller calls
    the lock's methods (a core without its compiled core, one older than the
    capsule, a failed check)."""
    assert _ccall is not None
    direct = getattr(threads, "direct_lock", None)
    if direct is None or not _ccall.has_gate_api():
        return None
    return direct(gate)


def _plain(obj: Any, names: dict[str, Any]) -> bool:
    """The compiled caller reads (and for ``depth`` and ``pending`` writes)
    these in ``obj``'s ``__dict__``: they must be plain instance attributes
    of those types (no property or slot of the class in between)."""
    attrs = getattr(obj, "__dict__", None)
    if type(attrs) is not dict:
        return False
    cls = type(obj)
    return all(
        name in attrs and (kind is None or type(attrs[name]) is kind) and not any(name in vars(k) for k in cls.__mro__)
        for name, kind in names.items()
    )


def _probe(inst: WasmInstance, vm: Any) -> bool:
    """One call of the trivial export ``wren_max_frames(vm)`` through C and one
    through ctypes, with the limits lifted (as ``call_unlimited`` does): both
    must give the VM's frame bound and neither may trap."""
    if inst in _probed:
        return _probed[inst]
    assert _ccall is not None
    ok = False
    export = RawExport(inst, inst.funcs["wren_max_frames"], "wren_max_frames")
    table, at = export.params[0]
    table[at] = vm.ptr
    restore = not inst.depth and inst.limited
    if restore:
        if inst.fuel is not None:
            inst.store.set_fuel(1 << 40)
        if inst.timeout is not None:
            inst.store.set_epoch_deadline(1 << 40)
    try:
        error, trap, by_c = _ccall.probe(*export.call_args)
        if not error and not trap:
            export.i64[0] = -1
            table[at] = vm.ptr
            error2 = _BY_CTYPES(*export.call_args)
            expected = int(vm.max_frames)
            ok = not error2 and not export.trap.value and export.i32[0] == by_c == expected
    finally:
        if restore:
            inst._armed_at = -1e18  # the next limited call re-arms
    _probed[inst] = ok
    return ok


def _by_ctypes() -> Any:
    """``wasmtime_func_call_unchecked`` as ctypes calls it (the probe's reference)."""
    fn = ffi.dll["wasmtime_func_call_unchecked"]
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    fn.restype = ctypes.c_void_p
    return fn


_BY_CTYPES = _by_ctypes()
_INSTANCE_ATTRS: dict[str, Any] = {"depth": int, "dead": type(None), "_armed_at": float, "_close_pending": bool}
#: None: any type (``pending``, a host error or None, is only ever set to None)
_STATE_ATTRS: dict[str, Any] = {"release_queue": list, "partial_line": list, "pending": None}


def compiled(state: "ScriptState", generic: Callable[..., Any], finish: Callable[[int, int | None, int], Any],
             ) -> Any | None:
    """The compiled caller around the Python caller ``generic``, or None when
    the extension is off or any check fails. ``finish(n, error, depth)`` ends
    a call of arity ``n`` the C side did not settle (calls.py). Called inside
    the gate; the caller's ``prime(...)`` adds each arity's parameter block."""
    if not enabled() or not _api_ready():
        return None
    vm = state.vm
    inst = vm.instance
    if not _plain(inst, _INSTANCE_ATTRS) or not _plain(state, _STATE_ATTRS) or state.__dict__.get("vm") is not vm:
        return None
    try:
        if not _probe(inst, vm):
            return None
    except Exception:
        return None
    gate = state.pool.gate
    acquire, unlock = gate.uncontended_inline()
    rlock = _direct_lock(gate)
    lazy = inst.timeout is not None and inst.fuel is None
    assert _ccall is not None
    return _ccall.make_caller(generic, finish, state.__dict__, vm, inst.__dict__, threads.tracking, rlock, acquire,
                              unlock, gate, threads.wake_waiters, inst._arm_limits, inst.limited, lazy,
                              float(inst._slack))


def prime(caller: Any, n: int, sc: Any) -> None:
    """Hands the compiled caller arity ``n``'s numbers-only parameter block."""
    context, func, raw, size, trap = sc.export.call_args
    offsets = tuple(i * 8 for i in sc.at[:n])  # f64 indices -> byte offsets
    caller.prime(n, context, func, raw, size, trap, offsets, sc)
