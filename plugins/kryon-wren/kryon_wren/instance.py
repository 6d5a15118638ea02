"""One wasmtime Store and instance of the Kryon Wren wasm module.

:class:`WasmInstance` provides the module's host imports (``env.host_write``,
``env.host_load_module``, ``env.host_read_module``, ``env.host_bind_foreign``,
``env.host_foreign``, ``env.host_clock``, ``env.host_breakpoint``, each passed
on to the :class:`~kryon_wren.vm.WrenVM` it names), a memory cap, and fuel /
epoch time limits. Traps become Python exceptions (``vm_errors.py``); after a
trap the instance is dead. Exports are called through wasmtime's unchecked C
call with preallocated raw values (:class:`RawExport`), the cost that matters
on every call into Wren.

Compiled wasm modules are cached per engine configuration, in memory and on
disk (``wasm_cache``: validated before use) so new instances start quickly.
"""
from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import wasmtime
from wasmtime import _ffi as ffi

from .vm_errors import WrenError, WrenMemoryError, WrenTimeoutError, WrenTrapError, WrenVMClosedError

if TYPE_CHECKING:
    from .vm import WrenVM

WASM_PATH = Path(__file__).with_name("kryon_wren.wasm")

DEFAULT_MEMORY_LIMIT = 256 * 1024 * 1024
EPOCH_TICK_SECONDS = 0.005

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

#: host_foreign's status replies, as signalling-NaN bits (csrc/slot_codec.c,
#: kwForeignReply): the result in slot 0, an error in slot 0, a string in
#: the result buffer, null, true, false
FOREIGN_IN_SLOT, FOREIGN_FAILED, FOREIGN_TEXT, FOREIGN_NULL, FOREIGN_TRUE, FOREIGN_FALSE = (
    0x7FF4000000000000 | status for status in range(6)
)


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
        self._view: memoryview | None = None
        self._view_pages = -1
        self.funcs: dict[str, wasmtime.Func] = _LazyFuncs(self)
        self.export("_initialize")(self.store)
        self.limited = fuel is not None or timeout is not None
        #: wasm calls into this instance in progress (0: none; see enter())
        self.depth = 0
        self._armed_at = -1e18
        self._close_pending = False
        self._slack = min(EPOCH_TICK_SECONDS, (timeout or 0) * 0.01)
        self.fns: dict[str, RawExport] = _LazyExports(self)

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
            "host_foreign": self._foreign_import(),
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
        indices = range(arity)
        if returns:
            def call(raw: Any) -> None:
                raw[0].i32 = fn(*[raw[i].i32 for i in indices])
        else:
            def call(raw: Any) -> None:
                fn(*[raw[i].i32 for i in indices])
        return self._raw_import(arity, [_I32] if returns else [], call)

    def _raw_import(self, arity: int, results: list[wasmtime.ValType], fn: Callable[[Any], None]) -> wasmtime.Func:
        """An unchecked import (see :meth:`_i32_import`) of ``arity`` i32s
        whose ``fn`` reads its parameters from the raw value array and
        writes its result there itself."""
        def callback(env: Any, caller: Any, raw: Any, count: int) -> int:
            try:
                fn(raw)
                return 0
            except BaseException as exc:
                return _host_trap(exc)

        return self._unchecked_func(arity, results, callback)

    def _unchecked_func(self, arity: int, results: list[wasmtime.ValType],
                        callback: Callable[[Any, Any, Any, int], int], by_address: bool = False) -> wasmtime.Func:
        """An import of ``arity`` i32s calling ``callback(env, caller, raw,
        count)`` as ``wasmtime_func_new_unchecked`` does (0, or a trap);
        ``by_address``: ``raw`` comes as the value array's address (an int)."""
        kept: Any = _ADDRESS_CALLBACK(callback) if by_address else ffi.wasmtime_func_unchecked_callback_t(callback)
        self._import_callbacks.append(kept)  # alive as long as the instance
        c_callback = ctypes.cast(kept, ffi.wasmtime_func_unchecked_callback_t) if by_address else kept
        ty = wasmtime.FuncType([_I32] * arity, results)
        raw_func = ffi.wasmtime_func_t()
        ffi.wasmtime_func_new_unchecked(self.store._context(), ty.ptr(), c_callback, None, _NO_FINALIZER,
                                        ctypes.byref(raw_func))
        return wasmtime.Func._from_raw(raw_func)

    def _foreign_import(self) -> wasmtime.Func:
        """``host_foreign`` (vm, method id, encoded arguments, their length,
        memory pages) -> i64, the hot host call out of Wren, read straight
        from the raw values; the arguments are read through :meth:`view`.
        Its reply (``WrenVM._on_foreign``) is a number result as a float,
        written as f64, or a status as int bits, written as i64."""
        targets = self.targets
        instance = self

        def host_foreign(env: Any, caller: Any, raw: int, count: int) -> int:
            # the callback itself (not a function _raw_import wraps): one
            # Python frame less on the hottest host call; the parameters
            # read through one array made over the value array (``raw``
            # its address), cheaper than a ctypes pointer indexed 5 times
            try:
                params = _PARAMS.from_address(raw)
                target = targets.get(params[0])
                if target is None:
                    _REPLY_I64.from_address(raw).value = FOREIGN_FAILED
                    return 0
                length = params[_LENGTH]
                if length > 0:
                    pages = params[_PAGES]
                    view = instance._view if pages == instance._view_pages else instance.view(pages)
                    start = params[_START]
                    data = view[start:start + length].tobytes()  # type: ignore[index]
                else:
                    data = b"" if length == 0 else None
                reply = target._on_foreign(params[_METHOD], data)
                if type(reply) is float:
                    _REPLY_F64.from_address(raw).value = reply
                else:
                    _REPLY_I64.from_address(raw).value = reply  # type: ignore[assignment]  # a status: an int
                return 0
            except BaseException as exc:
                return _host_trap(exc)

        return self._unchecked_func(5, [_I64], host_foreign, by_address=True)

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

    def _host_breakpoint(self, vm: int, mptr: int, mlen: int, line: int) -> int:
        target = self.targets.get(vm)
        if target is None:
            return 0
        return target._on_breakpoint(self.read_bytes(mptr, mlen).decode("utf-8", "replace"), line)

    # -- memory --------------------------------------------------------------

    def base(self) -> int:
        """Host address of linear memory (it moves when memory grows)."""
        return int(_MEMORY_DATA(self._context_addr, self._memory_addr))

    def view(self, pages: int) -> memoryview:
        """A view of linear memory while it has ``pages`` 64 KiB pages, the
        size the wasm side reports (``host_foreign``): memory only moves
        when it grows, so the view is made again only when the size
        changed, and reading arguments costs no call into wasmtime (one
        ``base()`` and one ``string_at`` cost more than the decoding)."""
        self.check_alive()
        size = pages * 65536
        if size > self.memory_size():
            raise WrenTrapError(f"the wasm side reported {pages} pages of memory, more than it has")
        view = memoryview((ctypes.c_ubyte * size).from_address(self.base())).cast("B")
        self._view, self._view_pages = view, pages
        return view

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

    def _arm_limits(self, lazy: bool = False, until: float | None = None) -> None:
        """Arms the budget of an outermost call into this instance. ``lazy``:
        keep a deadline armed less than 1% of the limit ago (at most one
        epoch tick). ``until`` (``time.monotonic()`` seconds): no later than
        that (a step of an awaited call ends near the call's one deadline)."""
        if self.fuel is not None:
            self.store.set_fuel(self.fuel)
        timeout = self.timeout
        if timeout is not None:
            now = time.perf_counter()
            if until is not None:
                budget = min(timeout, max(0.0, until - time.monotonic()))
                # as if the full limit had been armed that much earlier: lazy calls re-arm (and the
                # debugger's remaining-time arithmetic holds)
                self._armed_at = now - (timeout - budget)
                self.store.set_epoch_deadline(max(1, int(budget / EPOCH_TICK_SECONDS + 0.999)))
                return
            if lazy and now - self._armed_at < self._slack:
                return
            self._armed_at = now
            self.store.set_epoch_deadline(max(1, int(timeout / EPOCH_TICK_SECONDS + 0.999)))

    def enter(self, lazy: bool = False, until: float | None = None) -> None:
        """Starts a host call into this instance: the outermost one arms the
        limits, and every wasm call made until :meth:`leave` (conversions,
        host functions calling back into this instance, nested calls) runs
        under that same deadline instead of re-arming it. A call into
        another script's instance runs under that script's own limits; the
        caller's deadline fires as soon as control is back in the caller.
        ``until``: see :meth:`_arm_limits`."""
        if not self.depth and self.limited:
            self._arm_limits(lazy, until)
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
        self._view, self._view_pages = None, -1
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


