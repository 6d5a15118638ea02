"""`kryon serve` end to end in headless Chromium: the page shows the app's
document, clicks and input reach the scripts, and DOM changes made by the
scripts (timers included) are pushed to the page as they happen; the
inspector beside it follows engines, scripts, calls, memory, output and
errors live, and reloads a script from its button."""

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


INSPECTED_APP = """{
  "tree": {"type": "panel", "id": "main", "children": [
    {"type": "button", "id": "greet", "properties": {"text": "Greet"}},
    {"type": "button", "id": "burst", "properties": {"text": "Burst"}},
    {"type": "button", "id": "fail", "properties": {"text": "Fail"}},
    {"type": "label", "id": "version", "properties": {"text": "?"}}
  ]},
  "scripts": ["ui.lua"]
}"""

INSPECTED_LUA = """
kryon.setProperty("version", "text", "version 1")
function greet(name)
  print("greeting " .. name)
  return "hi " .. name
end
function tick() return 1 end
function explode()
  error("exploded on purpose")
end
kryon.addEventListener("greet", "click", function() kryon.call("ui.greet", "Ada") end)
kryon.addEventListener("burst", "click", function() for i = 1, 1000 do kryon.call("ui.tick") end end)
kryon.addEventListener("fail", "click", function() kryon.call("ui.explode") end)
"""


def _serve(directory, port):
    proc = subprocess.Popen(
        [sys.executable, "-m", "kryon_core", "serve", str(directory), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout.readline().startswith("serving "), proc.stderr.read()
    return proc


def _browser(pw):
    return pw.chromium.launch(
        executable_path=CHROMIUM,
        args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    )


def test_inspector_panel_follows_the_app(tmp_path):
    pytest.importorskip("kryon_lua")
    sync_api = pytest.importorskip("playwright.sync_api")
    (tmp_path / "app.json").write_text(INSPECTED_APP)
    script = tmp_path / "ui.lua"
    script.write_text(INSPECTED_LUA)
    port = _free_port()
    proc = _serve(tmp_path, port)
    try:
        with sync_api.sync_playwright() as pw:
            browser = _browser(pw)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"http://127.0.0.1:{port}/")
                wait = lambda js: page.wait_for_function(js, timeout=30000)  # noqa: E731
                # engines and scripts, with language and policy
                wait("document.querySelector('#k-engines tr[data-language=lua]')?.textContent.includes('Lua')")
                row = page.locator("#k-scripts tr[data-script=ui]")
                assert row.locator("td").nth(1).text_content() == "lua"
                assert row.locator("td").nth(2).text_content() == "trusted"
                # calls and mean time per function; the hot one marked
                page.click("#greet")
                page.click("#greet")
                wait("document.querySelector('#k-functions tr[data-function=\"ui.greet\"] .calls')?.textContent === '2'")
                assert page.locator("#k-functions tr[data-function='ui.greet'] .mean").text_content().endswith("s")
                page.click("#burst")
                wait("document.querySelector('#k-functions tr[data-function=\"ui.tick\"]')?.classList.contains('hot')")
                assert page.locator("#k-functions tr[data-function='ui.tick'] .calls").text_content() == "1000"
                assert not page.locator("#k-functions tr[data-function='ui.greet']").evaluate(
                    "r => r.classList.contains('hot')")
                # output, and the last error with file:line and its stack
                wait("document.getElementById('k-output-lines').textContent.includes('greeting Ada')")
                page.click("#fail")
                wait("document.getElementById('k-error-list').textContent.includes('exploded on purpose')")
                assert page.locator("#k-error-list .k-where").first.text_content() == f"{script}:9: "
                assert page.locator("#k-error-list details").first.count() == 1
                page.locator("#k-error-list details summary").first.click()
                assert f"at {script}:9 in" in page.locator("#k-error-list details").first.text_content()
                # memory per engine, drawn over time
                wait("+document.querySelector('#k-memory-chart polyline[data-language=lua]')?.dataset.samples >= 3")
                # reload a script from disk with its button
                script.write_text(INSPECTED_LUA.replace("version 1", "version 2"))
                row.locator("button.k-reload").click()
                wait("document.getElementById('version').textContent === 'version 2'")
                wait("document.querySelector('#k-scripts tr[data-script=ui] .reloads')?.textContent === '1'")
                page.screenshot(path=str(tmp_path / "inspector.png"))
            finally:
                browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_posts_from_other_sites_are_refused(served):
    import json
    import urllib.error
    import urllib.request

    def post(path, headers):
        request = urllib.request.Request(served.rstrip("/") + path, data=json.dumps({"script": "ui"}).encode(),
                                         headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status
        except urllib.error.HTTPError as error:
            return error.code

    assert post("/reload", {"Content-Type": "text/plain"}) == 415
    assert post("/event", {"Content-Type": "text/plain"}) == 415
    assert post("/reload", {"Content-Type": "application/json", "Origin": "http://elsewhere.example"}) == 403
    assert post("/event", {"Content-Type": "application/json", "Origin": "http://elsewhere.example"}) == 403
    assert post("/reload", {"Content-Type": "application/json"}) == 200
