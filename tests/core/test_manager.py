"""The ScriptManager: discovery, registry, hooks, reload and unload (no real language needed)."""

import asyncio
import json

import pytest
from fake_engine import FakeEngine, FakePlugin

from kryon_core import (
    AccessDeniedError,
    AmbiguousFunctionError,
    CompileError,
    Document,
    EngineNotFoundError,
    FunctionNotFoundError,
    ScriptError,
    ScriptManager,
    ScriptNotFoundError,
    ScriptRuntimeError,
    SecurityPolicy,
    SizeLimitError,
    hookimpl,
)

LIB = json.dumps({"add": "add", "greet": "greet", "fail": "fail"})


@pytest.fixture
def manager():
    m = ScriptManager(plugins=[FakePlugin()], discover=False, cache=False)
    yield m
    m.close()


def test_engines_are_created_lazily(manager):
    assert manager.languages == ["fake"]
    assert not manager.is_loaded("fake")
    manager.load_script_from_source("lib", "fake", LIB)
    assert manager.is_loaded("fake")
    assert isinstance(manager.engine("fake"), FakeEngine)


def test_missing_engine_names_installed_ones_and_distribution(manager):
    with pytest.raises(EngineNotFoundError) as info:
        manager.load_script_from_source("x", "lua", "return 1")
    assert "fake" in str(info.value) and "kryon-lua" in str(info.value)


def test_qualified_and_bare_names(manager):
    manager.load_script_from_source("lib", "fake", LIB)
    assert manager.call_function("lib.add", [2, 3]) == 5
    assert manager.call_function("add", [2, 3]) == 5
    assert set(manager.functions()) == {"lib.add", "lib.greet", "lib.fail"}


def test_ambiguous_bare_name_lists_candidates(manager):
    manager.load_script_from_source("one", "fake", LIB)
    manager.load_script_from_source("two", "fake", LIB)
    with pytest.raises(AmbiguousFunctionError) as info:
        manager.call_function("add", [1, 2])
    assert info.value.candidates == ["one.add", "two.add"]
    assert manager.call_function("two.add", [1, 2]) == 3
    manager.unload_script("one")
    assert manager.call_function("add", [1, 2]) == 3, "unique again once one script is gone"


def test_unknown_function(manager):
    manager.load_script_from_source("lib", "fake", LIB)
    with pytest.raises(FunctionNotFoundError) as info:
        manager.call_function("nope")
    assert "lib.add" in str(info.value)


def test_duplicate_script_name_is_refused(manager):
    manager.load_script_from_source("lib", "fake", LIB)
    with pytest.raises(ScriptError, match="already loaded"):
        manager.load_script_from_source("lib", "fake", LIB)


def test_source_size_limit(manager):
    with pytest.raises(SizeLimitError):
        manager.load_script_from_source(
            "big", "fake", json.dumps({"x": "echo", "pad": "echo" + " " * 10}), policy=SecurityPolicy.sandboxed(max_source_size=10)
        )


def test_invalid_utf8_names_the_line(manager):
    with pytest.raises(CompileError) as info:
        manager.load_script_from_source("bad", "fake", b'{\n"a":\n"\xff"}')
    assert info.value.line == 3


def test_profiling_counts_calls_and_errors(manager):
    manager.load_script_from_source("lib", "fake", LIB)
    for _ in range(3):
        manager.call_function("lib.add", [1, 1])
    with pytest.raises(ScriptRuntimeError):
        manager.call_function("lib.fail")
    stats = manager.profiler.functions
    assert stats["lib.add"].calls == 3 and stats["lib.fail"].errors == 1
    assert manager.profiler.scripts["lib"].calls == 4


def test_hot_functions_are_reported():
    m = ScriptManager(plugins=[FakePlugin()], discover=False, cache=False, hot_threshold=5)
    m.load_script_from_source("lib", "fake", LIB)
    for _ in range(5):
        m.call_function("add", [1, 2])
    hot = m.profiler.hot_functions()
    assert [h.function_name for h in hot] == ["lib.add"] and hot[0].call_count == 5
    assert hot[0].is_jit_candidate is False and hot[0].tier is None, "the fake engine has no faster tier"


def test_hot_reload_is_atomic(manager):
    manager.load_script_from_source("lib", "fake", LIB)
    with pytest.raises(CompileError):
        manager.hot_reload_script("lib", "{not json")
    assert manager.call_function("lib.add", [1, 2]) == 3
    manager.hot_reload_script("lib", json.dumps({"add": "add", "hello": "greet"}))
    assert manager.call_function("lib.hello", ["you"]) == "hello you"
    with pytest.raises(FunctionNotFoundError):
        manager.call_function("lib.fail")


