"""vm.py -- one Wren VM inside a wasm instance, through the module's
embedding API (``csrc/kryon_wren.h``).

:class:`WrenVM` interprets source as a module, reads variables, makes
handles and calls methods (with a fast path for numeric calls,
:class:`FastCall`), converts values through slots, and exposes foreign
methods to Wren. The wasm instance it runs in (wasmtime, host imports,
limits, traps) is :class:`~kryon_wren.instance.WasmInstance`; the errors it
raises are in :mod:`kryon_wren.vm_errors`. Both are re-exported here, the
low-level API's one import place.
"""
from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable, Sequence
from typing import Any

from wasmtime import _ffi as ffi

from . import slot_codec, snapshot
from .instance import (
    DEFAULT_MEMORY_LIMIT,
    EPOCH_TICK_SECONDS,
    FOREIGN_FAILED,
    FOREIGN_FALSE,
    FOREIGN_IN_SLOT,
    FOREIGN_NULL,
    FOREIGN_TEXT,
    FOREIGN_TRUE,
    WASM_PATH,
    RawExport,
    WasmInstance,
    get_engine,
)
from .vm_errors import (
    WrenCompileError,
    WrenError,
    WrenMemoryError,
    WrenRuntimeError,
    WrenTimeoutError,
    WrenTrapError,
    WrenVMClosedError,
)

__all__ = [
    "BYTECODE_NOT_CACHEABLE", "BYTECODE_REFUSED", "COMPILE_ERROR", "DEFAULT_MEMORY_LIMIT", "EPOCH_TICK_SECONDS",
    "NON_NUMBER_RESULT", "RUNTIME_ERROR", "STATUS_MASK", "STATUS_TAG", "SUCCESS", "TYPE_BOOL", "TYPE_FOREIGN",
    "TYPE_LIST", "TYPE_MAP", "TYPE_NULL", "TYPE_NUM", "TYPE_STRING", "TYPE_UNKNOWN", "WASM_PATH", "CallHandle",
    "FastCall", "ForeignFn", "ScalarCall", "Handle", "WasmInstance", "WrenCompileError", "WrenError", "WrenMemoryError",
    "WrenRuntimeError", "WrenTimeoutError", "WrenTrapError", "WrenVM", "WrenVMClosedError", "get_engine",
]

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
#: bytes of csrc/slot_codec.c's foreign result buffer (KW_FOREIGN_RESULT_CAPACITY)
RESULT_CAPACITY = 256
_STRING_AT = ctypes.string_at
_NAN = float("nan")
_PACK_TEXT = struct.Struct("<cI").pack
_MAX_SAFE = 2**53


def _make_unchecked_by_objects() -> Any:
    # wasmtime_func_call_unchecked without argtypes, called with ctypes
    # objects made once (ScalarCall.call_args): ctypes then converts no
    # Python integers per call, ~150 ns less than instance.py's typed one.
    # A CDLL function: the GIL is released during the call, so the epoch
    # ticker thread keeps time while the script runs.
    fn = ffi.dll["wasmtime_func_call_unchecked"]
    fn.restype = ctypes.c_void_p
    return fn


_UNCHECKED_BY_OBJECTS = _make_unchecked_by_objects()



