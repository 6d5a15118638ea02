"""Shared fixtures for the Wren engine tests."""
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# the Wren tests import what they share (wren_support) by module name
sys.path.insert(0, str(Path(__file__).parent))

kryon_wren = pytest.importorskip(
    "kryon_wren", reason="kryon_wren is not installed (pip install ./plugins/kryon-wren)"
)


@pytest.fixture
def fresh_images(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Set-up images (kryon_wren/snapshot.py) on, kept in memory only, under a
    cache folder of the test's own: none left from another test, none left
    for the next."""
    from kryon_wren import snapshot

    monkeypatch.setattr(snapshot, "enabled", True)
    monkeypatch.setattr(snapshot, "persist", False)
    monkeypatch.setenv("KRYON_WREN_CACHE", str(tmp_path / "wasm"))
    snapshot.clear()
    yield
    snapshot.clear()
