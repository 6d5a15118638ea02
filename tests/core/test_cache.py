"""The compilation cache: memory and disk layers, keys, corruption, cleanup."""

import json
import os
import time

from fake_engine import FakeEngine, FakePlugin

from kryon_core import CompilationCache, ScriptManager

LIB = json.dumps({"add": "add"})


def compile_count():
    return FakeEngine.compiles


def test_memory_hits_and_misses(tmp_path):
    m = ScriptManager(plugins=[FakePlugin()], discover=False, cache_dir=False)
    before = compile_count()
    m.load_script_from_source("a", "fake", LIB)
    m.load_script_from_source("b", "fake", LIB)
    assert compile_count() == before + 1
    assert m.cache.stats.hits == 1 and m.cache.stats.misses == 1
    assert m.call_function("b.add", [1, 2]) == 3


def test_disk_layer_survives_a_new_manager(tmp_path):
    ScriptManager(plugins=[FakePlugin()], discover=False, cache_dir=tmp_path).load_script_from_source("a", "fake", LIB)
    before = compile_count()
    m2 = ScriptManager(plugins=[FakePlugin()], discover=False, cache_dir=tmp_path)
    m2.load_script_from_source("a", "fake", LIB)
    assert compile_count() == before, "second manager must load from disk"
    assert m2.cache.stats.disk_hits == 1
    assert m2.call_function("a.add", [2, 2]) == 4


def _entry_files(directory):
    return list(directory.glob("*/*.kc"))


def test_corrupt_entry_is_ignored_and_removed(tmp_path):
    ScriptManager(plugins=[FakePlugin()], discover=False, cache_dir=tmp_path).load_script_from_source("a", "fake", LIB)
    [entry] = _entry_files(tmp_path)
    data = entry.read_bytes()
    entry.write_bytes(data[:-3] + b"XYZ")  # payload no longer matches its checksum
    before = compile_count()
    m2 = ScriptManager(plugins=[FakePlugin()], discover=False, cache_dir=tmp_path)
    m2.load_script_from_source("a", "fake", LIB)
    assert compile_count() == before + 1
    assert m2.cache.stats.rejected == 1
    entry.write_bytes(b"garbage")
    m3 = ScriptManager(plugins=[FakePlugin()], discover=False, cache_dir=tmp_path)
    m3.load_script_from_source("a", "fake", LIB)
    assert m3.call_function("a.add", [1, 1]) == 2


def test_other_engine_version_is_not_trusted(tmp_path):
    cache = CompilationCache(tmp_path)
    compiled = FakeEngine().compile(LIB, "a")
    cache.put(("fake", "fake 1", "0" * 64), compiled, 0.01)
    [entry] = _entry_files(tmp_path)
    fresh = CompilationCache(tmp_path)
    assert fresh.get(("fake", "fake 2", "0" * 64), "a") is None
    # a file renamed into another version's place is rejected by its header
    target = fresh._path(("fake", "fake 2", "0" * 64))
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(entry, target)
    assert fresh.get(("fake", "fake 2", "0" * 64), "a") is None
    assert fresh.stats.rejected == 1


def test_cleanup_by_age_and_eviction(tmp_path):
    cache = CompilationCache(tmp_path, max_entries=2)
    engine = FakeEngine()
    for i in range(3):
        src = json.dumps({f"f{i}": "add"})
        cache.get_or_compile("fake", "fake 1", f"s{i}", src, lambda src=src: engine.compile(src, "s"))
    assert len(cache) == 2 and cache.stats.evictions == 1
    old = time.time() - 3600
    for path in _entry_files(tmp_path):
        os.utime(path, (old, old))
    for entry in cache._memory.values():
        entry.last_used = old
    removed = cache.cleanup(max_age_seconds=60)
    assert removed == 2 + 3 and not _entry_files(tmp_path) and len(cache) == 0


def test_unwritable_directory_only_costs_speed(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    m = ScriptManager(plugins=[FakePlugin()], discover=False, cache_dir=blocker)
    m.load_script_from_source("a", "fake", LIB)
    assert m.call_function("a.add", [1, 2]) == 3
