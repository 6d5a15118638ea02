"""A thin ctypes layer over the QuickJS C API inside the quickjs-ng binding.

The binding (``_quickjs``) exports every QuickJS symbol but exposes only
``eval``/``get``/``set``/``add_callable``/limits to Python. Three things the
engine needs are missing there, and this module reaches them directly:

- an **interrupt handler** that works while scripts call the host (the
  binding's own ``set_time_limit`` refuses every call into Python while a
  time limit is set, which would cut scripts off from ``kryon``);
- **compile without running** (``JS_EVAL_FLAG_COMPILE_ONLY``) with the script
  id as the file name, for syntax errors with line and column, and
  **bytecode** (``JS_WriteObject`` / ``JS_ReadObject``);
- **running a compiled script** (``JS_EvalFunction``) in a context whose
  host callables may be called from the top level.

It relies on the layout of the binding's ``Context`` object (checked at first
use against values the binding's own setters write, see :func:`available`);
if the check fails, the engine falls back to source evaluation and the
binding's limits and says so in ``JSEngine.capabilities``.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from typing import Any

P = ctypes.c_void_p

# offsets in the binding's RuntimeData (module.c of quickjs-ng 0.17.0.2):
# PyObject_HEAD | JSRuntime *runtime | JSContext *context | int has_time_limit |
# clock_t time_limit | PyThreadState *thread_state | ...
_OFF_RUNTIME, _OFF_CONTEXT, _OFF_HAS_LIMIT, _OFF_LIMIT, _OFF_TSTATE = 16, 24, 32, 40, 48
# ObjectData: PyObject_HEAD | RuntimeData *runtime_data | JSValue object
_OFF_OBJ_VALUE = 24
# JSContext.interrupt_counter in quickjs-ng 0.17.0 (checked by a probe before use, see counter_offset):
# the interpreter decrements it at every loop back-edge and call and asks the interrupt handler only
# when it reaches 0 (then resets it to 10000)
_OFF_INTERRUPT_COUNTER = 548

# JSRuntime opens with JSMallocFunctions (five function pointers), then JSMallocState {malloc_count,
# malloc_size, malloc_limit, opaque} in quickjs-ng 0.17 (checked before use, see heap_room)
_OFF_MALLOC_COUNT, _OFF_MALLOC_SIZE, _OFF_MALLOC_LIMIT = 40, 48, 56
_heap_ok: bool | None = None

JS_EVAL_TYPE_GLOBAL = 0
JS_EVAL_FLAG_COMPILE_ONLY = 1 << 5
JS_WRITE_OBJ_BYTECODE = 1 << 0
JS_READ_OBJ_BYTECODE = 1 << 0
JS_TAG_EXCEPTION = 6

#: bytecode blobs we write start with this, so a foreign blob is never read; then the length (4 bytes,
#: little-endian) and UTF-8 text of the file name compiled in (frames name it), then QuickJS's bytecode
MAGIC = b"KRYONJS2"


def bytecode_name(bytecode: bytes) -> str | None:
    """The file name a blob was compiled under, or None if it is not ours."""
    if not bytecode.startswith(MAGIC) or len(bytecode) < len(MAGIC) + 4:
        return None
    n = int.from_bytes(bytecode[len(MAGIC):len(MAGIC) + 4], "little")
    return bytecode[len(MAGIC) + 4:len(MAGIC) + 4 + n].decode("utf-8", "replace")


class JSValue(ctypes.Structure):
    _fields_ = [("u", ctypes.c_int64), ("tag", ctypes.c_int64)]


INTERRUPT_HANDLER = ctypes.CFUNCTYPE(ctypes.c_int, P, P)

_lib: Any = None
_ok: bool | None = None
_lock = threading.Lock()


#: run with the GIL released (they run or parse JavaScript); every other function keeps the GIL, so
#: that nothing QuickJS frees along the way (a host callable's finalizer) can touch Python without it
_RELEASE_GIL = frozenset({"JS_Eval", "JS_EvalFunction"})


class _Lib:
    """QuickJS's exports, each loaded through CDLL (GIL released) or PyDLL (GIL held)."""

    def __init__(self, path: str, sig: dict[str, Any]) -> None:
        cdll, pydll = ctypes.CDLL(path), ctypes.PyDLL(path)
        for name, (res, args) in sig.items():
            fn = getattr(cdll if name in _RELEASE_GIL else pydll, name)
            fn.restype, fn.argtypes = res, args
            setattr(self, name, fn)


