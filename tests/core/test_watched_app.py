"""kryon_core.testing.watch: a line the watched app prints is found on its
own stream, and one it does not print before the deadline fails the test
(it does not hang it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kryon_core.testing.watch import WatchedApp


def test_lines_are_found_on_their_stream_and_a_missing_one_fails_at_the_deadline(tmp_path: Path) -> None:
    pytest.importorskip("watchfiles")
    with WatchedApp(tmp_path, timeout=60) as app:  # no app.json: kryon says so and exits
        assert "no app.json" in app.expect("not an app", "stderr")
        app.deadline = 0  # as if the time were up
        with pytest.raises(AssertionError, match="no line with 'watching' on stdout in time"):
            app.expect("watching")
    assert app.proc.returncode is not None, "leaving the block ends the app"
