"""Test-wide settings: the compilation cache goes to a temporary directory,
never the user's own cache."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    import os

    os.environ["KRYON_CACHE_DIR"] = str(tmp_path_factory.mktemp("kryon-cache"))