def _load() -> Any:
    import _quickjs

    sig = {
        "JS_GetRuntime": (P, [P]),
        "JS_Eval": (JSValue, [P, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_int]),
        "JS_WriteObject": (P, [P, ctypes.POINTER(ctypes.c_size_t), JSValue, ctypes.c_int]),
        "JS_ReadObject": (JSValue, [P, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]),
        "JS_EvalFunction": (JSValue, [P, JSValue]),
        "JS_FreeValue": (None, [P, JSValue]),
        "JS_GetException": (JSValue, [P]),
        "JS_SetPropertyStr": (ctypes.c_int, [P, JSValue, ctypes.c_char_p, JSValue]),
        "JS_UpdateStackTop": (None, [P]),
        "JS_SetInterruptHandler": (None, [P, INTERRUPT_HANDLER, P]),
        "js_free": (None, [P, P]),
        "JS_RunGC": (None, [P]),
        "JS_SetUncatchableError": (None, [P, JSValue]),
        "JS_SetMemoryLimit": (None, [P, ctypes.c_size_t]),
        "JS_SetMaxStackSize": (None, [P, ctypes.c_size_t]),
        "JS_SetGCThreshold": (None, [P, ctypes.c_size_t]),
        "JS_GetGCThreshold": (ctypes.c_size_t, [P]),
    }
    return _Lib(_quickjs.__file__, sig)


def available() -> bool:
    """Whether the C API is reachable and the binding's layout is the one we know."""
    global _lib, _ok
    if _ok is not None:
        return _ok
    with _lock:
        if _ok is not None:
            return _ok
        try:
            if sys.implementation.name != "cpython" or ctypes.sizeof(P) != 8:
                raise RuntimeError("needs 64-bit CPython")
            lib = _load()
            import quickjs

            ctx = quickjs.Context()
            base = id(ctx)
            rt, cx = P.from_address(base + _OFF_RUNTIME).value, P.from_address(base + _OFF_CONTEXT).value
            ok = bool(rt) and bool(cx) and lib.JS_GetRuntime(cx) == rt
            ctx.set_time_limit(2)
            ok = ok and ctypes.c_int.from_address(base + _OFF_HAS_LIMIT).value == 1
            clocks = ctypes.c_long.from_address(base + _OFF_LIMIT).value
            ctx.set_time_limit(-1)
            ok = ok and clocks > 0 and ctypes.c_int.from_address(base + _OFF_HAS_LIMIT).value == 0
            ok = ok and not P.from_address(base + _OFF_TSTATE).value
            obj = ctx.eval("({})")
            value = JSValue.from_address(id(obj) + _OFF_OBJ_VALUE)
            ok = ok and value.tag == -1  # JS_TAG_OBJECT
            _lib = lib if ok else None
            _ok = bool(ok)
        except Exception:  # pragma: no cover - other builds of the binding
            _lib, _ok = None, False
    return _ok


_counter_ok: bool | None = None


def counter_offset() -> int | None:
    """The offset of ``interrupt_counter`` in a JSContext, or None when the
    probe does not find it there. Probe: a counter set to 5000 must drop by
    about two per iteration of a counted loop, and a counter set to 1 must
    make the very next loop ask the interrupt handler."""
    global _counter_ok
    if _counter_ok is None:
        ok = available()  # takes _lock itself
        with _lock:
            if _counter_ok is None:
                _counter_ok = ok and _probe_counter()
    return _OFF_INTERRUPT_COUNTER if _counter_ok else None


def _probe_counter() -> bool:
    import quickjs

    try:
        ctx = quickjs.Context()
        _, cx = pointers(ctx)
        counter = ctypes.c_int.from_address(cx + _OFF_INTERRUPT_COUNTER)
        counter.value = 5000
        ctx.eval("for (let i = 0; i < 100; i++) {}")
        if not 4500 <= counter.value <= 4900:
            return False
        calls = []

        @INTERRUPT_HANDLER  # type: ignore[untyped-decorator]  # a ctypes function type
        def handler(rt: int, opaque: int) -> int:
            calls.append(1)
            return 0

        set_interrupt_handler(ctx, handler)
        counter.value = 1
        ctx.eval("for (let i = 0; i < 3; i++) {}")
        ok = len(calls) == 1 and counter.value > 9000
        rt, _ = pointers(ctx)
        _lib.JS_SetInterruptHandler(rt, INTERRUPT_HANDLER(), None)
        return ok
    except Exception:  # pragma: no cover - another build of the binding
        return False


