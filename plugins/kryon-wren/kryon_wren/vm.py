"""vm.py -- Low-level Python wrapper over the Kryon Wren wasm module.

The Wren VM is C code compiled to wasm32 (see ``csrc/``); this module runs it
inside wasmtime and speaks its embedding API (``csrc/kryon_wren.h``):

* :class:`WasmInstance` -- one wasmtime Store + instance of the module. It
  provides the host imports (``env.host_write``, ``env.host_load_module``,
  ``env.host_read_module``, ``env.host_bind_foreign``, ``env.host_foreign``,
  ``env.host_clock``, ``env.host_breakpoint``), a memory cap, and fuel /
  epoch time limits. Traps become Python exceptions; after a trap the
  instance is dead.
* :class:`WrenVM` -- one Wren VM: interpret source as a module, read
  variables, make handles and call methods (with a fast path for numeric
  calls), convert values through slots, and expose foreign methods to Wren.

Compiled wasm modules are cached per engine configuration, in memory and on
disk (``wasm_cache``: validated before use) so new instances start quickly.
"""
from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import wasmtime
from wasmtime import _ffi as ffi

from . import slot_codec, snapshot

WASM_PATH = Path(__file__).with_name("kryon_wren.wasm")

DEFAULT_MEMORY_LIMIT = 256 * 1024 * 1024
EPOCH_TICK_SECONDS = 0.005

# Result codes of the C API.
SUCCESS, COMPILE_ERROR, RUNTIME_ERROR, NON_NUMBER_RESULT = 0, 1, 2, 3
BYTECODE_NOT_CACHEABLE, BYTECODE_REFUSED = 3, 4  # wren_compile_bytecode / wren_interpret_bytecode
# Slot types (kryon_wren.h).
TYPE_BOOL, TYPE_NUM, TYPE_FOREIGN, TYPE_LIST, TYPE_MAP, TYPE_NULL, TYPE_STRING, TYPE_UNKNOWN = range(8)

# wren_call_num returns a status instead of a number as these signalling-NaN
# bits: ``(bits & STATUS_MASK) == STATUS_TAG``, the status in the low 16 bits.
STATUS_TAG = 0x7FF4000000000000
STATUS_MASK = 0xFFFFFFFFFFFF0000
_STATUS_TAG, _STATUS_MASK = STATUS_TAG, STATUS_MASK


# ---- Errors -----------------------------------------------------------------


class WrenError(Exception):
    """Base class of every error raised by the Wren VM wrapper. ``frames``:
    for a trap, the Wren frames running when it happened (WrenVM.stack)."""

    frames: list[Any] = []


class WrenCompileError(WrenError):
    def __init__(self, message: str, module: str = "", line: int = 0, column: int = 0):
        super().__init__(message)
        self.message = message
        self.module = module
        self.line = line
        self.column = column  # 1-based, in characters; 0 when unknown


class WrenRuntimeError(WrenError):
    def __init__(self, message: str, module: str = "", line: int = 0, trace: str = "", column: int = 0):
        super().__init__(message)
        self.message = message
        self.module = module
        self.line = line
        self.trace = trace
        self.column = column  # of the failing call in the first frame shown; 0 when unknown


class WrenTimeoutError(WrenError):
    """The script ran out of fuel or past its time limit."""


class WrenMemoryError(WrenError):
    """The VM hit the memory cap of its store."""


class WrenTrapError(WrenError):
    """The wasm instance trapped for another reason (a VM bug)."""


class WrenVMClosedError(WrenError):
    """The VM was closed, or its instance died in an earlier trap."""


# ---- Engines and compiled modules ---------------------------------------------

_engine_lock = threading.Lock()
_engines: dict[tuple[bool, bool], tuple[wasmtime.Engine, wasmtime.Module]] = {}
_epoch_engines: list[Any] = []
_ticker_started = False


def _ticker() -> None:
    """Advances the epoch of every engine with time limits by one per
    EPOCH_TICK_SECONDS of wall time. It counts ticks from the clock, not
    from its wake-ups: a wake-up that came late (this thread waits for the
    GIL while script code runs Python host functions) catches up at once,
    so a deadline of N ticks is N ticks of real time."""
    start = time.perf_counter()
    done = 0
    while True:
        time.sleep(EPOCH_TICK_SECONDS)
        due = int((time.perf_counter() - start) / EPOCH_TICK_SECONDS)
        for engine in list(_epoch_engines):
            for _ in range(min(due - done, 1000)):
                engine.increment_epoch()
        done = due


def get_engine(fuel: bool = False, epoch: bool = True) -> tuple[wasmtime.Engine, wasmtime.Module]:
    """The shared engine and compiled module for a configuration."""
    global _ticker_started
    key = (fuel, epoch)
    with _engine_lock:
        if key in _engines:
            return _engines[key]
        if not WASM_PATH.exists():
            raise WrenError(f"kryon_wren.wasm is missing ({WASM_PATH}); build it with build_wasm.py")
        config = wasmtime.Config()
        config.consume_fuel = fuel
        config.epoch_interruption = epoch
        engine = wasmtime.Engine(config)
        from .wasm_cache import load_module

        module = load_module(engine, WASM_PATH.read_bytes(), f"fuel={fuel},epoch={epoch}")
        _engines[key] = (engine, module)
        if epoch:
            _epoch_engines.append(engine)
            if not _ticker_started:
                threading.Thread(target=_ticker, name="kryon-wren-epoch", daemon=True).start()
                _ticker_started = True
        return engine, module


# ---- One wasm instance -------------------------------------------------------------

_I32 = wasmtime.ValType.i32()
_I64 = wasmtime.ValType.i64()
_F64 = wasmtime.ValType.f64()


