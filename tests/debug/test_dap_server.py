"""The Debug Adapter Protocol server, driven by a DAP client over pipes
against the ``prog`` test engine (each real language has its own DAP test
against ``kryon debug`` as a subprocess)."""

from __future__ import annotations

import os
import subprocess
import threading

import pytest

pytest.importorskip("dap_types")

from dap_client import DapClient  # noqa: E402
from prog_engine import ProgPlugin  # noqa: E402

from kryon_core.debug.dap import DapServer, _Channel  # noqa: E402

PROGRAM = """\
def main(n):
    total = 0
    for i in range(n):
        total += i
    items = [total, [n]]
    print("done", total)
    return total

def fails():
    x = 1
    raise ValueError("bad " + str(x))
"""


@pytest.fixture
def client(tmp_path):
    path = tmp_path / "main.prog"
    path.write_text(PROGRAM)
    to_server_r, to_server_w = os.pipe()
    to_client_r, to_client_w = os.pipe()
    server = DapServer(_Channel(os.fdopen(to_server_r, "rb"), os.fdopen(to_client_w, "wb")), plugins=(ProgPlugin(),))
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    c = DapClient(os.fdopen(to_client_r, "rb"), os.fdopen(to_server_w, "wb"))
    c.path = str(path)  # type: ignore[attr-defined]
    caps = c.ok("initialize", adapterID="kryon", linesStartAt1=True)
    assert caps["supportsConfigurationDoneRequest"] and caps["supportsConditionalBreakpoints"]
    assert [f["filter"] for f in caps["exceptionBreakpointFilters"]] == ["uncaught", "raised"]
    yield c
    c.request("disconnect")
    thread.join(5)


def test_breakpoint_step_inspect_evaluate_continue(client):
    c = client
    c.ok("launch", program=c.path, call="main", args=[4])
    c.event("initialized")
    bps = c.ok("setBreakpoints", source={"path": c.path}, breakpoints=[{"line": 2}, {"line": 8}, {"line": 40}])["breakpoints"]
    assert [(b["verified"], b["line"]) for b in bps] == [(True, 2), (True, 9), (False, 40)]
    c.ok("setExceptionBreakpoints", filters=[])
    c.ok("configurationDone")
    stopped = c.event("stopped")  # first the top level, while the file loads (line 8 moved to 9)
    thread = stopped["threadId"]
    top = c.ok("stackTrace", threadId=thread)["stackFrames"][0]
    assert (stopped["reason"], top["line"], top["name"]) == ("breakpoint", 9, "<top level> [prog]")
    c.ok("continue", threadId=thread)
    stopped = c.event("stopped")
    assert stopped["reason"] == "breakpoint"
    assert thread in [t["id"] for t in c.ok("threads")["threads"]]
    frames = c.ok("stackTrace", threadId=thread)["stackFrames"]
    assert frames[0]["line"] == 2 and frames[0]["source"]["path"] == os.path.abspath(c.path)
    scopes = c.ok("scopes", frameId=frames[0]["id"])["scopes"]
    assert scopes[0]["name"] == "Locals"
    local = {v["name"]: v["value"] for v in c.ok("variables", variablesReference=scopes[0]["variablesReference"])["variables"]}
    assert local == {"n": "4"}
    c.ok("next", threadId=thread)
    assert c.event("stopped")["reason"] == "step"
    frames = c.ok("stackTrace", threadId=thread)["stackFrames"]
    assert frames[0]["line"] == 3
    assert c.ok("evaluate", expression="n * 10", frameId=frames[0]["id"], context="hover")["result"] == "40"
    c.ok("setBreakpoints", source={"path": c.path}, breakpoints=[{"line": 6}])
    c.ok("continue", threadId=thread)
    stopped = c.event("stopped")
    frames = c.ok("stackTrace", threadId=thread)["stackFrames"]
    scopes = c.ok("scopes", frameId=frames[0]["id"])["scopes"]
    items = next(v for v in c.ok("variables", variablesReference=scopes[0]["variablesReference"])["variables"] if v["name"] == "items")
    assert items["variablesReference"] > 0
    values = [v["value"] for v in c.ok("variables", variablesReference=items["variablesReference"])["variables"]]
    assert values[0] == "6"
    c.ok("continue", threadId=thread)
    assert c.event("exited")["exitCode"] == 0
    c.event("terminated")
    assert any(e["event"] == "output" and "6" in e["body"]["output"] for e in c.seen)


def test_conditional_breakpoint_never_hit_and_uncaught_error(client):
    c = client
    c.ok("launch", program=c.path, call="fails")
    c.event("initialized")
    c.ok("setBreakpoints", source={"path": c.path}, breakpoints=[{"line": 10, "condition": "x > 5"}])
    c.ok("setExceptionBreakpoints", filters=["uncaught"])
    c.ok("configurationDone")
    stopped = c.event("stopped")
    assert stopped["reason"] == "exception" and "bad 1" in stopped["text"]
    frames = c.ok("stackTrace", threadId=stopped["threadId"])["stackFrames"]
    assert frames[0]["line"] == 11, "shown at the line that raised it"
    c.ok("continue", threadId=stopped["threadId"])
    assert c.event("exited")["exitCode"] == 70


def test_stop_on_entry_and_bad_requests(client):
    c = client
    assert not c.request("launch", program="/no/such/file.prog")["success"]
    assert not c.request("stackTrace", threadId=1)["success"]
    assert not c.request("frobnicate")["success"]
    c.ok("launch", program=c.path, stopOnEntry=True)
    c.event("initialized")
    c.ok("configurationDone")
    stopped = c.event("stopped")
    assert stopped["reason"] == "entry"
    frames = c.ok("stackTrace", threadId=stopped["threadId"])["stackFrames"]
    assert frames[0]["line"] == 1
    c.ok("continue", threadId=stopped["threadId"])
    c.event("terminated")


def _kryon_debug(*extra: str) -> "subprocess.Popen[bytes]":
    import sys

    code = "import sys; from kryon_core.cli import main; sys.exit(main(['debug', *sys.argv[1:]]))"
    return subprocess.Popen([sys.executable, "-c", code, *extra], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def test_kryon_debug_over_stdio_and_tcp(tmp_path):
    import socket
    import time

    proc = _kryon_debug()
    c = DapClient(proc.stdout, proc.stdin)  # type: ignore[arg-type]
    assert c.ok("initialize", adapterID="kryon")["supportsHitConditionalBreakpoints"]
    response = c.request("launch", program=str(tmp_path / "missing.lua"))
    assert not response["success"] and "no such file" in response["message"]
    c.request("disconnect")
    assert proc.wait(20) == 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = _kryon_debug("--listen", f"127.0.0.1:{port}")
    for _ in range(200):
        try:
            conn = socket.create_connection(("127.0.0.1", port))
            break
        except OSError:
            time.sleep(0.05)
    stream = conn.makefile("rwb")
    c = DapClient(stream, stream)  # type: ignore[arg-type]
    assert c.ok("initialize", adapterID="kryon")["supportsConfigurationDoneRequest"]
    c.request("disconnect")
    assert proc.wait(20) == 0
    conn.close()
    bad = _kryon_debug("--listen", "nonsense")
    assert bad.wait(20) == 64