def interrupt_counter(ctx: Any) -> Any:
    """A ctypes int over the context's interrupt counter (see counter_offset);
    valid only while ``ctx`` lives."""
    offset = counter_offset()
    if offset is None:
        return None
    _, cx = pointers(ctx)
    return ctypes.c_int.from_address(cx + offset)


def pointers(ctx: Any) -> tuple[int, int]:
    base = id(ctx)
    return int(P.from_address(base + _OFF_RUNTIME).value or 0), int(P.from_address(base + _OFF_CONTEXT).value or 0)


def set_interrupt_handler(ctx: Any, handler: Any) -> None:
    """Install ``handler`` (an INTERRUPT_HANDLER) on the context's runtime."""
    rt, _ = pointers(ctx)
    _lib.JS_SetInterruptHandler(rt, handler, None)


def _heap_layout_ok() -> bool:
    """Whether JSRuntime's malloc state sits where ``_OFF_MALLOC_*`` say: read on a fresh context
    against what the binding's ``memory()`` reports for it."""
    global _heap_ok
    if _heap_ok is None:
        ok = False
        try:
            import quickjs

            probe = quickjs.Context()
            probe.set_memory_limit(12345678)
            rt, _ = pointers(probe)
            m = probe.memory()
            ok = bool(rt) and (ctypes.c_size_t.from_address(rt + _OFF_MALLOC_LIMIT).value == 12345678
                               and ctypes.c_size_t.from_address(rt + _OFF_MALLOC_SIZE).value == m["malloc_size"]
                               and ctypes.c_size_t.from_address(rt + _OFF_MALLOC_COUNT).value == m["malloc_count"])
        except Exception:  # noqa: BLE001 - pragma: no cover - another build of the binding
            ok = False
        _heap_ok = ok
    return _heap_ok


def heap_room(ctx: Any) -> int:
    """Bytes the context's runtime may still allocate under its malloc limit: two words of
    JSRuntime when the layout is known, else the binding's ``memory()`` (which walks the heap)."""
    if _lib is not None and _heap_layout_ok():
        rt, _ = pointers(ctx)
        size = ctypes.c_size_t.from_address(rt + _OFF_MALLOC_SIZE).value
        limit = ctypes.c_size_t.from_address(rt + _OFF_MALLOC_LIMIT).value
    else:
        m = ctx.memory()
        size, limit = int(m["malloc_size"]), int(m["malloc_limit"])
    return int(limit) - int(size)


def heap_words(ctx: Any) -> Any:
    """The runtime's allocated byte count and malloc limit as a ctypes ``size_t[2]`` over JSRuntime
    (read in two indexings, no call: the room check before every compile at run time reads it), or
    None when the layout is not the one :func:`heap_room` knows. Valid while the context lives."""
    if _lib is None or not _heap_layout_ok():
        return None
    rt, _ = pointers(ctx)
    return (ctypes.c_size_t * 2).from_address(rt + _OFF_MALLOC_SIZE)


def set_memory_limit(rt: int, limit: int) -> None:
    """Set the malloc limit of runtime ``rt``. QuickJS reads it on every
    allocation (one word), so a store from another thread takes effect at the
    running thread's next allocation (see ``cutoff.py``)."""
    _lib.JS_SetMemoryLimit(rt, limit)


def set_stack_size(rt: int, size: int) -> None:
    """Set the native stack budget of runtime ``rt``: QuickJS stores its limit as
    ``stack_top - size`` (the top the running thread recorded), so this works
    from another thread; the parser compares against it at every nesting level."""
    _lib.JS_SetMaxStackSize(rt, size)


def set_gc_threshold(rt: int, size: int) -> None:
    """Collect cycles when the runtime's allocations pass ``size`` (QuickJS then sets it anew)."""
    _lib.JS_SetGCThreshold(rt, size)


def gc_threshold(rt: int) -> int:
    return int(_lib.JS_GetGCThreshold(rt))


#: JSRuntime.malloc_state.malloc_size in the binding's QuickJS (JS_SetMemoryLimit writes the limit
#: right after it); checked against JS_ComputeMemoryUsage before use, see malloc_size_reader
_OFF_RT_MALLOC_SIZE, _OFF_RT_MALLOC_LIMIT = 0x30, 0x38


def malloc_size_reader(ctx: Any) -> Any:
    """A ctypes size_t over the runtime's allocated byte count (read without walking the heap, as
    JS_ComputeMemoryUsage does), or None when the layout is not the one we know."""
    rt, _ = pointers(ctx)
    size = ctypes.c_size_t.from_address(rt + _OFF_RT_MALLOC_SIZE)
    limit = ctypes.c_size_t.from_address(rt + _OFF_RT_MALLOC_LIMIT)
    usage = ctx.memory()
    if size.value != usage["malloc_size"] or limit.value != usage["malloc_limit"]:
        return None
    return size


