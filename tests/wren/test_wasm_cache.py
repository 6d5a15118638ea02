"""The cache of the compiled wasm module (issue 11 item 4, part one): a warm
start skips Cranelift, and an entry that is corrupt, foreign or writable by
others is refused and rebuilt, never run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import wasmtime
from kryon_wren import wasm_cache
from kryon_wren.vm import WASM_PATH

CONFIG = "fuel=False,epoch=False"


@pytest.fixture(scope="module")
def wasm() -> bytes:
    return WASM_PATH.read_bytes()


def _load(directory: Path, wasm: bytes) -> tuple[wasmtime.Module, dict[str, int]]:
    before = dict(wasm_cache.stats)
    module = wasm_cache.load_module(wasmtime.Engine(), wasm, CONFIG, directory)
    assert "wren_new_vm" in {e.name for e in module.exports}
    return module, {k: wasm_cache.stats[k] - before[k] for k in before}


def _entry(directory: Path) -> Path:
    (entry,) = directory.glob("*.cwasm")
    return entry


def test_a_warm_load_deserializes_the_stored_module(tmp_path: Path, wasm: bytes) -> None:
    assert _load(tmp_path, wasm)[1] == {"hits": 0, "misses": 1, "rejected": 0}
    entry = _entry(tmp_path)
    assert entry.stat().st_mode & 0o077 == 0, "the entry is private to its user"
    assert entry.read_bytes().startswith(wasm_cache.MAGIC)
    assert _load(tmp_path, wasm)[1] == {"hits": 1, "misses": 0, "rejected": 0}


def _corrupt_payload(entry: Path) -> None:
    data = bytearray(entry.read_bytes())
    data[-100] ^= 0xFF
    entry.write_bytes(bytes(data))


def _truncate(entry: Path) -> None:
    entry.write_bytes(entry.read_bytes()[:5000])


def _garbage(entry: Path) -> None:
    entry.write_bytes(os.urandom(4096))


def _raw_wasmtime_file(entry: Path) -> None:
    """A bare Module.serialize() image, as an older build or another tool writes it."""
    entry.write_bytes(wasmtime.Module(wasmtime.Engine(), WASM_PATH.read_bytes()).serialize())


def _other_wasmtime(entry: Path) -> None:
    _rewrite_header(entry, wasmtime="0.0.1")


def _other_platform(entry: Path) -> None:
    _rewrite_header(entry, platform="plan9-vax-little")


def _payload_swapped_with_its_hash(entry: Path) -> None:
    """A payload changed and the header's hash changed with it but not the size."""
    _rewrite_header(entry, payload_sha256="0" * 64)


def _rewrite_header(entry: Path, **changes: str) -> None:
    data = entry.read_bytes()
    start = len(wasm_cache.MAGIC)
    end = data.index(b"\n", start)
    header = json.loads(data[start:end])
    header.update(changes)
    entry.write_bytes(data[:start] + json.dumps(header).encode() + data[end:])


def _writable_by_others(entry: Path) -> None:
    entry.chmod(0o666)


@pytest.mark.parametrize("damage", [
    _corrupt_payload, _truncate, _garbage, _raw_wasmtime_file, _other_wasmtime, _other_platform,
    _payload_swapped_with_its_hash, _writable_by_others,
], ids=lambda f: f.__name__.strip("_"))
def test_a_bad_entry_is_refused_and_rebuilt(tmp_path: Path, wasm: bytes, damage) -> None:
    _load(tmp_path, wasm)
    damage(_entry(tmp_path))
    assert _load(tmp_path, wasm)[1] == {"hits": 0, "misses": 1, "rejected": 1}
    assert _load(tmp_path, wasm)[1] == {"hits": 1, "misses": 0, "rejected": 0}, "the rebuilt entry is used"


def test_another_build_of_the_wasm_gets_its_own_entry(tmp_path: Path, wasm: bytes) -> None:
    _load(tmp_path, wasm)
    other = wasm + b"\0"  # not a valid module any more: nothing may be looked up for it
    assert wasm_cache.entry_path(tmp_path, wasm_cache.expected_header(other, CONFIG)) != _entry(tmp_path)


def test_an_unwritable_cache_is_skipped(tmp_path: Path, wasm: bytes) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    module, counts = _load(blocker / "cache", wasm)
    assert counts["misses"] == 1


def test_a_fresh_process_runs_wren_from_a_corrupted_cache(tmp_path: Path) -> None:
    env = dict(os.environ, KRYON_WREN_CACHE=str(tmp_path))
    code = ("from kryon_core import ScriptManager, SecurityPolicy\n"
            "from kryon_wren import wasm_cache\n"
            "with ScriptManager(policy=SecurityPolicy.sandboxed(), cache=False) as m:\n"
            "    m.load_script_from_source('s', 'wren', 'var f = Fn.new { 6 * 7 }')\n"
            "    print(m.call_function('s.f'), wasm_cache.stats['hits'], wasm_cache.stats['rejected'])\n")

    def run() -> list[str]:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    assert run() == ["42", "0", "0"]
    assert run() == ["42", "1", "0"], "the warm start used the cached module"
    for entry in tmp_path.glob("*.cwasm"):
        _corrupt_payload(entry)
    assert run() == ["42", "0", "1"], "the corrupt entry was refused and the script still ran"