class WasmInstance:
    """A wasmtime store and instance of the Wren module, shared by its VMs."""

    def __init__(
        self,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        fuel: int | None = None,
        timeout: float | None = None,
    ):
        self.memory_limit = memory_limit
        self.fuel = fuel
        self.timeout = timeout
        self.engine, self.module = get_engine(fuel=fuel is not None, epoch=timeout is not None)
        self.store = wasmtime.Store(self.engine)
        self.store.set_limits(memory_size=memory_limit)
        if timeout is not None:
            self.store.set_epoch_deadline(1 << 62)
        if fuel is not None:
            self.store.set_fuel(fuel)
        self.targets: dict[int, "WrenVM"] = {}
        self.dead: str | None = None
        self._pending_source: bytes = b""
        self._next_host_id = 1
        self._import_callbacks: list[Any] = []
        try:
            self.instance = wasmtime.Instance(self.store, self.module, self._imports())
        except wasmtime.WasmtimeError as exc:
            if "memory" not in str(exc):
                raise
            # the cap is below the module's initial memory
            raise WrenMemoryError(f"Wren VM exceeded its memory limit of {memory_limit} bytes ({exc})") from None
        self.memory: wasmtime.Memory = self.export("memory")
        self._context_addr = ctypes.cast(self.store._context(), ctypes.c_void_p).value
        self._memory_addr = ctypes.addressof(self.memory._memory)
        self._scratch_ptr = 0
        self._scratch_size = 0
        self.funcs: dict[str, wasmtime.Func] = _LazyFuncs(self)
        self.export("_initialize")(self.store)
        self.limited = fuel is not None or timeout is not None
        #: wasm calls into this instance in progress (0: none; see enter())
        self.depth = 0
        self._armed_at = -1e18
        self._close_pending = False
        self._slack = min(EPOCH_TICK_SECONDS, (timeout or 0) * 0.01)
        self.fns: dict[str, _RawExport] = _LazyExports(self)

    def export(self, name: str) -> Any:
        """One export by name (cheaper than listing them all)."""
        from wasmtime._extern import wrap_extern

        item = ffi.wasmtime_extern_t()
        data = name.encode()
        found = ffi.wasmtime_instance_export_get(
            self.store._context(), ctypes.byref(self.instance._instance), data, len(data), ctypes.byref(item)
        )
        if not found:
            raise KeyError(name)
        return wrap_extern(item)

    # -- host imports --------------------------------------------------------

    def _imports(self) -> list[Any]:
        store = self.store

        def func(params: list[wasmtime.ValType], results: list[wasmtime.ValType], fn: Callable[..., Any]) -> wasmtime.Func:
            return wasmtime.Func(store, wasmtime.FuncType(params, results), fn)

        i32_func = self._i32_import
        by_name = {
            "host_write": i32_func(3, False, self._host_write),
            "host_load_module": i32_func(3, True, self._host_load_module),
            "host_read_module": i32_func(2, False, self._host_read_module),
            "host_bind_foreign": i32_func(8, True, self._host_bind_foreign),
            "host_foreign": i32_func(2, True, self._host_foreign),
            "host_clock": func([], [_F64], time.perf_counter),
            "host_breakpoint": i32_func(4, True, self._host_breakpoint),
        }
        return [by_name[str(imp.name)] for imp in self.module.imports]

    def _i32_import(self, arity: int, returns: bool, fn: Callable[..., Any]) -> wasmtime.Func:
        """An import taking ``arity`` i32s (and returning one when ``returns``),
        made with ``wasmtime_func_new_unchecked``: the callback reads and
        writes the raw value array itself, skipping wasmtime-py's trampoline,
        which rebuilds and compares value types on every call (most of the
        cost of a host call out of Wren). A Python exception unwinds the wasm
        call as that trampoline does (a trap, the exception kept in
        ``wasmtime._func.LAST_EXCEPTION`` for :meth:`_raise_trap`)."""
        from wasmtime import _func

        def callback(env: Any, caller: Any, raw: Any, count: int) -> int:
            try:
                result = fn(*[raw[i].i32 for i in range(arity)])
                if returns:
                    raw[0].i32 = result
                return 0
            except BaseException as exc:
                _func.LAST_EXCEPTION = exc  # type: ignore[assignment]  # wasmtime's own trampoline keeps any BaseException
                trap = wasmtime.Trap("python exception")._consume()
                return ctypes.cast(trap, ctypes.c_void_p).value or 0

        c_callback = ffi.wasmtime_func_unchecked_callback_t(callback)
        self._import_callbacks.append(c_callback)  # alive as long as the instance
        ty = wasmtime.FuncType([_I32] * arity, [_I32] if returns else [])
        raw_func = ffi.wasmtime_func_t()
        ffi.wasmtime_func_new_unchecked(self.store._context(), ty.ptr(), c_callback, None, _NO_FINALIZER,
                                        ctypes.byref(raw_func))
        return wasmtime.Func._from_raw(raw_func)

    def _host_write(self, vm: int, ptr: int, length: int) -> None:
        target = self.targets.get(vm)
        text = self.read_bytes(ptr, length).decode("utf-8", "replace")
        if target is not None:
            target._on_write(text)

    def _host_load_module(self, vm: int, ptr: int, length: int) -> int:
        target = self.targets.get(vm)
        name = self.read_bytes(ptr, length).decode("utf-8", "replace")
        source = target._on_load_module(name) if target is not None else None
        if source is None:
            return -1
        self._pending_source = source.encode("utf-8") if isinstance(source, str) else bytes(source)
        return len(self._pending_source)

    def _host_read_module(self, vm: int, buffer: int) -> None:
        self.write_bytes(buffer, self._pending_source)
        self._pending_source = b""

    def _host_bind_foreign(self, vm: int, mptr: int, mlen: int, cptr: int, clen: int, is_static: int, sptr: int,
                           slen: int) -> int:
        target = self.targets.get(vm)
        if target is None:
            return -1
        module = self.read_bytes(mptr, mlen).decode()
        class_name = self.read_bytes(cptr, clen).decode()
        signature = self.read_bytes(sptr, slen).decode()
        return target._on_bind_foreign(module, class_name, bool(is_static), signature)

    def _host_foreign(self, vm: int, method_id: int) -> int:
        target = self.targets.get(vm)
        if target is None:
            return 1
        return target._on_foreign(method_id)

    def _host_breakpoint(self, vm: int, mptr: int, mlen: int, line: int) -> int:
        target = self.targets.get(vm)
        if target is None:
            return 0
        return target._on_breakpoint(self.read_bytes(mptr, mlen).decode("utf-8", "replace"), line)

    # -- memory --------------------------------------------------------------

    def base(self) -> int:
        """Host address of linear memory (it moves when memory grows)."""
        return int(_MEMORY_DATA(self._context_addr, self._memory_addr))

    def read_bytes(self, ptr: int, length: int) -> bytes:
        return ctypes.string_at(self.base() + ptr, length)

    def read_cstring(self, ptr: int) -> str:
        if not ptr:
            return ""
        return ctypes.string_at(self.base() + ptr).decode("utf-8", "replace")

    def write_bytes(self, ptr: int, data: bytes) -> None:
        ctypes.memmove(self.base() + ptr, data, len(data))

    def scratch(self, size: int) -> int:
        """A reusable buffer in linear memory for passing bytes in."""
        if size > self._scratch_size:
            if self._scratch_ptr:
                self.call("wren_dealloc", self._scratch_ptr)
            self._scratch_size = max(size, 256, self._scratch_size * 2)
            self._scratch_ptr = self.call("wren_alloc", self._scratch_size)
        return self._scratch_ptr

    def memory_size(self) -> int:
        """Bytes of linear memory the instance currently has (0 once closed)."""
        store = self.__dict__.get("store")
        return self.memory.data_len(store) if store is not None else 0

    def alloc_cstring(self, text: str) -> int:
        data = text.encode("utf-8") + b"\0"
        ptr = int(self.call("wren_alloc", len(data)))
        self.write_bytes(ptr, data)
        return ptr

    # -- calls ---------------------------------------------------------------

    def _arm_limits(self, lazy: bool = False) -> None:
        """Arms the budget of an outermost call into this instance. ``lazy``:
        keep a deadline armed less than 1% of the limit ago (at most one
        epoch tick)."""
        if self.fuel is not None:
            self.store.set_fuel(self.fuel)
        timeout = self.timeout
        if timeout is not None:
            now = time.perf_counter()
            if lazy and now - self._armed_at < self._slack:
                return
            self._armed_at = now
            self.store.set_epoch_deadline(max(1, int(timeout / EPOCH_TICK_SECONDS + 0.999)))

    def enter(self, lazy: bool = False) -> None:
        """Starts a host call into this instance: the outermost one arms the
        limits, and every wasm call made until :meth:`leave` (conversions,
        host functions calling back into this instance, nested calls) runs
        under that same deadline instead of re-arming it. A call into
        another script's instance runs under that script's own limits; the
        caller's deadline fires as soon as control is back in the caller."""
        if not self.depth and self.limited:
            self._arm_limits(lazy)
        self.depth += 1

    def leave(self) -> None:
        self.depth -= 1
        if not self.depth and self._close_pending:
            self.close()

    def call_unlimited(self, name: str, *args: Any) -> Any:
        """Calls an export without the fuel / time budget (VM set-up). Inside
        a running call it runs under that call's budget instead."""
        self.check_alive()
        if self.depth or not self.limited:
            return self.fns[name](*args)
        if self.fuel is not None:
            self.store.set_fuel(1 << 40)
        if self.timeout is not None:
            self.store.set_epoch_deadline(1 << 40)
        self._armed_at = -1e18  # the next limited call re-arms
        self.limited = False
        try:
            return self.fns[name](*args)
        finally:
            self.limited = True

    def close(self) -> None:
        """Frees the store (and with it all linear memory) now rather than
        when the garbage collector finds the instance's reference cycles.
        The instance is dead afterwards: every call refuses before touching
        the store."""
        if self.dead is None:
            self.dead = "the instance was closed"
        if self.depth:
            # wasm frames of this store are still on the stack (a trap in a
            # call nested inside another): free it when the outermost returns
            self._close_pending = True
            return
        self.targets.clear()
        self.fns.clear()
        self.funcs.clear()
        store = self.__dict__.pop("store", None)
        if store is not None:
            store.close()

    def check_alive(self) -> None:
        if self.dead is not None:
            raise WrenVMClosedError(f"the Wren VM's wasm instance is dead: {self.dead}")

    def call(self, name: str, *args: Any) -> Any:
        """Calls an export, arming limits and turning traps into errors."""
        if self.dead is not None:
            self.check_alive()
        return self.fns[name](*args)

    def _raise_trap(self, trap_ptr: Any, error_ptr: Any) -> None:
        from wasmtime import _func

        exc = _func.LAST_EXCEPTION
        _func.LAST_EXCEPTION = None
        if exc is not None:
            # A host callback raised: the wasm stack was unwound mid-call.
            self.dead = f"host callback raised {type(exc).__name__}"
            raise exc
        if trap_ptr:
            raise self._trap_error(wasmtime.Trap._from_ptr(trap_ptr))
        raise self._trap_error(wasmtime.WasmtimeError._from_ptr(error_ptr))

    def _trap_error(self, trap: Exception) -> WrenError:
        code = getattr(trap, "trap_code", None)
        text = str(trap)
        # wasmtime's text starts with a backtrace of wasm offsets; the cause is the "wasm trap:" line
        causes = [line.split("wasm trap:", 1)[1].strip() for line in text.splitlines() if "wasm trap:" in line]
        message = causes[-1] if causes else (text.splitlines()[0] if text else type(trap).__name__)
        if code == wasmtime.TrapCode.OUT_OF_FUEL:
            error: WrenError = WrenTimeoutError(
                f"Wren script ran out of fuel (budget {self.fuel} wasm instructions)"
            )
        elif code == wasmtime.TrapCode.INTERRUPT:
            error = WrenTimeoutError(f"Wren script exceeded its time limit of {self.timeout} s")
        elif self._out_of_memory():
            error = WrenMemoryError(f"Wren VM exceeded its memory limit of {self.memory_limit} bytes")
        else:
            error = WrenTrapError(f"Wren VM trapped: {message} (a fault inside the VM)")
        error.frames = self._frames_at_trap()
        for target in list(self.targets.values()):
            target._drain_pending_output()
        for target in list(self.targets.values()):
            where = target._fault_where()
            if where is not None:  # the VM that was running: where its script stood
                error.module, error.line, error.column = where  # type: ignore[attr-defined]
                break
        self.dead = str(error)
        return error

    def _frames_at_trap(self) -> list[Any]:
        """The Wren frames of the VM that was running when the instance
        trapped, innermost first, as :meth:`WrenVM.stack` gives them. A
        trap leaves linear memory intact, so they can be read once more
        (under a lifted budget). The innermost line is where its function
        last made a call or was entered: the interpreter keeps the running
        instruction in a register, not in memory."""
        try:
            if self.timeout is not None:
                self.store.set_epoch_deadline(1 << 40)
            if self.fuel is not None:
                self.store.set_fuel(1 << 40)
            self._armed_at = -1e18
            for target in list(self.targets.values()):
                frames = target.stack()
                if frames:
                    return frames
        except Exception:  # a second fault: the error goes without its frames
            pass
        return []

    def _out_of_memory(self) -> bool:
        try:
            return bool(self.funcs["wren_out_of_memory"](self.store))
        except Exception:
            return False

    def new_host_id(self) -> int:
        host_id = self._next_host_id
        self._next_host_id += 1
        return host_id