def _host_trap(exc: BaseException) -> int:
    """A trap unwinding the wasm call a host callback raised ``exc`` in, as
    wasmtime-py's own trampoline makes it: the exception is kept in
    ``wasmtime._func.LAST_EXCEPTION`` for :meth:`WasmInstance._raise_trap`."""
    from wasmtime import _func

    _func.LAST_EXCEPTION = exc  # type: ignore[assignment]  # wasmtime's own trampoline keeps any BaseException
    trap = wasmtime.Trap("python exception")._consume()
    return ctypes.cast(trap, ctypes.c_void_p).value or 0


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
#: wasmtime's unchecked callback type with the value array as an address
_ADDRESS_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_ulong, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
#: host_foreign's five parameters as i32 words of the value array (each value 16 bytes)
_WORDS = ctypes.sizeof(ffi.wasmtime_val_raw) // 4
_PARAMS = ctypes.c_int32 * (5 * _WORDS)
_METHOD, _START, _LENGTH, _PAGES = _WORDS, 2 * _WORDS, 3 * _WORDS, 4 * _WORDS
_REPLY_I64, _REPLY_F64 = ctypes.c_int64, ctypes.c_double
_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)()  # a NULL finalizer: the callbacks live on the instance


def _make_memory_data() -> Any:
    fn = ffi.dll["wasmtime_memory_data"]
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    fn.restype = ctypes.c_void_p
    return fn


_MEMORY_DATA = _make_memory_data()


#: (module, export name) -> (parameter kinds, result kinds)
_EXPORT_KINDS: dict[tuple[Any, str], tuple[list[str], list[str]]] = {}


class RawExport:
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


class _LazyExports(dict[str, "RawExport"]):
    """Builds each export's raw caller on first use (instances start faster)."""

    def __init__(self, inst: WasmInstance):
        super().__init__()
        self.inst = inst

    def __missing__(self, name: str) -> RawExport:
        export = RawExport(self.inst, self.inst.funcs[name], name)
        self[name] = export
        return export
