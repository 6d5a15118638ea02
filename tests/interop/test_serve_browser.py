"""`kryon serve` end to end in headless Chromium: the page shows the app's
document, clicks and input reach the scripts, and DOM changes made by the
scripts (timers included) are pushed to the page as they happen."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")

APP_JSON = """{
  "tree": {"type": "panel", "id": "main", "children": [
    {"type": "input", "id": "name", "properties": {"value": ""}},
    {"type": "button", "id": "go", "properties": {"text": "Go"}},
    {"type": "label", "id": "out", "properties": {"text": "waiting"}},
    {"type": "label", "id": "ticks", "properties": {"text": "0"}}
  ]},
  "scripts": ["ui.lua"]
}"""

UI_LUA = """
local clicks = 0
kryon.addEventListener("go", "click", function()
  clicks = clicks + 1
  kryon.setProperty("out", "text", "hello " .. kryon.getProperty("name", "value") .. " #" .. clicks)
end)
local n = 0
kryon.setInterval(function() n = n + 1 kryon.setProperty("ticks", "text", tostring(n)) end, 100)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path):
    pytest.importorskip("kryon_lua")
    (tmp_path / "app.json").write_text(APP_JSON)
    (tmp_path / "ui.lua").write_text(UI_LUA)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kryon_core.cli", "serve", str(tmp_path), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/"
    proc.terminate()
    proc.wait(timeout=10)


def test_page_round_trip(served, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        try:
            page = browser.new_page()
            page.goto(served)
            page.wait_for_selector("#out")
            assert page.text_content("#out") == "waiting"
            page.fill("#name", "Ada")
            page.dispatch_event("#name", "change")
            page.click("#go")
            page.wait_for_function("document.getElementById('out').textContent === 'hello Ada #1'", timeout=30000)
            page.click("#go")
            page.wait_for_function("document.getElementById('out').textContent === 'hello Ada #2'", timeout=30000)
            # the interval runs on the server's clock and its changes are pushed
            page.wait_for_function("+document.getElementById('ticks').textContent >= 3", timeout=30000)
            page.screenshot(path=str(tmp_path / "page.png"))
        finally:
            browser.close()