def _kind_name(ty: wasmtime.ValType) -> str:
    for name in ("i32", "i64", "f32", "f64"):
        if ty == getattr(wasmtime.ValType, name)():
            return name
    raise WrenError(f"unsupported wasm value type {ty}")


def _make_unchecked() -> Any:
    # A private ctypes function object (dll[...] is not cached, unlike
    # dll.attr) so plain integers can be passed without conversion.
    fn = ffi.dll["wasmtime_func_call_unchecked"]
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    fn.restype = ctypes.c_void_p
    return fn


_UNCHECKED = _make_unchecked()
_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)()  # a NULL finalizer: the callbacks live on the instance


def _make_memory_data() -> Any:
    fn = ffi.dll["wasmtime_memory_data"]
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    fn.restype = ctypes.c_void_p
    return fn


_MEMORY_DATA = _make_memory_data()


#: (module, export name) -> (parameter kinds, result kinds)
_EXPORT_KINDS: dict[tuple[Any, str], tuple[list[str], list[str]]] = {}


class _RawExport:
    """Calls one export through ``wasmtime_func_call_unchecked``.

    wasmtime-py's ``Func.__call__`` costs ~20 us (it rebuilds the type and
    converts every value); this keeps a preallocated raw value array (with
    typed views over it) and calls the C API directly. Traps and host
    exceptions still raise, through ``WasmInstance._raise_trap``.
    """

    __slots__ = ("inst", "raw", "i32", "i64", "f64", "size", "params", "result",
                 "trap", "call_args", "func")

    def __init__(self, inst: WasmInstance, func: wasmtime.Func, name: str = ""):
        kinds = _EXPORT_KINDS.get((inst.module, name)) if name else None
        if kinds is None:
            ty = func.type(inst.store)
            kinds = ([_kind_name(p) for p in ty.params], [_kind_name(r) for r in ty.results])
            if name:
                _EXPORT_KINDS[(inst.module, name)] = kinds  # the same in every instance of a module
        params, results = kinds
        self.inst = inst
        self.func = func
        self.size = max(len(params), len(results), 1)
        self.raw = (ffi.wasmtime_val_raw * self.size)()
        stride = ctypes.sizeof(ffi.wasmtime_val_raw)
        words = self.size * stride
        self.i32 = (ctypes.c_int32 * (words // 4)).from_buffer(self.raw)
        self.i64 = (ctypes.c_int64 * (words // 8)).from_buffer(self.raw)
        self.f64 = (ctypes.c_double * (words // 8)).from_buffer(self.raw)
        per = stride // 4, stride // 8
        self.params = [(getattr(self, kind if kind != "f32" else "f64"), i * (per[0] if kind == "i32" else per[1]))
                       for i, kind in enumerate(params)]
        self.result = results[0] if results else None
        self.trap = ctypes.c_void_p()
        context = ctypes.cast(inst.store._context(), ctypes.c_void_p).value
        self.call_args = (context, ctypes.addressof(func._func), ctypes.addressof(self.raw),
                          self.size, ctypes.addressof(self.trap))

    def invoke(self) -> None:
        """Runs the call with the raw values already in place."""
        inst = self.inst
        if inst.depth:
            error = _UNCHECKED(*self.call_args)
        else:  # an outermost call: enter() and leave() inlined (the hot path)
            if inst.limited:
                inst._arm_limits()
            inst.depth = 1
            try:
                error = _UNCHECKED(*self.call_args)
            finally:
                inst.depth = 0
                if inst._close_pending:
                    inst.close()
        if error or self.trap.value:
            trap = self.trap.value
            self.trap.value = None
            inst._raise_trap(
                ctypes.cast(trap, ctypes.POINTER(ffi.wasm_trap_t)) if trap else None,
                ctypes.cast(error, ctypes.POINTER(ffi.wasmtime_error_t)) if error else None,
            )

    def invoke_rearming_lazily(self) -> Callable[[], None]:
        """:meth:`invoke` for an instance with a time limit, re-arming the
        epoch deadline of an outermost call only when 1% of the limit (at
        most 5 ms, one epoch tick) has passed since it was last armed: a
        call still gets at least 99% of its time limit, and back-to-back
        calls skip a wasmtime call each. Without a time limit it is
        :meth:`invoke` itself."""
        inst = self.inst
        if not inst.timeout or inst.fuel is not None:
            return self.invoke
        call_args, trap = self.call_args, self.trap

        def invoke() -> None:
            if inst.depth:
                error = _UNCHECKED(*call_args)
            else:
                inst._arm_limits(True)
                inst.depth = 1
                try:
                    error = _UNCHECKED(*call_args)
                finally:
                    inst.depth = 0
                    if inst._close_pending:
                        inst.close()
            if error or trap.value:
                inst._armed_at = -1e18
                pending, trap.value = trap.value, None
                inst._raise_trap(
                    ctypes.cast(pending, ctypes.POINTER(ffi.wasm_trap_t)) if pending else None,
                    ctypes.cast(error, ctypes.POINTER(ffi.wasmtime_error_t)) if error else None,
                )

        return invoke

    def __call__(self, *args: Any) -> Any:
        for (view, index), value in zip(self.params, args, strict=False):
            view[index] = value
        self.invoke()
        result = self.result
        if result is None:
            return None
        if result == "i32":
            return self.i32[0]
        if result == "f64":
            return self.f64[0]
        return self.i64[0]


class _LazyFuncs(dict[str, wasmtime.Func]):
    """Looks exported functions up on first use."""

    def __init__(self, inst: WasmInstance):
        super().__init__()
        self.inst = inst

    def __missing__(self, name: str) -> wasmtime.Func:
        func: wasmtime.Func = self.inst.export(name)
        self[name] = func
        return func


class _LazyExports(dict[str, "_RawExport"]):
    """Builds each export's raw caller on first use (instances start faster)."""

    def __init__(self, inst: WasmInstance):
        super().__init__()
        self.inst = inst

    def __missing__(self, name: str) -> _RawExport:
        export = _RawExport(self.inst, self.inst.funcs[name], name)
        self[name] = export
        return export


# ---- Handles ------------------------------------------------------------------


class Handle:
    """A Wren value pinned for the host (``wren_get_slot_handle``)."""

    __slots__ = ("vm", "ptr", "__weakref__")

    def __init__(self, vm: "WrenVM", ptr: int):
        self.vm = vm
        self.ptr = ptr

    def release(self) -> None:
        if self.ptr and self.vm is not None:
            self.vm._release_handle_ptr(self.ptr)
        self.ptr = 0

    def __repr__(self) -> str:
        return f"<Wren handle {self.ptr:#x}>"


class CallHandle(Handle):
    """A method signature ready to call, e.g. ``call(_,_)``."""

    __slots__ = ("signature", "arity")

    def __init__(self, vm: "WrenVM", ptr: int, signature: str):
        super().__init__(vm, ptr)
        self.signature = signature
        self.arity = signature.count("_")


ForeignFn = Callable[..., Any]


class WrenVM:
    """One Wren VM inside a wasm instance (its own unless ``instance`` is given).

    ``write`` receives System.print/write output (default: collected in
    ``self.output`` when ``capture=True``, else printed). ``load_module``
    maps an import name to source text or None. ``foreign`` maps
    ``(module, class, is_static, signature)`` to a Python callable taking the
    Wren arguments (receiver excluded) and returning the result; raising
    an exception aborts the Wren fiber with its message. ``bind_foreign``
    may resolve foreign methods dynamically with the same key parts.
    ``breakpoint`` is called as ``breakpoint(module, line)`` when execution
    reaches a line set with :meth:`add_breakpoint` (the VM is paused there:
    :meth:`stack` and :meth:`frame_locals` describe it); raising an
    exception aborts the Wren fiber with its message, as for foreign methods.
    ``prelude``: ``(module, source)`` pairs interpreted as soon as the VM is
    made; in a new instance the VM and its prelude may come from an image of
    an earlier set-up instead of the compiler (``snapshot.py``).
    """

    def __init__(
        self,
        *,
        instance: WasmInstance | None = None,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        fuel: int | None = None,
        timeout: float | None = None,
        write: Callable[[str], None] | None = None,
        capture: bool = False,
        load_module: Callable[[str], str | None] | None = None,
        foreign: dict[tuple[str, str, bool, str], ForeignFn] | None = None,
        bind_foreign: Callable[[str, str, bool, str], ForeignFn | None] | None = None,
        breakpoint: Callable[[str, int], None] | None = None,
        max_frames: int | None = None,
        prelude: Sequence[tuple[str, str]] = (),
    ):
        self.instance = instance or WasmInstance(memory_limit=memory_limit, fuel=fuel, timeout=timeout)
        self.output: list[str] = []
        self._write = write if write is not None else (self.output.append if capture else _print_raw)
        self._load_module = load_module
        self._foreign_table = dict(foreign or {})
        self._bind_foreign = bind_foreign
        self.breakpoint = breakpoint
        self._foreign_methods: list[tuple[Callable[..., Any], int]] = []
        self._foreign_ids: dict[tuple[str, str, bool, str], int] = {}
        self._foreign_error: BaseException | None = None
        self.host_id = self.instance.new_host_id()
        self.instance.targets[self.host_id] = self
        self.ptr = 0
        self._closed = False
        self._fast: FastCall | None = None
        snapshot.new_vm(self, prelude)  # the core library and prelude compiled, or restored from an image
        if max_frames:
            self.set_max_frames(max_frames)

    # -- lifetime ------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.instance.targets.pop(self.host_id, None)
        if self.instance.dead is None:
            self.instance.call_unlimited("wren_free_vm", self.ptr)
        self.ptr = 0

    def __enter__(self) -> "WrenVM":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _check(self) -> None:
        if self._closed:
            raise WrenVMClosedError("the Wren VM is closed")
        self.instance.check_alive()

    def _c(self, name: str, *args: Any) -> Any:
        if self._closed or self.instance.dead is not None:
            self._check()
        return self.instance.fns[name](self.ptr, *args)

    def _c_text(self, name: str, texts: tuple[str, ...], *args: Any) -> Any:
        """The export ``name`` called with ``texts`` as C strings in the VM's
        memory, then ``args``; the strings are freed after (unless the call
        killed the instance, whose memory is gone with it)."""
        inst = self.instance
        ptrs = [inst.alloc_cstring(text) for text in texts]
        try:
            return self._c(name, *ptrs, *args)
        finally:
            if inst.dead is None:
                for ptr in ptrs:
                    inst.call("wren_dealloc", ptr)

    # -- running code --------------------------------------------------------

    def interpret(self, source: str, module: str = "main") -> None:
        """Runs source as the named module; raises on compile or runtime errors."""
        self._check()
        self._raise_for(self._c_text("wren_interpret", (module, source)))

    def compile_bytecode(self, source: str, module: str) -> bytes | None:
        """Compiles source as a new module (which must not exist in this VM)
        without running it and returns its serialized form (csrc/bytecode.c),
        or None when the module cannot be cached (a function with 65536
        constants and a foreign method). Raises WrenCompileError on a compile
        error."""
        self._check()
        inst = self.instance
        result = self._c_text("wren_compile_bytecode", (module, source))
        if result == BYTECODE_NOT_CACHEABLE:
            return None
        self._raise_for(result)
        return bytes(inst.read_bytes(inst.call("wren_bytecode_data"), inst.call("wren_bytecode_length")))

    def interpret_bytecode(self, data: bytes, module: str = "main") -> bool:
        """Runs a serialized module as the named module, like :meth:`interpret`.
        Returns False, having run nothing, when the VM refuses the entry
        (corrupt, truncated, another format version or VM build; the reason
        is in :meth:`bytecode_error`)."""
        self._check()
        inst = self.instance
        module_ptr = inst.alloc_cstring(module)
        data_ptr = inst.call("wren_alloc", max(1, len(data)))
        inst.write_bytes(data_ptr, data)
        try:
            result = self._c("wren_interpret_bytecode", module_ptr, data_ptr, len(data))
        finally:
            if inst.dead is None:
                inst.call("wren_dealloc", module_ptr)
                inst.call("wren_dealloc", data_ptr)
        if result == BYTECODE_REFUSED:
            return False
        self._raise_for(result)
        return True

    def bytecode_error(self) -> str:
        """Why the last bytecode compile or load was refused ("" if it was not)."""
        return self.instance.read_cstring(self.instance.call("wren_bytecode_error"))

    def compiler_runs(self) -> int:
        """Modules this wasm instance has compiled from source so far."""
        return int(self.instance.call("wren_compiler_runs"))

    def raise_for_status(self, result: int) -> None:
        """Raises what a call's result code says (the error the VM recorded,
        or an exception a host callback stashed); nothing on success."""
        self._raise_for(result)

    def _raise_for(self, result: int) -> None:
        if self._foreign_error is not None:
            error, self._foreign_error = self._foreign_error, None
            if not isinstance(error, Exception):
                raise error
        if result == SUCCESS:
            return
        inst = self.instance
        message = inst.read_cstring(self._c("wren_error_message"))
        module = inst.read_cstring(self._c("wren_error_module"))
        line = self._c("wren_error_line")
        column = self._c("wren_error_column")
        if result == COMPILE_ERROR:
            raise WrenCompileError(message, module, line, column)
        trace = inst.read_cstring(self._c("wren_error_trace"))
        raise WrenRuntimeError(message, module, line, trace, column)

    # -- slots ---------------------------------------------------------------

    def ensure_slots(self, count: int) -> None:
        self._c("wren_ensure_slots", count)

    def slot_type(self, slot: int) -> int:
        return int(self._c("wren_get_slot_type", slot))

    def set_slot(self, slot: int, value: Any) -> None:
        """Stores a Python value (None, bool, number, str, list, dict, Handle)."""
        if value is None:
            self._c("wren_set_slot_null", slot)
        elif value is True or value is False:
            self._c("wren_set_slot_bool", slot, int(value))
        elif isinstance(value, (int, float)):
            self._c("wren_set_slot_double", slot, float(value))
        elif isinstance(value, str):
            try:
                data = value.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate: not text Wren can hold
                from kryon_core.errors import ConversionError

                raise ConversionError("a string with a lone surrogate cannot cross into wren (it is not UTF-8 text)",
                                      language="wren") from None
            self._set_slot_bytes(slot, data)
        elif isinstance(value, (bytes, bytearray)):
            self._set_slot_bytes(slot, bytes(value))
        elif isinstance(value, Handle):
            self._c("wren_set_slot_handle", slot, value.ptr)
        elif isinstance(value, (list, tuple)):
            self._c("wren_set_slot_new_list", slot)
            temp = slot + 1
            for item in value:
                self.set_slot(temp, item)
                self._c("wren_insert_in_list", slot, -1, temp)
        elif isinstance(value, dict):
            self._c("wren_set_slot_new_map", slot)
            key_slot, value_slot = slot + 1, slot + 2
            for key, item in value.items():
                self.set_slot(key_slot, key)
                self.set_slot(value_slot, item)
                self._c("wren_set_map_value", slot, key_slot, value_slot)
        else:
            raise TypeError(f"cannot pass {type(value).__name__} to Wren")

    def _set_slot_bytes(self, slot: int, data: bytes) -> None:
        inst = self.instance
        ptr = inst.scratch(len(data) + 1)
        inst.write_bytes(ptr, data)
        self._c("wren_set_slot_bytes", slot, ptr, len(data))

    def get_slot(self, slot: int) -> Any:
        """Reads a slot as a Python value; objects come back as Handles."""
        return self.get_slots(slot, 1)[0]

    def get_slots(self, first: int, count: int) -> list[Any]:
        """The values of ``count`` slots from ``first``, read with one wasm
        call (``wren_encode_slots``); objects come back as Handles. A value
        nested more than 200 levels deep (or cyclic) is a ConversionError."""
        packed = self._c("wren_encode_slots", first, count)
        if packed < 0:
            from kryon_core.errors import ConversionError

            raise ConversionError("a Wren value nested too deeply (or cyclic) cannot cross to the host", language="wren")
        data = self.instance.read_bytes(packed & 0xFFFFFFFF, packed >> 32)
        return slot_codec.decode(data, count, self._adopt_handle)

    def _adopt_handle(self, ptr: int) -> Handle:
        return Handle(self, ptr)

    def get_slot_handle(self, slot: int) -> Handle:
        return Handle(self, self._c("wren_get_slot_handle", slot))

    def _release_handle_ptr(self, ptr: int) -> None:
        if not self._closed and self.instance.dead is None:
            self._c("wren_release_handle", ptr)

    # -- variables and calls -------------------------------------------------

    def has_module(self, module: str) -> bool:
        return bool(self._c_text("wren_has_module", (module,)))

    def has_variable(self, module: str, name: str) -> bool:
        return bool(self._c_text("wren_has_variable", (module, name)))

    def _load_variable(self, module: str, name: str, slot: int) -> None:
        if not self._c_text("wren_get_variable", (module, name), slot):
            raise KeyError(f"no variable {name!r} in Wren module {module!r}")

    def get_variable(self, module: str, name: str) -> Any:
        """A top-level variable converted to Python (objects as Handles)."""
        self.ensure_slots(3)
        self._load_variable(module, name, 0)
        return self.get_slot(0)

    def variable_handle(self, module: str, name: str) -> Handle:
        """A handle to a top-level variable (e.g. a class or an object)."""
        self.ensure_slots(1)
        self._load_variable(module, name, 0)
        return self.get_slot_handle(0)

    def make_call_handle(self, signature: str) -> CallHandle:
        handle = self._c_text("wren_make_call_handle", (signature,))
        return CallHandle(self, handle, signature)

    def call(self, receiver: Any, method: CallHandle, *args: Any) -> Any:
        """Calls ``method`` on ``receiver`` with Python arguments via slots."""
        if len(args) != method.arity:
            raise TypeError(f"{method.signature} takes {method.arity} arguments, got {len(args)}")
        if isinstance(receiver, Handle) and len(args) <= 4 and all(
            type(a) is float or type(a) is int for a in args
        ):
            return self.call_num(receiver, method, *args)
        self.ensure_slots(len(args) + 3)
        self.set_slot(0, receiver)
        for i, arg in enumerate(args):
            self.set_slot(i + 1, arg)
        result = self._c("wren_call", method.ptr)
        self._raise_for(result)
        return self.get_slot(0)

    def call_num(self, receiver: Handle, method: CallHandle, *args: float) -> Any:
        """Fast path: numeric arguments (at most 4) and result, one wasm call.

        Uses wasmtime's unchecked C call with preallocated raw values; traps
        and Wren errors still raise. A non-number result is returned through
        the slots.
        """
        return self.fast_call()(receiver, method, args)

    def fast_call(self) -> "FastCall":
        """This VM's :class:`FastCall` (for callers that write its raw
        arguments themselves)."""
        fast = self._fast
        if fast is None:
            fast = self._fast = FastCall(self)
        return fast

    # -- limits and debugging ----------------------------------------------------

    def set_max_frames(self, count: int | None) -> None:
        """Bounds the call frames of each fiber (deeper calls fail with the
        runtime error "Stack overflow."); None or 0: the VM's own 100000."""
        self._c("wren_set_max_frames", int(count or 0))

    @property
    def max_frames(self) -> int:
        return int(self._c("wren_max_frames"))

    def add_breakpoint(self, module: str, line: int) -> int:
        """Breaks at ``line`` of ``module`` (now and in code compiled later);
        returns how many instructions of already compiled code were patched."""
        return int(self._c_text("wren_debug_add_breakpoint", (module,), int(line)))

    def remove_breakpoint(self, module: str, line: int) -> bool:
        return bool(self._c_text("wren_debug_remove_breakpoint", (module,), int(line)))

    def stack(self) -> list[tuple[int, str, int, str]]:
        """The running Wren frames, innermost first, as ``(index, module,
        line, function)``; empty when no Wren code is running. Meaningful
        inside a foreign method or a breakpoint callback."""
        text = self.instance.read_cstring(self._c("wren_debug_stack"))
        frames = []
        for row in text.splitlines():
            index, module, line, function = row.split("\t", 3)
            frames.append((int(index), module, int(line), function))
        return frames

    def frame_locals(self, index: int) -> dict[str, Any]:
        """Named locals in scope in frame ``index`` (from :meth:`stack`),
        converted like :meth:`get_slot` (objects as Handles)."""
        result: dict[str, Any] = {}
        self.ensure_slots(3)
        i = 0
        while True:
            name_ptr = self._c("wren_debug_local", int(index), i, 0)
            if not name_ptr:
                return result
            result[self.instance.read_cstring(name_ptr)] = self.get_slot(0)
            i += 1

    # -- memory and GC ---------------------------------------------------------

    def bytes_allocated(self) -> int:
        return int(self._c("wren_bytes_allocated"))

    def gc_count(self) -> int:
        return int(self._c("wren_gc_count"))

    def collect_garbage(self) -> None:
        self._c("wren_collect_garbage")

    def _fault_where(self) -> tuple[str, int, int] | None:
        """(module, line, column) of the script code this VM was running
        when its instance trapped; None when it was not running."""
        inst = self.instance
        try:
            text = inst.read_cstring(inst.fns["wren_fault_where"](self.ptr))
        except Exception:
            return None
        parts = text.split("\t")
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        return parts[0], int(parts[1]), int(parts[2])

    def _drain_pending_output(self) -> None:
        """Delivers output still buffered in the VM (used after a trap)."""
        inst = self.instance
        try:
            ptr = inst.fns["wren_pending_output"](self.ptr)
            length = int.from_bytes(inst.read_bytes(ptr, 4), "little")
            if 0 < length <= 1 << 20:
                text = inst.read_bytes(ptr + 4, length).decode("utf-8", "replace")
                inst.write_bytes(ptr, b"\0\0\0\0")
                self._write(text)
        except Exception:
            pass

    # -- callbacks from the instance --------------------------------------------

    def _on_write(self, text: str) -> None:
        self._write(text)

    def _on_load_module(self, name: str) -> str | None:
        if self._load_module is None:
            return None
        return self._load_module(name)

    def _on_bind_foreign(self, module: str, class_name: str, is_static: bool, signature: str) -> int:
        # one id per method: a cached module binds when its class is made, which code may repeat
        known = self._foreign_ids.get((module, class_name, is_static, signature))
        if known is not None:
            return known
        fn = self._foreign_table.get((module, class_name, is_static, signature))
        if fn is None and self._bind_foreign is not None:
            fn = self._bind_foreign(module, class_name, is_static, signature)
        if fn is None:
            return -1
        self._foreign_methods.append((fn, signature.count("_")))
        self._foreign_ids[(module, class_name, is_static, signature)] = len(self._foreign_methods) - 1
        return len(self._foreign_methods) - 1

    def _on_breakpoint(self, module: str, line: int) -> int:
        if self.breakpoint is None:
            return 0
        try:
            self.breakpoint(module, line)
            return 0
        except WrenError:
            raise
        except Exception as exc:  # reported to Wren as a runtime error at that line
            self.ensure_slots(1)
            self.set_slot(0, str(exc) or type(exc).__name__)
            return 1
        except BaseException as exc:
            self._foreign_error = exc
            self.ensure_slots(1)
            self.set_slot(0, type(exc).__name__)
            return 1

    def _on_foreign(self, method_id: int) -> int:
        fn, arity = self._foreign_methods[method_id]
        try:
            args = self.get_slots(1, arity) if arity else []
            result = fn(*args)
            if isinstance(result, (list, tuple, dict)):
                self.ensure_slots(3)  # building a list or map takes temporary slots
            self.set_slot(0, result)
            return 0
        except WrenError:
            raise
        except Exception as exc:  # reported to Wren as a runtime error
            self.ensure_slots(1)
            self.set_slot(0, str(exc) or type(exc).__name__)
            return 1
        except BaseException as exc:  # KeyboardInterrupt etc.: re-raise after the call
            self._foreign_error = exc
            self.ensure_slots(1)
            self.set_slot(0, type(exc).__name__)
            return 1


def _print_raw(text: str) -> None:
    print(text, end="")


class FastCall:
    """wren_call_num through the raw unchecked call: one wasm call, no slots.

    Calling it does the whole call. A hot caller may instead write the raw
    arguments itself: ``i32[0]`` the VM pointer, ``i32[stride32]`` the
    receiver handle, ``i32[2 * stride32]`` the call handle, ``i32[3 *
    stride32]`` the argument count, ``f64[(4 + i) * stride64]`` argument i;
    then ``export.invoke()`` (or ``export.invoke_rearming_lazily()``'s
    function) and read ``i64[0]``: a number's bits, or a status (see
    ``STATUS_TAG``) for :meth:`WrenVM.raise_for_status` (3: the result is
    not a number and waits in slot 0).
    """

    def __init__(self, vm: WrenVM):
        self.vm = vm
        self.inst = vm.instance
        self.export = self.inst.fns["wren_call_num"]
        self.i32 = self.export.i32
        self.f64 = self.export.f64
        self.stride32 = ctypes.sizeof(ffi.wasmtime_val_raw) // 4
        self.stride64 = ctypes.sizeof(ffi.wasmtime_val_raw) // 8

    def __call__(self, receiver: Handle, method: CallHandle, args: tuple[float, ...]) -> Any:
        vm = self.vm
        if vm._closed or self.inst.dead is not None:
            vm._check()
        n = len(args)
        if n != method.arity or n > 4:
            raise TypeError(f"call_num: {method.signature} with {n} numeric arguments (max 4)")
        i32 = self.i32
        s32 = self.stride32
        i32[0] = vm.ptr
        i32[s32] = receiver.ptr
        i32[2 * s32] = method.ptr
        i32[3 * s32] = n
        f64 = self.f64
        s64 = self.stride64
        for i in range(n):
            f64[(4 + i) * s64] = args[i]
        self.export.invoke()
        bits = self.export.i64[0] & 0xFFFFFFFFFFFFFFFF
        if (bits & _STATUS_MASK) != _STATUS_TAG:
            return f64[0]
        status = bits & 0xFFFF
        if status == NON_NUMBER_RESULT:
            vm.ensure_slots(3)
            return vm.get_slot(0)
        vm._raise_for(status)
        return None


_FastCall = FastCall
