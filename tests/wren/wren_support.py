"""What the Wren tests share: the bytecode cache entry's checksum, to damage
an entry's payload and seal it again, and the opcodes to make one by hand
(test_bytecode_cache, test_bytecode_verify),
a count of the host's calls into the wasm exports (test_dom_fast_path,
test_host_call_path), and a Wren script beside a Python host script on a
document (test_dom_fast_path, test_foreign_leaks)."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from kryon_wren.instance import RawExport

from kryon_core import Document, ScriptManager, SecurityPolicy

#: a cache entry's header: magic, version, zero, build hash, payload length, checksum
HEADER = 20
#: the VM's opcodes by name, numbered as csrc numbers them, to make payloads by hand
OPS = {name: i for i, name in enumerate([
    "CONSTANT", "NULL", "FALSE", "TRUE", "LOAD_LOCAL", "STORE_LOCAL", "LOAD_UPVALUE", "STORE_UPVALUE",
    "LOAD_MODULE_VAR", "STORE_MODULE_VAR", "LOAD_FIELD_THIS", "STORE_FIELD_THIS", "LOAD_FIELD",
    "STORE_FIELD", "POP", "CALL", "SUPER", "ADD", "SUB", "MUL", "DIV", "LT", "GT", "LTE", "GTE", "EQ",
    "NEQ", "ITERATE", "ITERATOR_VALUE", "JUMP", "LOOP", "JUMP_IF_FALSE", "AND", "OR", "CLOSE_UPVALUE",
    "RETURN", "CLOSURE", "CONSTRUCT", "CLASS", "METHOD_INSTANCE", "METHOD_STATIC", "FOREIGN_INSTANCE",
    "FOREIGN_STATIC", "NEW_LIST", "LIST_APPEND", "NEW_MAP", "MAP_INSERT", "END_MODULE", "IMPORT_MODULE",
    "IMPORT_VARIABLE", "END_CLASS", "END", "BREAKPOINT"])}


def fnv1a(data: bytes) -> int:
    """FNV-1a, 32 bits: the checksum of a cache entry's payload."""
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def reseal(entry: bytes) -> bytes:
    """Fix up payload length and checksum, so the structural checks (not the
    checksum) are what must refuse a damaged payload."""
    payload = entry[HEADER:]
    return entry[:12] + struct.pack("<II", len(payload), fnv1a(payload)) + payload


def export_calls(monkeypatch: pytest.MonkeyPatch, run: Callable[[int], Any], sizes: Iterable[int] = (1, 1, 41)) -> list[int]:
    """How many calls into the wasm exports ``run(n)`` made, for each ``n``
    of ``sizes`` (the first run of a loop also makes its caller: a second of
    the same size shows the steady count)."""
    calls = [0]
    original = RawExport.__call__

    def counting(self: RawExport, *args: Any) -> Any:
        calls[0] += 1
        return original(self, *args)

    monkeypatch.setattr(RawExport, "__call__", counting)
    counts = []
    for n in sizes:
        calls[0] = 0
        run(n)
        counts.append(calls[0])
    return counts


def box_host(policy: SecurityPolicy, host: str, wren: str, *, id_tags: bool = True) -> ScriptManager:
    """A manager with a document holding ``#box``, the Python script ``host``
    loaded as ``h`` and the Wren script ``wren`` as ``w``. Without
    ``id_tags`` the VM sends no object by its tag ('r'): every object goes to
    the host as a handle (the general path)."""
    manager = ScriptManager(policy=policy, cache=False, output=lambda lang, text: None)
    doc = manager.setup_dom_bridge(Document())
    doc.append_child(doc.root, doc.create_element("div", {"id": "box"}))
    manager.load_script_from_source("h", "python", host)
    manager.load_script_from_source("w", "wren", wren)
    if not id_tags:
        manager.engines()["wren"].script_state("w").vm._c("wren_host_id_tags", 0)
    return manager
