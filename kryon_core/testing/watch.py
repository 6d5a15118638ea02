"""``kryon run APP --watch`` in a subprocess, for tests of reloading an app
when its files change: the test edits a file, then waits for the line the
app prints about it. A line that does not come before the deadline fails the
test instead of hanging it (each stream is read on a thread of its own).
:func:`write_app` makes the app folder such a test edits."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

__all__ = ["BUTTON_AND_LABEL", "WatchedApp", "write_app"]

#: a panel holding a button ``b`` and a label ``l``: what a reloaded script's listener clicks and writes
BUTTON_AND_LABEL: dict[str, Any] = {
    "type": "panel", "id": "p", "children": [{"type": "button", "id": "b"}, {"type": "label", "id": "l"}],
}


def write_app(folder: Path, scripts: dict[str, str], tree: dict[str, Any] | None = None) -> Path:
    """An app in ``folder``: its ``app.json`` (``tree``, by default
    :data:`BUTTON_AND_LABEL`, and the scripts in order) and each script file
    with its source. Returns ``folder``."""
    app = {"tree": BUTTON_AND_LABEL if tree is None else tree, "scripts": list(scripts)}
    (folder / "app.json").write_text(json.dumps(app))
    for name, source in scripts.items():
        (folder / name).write_text(source)
    return folder


class WatchedApp:
    """The running app; use it as a context manager (leaving it ends the
    process). ``timeout`` seconds is the deadline for every line, counted
    from the start."""

    def __init__(self, app: Path, timeout: float) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "kryon_core.cli", "run", str(app), "--watch"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.deadline = time.monotonic() + timeout
        self._lines = {"stdout": self._reader(self.proc.stdout), "stderr": self._reader(self.proc.stderr)}

    @staticmethod
    def _reader(stream: IO[str] | None) -> queue.Queue[str]:
        lines: queue.Queue[str] = queue.Queue()

        def read() -> None:
            assert stream is not None
            for line in stream:
                lines.put(line)

        threading.Thread(target=read, daemon=True).start()
        return lines

    def expect(self, text: str, stream: str = "stdout") -> str:
        """The first line from now on of ``stream`` ("stdout" or "stderr")
        that contains ``text``."""
        lines = self._lines[stream]
        while True:
            left = self.deadline - time.monotonic()
            try:
                line = lines.get(timeout=max(left, 0.001))
            except queue.Empty:
                raise AssertionError(f"no line with {text!r} on {stream} in time") from None
            if text in line:
                return line

    def watching(self) -> None:
        """Wait for the app to say it watches its files, and half a second
        more for the watcher to take its first look (an edit before that
        could go unseen)."""
        self.expect("watching")
        time.sleep(0.5)

    def edit(self, path: Path, text: str, then: str, stream: str = "stdout") -> str:
        """Write ``text`` to ``path``, then :meth:`expect` ``then`` on ``stream``."""
        path.write_text(text)
        return self.expect(then, stream)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def __enter__(self) -> WatchedApp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