def test_unload_and_bound_handles(manager):
    manager.load_script_from_source("lib", "fake", LIB)
    add = manager.function("lib.add")
    assert add(2, 2) == 4
    manager.unload_script("lib")
    with pytest.raises(ScriptError, match="released"):
        add(1, 1)
    with pytest.raises(ScriptNotFoundError):
        manager.unload_script("lib")


def test_async_call(manager):
    manager.load_script_from_source("lib", "fake", LIB)
    assert asyncio.run(manager.call_function_async("lib.add", [1, 2])) == 3


def test_globals(manager):
    manager.set_global("fake", "theme", {"dark": True})
    assert manager.get_global("fake", "theme") == {"dark": True}


class Recorder:
    def __init__(self):
        self.events = []

    @hookimpl
    def kryon_validate_script(self, name, language, source, policy):
        if "forbidden" in source:
            raise AccessDeniedError("source mentions something forbidden", language=language, script=name)

    @hookimpl
    def kryon_script_loaded(self, manager, script_id, language, functions):
        self.events.append(("loaded", script_id, tuple(functions)))

    @hookimpl
    def kryon_script_unloaded(self, manager, script_id, language):
        self.events.append(("unloaded", script_id))

    @hookimpl
    def kryon_engine_initialized(self, engine, manager):
        self.events.append(("engine", engine.language))

    @hookimpl
    def kryon_setup_bridge(self, bridge, language):
        bridge.add_function("answer", lambda: 42)

    @hookimpl
    def kryon_convert_value(self, value, language):
        if isinstance(value, complex):
            return [value.real, value.imag]
        return None


def test_hooks_are_called():
    rec = Recorder()
    m = ScriptManager(plugins=[FakePlugin(), rec], discover=False, cache=False)
    m.load_script_from_source("lib", "fake", LIB)
    with pytest.raises(AccessDeniedError):
        m.load_script_from_source("evil", "fake", json.dumps({"forbidden": "echo"}))
    m.unload_script("lib")
    assert rec.events == [("engine", "fake"), ("loaded", "lib", ("add", "fail", "greet")), ("unloaded", "lib")]
    bridge = m._bridges["fake"]
    assert bridge.extra["answer"]() == 42
    assert bridge.convert_unknown(1 + 2j) == [1.0, 2.0]


def test_default_policy_is_sandboxed():
    assert ScriptManager(discover=False, cache=False).policy.sandboxed
    assert not ScriptManager(discover=False, cache=False, policy=SecurityPolicy.trusted()).policy.sandboxed


def test_dom_attached_to_engines_created_later(manager):
    doc = manager.setup_dom_bridge(Document())
    manager.load_script_from_source("lib", "fake", LIB)
    assert manager._bridges["fake"].dom is doc


def test_shared_data_through_bridge(manager):
    from kryon_core import AccessPolicy

    manager.load_script_from_source("lib", "fake", LIB)
    manager.shared.create("config", {"n": 1}, policy=AccessPolicy.of(read=["fake"], write=[]))
    bridge = manager._bridges["fake"]
    assert bridge.get_shared("config") == {"n": 1}
    with pytest.raises(AccessDeniedError):
        bridge.set_shared("config", {"n": 2})


class BrokenEnginePlugin:
    @hookimpl
    def kryon_register_engines(self):
        from kryon_core import EngineSpec

        return [EngineSpec(language="broken", factory="no_such_module_anywhere:Engine", distribution="kryon-broken")]


def test_engine_that_fails_to_start_is_a_clear_error():
    m = ScriptManager(plugins=[FakePlugin(), BrokenEnginePlugin()], discover=False, cache=False)
    assert m.languages == ["broken", "fake"]
    with pytest.raises(EngineNotFoundError) as info:
        m.load_script_from_source("x", "broken", "anything")
    assert "kryon-broken" in str(info.value) and "failed to start" in str(info.value)
    m.load_script_from_source("lib", "fake", LIB)
    assert m.call_function("add", [1, 2]) == 3


def test_module_loader_sees_a_script_while_its_top_level_runs(tmp_path):
    seen = {}

    class Importing(FakeEngine):
        def load_script(self, compiled, *, policy=None):
            seen["source"] = self.config.module_loader(compiled.id, "helper")
            return super().load_script(compiled, policy=policy)

    class Plugin:
        @hookimpl
        def kryon_register_engines(self):
            from kryon_core import EngineSpec

            return [EngineSpec(language="fake", factory=Importing, extensions=(".fake",))]

    (tmp_path / "helper.fake").write_text('{"x": "echo"}')
    (tmp_path / "main.fake").write_text(LIB)
    m = ScriptManager(plugins=[Plugin()], discover=False, cache=False)
    m.load_script_file(tmp_path / "main.fake")
    assert seen["source"] == '{"x": "echo"}'