def run_gc(ctx: Any) -> None:
    """QuickJS's cycle collector on the context's runtime (the binding's own
    ``gc()`` also runs Python's full ``gc.collect()`` every time)."""
    rt, _ = pointers(ctx)
    _lib.JS_RunGC(rt)


def set_uncatchable(ctx: Any, error: Any) -> None:
    """Make ``error`` (a binding Object holding a JS error) one ``catch`` cannot
    stop, as QuickJS's own "interrupted" error is."""
    _, cx = pointers(ctx)
    _lib.JS_SetUncatchableError(cx, JSValue.from_address(id(error) + _OFF_OBJ_VALUE))


class CompileFailed(Exception):
    """compile_only hit a JS exception; ``stashed`` says it was put on the holder."""


def _take_exception(cx: int, holder: Any) -> None:
    """Move the pending JS exception onto ``holder.e`` (a binding Object we own)."""
    exc = _lib.JS_GetException(cx)
    if holder is None:
        _lib.JS_FreeValue(cx, exc)
        raise RuntimeError("unexpected JavaScript exception in Kryon's own code")
    target = JSValue.from_address(id(holder) + _OFF_OBJ_VALUE)
    _lib.JS_SetPropertyStr(cx, target, b"e", exc)  # takes ownership of exc


def compile_only(ctx: Any, source: str, filename: str, holder: Any) -> bytes:
    """Compile ``source`` as global code named ``filename`` without running
    it; return its bytecode. On a syntax error the exception is left on
    ``holder.e`` and CompileFailed is raised."""
    rt, cx = pointers(ctx)
    _lib.JS_UpdateStackTop(rt)  # the parser checks the native stack against the calling thread's
    data = source.encode("utf-8", "surrogatepass")
    value = _lib.JS_Eval(cx, data, len(data), filename.encode("utf-8", "replace"), JS_EVAL_TYPE_GLOBAL | JS_EVAL_FLAG_COMPILE_ONLY)
    if value.tag == JS_TAG_EXCEPTION:
        _take_exception(cx, holder)
        raise CompileFailed()
    try:
        size = ctypes.c_size_t()
        buf = _lib.JS_WriteObject(cx, ctypes.byref(size), value, JS_WRITE_OBJ_BYTECODE)
        if not buf:
            raise CompileFailed()
        try:
            name = filename.encode("utf-8", "replace")
            return MAGIC + len(name).to_bytes(4, "little") + name + ctypes.string_at(buf, size.value)
        finally:
            _lib.js_free(cx, buf)
    finally:
        _lib.JS_FreeValue(cx, value)


def run_bytecode(ctx: Any, bytecode: bytes, holder: Any, *, keep_result: bool = False) -> bool:
    """Run compiled global code in ``ctx``. Host callables may be called from
    it: the binding's saved-thread-state slot is filled for the duration,
    exactly as its own ``eval`` does. Returns False (exception on
    ``holder.e``) when the script threw; with ``keep_result`` the completion
    value is left on ``holder.r``."""
    if bytecode_name(bytecode) is None:
        raise ValueError("not Kryon JS bytecode")
    rt, cx = pointers(ctx)
    n = int.from_bytes(bytecode[len(MAGIC):len(MAGIC) + 4], "little")
    body = bytecode[len(MAGIC) + 4 + n:]
    _lib.JS_UpdateStackTop(rt)
    fn = _lib.JS_ReadObject(cx, body, len(body), JS_READ_OBJ_BYTECODE)
    if fn.tag == JS_TAG_EXCEPTION:
        _take_exception(cx, holder)
        return False
    slot = P.from_address(id(ctx) + _OFF_TSTATE)
    ctypes.pythonapi.PyThreadState_Get.restype = P
    slot.value = ctypes.pythonapi.PyThreadState_Get()
    try:
        _lib.JS_UpdateStackTop(rt)
        result = _lib.JS_EvalFunction(cx, fn)  # ctypes releases the GIL around this call
    finally:
        slot.value = None
    if result.tag == JS_TAG_EXCEPTION:
        _take_exception(cx, holder)
        return False
    if keep_result and holder is not None:
        target = JSValue.from_address(id(holder) + _OFF_OBJ_VALUE)
        _lib.JS_SetPropertyStr(cx, target, b"r", result)  # takes ownership of result
    else:
        _lib.JS_FreeValue(cx, result)
    return True
