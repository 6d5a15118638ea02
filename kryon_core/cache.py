"""The compilation cache: compiled scripts in memory and on disk.

Entries are keyed by (language, engine version, SHA-256 of the source), so a
changed source or a different engine version never matches. On disk an entry
is one file: a JSON header line (key fields, function metadata, a SHA-256 of
the payload) followed by the engine's bytecode. An entry that is truncated,
corrupt, or written by another engine version is ignored and removed, never
trusted. Statistics count hits, misses, stores and evictions; ``cleanup``
drops entries unused for longer than a given age.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .engine import CompiledScript, FunctionInfo

__all__ = ["CacheStatistics", "CompilationCache", "default_cache_dir", "source_hash"]

FORMAT = 1
_MAGIC = b"KRYONC1\n"


def default_cache_dir() -> Path:
    """The per-user cache directory (``KRYON_CACHE_DIR`` overrides it)."""
    env = os.environ.get("KRYON_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("kryon", appauthor=False)) / "compiled"


def source_hash(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class CacheStatistics:
    hits: int = 0
    disk_hits: int = 0
    misses: int = 0
    stores: int = 0
    evictions: int = 0
    rejected: int = 0  # corrupt or foreign entries ignored
    compile_seconds_saved: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


@dataclass
class _Entry:
    compiled: CompiledScript
    compile_seconds: float
    last_used: float = field(default_factory=time.time)
    use_count: int = 0


class CompilationCache:
    """In-memory LRU-ish cache with an optional on-disk layer.

    ``directory=None`` keeps the cache in memory only; a callable giving the
    directory is called on first use of the disk (so a manager that never
    compiles never looks the per-user directory up). ``max_entries`` bounds
    the memory layer (least recently used entries are evicted first).
    """

    def __init__(
        self, directory: "Path | str | Callable[[], Path] | None" = None, *, max_entries: int = 512
    ) -> None:
        self._where = directory
        self._directory: Path | None = None
        self.max_entries = max_entries
        self.stats = CacheStatistics()
        self._memory: dict[tuple[str, str, str], _Entry] = {}
        self._lock = threading.Lock()

    @property
    def directory(self) -> Path | None:
        """The on-disk layer's folder (None: memory only)."""
        if self._directory is None and self._where is not None:
            where = self._where
            self._directory = Path(where() if callable(where) else where)
        return self._directory

    # -- the one entry point the manager uses ------------------------------------
    def get_or_compile(
        self,
        language: str,
        engine_version: str,
        name: str,
        source: str,
        compile: Callable[[], CompiledScript],
    ) -> CompiledScript:
        key = (language, engine_version, source_hash(source))
        cached = self.get(key, name)
        if cached is not None:
            return cached
        start = time.perf_counter()
        compiled = compile()
        elapsed = time.perf_counter() - start
        self.put(key, compiled, elapsed)
        return compiled

    def get(self, key: tuple[str, str, str], name: str) -> CompiledScript | None:
        with self._lock:
            entry = self._memory.get(key)
            if entry is None and self.directory is not None:
                entry = self._read_disk(key)
                if entry is not None:
                    self.stats.disk_hits += 1
                    self._remember(key, entry)
            if entry is None:
                self.stats.misses += 1
                return None
            entry.last_used = time.time()
            entry.use_count += 1
            self.stats.hits += 1
            self.stats.compile_seconds_saved += entry.compile_seconds
            c = entry.compiled
            return CompiledScript(
                id=name,
                language=c.language,
                source=c.source,
                bytecode=c.bytecode,
                functions=dict(c.functions),
                globals=list(c.globals),
                dependencies=list(c.dependencies),
                engine_version=c.engine_version,
                filename=c.filename,
                from_cache=True,
            )

    def put(self, key: tuple[str, str, str], compiled: CompiledScript, compile_seconds: float) -> None:
        entry = _Entry(compiled, compile_seconds)
        with self._lock:
            self._remember(key, entry)
            self.stats.stores += 1
            if self.directory is not None:
                self._write_disk(key, entry)

    def _remember(self, key: tuple[str, str, str], entry: _Entry) -> None:
        self._memory[key] = entry
        while len(self._memory) > self.max_entries:
            oldest = min(self._memory, key=lambda k: self._memory[k].last_used)
            del self._memory[oldest]
            self.stats.evictions += 1

    # -- disk layer ----------------------------------------------------------------
    def _path(self, key: tuple[str, str, str]) -> Path:
        assert self.directory is not None
        language, version, digest = key
        version_tag = hashlib.sha256(version.encode()).hexdigest()[:12]
        return self.directory / language / f"{digest}-{version_tag}.kc"

    def _write_disk(self, key: tuple[str, str, str], entry: _Entry) -> None:
        c = entry.compiled
        header = {
            "format": FORMAT,
            "language": key[0],
            "engine_version": key[1],
            "source_sha256": key[2],
            "payload_sha256": hashlib.sha256(c.bytecode).hexdigest(),
            "compile_seconds": entry.compile_seconds,
            "functions": {n: f.as_dict() for n, f in c.functions.items()},
            "globals": c.globals,
            "dependencies": c.dependencies,
            "filename": c.filename,
            "source": c.source,
        }
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            with open(tmp, "wb") as fh:
                fh.write(_MAGIC)
                fh.write(json.dumps(header).encode("utf-8") + b"\n")
                fh.write(c.bytecode)
            os.replace(tmp, path)  # atomic: a reader never sees half a file
        except OSError:
            pass  # a read-only or full cache directory only costs speed

    def _read_disk(self, key: tuple[str, str, str]) -> _Entry | None:
        path = self._path(key)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        entry = self._parse(data, key)
        if entry is not None:
            try:
                os.utime(path)  # mark as used, for cleanup by age
            except OSError:
                pass
        if entry is None:
            self.stats.rejected += 1
            try:
                path.unlink()
            except OSError:
                pass
        return entry

    @staticmethod
    def _parse(data: bytes, key: tuple[str, str, str]) -> _Entry | None:
        if not data.startswith(_MAGIC):
            return None
        end = data.find(b"\n", len(_MAGIC))
        if end < 0:
            return None
        try:
            header = json.loads(data[len(_MAGIC) : end])
            payload = data[end + 1 :]
            if (
                header.get("format") != FORMAT
                or (header.get("language"), header.get("engine_version"), header.get("source_sha256")) != key
                or hashlib.sha256(payload).hexdigest() != header.get("payload_sha256")
                or source_hash(header["source"]) != key[2]
            ):
                return None
            compiled = CompiledScript(
                id="",
                language=key[0],
                source=header["source"],
                bytecode=payload,
                functions={n: FunctionInfo.from_dict(f) for n, f in header.get("functions", {}).items()},
                globals=list(header.get("globals", [])),
                dependencies=list(header.get("dependencies", [])),
                engine_version=key[1],
                filename=header.get("filename"),
            )
            return _Entry(compiled, float(header.get("compile_seconds", 0.0)))
        except (ValueError, KeyError, TypeError):
            return None

    # -- maintenance ------------------------------------------------------------------
    def cleanup(self, max_age_seconds: float) -> int:
        """Drop entries (memory and disk) unused for longer than ``max_age_seconds``."""
        cutoff = time.time() - max_age_seconds
        removed = 0
        with self._lock:
            for key in [k for k, e in self._memory.items() if e.last_used < cutoff]:
                del self._memory[key]
                removed += 1
            if self.directory is not None and self.directory.exists():
                for path in self.directory.glob("*/*.kc"):
                    try:
                        if path.stat().st_mtime < cutoff:
                            path.unlink()
                            removed += 1
                    except OSError:
                        pass
            self.stats.evictions += removed
        return removed

    def clear(self) -> None:
        with self._lock:
            self._memory.clear()
            if self.directory is not None and self.directory.exists():
                for path in self.directory.glob("*/*.kc"):
                    try:
                        path.unlink()
                    except OSError:
                        pass

    def __len__(self) -> int:
        return len(self._memory)