def _too_deep() -> Exception:
    """The error for an argument or result the slot encoder refused: nested
    more than 200 levels deep, or cyclic. Imported here, not at the top: the
    VM wrapper runs without kryon_core."""
    from kryon_core.errors import ConversionError

    from .plugin import LANGUAGE

    return ConversionError("a Wren value nested too deeply (or cyclic) cannot cross to the host", language=LANGUAGE)


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
        #: (function, arity, its argument decoder or None: slot_codec.decode, its
        #: ``encoded(data)`` or None: the whole call from the encoded arguments)
        self._foreign_methods: list[tuple[Callable[..., Any], int, Callable[[bytes, int], list[Any]] | None,
                                          Callable[[bytes], Any] | None]] = []
        self._foreign_ids: dict[tuple[str, str, bool, str], int] = {}
        self._foreign_error: BaseException | None = None
        self.host_id = self.instance.new_host_id()
        self.instance.targets[self.host_id] = self
        self.ptr = 0
        self._closed = False
        self._fast: FastCall | None = None
        # where a foreign method's string result is written (csrc/slot_codec.c),
        # looked up at the first such result (a lookup now would make the
        # instance not pristine for snapshot.py)
        self._result_ptr = 0
        self._call_text_ptr = 0  # wren_call_scalar's text buffer, looked up likewise
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

                from .plugin import LANGUAGE  # here: the VM wrapper runs without kryon_core

                raise ConversionError("a string with a lone surrogate cannot cross into wren (it is not UTF-8 text)",
                                      language=LANGUAGE) from None
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
            raise _too_deep()
        data = self.instance.read_bytes(packed & 0xFFFFFFFF, packed >> 32)
        return slot_codec.decode(data, count, self._adopt_handle)

    def set_host_classes(self, module: str, ref: str, fn: str) -> None:
        """Names the classes whose instances carry host objects (module
        ``kryon``'s HostRef and HostFn): foreign methods then get those
        arguments as :class:`slot_codec.HostId` registry numbers."""
        self.ensure_slots(2)
        self._load_variable(module, ref, 0)
        self._load_variable(module, fn, 1)
        self._c("wren_set_host_classes", 0, 1)

    def new_host_object(self, kind: int, number: int) -> Handle:
        """A handle to a new HostRef (kind 0) or HostFn (kind 1) carrying
        registry number ``number``: the only way one is made (the classes
        have no constructor and are sealed by :meth:`set_host_classes`)."""
        ptr = self._c("wren_new_host_object", kind, float(number))
        if not ptr:
            raise WrenError(f"no host object class to carry registry number {number}")
        return Handle(self, ptr)

    def kind_of(self, handle: Handle) -> int:
        """What ``handle`` holds: the registry number of a HostRef / HostFn,
        -1 for a Fn, -2 for anything else (decided by the VM, not by Wren
        code, whose classes may answer ``is`` as they like)."""
        return int(self._c("wren_kind_of_handle", handle.ptr))

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

    def scalar_call(self, receiver: Handle, method: CallHandle) -> "ScalarCall":
        """A :class:`ScalarCall` of ``method`` on ``receiver``, with its own
        parameter block (the caller keeps it; one per signature)."""
        return ScalarCall(self, receiver, method)

    def call_text_ptr(self) -> int:
        """The address of ``wren_call_scalar``'s text buffer (csrc/api.c)."""
        if not self._call_text_ptr:
            self._call_text_ptr = int(self.instance.call("wren_call_text_buffer"))
        return self._call_text_ptr

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

    def fiber_line(self, fiber: Handle, module: str) -> int | None:
        """The line where the held, suspended ``fiber`` stands in ``module``
        (its innermost frame of that module), None when it has none."""
        if not fiber.ptr:
            return None
        return int(self._c_text("wren_fiber_line", (module,), fiber.ptr)) or None

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

    def handle_count(self) -> int:
        """Handles the VM holds now (the host's, the engine's and the codec's)."""
        return int(self._c("wren_handle_count"))

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
        # a function with a decode_args(data, count) decodes its own arguments;
        # one with an encoded(data) is called with them still encoded
        self._foreign_methods.append((fn, signature.count("_"), getattr(fn, "decode_args", None),
                                      getattr(fn, "encoded", None)))
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

    def _on_foreign(self, method_id: int, data: bytes | None) -> float | int:
        """Runs foreign method ``method_id``: its arguments come encoded by
        the C side (``data``, csrc/slot_codec.c, read by the host import;
        None: too deep or cyclic). The reply is a number result as a float, or a
        ``FOREIGN_*`` status: null, true and false need nothing more, a short
        string goes to the result buffer, anything else to slot 0, and an
        error's message to slot 0. One wasm crossing for the usual call
        instead of three (reading the arguments and setting the result)."""
        fn, arity, decode_args, encoded = self._foreign_methods[method_id]
        try:
            if encoded is not None and data is not None:
                result = encoded(data)  # decoding and the call in one (Kryon.call's hot path)
            else:
                if not arity:
                    args = []
                elif data is None:
                    raise _too_deep()
                elif decode_args is not None:
                    args = decode_args(data, arity)
                else:
                    args = slot_codec.decode(data, arity, self._adopt_handle)
                result = fn(*args)
            if self._closed or self.instance.dead is not None:
                self._check()  # closed by the host function: no VM to reply to
            t = type(result)
            if t is float:
                return result if result == result else _NAN  # any NaN as the canonical one, never a status
            if t is int:
                return float(result)
            if result is None:
                return FOREIGN_NULL
            if t is bool:
                return FOREIGN_TRUE if result else FOREIGN_FALSE
            if t is str and len(result) <= RESULT_CAPACITY - 5:  # its UTF-8 length is checked below
                try:
                    text: bytes | None = result.encode("utf-8")
                except UnicodeEncodeError:
                    text = None  # set_slot raises its error below
                if text is not None and len(text) <= RESULT_CAPACITY - 5:
                    if not self._result_ptr:
                        self._result_ptr = int(self.instance.call("wren_foreign_result_buffer"))
                    self.instance.write_bytes(self._result_ptr, _PACK_TEXT(b"s", len(text)) + text)
                    return FOREIGN_TEXT
            if isinstance(result, (list, tuple, dict)):
                self.ensure_slots(3)  # building a list or map takes temporary slots
            self.set_slot(0, result)
            return FOREIGN_IN_SLOT
        except WrenError:
            raise
        except Exception as exc:  # reported to Wren as a runtime error
            self.ensure_slots(1)
            self.set_slot(0, str(exc) or type(exc).__name__)
            return FOREIGN_FAILED
        except BaseException as exc:  # KeyboardInterrupt etc.: re-raise after the call
            self._foreign_error = exc
            self.ensure_slots(1)
            self.set_slot(0, type(exc).__name__)
            return FOREIGN_FAILED


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


