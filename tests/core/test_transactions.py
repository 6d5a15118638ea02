"""Loads and reloads are transactions: what a failing top level registered
(listeners, watchers, timers, shared objects and listeners, exports) is taken
back, so nothing of a failed version is reachable. Also the manager's checks
of API input (names, policies, globals) and its statistics."""

from __future__ import annotations

import pytest
from prog_engine import ProgPlugin, prog_manager

from kryon_core import (
    AccessDeniedError,
    ConversionError,
    Document,
    ScriptError,
    ScriptManager,
    SecurityPolicy,
)

REGISTERS = """
el = kryon.get_element_by_id("btn")
kryon.add_event_listener(el, "click", ref(lambda e: clicks.append("{tag}")))
kryon.watch_variable("v", ref(lambda new, old, name: clicks.append("watch {tag}")))
kryon.set_timeout(ref(lambda: clicks.append("timer {tag}")), 10)
kryon.create_shared("made_by_{tag}", 1)
kryon.watch_shared("base", ref(lambda i, new, old: clicks.append("shared {tag}")))
kryon.expose("f")
def f(): return "{tag}"
"""


@pytest.fixture
def env():
    m = prog_manager(policy=SecurityPolicy.trusted())
    doc = m.setup_dom_bridge(Document())
    doc.create_element("button", {"id": "btn"})
    m.shared.create("base", 0)
    clicks: list[str] = []
    yield m, doc, clicks
    m.close()


def load(m, clicks, name, source, reload=False):
    m.engine("prog").injected["clicks"] = clicks
    if reload:
        m.hot_reload_script(name, source)
    else:
        m.load_script_from_source(name, "prog", source)


def fire(m, doc):
    doc.click(doc.get_element_by_id("btn"))
    doc.set_variable("v", 1)
    doc.advance(20)
    m.shared.write("base", 1)


def test_failed_first_load_leaves_nothing(env):
    m, doc, clicks = env
    with pytest.raises(ScriptError):
        load(m, clicks, "s", REGISTERS.format(tag="broken") + "raise ValueError('top level fails')")
    fire(m, doc)
    assert clicks == []
    assert "made_by_broken" not in m.shared
    assert doc.callback_counts() == {"listeners": 0, "watchers": 0, "timers": 0, "animations": 0}
    load(m, clicks, "s", REGISTERS.format(tag="fixed"))  # retried, fixed: fires once, not twice
    fire(m, doc)
    assert sorted(clicks) == ["fixed", "shared fixed", "timer fixed", "watch fixed"]


def test_failed_reload_keeps_the_old_version_only(env):
    m, doc, clicks = env
    load(m, clicks, "s", REGISTERS.format(tag="v1"))
    with pytest.raises(ScriptError):
        load(m, clicks, "s", REGISTERS.format(tag="v2") + "raise ValueError('v2 fails')", reload=True)
    fire(m, doc)
    assert sorted(clicks) == ["shared v1", "timer v1", "v1", "watch v1"]
    assert "made_by_v2" not in m.shared and "made_by_v1" in m.shared


def test_failed_load_takes_back_its_exports(env):
    m, doc, clicks = env
    with pytest.raises(ScriptError):
        load(m, clicks, "s", "kryon.expose('f')\ndef f(): return 1\nraise ValueError('no')")
    m.load_script_from_source("s", "prog", "def f(): return 1", policy=SecurityPolicy.trusted())
    m.load_script_from_source("box", "prog", "def ask(): return kryon.call('s.f')", policy=SecurityPolicy.sandboxed())
    with pytest.raises(AccessDeniedError):
        m.call_function("box.ask")


