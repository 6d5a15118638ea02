"""Warm start of Wren VMs: an image of a set-up instance, restored instead of compiling.

Making a Wren VM compiles the core library from source, and the engine then
compiles its ``kryon`` module: most of what a new script's instance costs.
The first time a process sets up a VM in a *pristine* instance (nothing has
run in it since ``_initialize``) with a given prelude (modules interpreted
right after the VM is made), :func:`new_vm` keeps an :class:`Image` of that
instance: the linear-memory pages that differ from a pristine instance's,
the memory size, the VM's address and the foreign methods the prelude bound.
Later VMs made in pristine instances with the same prelude start from that
image: no compiler runs.

Why memory alone is the whole state: the module has one global, the stack
pointer (not exported), which is back at its initial value whenever no wasm
call is running, as when the image is taken; its function table has a fixed
size (minimum = maximum) and is filled only by the module's element segment,
so function indices stored in memory (method primitives, the debugger's
hooks) mean the same in every instance of the module. Images are kept per
compiled module (``inst.module``), never shared across builds.

What lives on the host side is rebuilt: the foreign methods the prelude's
compilation bound are bound again through the new VM's own callbacks in the
same order, so the ids stored in the image name the new VM's functions (if
a callback now answers differently the image is not used); the instance's
scratch buffer pointer is the image's. A prelude that wrote output or loaded
modules is never imaged (that would be lost). The restored VM reports 0
modules compiled from source (``wren_compiler_runs``).

Memory caps: the restored memory counts against the store's cap like memory
grown by the VM; a cap smaller than the image is a :class:`WrenMemoryError`
(as a fresh VM set-up hitting the cap is), and the instance is dead.

Images are also kept on disk, beside the compiled module in the wasm cache
(``wasm_cache.py``: ``KRYON_WREN_CACHE``, else ``wren-wasm`` in the
project's cache directory), as ``.image`` entries with the same checks as
the module's (private to the user, header naming this format, the SHA-256
of the wasm the module was compiled from and of the prelude, payload size
and SHA-256; anything else is removed, never used), so the first VM of a
new process starts from the image too: a warm load runs no Wren compiler
at all. An entry is trusted no more than the compiled module beside it,
which is machine code.

``KRYON_WREN_SNAPSHOT=0`` in the environment, or :data:`enabled` set to
False, makes every VM set itself up from source (tests compare both).
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import wasmtime

if TYPE_CHECKING:
    from .vm import WasmInstance, WrenVM

#: images are taken and used (False: every VM compiles its core and prelude)
enabled = os.environ.get("KRYON_WREN_SNAPSHOT", "1") != "0"
#: images are also read from and written to the on-disk cache
persist = True
DISK_FORMAT = 1

PAGE = 65536
#: granularity of the diff against a pristine instance (the host's page size:
#: pages the image leaves alone stay untouched, so they cost no RSS)
CHUNK = 4096

#: (compiled module, prelude) -> image; a key mapped to None is not imageable
_images: dict[tuple[Any, tuple[tuple[str, str], ...]], "Image | None"] = {}
_lock = threading.Lock()
#: images taken and VMs restored, for tests and statistics
stats = {"captured": 0, "restored": 0, "loaded": 0}


@dataclass(frozen=True)
class Image:
    memory_size: int
    #: (offset, bytes) runs where the set-up instance differs from a pristine one
    runs: tuple[tuple[int, bytes], ...]
    vm_ptr: int
    host_id: int
    #: (module, class, is_static, signature, id) in the order the prelude bound them
    binds: tuple[tuple[str, str, bool, str, int], ...]
    scratch: tuple[int, int]

    @property
    def written_bytes(self) -> int:
        return sum(len(data) for _, data in self.runs)


def pristine(inst: "WasmInstance") -> bool:
    """True while nothing has run in the instance since ``_initialize``: no
    export has been looked up (every call goes through ``inst.funcs``) and
    the VM being made is its first (host id 1)."""
    return inst.dead is None and not inst.funcs and inst._next_host_id == 2 and len(inst.targets) == 1


def new_vm(vm: "WrenVM", prelude: Sequence[tuple[str, str]] = ()) -> None:
    """Makes ``vm``'s C VM (``vm.ptr``) and runs the prelude modules in it,
    from an image when one fits, else from source (taking an image when the
    instance is pristine)."""
    inst = vm.instance
    key = (inst.module, tuple((module, source) for module, source in prelude))
    fresh_instance = enabled and pristine(inst)
    if fresh_instance:
        image = _images.get(key)
        if image is None and key not in _images and persist:
            image = _load(inst.module, key[1])
            if image is not None:
                with _lock:
                    _images.setdefault(key, image)
        if image is not None and _restore(vm, image):
            return
    capture = fresh_instance and key not in _images
    baseline = inst.read_bytes(0, inst.memory_size()) if capture else b""
    binds: list[tuple[str, str, bool, str, int]] = []
    imageable = [True]
    if capture:
        _record(vm, binds, imageable)
    try:
        vm.ptr = inst.call_unlimited("wren_new_vm", vm.host_id)
        for module, source in prelude:
            vm.interpret(source, module=module)
    finally:
        if capture:
            for name in ("_on_bind_foreign", "_on_write", "_on_load_module"):
                vm.__dict__.pop(name, None)
    if capture:
        image = _take(vm, baseline, binds) if imageable[0] else None
        with _lock:
            _images.setdefault(key, image)
        if image is not None and persist:
            _save(inst.module, key[1], image)


def _record(vm: "WrenVM", binds: list[tuple[str, str, bool, str, int]], imageable: list[bool]) -> None:
    """Wraps the VM's callbacks for the prelude: binds are logged, output and
    imports make the set-up not imageable (they happen once, for this VM)."""
    bind, write, load = vm._on_bind_foreign, vm._on_write, vm._on_load_module

    def on_bind(module: str, class_name: str, is_static: bool, signature: str) -> int:
        method_id = bind(module, class_name, is_static, signature)
        binds.append((module, class_name, is_static, signature, method_id))
        return method_id

    def on_write(text: str) -> None:
        imageable[0] = False
        write(text)

    def on_load(name: str) -> str | None:
        imageable[0] = False
        return load(name)

    vm.__dict__.update(_on_bind_foreign=on_bind, _on_write=on_write, _on_load_module=on_load)


def _take(vm: "WrenVM", baseline: bytes, binds: list[tuple[str, str, bool, str, int]]) -> Image:
    inst = vm.instance
    size = inst.memory_size()
    now = inst.read_bytes(0, size)
    runs: list[tuple[int, bytes]] = []
    start = -1
    for offset in range(0, size + CHUNK, CHUNK):
        same = offset >= size or (offset + CHUNK <= len(baseline)
                                  and now[offset:offset + CHUNK] == baseline[offset:offset + CHUNK])
        if not same and offset + CHUNK > len(baseline) and not any(now[offset:offset + CHUNK]):
            same = True  # grown memory starts zeroed
        if same and start >= 0:
            runs.append((start, now[start:offset]))
            start = -1
        elif not same and start < 0:
            start = offset
    stats["captured"] += 1
    return Image(size, tuple(runs), vm.ptr, vm.host_id, tuple(binds), (inst._scratch_ptr, inst._scratch_size))


def _restore(vm: "WrenVM", image: Image) -> bool:
    """Starts ``vm`` from ``image``; False (the instance untouched) when the
    VM's callbacks bind the prelude's foreign methods differently."""
    inst = vm.instance
    if vm.host_id != image.host_id:
        return False
    for module, class_name, is_static, signature, method_id in image.binds:
        if vm._on_bind_foreign(module, class_name, is_static, signature) != method_id:
            vm._foreign_methods.clear()
            vm._foreign_ids.clear()
            return False
    have = inst.memory_size()
    if image.memory_size > have:
        try:
            inst.memory.grow(inst.store, (image.memory_size - have) // PAGE)
        except wasmtime.WasmtimeError:
            from .vm import WrenMemoryError

            error = WrenMemoryError(f"Wren VM exceeded its memory limit of {inst.memory_limit} bytes "
                                    f"(setting up a VM takes {image.memory_size} bytes)")
            inst.dead = str(error)
            raise error from None
    base = inst.base()
    for offset, data in image.runs:
        ctypes.memmove(base + offset, data, len(data))
    inst._scratch_ptr, inst._scratch_size = image.scratch
    vm.ptr = image.vm_ptr
    inst.fns["wren_compiler_runs_reset"]()
    stats["restored"] += 1
    return True


def clear() -> None:
    """Forgets every image (the next VM set-up takes a new one)."""
    with _lock:
        _images.clear()


# ---- on disk ---------------------------------------------------------------------


def _disk_header(module: Any, prelude: tuple[tuple[str, str], ...]) -> dict[str, Any] | None:
    wasm = getattr(module, "kryon_wasm_sha256", None)  # set by wasm_cache.load_module
    if wasm is None:
        return None
    from .wasm_cache import wasmtime_version

    return {
        "format": DISK_FORMAT,
        "kind": "wren-vm-image",
        "wasmtime": wasmtime_version(),
        "wasm_sha256": wasm,
        "prelude_sha256": hashlib.sha256(json.dumps(prelude).encode()).hexdigest(),
    }


def _disk_path(header: dict[str, Any]) -> Any:
    from .wasm_cache import cache_dir, entry_path

    return entry_path(cache_dir(), header).with_suffix(".image")


def _save(module: Any, prelude: tuple[tuple[str, str], ...], image: Image) -> None:
    header = _disk_header(module, prelude)
    if header is None:
        return
    from .wasm_cache import store_entry

    meta = json.dumps({
        "memory_size": image.memory_size, "vm_ptr": image.vm_ptr, "host_id": image.host_id,
        "binds": image.binds, "scratch": image.scratch,
        "runs": [(offset, len(data)) for offset, data in image.runs],
    }).encode()
    store_entry(_disk_path(header), header, struct.pack("<I", len(meta)) + meta + b"".join(d for _, d in image.runs))


def _load(module: Any, prelude: tuple[tuple[str, str], ...]) -> Image | None:
    header = _disk_header(module, prelude)
    if header is None:
        return None
    from .wasm_cache import read_valid, reject

    path = _disk_path(header)
    payload = read_valid(path, header)
    if payload is None:
        return None
    image = _decode(payload)
    if image is None:
        reject(path)
        return None
    stats["loaded"] += 1
    return image


def _decode(payload: bytes) -> Image | None:
    """The image a payload holds, or None unless every field has its shape:
    runs inside the memory, in order, covering the data exactly."""
    try:
        (length,) = struct.unpack_from("<I", payload)
        meta = json.loads(payload[4:4 + length])
        blob = payload[4 + length:]
        size = meta["memory_size"]
        ints = [size, meta["vm_ptr"], meta["host_id"], *meta["scratch"]]
        if not all(type(v) is int and v >= 0 for v in ints) or len(meta["scratch"]) != 2:
            return None
        if size % PAGE or not 0 < size <= 1 << 32 or not 0 < meta["vm_ptr"] < size:
            return None
        runs, at, end = [], 0, 0
        for offset, count in meta["runs"]:
            if type(offset) is not int or type(count) is not int or offset < end or count <= 0 or offset + count > size:
                return None
            runs.append((offset, blob[at:at + count]))
            at, end = at + count, offset + count
        if at != len(blob):
            return None
        binds = []
        for module, class_name, is_static, signature, method_id in meta["binds"]:
            if not (isinstance(module, str) and isinstance(class_name, str) and type(is_static) is bool
                    and isinstance(signature, str) and type(method_id) is int):
                return None
            binds.append((module, class_name, is_static, signature, method_id))
        return Image(size, tuple(runs), meta["vm_ptr"], meta["host_id"], tuple(binds),
                     (meta["scratch"][0], meta["scratch"][1]))
    except (ValueError, KeyError, TypeError, struct.error):
        return None
