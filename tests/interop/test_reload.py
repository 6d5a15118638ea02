"""Hot reload of a running app: callbacks move to the new version, never
leak or double; a broken edit leaves the old version running."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("kryon_lua")

from kryon_core.app import App  # noqa: E402
from kryon_core.testing.watch import WatchedApp, write_app  # noqa: E402

V1 = 'kryon.addEventListener("b", "click", function() kryon.setProperty("l", "text", "v1") end)\nkryon.setInterval(function() end, 50)\n'
V2 = 'kryon.addEventListener("b", "click", function() kryon.setProperty("l", "text", "v2") end)\nkryon.setInterval(function() end, 50)\n'


def make_app(tmp_path: Path) -> Path:
    return write_app(tmp_path, {"ui.lua": V1})


def test_reload_moves_callbacks(tmp_path):
    app = App.load(make_app(tmp_path))
    doc = app.document
    doc.click("b")
    assert doc.get_property("l", "text") == "v1"
    (tmp_path / "ui.lua").write_text(V2)
    assert app.reload(tmp_path / "ui.lua")
    assert doc.callback_counts() == {"listeners": 1, "watchers": 0, "timers": 1, "animations": 0}
    assert doc.click("b") == 1
    assert doc.get_property("l", "text") == "v2"
    (tmp_path / "ui.lua").write_text("kryon.addEventListener(\n")  # a broken edit
    assert not app.reload(tmp_path / "ui.lua")
    assert app.errors and "old version kept" in app.errors[-1]
    doc.click("b")
    assert doc.get_property("l", "text") == "v2"
    assert doc.callback_counts()["listeners"] == 1
    app.manager.close()


def test_watch_reloads_on_file_change(tmp_path):
    pytest.importorskip("watchfiles")
    make_app(tmp_path)
    with WatchedApp(tmp_path, timeout=30) as app:
        app.watching()
        app.edit(tmp_path / "ui.lua", V2, "reloaded ui.lua")
        assert "ui.lua:1" in app.edit(tmp_path / "ui.lua", "if then\n", "old version kept", "stderr")
