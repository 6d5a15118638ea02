"""Shared fixtures for the Wren engine tests."""
import sys
from pathlib import Path

import pytest

# the Wren tests import what they share (wren_support) by module name
sys.path.insert(0, str(Path(__file__).parent))

kryon_wren = pytest.importorskip(
    "kryon_wren", reason="kryon_wren is not installed (pip install ./plugins/kryon-wren)"
)
