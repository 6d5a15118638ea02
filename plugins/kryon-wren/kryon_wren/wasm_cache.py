"""The on-disk cache of the compiled Wren wasm module.

Compiling ``kryon_wren.wasm`` to machine code (Cranelift) takes about a second
per engine configuration; wasmtime can serialize the result
(``Module.serialize``) and load it back in a few milliseconds
(``Module.deserialize``). Deserializing runs machine code from the file
without checking it, so an entry is only used when everything about it is
as expected:

* the file is owned by this user and not writable by group or others, in a
  directory that is not either;
* it starts with our magic line and a JSON header that names this format,
  the wasmtime version, the host (OS and machine), the engine configuration
  and the SHA-256 of the wasm it was compiled from, all equal to ours;
* the payload has the size and SHA-256 the header gives.

Anything else (truncated, corrupt, written by another wasmtime, for another
host or another build) is refused, removed and rebuilt: never trusted.

Where: ``KRYON_WREN_CACHE`` if set, else ``wren-wasm`` inside the project's
cache directory (``kryon_core.cache.default_cache_dir``: ``KRYON_CACHE_DIR``
or the per-user cache directory from platformdirs).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import stat
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import wasmtime

FORMAT = 1
MAGIC = b"KRYON-WREN-CWASM\n"
#: entries of other builds unused for this long are removed
STALE_SECONDS = 86400

#: hits, misses (compiled and stored) and rejected entries, for tests and statistics
stats = {"hits": 0, "misses": 0, "rejected": 0}
_stats_lock = threading.Lock()


def cache_dir() -> Path:
    override = os.environ.get("KRYON_WREN_CACHE")
    if override:
        return Path(override)
    try:
        from kryon_core.cache import default_cache_dir
    except ImportError:  # the VM used on its own (kryon_core or its dependencies absent)
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "kryon" / "wren-wasm"
    return default_cache_dir() / "wren-wasm"


def wasmtime_version() -> str:
    try:  # from the dist-info folder's name: importing importlib.metadata costs more than the lookup
        from kryon_core.plugins import distribution_version

        found = distribution_version("wasmtime")
        if found is not None:
            return found
    except ImportError:  # the VM used on its own
        pass
    try:
        from importlib.metadata import version

        return version("wasmtime")
    except Exception:  # no distribution metadata: never share entries with a known version
        return "unknown"


def host_platform() -> str:
    return f"{sys.platform}-{platform.machine()}-{sys.byteorder}"


def expected_header(wasm: bytes, config: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "wasmtime": wasmtime_version(),
        "platform": host_platform(),
        "config": config,
        "wasm_sha256": hashlib.sha256(wasm).hexdigest(),
    }


def entry_path(directory: Path, header: dict[str, Any]) -> Path:
    key = json.dumps(header, sort_keys=True).encode()
    return directory / f"{hashlib.sha256(key).hexdigest()[:32]}.cwasm"


def load_module(engine: wasmtime.Engine, wasm: bytes, config: str, directory: Path | None = None) -> wasmtime.Module:
    """The compiled module for ``wasm`` under ``engine`` (whose settings
    ``config`` names): from the cache when a valid entry is there, else
    compiled now and stored."""
    directory = cache_dir() if directory is None else directory
    header = expected_header(wasm, config)
    path = entry_path(directory, header)
    payload = read_valid(path, header)
    if payload is not None:
        try:
            module = wasmtime.Module.deserialize(engine, payload)
            _count("hits")
            return _tagged(module, header)
        except Exception:  # wasmtime's own checks refused it
            reject(path)
    module = wasmtime.Module(engine, wasm)
    _count("misses")
    store_entry(path, header, bytes(module.serialize()))
    return _tagged(module, header)


def _tagged(module: wasmtime.Module, header: dict[str, Any]) -> wasmtime.Module:
    """Names the wasm a module was compiled from (``module.kryon_wasm_sha256``):
    what else is cached for it on disk (snapshot.py's images) is keyed by that."""
    module.kryon_wasm_sha256 = header["wasm_sha256"]  # type: ignore[attr-defined]
    return module


def _count(what: str) -> None:
    with _stats_lock:
        stats[what] += 1


def reject(path: Path) -> None:
    _count("rejected")
    try:
        path.unlink()
    except OSError:
        pass


def _private(st: os.stat_result) -> bool:
    if os.name != "posix":
        return True
    return st.st_uid == os.getuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def read_valid(path: Path, header: dict[str, Any]) -> bytes | None:
    """The payload of the entry at ``path`` if it passes every check, else
    None (a present but invalid entry is counted and removed)."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            data = f.read()
        directory_ok = _private(os.stat(path.parent))
    except FileNotFoundError:
        return None
    except OSError:
        reject(path)
        return None
    if not (stat.S_ISREG(st.st_mode) and _private(st) and directory_ok and data.startswith(MAGIC)):
        reject(path)
        return None
    end = data.find(b"\n", len(MAGIC))
    try:
        found = json.loads(data[len(MAGIC):end]) if end > 0 else None
    except ValueError:
        found = None
    payload = data[end + 1:] if end > 0 else b""
    if (
        not isinstance(found, dict)
        or any(found.get(k) != v for k, v in header.items())
        or found.get("size") != len(payload)
        or found.get("payload_sha256") != hashlib.sha256(payload).hexdigest()
    ):
        reject(path)
        return None
    return payload


def store_entry(path: Path, header: dict[str, Any], payload: bytes) -> None:
    """Writes the entry atomically (a temporary file renamed over it); a
    cache that cannot be written is skipped, never an error."""
    full = dict(header, size=len(payload), payload_sha256=hashlib.sha256(payload).hexdigest())
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=str(path.parent), suffix=".tmp")  # created 0600
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(MAGIC + json.dumps(full, sort_keys=True).encode() + b"\n" + payload)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        _prune(path)
    except OSError:
        pass


def _prune(keep: Path) -> None:
    """Removes entries of other builds (of the same kind: suffix) unused for a day."""
    cutoff = time.time() - STALE_SECONDS
    for old in keep.parent.glob("*" + keep.suffix):
        try:
            if old != keep and old.stat().st_atime < cutoff and old.stat().st_mtime < cutoff:
                old.unlink()
        except OSError:
            pass