def test_api_input_is_checked_before_anything_is_held(env):
    m, doc, clicks = env
    with pytest.raises(ConversionError):
        m.set_global("prog", "config", {"x": object()})
    with pytest.raises(ConversionError):
        m.set_global("prog", "config", [1, {2.5: "non-string key"}])
    cyclic: list = []
    cyclic.append(cyclic)
    with pytest.raises(ConversionError):
        m.set_global("prog", "config", cyclic)
    for bad in ("", "two words", None, 7, "nul\x00"):
        with pytest.raises(ScriptError):
            m.set_global("prog", bad, 1)  # type: ignore[arg-type]
    deep: list = []
    for _ in range(50_000):
        deep = [deep]
    m.set_global("prog", "deep", deep)  # any depth converts, no RecursionError
    for bad_name in ("", None, 3, "tab\tname"):
        with pytest.raises(ScriptError):
            m.load_script_from_source(bad_name, "prog", "x = 1")  # type: ignore[arg-type]
    with pytest.raises(ScriptError, match="SecurityPolicy"):
        m.load_script_from_source("p", "prog", "x = 1", policy={"sandboxed": True})  # type: ignore[arg-type]
    with pytest.raises(ScriptError):
        m.load_script_from_source("p", "prog", 12345)  # type: ignore[arg-type]
    m.load_script_from_source("after", "prog", "def ok(): return 1")  # nothing was poisoned
    assert m.call_function("after.ok") == 1


def test_statistics_show_the_cache_before_it_holds_anything():
    m = ScriptManager(discover=False, plugins=[ProgPlugin()], cache_dir=False)
    assert m.statistics()["cache"] is not None
    m.close()


def test_file_imports_stay_inside_the_scripts_root(tmp_path):
    from kryon_core import AccessDeniedError as Denied

    app = tmp_path / "app"
    (app / "sub").mkdir(parents=True)
    (app / "sub" / "s.prog").write_text("x = 1")
    (app / "lib.prog").write_text("# lib")
    (app / "sub" / "near.prog").write_text("# near")
    (tmp_path / "secret.prog").write_text("# outside")
    (app / "link.prog").symlink_to(tmp_path / "secret.prog")
    m = prog_manager(policy=SecurityPolicy.trusted())
    m.load_script_file(app / "sub" / "s.prog", root=app)
    loader = m.engine("prog").config.module_loader
    assert loader("s", "near") == "# near"
    assert loader("s", "../lib") == "# lib"
    assert loader("s", "missing") is None
    for escape in ("../../secret", "../link", str(tmp_path / "secret")):
        with pytest.raises(Denied):
            loader("s", escape)
    m.load_script_file(app / "lib.prog", name="solo")  # root defaults to the file's folder
    with pytest.raises(Denied):
        loader("solo", "../secret")
    m.close()


def test_evaluate_keeps_state_and_registers_new_functions():
    m = prog_manager()
    assert m.evaluate("prog", "x = 20") is None
    assert m.evaluate("prog", "x + 1") == 21
    m.evaluate("prog", "def twice(n): return 2 * n")
    assert m.call_function("twice", [4]) == 8  # a console function is callable like any script's
    m.load_script_from_source("s", "prog", "y = 5")
    assert m.evaluate("prog", "y", script="s") == 5
    with pytest.raises(ScriptError):
        m.evaluate("prog", 12)  # type: ignore[arg-type]
    m.close()


def test_close_goes_on_past_a_failing_hook(caplog):
    from fake_engine import FakePlugin

    from kryon_core import hookimpl

    closed = []

    class Boom:
        @hookimpl
        def kryon_engine_closing(self, engine, manager):
            raise RuntimeError(f"hook fails for {engine.language}")

    m = ScriptManager(discover=False, plugins=[FakePlugin(), ProgPlugin(), Boom()], cache=False)
    for lang in ("fake", "prog"):
        engine = m.engine(lang)
        original = engine.close
        engine.close = lambda original=original, lang=lang: (closed.append(lang), original())  # type: ignore[method-assign]
    with caplog.at_level("ERROR", logger="kryon"):
        m.close()
    assert sorted(closed) == ["fake", "prog"]
    assert len(m.close_errors) == 2 and "hook fails" in caplog.text
