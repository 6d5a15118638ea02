"""Shared fixtures for the Wren engine tests."""
import pytest

kryon_wren = pytest.importorskip(
    "kryon_wren", reason="kryon_wren is not installed (pip install ./plugins/kryon-wren)"
)