#: wren_call_scalar's argument kinds (4 bits each) and result statuses (csrc/api.c)
KIND_NULL, KIND_FALSE, KIND_TRUE, KIND_TEXT = 1, 2, 3, 4
SCALAR_NULL, SCALAR_TRUE, SCALAR_FALSE, SCALAR_TEXT = 5, 6, 7, 8
#: bytes of wren_call_scalar's text buffer (KW_CALL_TEXT_CAPACITY)
CALL_TEXT_CAPACITY = 1024
#: ScalarCall.status_result's answer for a result waiting in slot 0
IN_SLOT: Any = object()
#: ``bits >> 48`` of a status result (STATUS_TAG's top 16 bits)
STATUS_HIGH = STATUS_TAG >> 48


class ScalarCall:
    """``wren_call_scalar`` of one method on one receiver: the whole call in
    one wasm crossing for up to four scalar arguments (numbers, null, bools,
    strings that fit the text buffer together), the result a number's bits
    or a status (null, a bool, a string in the text buffer, or waiting in
    slot 0).

    It owns its raw parameter block, so the receiver, the method, the VM and
    the kinds stay written between calls: a hot caller writes only the
    numbers, ``f64[at[i]]`` for argument i, then calls ``call(*call_args)``
    (inside the instance's enter/leave; its result is a wasmtime error, and
    ``trap.value`` a trap), and reads ``f64[0]`` (a number unless it is a
    NaN) or ``i64[0]`` (see :meth:`status_result`).
    """

    __slots__ = ("vm", "export", "f64", "i64", "i32", "at", "kinds_at", "call", "call_args", "trap")

    def __init__(self, vm: WrenVM, receiver: Handle, method: CallHandle):
        inst = vm.instance
        if method.arity > 4:
            raise TypeError(f"wren_call_scalar: {method.signature} takes more than 4 arguments")
        self.vm = vm
        self.export = export = RawExport(inst, inst.funcs["wren_call_scalar"], "wren_call_scalar")
        self.f64, self.i64, self.i32 = export.f64, export.i64, export.i32
        s32 = ctypes.sizeof(ffi.wasmtime_val_raw) // 4
        s64 = ctypes.sizeof(ffi.wasmtime_val_raw) // 8
        # parameters: a0, kinds, vm, receiver, method, a1, a2, a3
        self.at = (0, 5 * s64, 6 * s64, 7 * s64)
        self.kinds_at = s32
        self.i32[s32] = 0
        self.i32[2 * s32] = vm.ptr
        self.i32[3 * s32] = receiver.ptr
        self.i32[4 * s32] = method.ptr
        self.call = _UNCHECKED_BY_OBJECTS
        context, func, raw, size, trap = export.call_args  # the export keeps what they point to alive
        self.call_args = (ctypes.c_void_p(context), ctypes.c_void_p(func), ctypes.c_void_p(raw),
                          ctypes.c_size_t(size), ctypes.c_void_p(trap))
        self.trap = export.trap

    def write(self, args: Sequence[Any], max_text: int | None = None) -> bool:
        """Writes ``args`` (any scalar kinds) and their kinds; False, having
        written nothing that matters, when one is not a scalar this call
        takes (an int beyond 2**53, a string longer than ``max_text``
        characters or not valid as UTF-8, strings too long together for the
        text buffer, any other value): the caller's general path then
        converts it, or raises the error it deserves."""
        kinds = shift = 0
        texts: list[bytes] = []
        used = 0
        f64, at = self.f64, self.at
        for i, a in enumerate(args):
            t = type(a)
            if t is float or (t is int and -_MAX_SAFE <= a <= _MAX_SAFE):
                f64[at[i]] = a
            elif a is None:
                kinds |= KIND_NULL << shift
            elif t is bool:
                kinds |= (KIND_TRUE if a else KIND_FALSE) << shift
            elif t is str:
                if max_text is not None and len(a) > max_text:
                    return False
                try:
                    data = a.encode("utf-8")
                except UnicodeEncodeError:
                    return False
                used += len(data)
                if used > CALL_TEXT_CAPACITY:
                    return False
                kinds |= KIND_TEXT << shift
                f64[at[i]] = len(data)
                texts.append(data)
            else:
                return False
            shift += 4
        if texts:
            blob = texts[0] if len(texts) == 1 else b"".join(texts)
            vm = self.vm
            ctypes.memmove(vm.instance.base() + (vm._call_text_ptr or vm.call_text_ptr()), blob, used)
        self.i32[self.kinds_at] = kinds
        return True

    def status_result(self, bits: int) -> Any:
        """The result a NaN-valued ``f64[0]`` stands for: a NaN, null, a
        bool or a string; :data:`IN_SLOT` when the value waits in slot 0
        (read it with :meth:`WrenVM.get_slot`); errors raise."""
        if bits >> 48 != STATUS_HIGH:
            return _NAN
        status = bits & 0xFFFF
        if status == SCALAR_NULL:
            return None
        if status == SCALAR_TRUE:
            return True
        if status == SCALAR_FALSE:
            return False
        if status == SCALAR_TEXT:
            vm = self.vm
            length = (bits >> 16) & 0xFFFFFFFF
            return _STRING_AT(vm.instance.base() + (vm._call_text_ptr or vm.call_text_ptr()), length).decode(
                "utf-8", "replace")
        if status == NON_NUMBER_RESULT:
            return IN_SLOT
        self.vm.raise_for_status(status)
        raise WrenError(f"wren_call_scalar: unknown status {status}")
