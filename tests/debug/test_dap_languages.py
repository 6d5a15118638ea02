"""``kryon debug`` as a subprocess, driven by a DAP client, once per language:
stop at a breakpoint in a function called with ``call``/``args``, read the
stack and the locals, step to the next line and see the new local, evaluate
an expression, expand a list, continue, see the output event, terminate.
Then, per language: a conditional breakpoint never hit, pausing an endless
loop, an uncaught error shown at its line; and across languages a Lua script
calling JavaScript, stopped inside the JavaScript with both frames on the
stack, then a step out. Python and Kryon Lisp run each test twice: trusted,
and sandboxed (``sandbox: true``, debugged inside their worker processes).

A language runs here once its engine gives a debug target
(``ScriptEngine.debug_target()``); until then it is skipped, saying so."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("dap_types")

from dap_client import DapClient  # noqa: E402

from kryon_core import ScriptManager  # noqa: E402


@dataclass(frozen=True)
class Program:
    """A program in one language. ``main(n)`` has: line ``bp`` where the
    breakpoint goes (``n`` is a local there), line ``bp + 1`` that assigns a
    new local ``total`` (visible after a step), a list local ``items``; it
    prints "main done" and returns. ``spin()`` loops for ever; ``fail()``
    raises at line ``fail_line``."""

    ext: str
    source: str
    bp: int
    fail_line: int
    call_prefix: str = ""  # Wren calls static methods of a class
    list_value: str = "[1, 2, 3]"


PROGRAMS = {
    "lua": Program(".lua", """\
function main(n)
  local double = n * 2
  local total = double + 1
  local items = {1, 2, 3}
  print("main done")
  return total
end
function spin()
  local i = 0
  while true do i = i + 1 end
end
function fail()
  error("it broke")
end
""", bp=2, fail_line=13),
    "javascript": Program(".js", """\
function main(n) {
  let double = n * 2;
  let total = double + 1;
  let items = [1, 2, 3];
  print("main done");
  return total;
}
function spin() {
  let i = 0;
  while (true) { i = i + 1; }
}
function fail() {
  throw new Error("it broke");
}
""", bp=2, fail_line=13),
    "python": Program(".py", """\
def main(n):
    double = n * 2
    total = double + 1
    items = [1, 2, 3]
    print("main done")
    return total

def spin():
    i = 0
    while True:
        i = i + 1

def fail():
    raise RuntimeError("it broke")
""", bp=2, fail_line=14),
    "lisp": Program(".kl", """\
(defn main [n]
  (setv double (* n 2))
  (setv total (+ double 1))
  (setv items [1 2 3])
  (print "main done")
  total)
(defn spin []
  (setv i 0)
  (while True
    (setv i (+ i 1))))
(defn fail []
  (raise (RuntimeError "it broke")))
""", bp=2, fail_line=12),
    "wren": Program(".wren", """\
class P {
  static main(n) {
    var double = n * 2
    var total = double + 1
    var items = [1, 2, 3]
    System.print("main done")
    return total
  }
  static spin() {
    var i = 0
    while (true) { i = i + 1 }
  }
  static fail() {
    Fiber.abort("it broke")
  }
}
""", bp=3, fail_line=14, call_prefix="P."),
}


def _debuggable() -> set[str]:
    m = ScriptManager(cache=False)
    found = set()
    for lang in PROGRAMS:
        if lang in m.languages:
            try:
                if m.engine(lang).debug_target() is not None:
                    found.add(lang)
            except Exception:  # an engine that cannot start is not debuggable here
                pass
    m.close()
    return found


DEBUGGABLE = _debuggable()
LANGUAGES = [pytest.param(lang, marks=pytest.mark.skipif(lang not in DEBUGGABLE, reason=f"{lang}: no debug target yet"))
             for lang in PROGRAMS] + [
    pytest.param(f"{lang}-sandboxed", marks=pytest.mark.skipif(lang not in DEBUGGABLE, reason=f"{lang}: no debug target"))
    for lang in ("python", "lisp")
]


def start(tmp_path: Path, lang: str, **launch: Any) -> tuple[DapClient, "subprocess.Popen[bytes]", Path]:
    """``lang`` is a language, or ``"LANG-sandboxed"`` to launch it with ``sandbox: true``."""
    if lang.endswith("-sandboxed"):
        launch["sandbox"] = True
    program = PROGRAMS[lang.removesuffix("-sandboxed")]
    path = tmp_path / f"prog{program.ext}"
    path.write_text(program.source)
    code = "import sys; from kryon_core.cli import main; sys.exit(main(['debug']))"
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    c = DapClient(proc.stdout, proc.stdin)  # type: ignore[arg-type]
    c.ok("initialize", adapterID="kryon", linesStartAt1=True)
    c.ok("launch", program=str(path), **launch)
    c.event("initialized")
    return c, proc, path


def finish(c: DapClient, proc: "subprocess.Popen[bytes]") -> None:
    c.request("terminate")
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def top(c: DapClient, thread: int) -> dict[str, Any]:
    return c.ok("stackTrace", threadId=thread)["stackFrames"][0]


def local_values(c: DapClient, frame: dict[str, Any]) -> dict[str, dict[str, Any]]:
    scopes = c.ok("scopes", frameId=frame["id"])["scopes"]
    assert scopes[0]["name"] == "Locals"
    return {v["name"]: v for v in c.ok("variables", variablesReference=scopes[0]["variablesReference"])["variables"]}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_breakpoint_step_evaluate_expand_continue(tmp_path: Path, lang: str) -> None:
    program = PROGRAMS[lang.removesuffix("-sandboxed")]
    c, proc, path = start(tmp_path, lang, call=f"{program.call_prefix}main", args=[20])
    try:
        [bp] = c.ok("setBreakpoints", source={"path": str(path)}, breakpoints=[{"line": program.bp}])["breakpoints"]
        assert bp["verified"] and bp["line"] == program.bp
        c.ok("configurationDone")
        stopped = c.event("stopped")
        assert stopped["reason"] == "breakpoint"
        thread = stopped["threadId"]
        frame = top(c, thread)
        assert frame["line"] == program.bp and frame["source"]["path"] == str(path.resolve())
        assert local_values(c, frame)["n"]["value"] == "20"
        c.ok("next", threadId=thread)
        assert c.event("stopped")["reason"] == "step"
        c.ok("next", threadId=thread)
        c.event("stopped")
        frame = top(c, thread)
        assert frame["line"] == program.bp + 2
        values = local_values(c, frame)
        assert values["total"]["value"] == "41", values
        assert c.ok("evaluate", expression="double", frameId=frame["id"], context="watch")["result"] == "40"
        c.ok("next", threadId=thread)
        c.event("stopped")
        items = local_values(c, top(c, thread))["items"]
        assert items["variablesReference"] > 0
        expanded = c.ok("variables", variablesReference=items["variablesReference"])["variables"]
        assert [v["value"] for v in expanded] == ["1", "2", "3"]
        c.ok("continue", threadId=thread)
        assert c.event("exited")["exitCode"] == 0
        assert any(e["event"] == "output" and "main done" in e["body"]["output"] for e in c.seen)
    finally:
        finish(c, proc)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_conditional_breakpoint_never_hit(tmp_path: Path, lang: str) -> None:
    program = PROGRAMS[lang.removesuffix("-sandboxed")]
    never = {"lua": "n > 1000", "javascript": "n > 1000", "python": "n > 1000", "lisp": "(> n 1000)", "wren": "n > 1000"}
    c, proc, path = start(tmp_path, lang, call=f"{program.call_prefix}main", args=[3])
    try:
        condition = never[lang.removesuffix("-sandboxed")]
        c.ok("setBreakpoints", source={"path": str(path)}, breakpoints=[{"line": program.bp, "condition": condition}])
        c.ok("configurationDone")
        assert c.event("exited")["exitCode"] == 0
        assert not any(e["event"] == "stopped" for e in c.seen)
    finally:
        finish(c, proc)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_pause_an_endless_loop(tmp_path: Path, lang: str) -> None:
    program = PROGRAMS[lang.removesuffix("-sandboxed")]
    c, proc, path = start(tmp_path, lang, call=f"{program.call_prefix}spin")
    try:
        c.ok("configurationDone")
        for _ in range(10):  # the program may still be loading (a busy machine, a worker starting): pause again
            time.sleep(0.5)
            threads = c.ok("threads")["threads"]
            c.ok("pause", threadId=threads[0]["id"])
            stopped = c.event("stopped")
            assert stopped["reason"] == "pause"
            frame = top(c, stopped["threadId"])
            if "spin" in frame["name"]:
                break
            c.ok("continue", threadId=stopped["threadId"])
        assert "spin" in frame["name"]
    finally:
        finish(c, proc)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_uncaught_error_shown_at_its_line(tmp_path: Path, lang: str) -> None:
    program = PROGRAMS[lang.removesuffix("-sandboxed")]
    c, proc, path = start(tmp_path, lang, call=f"{program.call_prefix}fail")
    try:
        c.ok("setExceptionBreakpoints", filters=["uncaught"])
        c.ok("configurationDone")
        stopped = c.event("stopped")
        assert stopped["reason"] == "exception" and "it broke" in stopped.get("text", "")
        assert top(c, stopped["threadId"])["line"] == program.fail_line
        c.ok("continue", threadId=stopped["threadId"])
        assert c.event("exited")["exitCode"] == 70
    finally:
        finish(c, proc)


MODEL_LUA = 'function run(x)\n  local y = kryon.call("view.render", x)\n  return y + 1\nend\n'


def _stopped_inside_the_callee(tmp_path: Path, view: str, source: str, sandbox: bool = False
                               ) -> tuple[Any, Any, int, list[dict]]:
    """A Lua app calling ``view`` (file name, source) through kryon.call, under `kryon debug`
    (sandboxed with ``sandbox``), stopped at a breakpoint on line 2 of the view:
    (process, client, thread, stack frames)."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "model.lua").write_text(MODEL_LUA)
    (app / view).write_text(source)
    (app / "app.json").write_text(f'{{"scripts": ["{view}", "model.lua"], "events": [{{"call": ["model.run", 4]}}]}}')
    code = "import sys; from kryon_core.cli import main; sys.exit(main(['debug']))"
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    c = DapClient(proc.stdout, proc.stdin)  # type: ignore[arg-type]
    try:
        c.ok("initialize", adapterID="kryon")
        c.ok("launch", program=str(app), sandbox=sandbox)
        c.event("initialized")
        c.ok("setBreakpoints", source={"path": str(app / view)}, breakpoints=[{"line": 2}])
        c.ok("configurationDone")
        thread = c.event("stopped")["threadId"]
        return proc, c, thread, c.ok("stackTrace", threadId=thread)["stackFrames"]
    except BaseException:
        finish(c, proc)
        raise


@pytest.mark.skipif(not {"lua", "javascript"} <= DEBUGGABLE, reason="needs Lua and JavaScript debug targets")
def test_lua_calling_javascript_stops_inside_and_steps_out(tmp_path: Path) -> None:
    proc, c, thread, frames = _stopped_inside_the_callee(
        tmp_path, "view.js", "function render(x) {\n  const shown = x * 10;\n  return shown;\n}\n")
    try:
        assert [(f["source"]["name"], f["line"]) for f in frames[:2]] == [("view.js", 2), ("model.lua", 2)]
        c.ok("stepOut", threadId=thread)
        c.event("stopped")
        frame = top(c, thread)
        assert (frame["source"]["name"], frame["line"]) in {("model.lua", 2), ("model.lua", 3)}
        c.ok("continue", threadId=thread)
        c.event("terminated")
    finally:
        finish(c, proc)


@pytest.mark.skipif(not {"lua", "python"} <= DEBUGGABLE, reason="needs Lua and Python debug targets")
@pytest.mark.parametrize("sandbox", [False, True], ids=["trusted", "sandboxed"])
def test_lua_calling_python_stops_inside_and_steps_out(tmp_path: Path, sandbox: bool) -> None:
    proc, c, thread, frames = _stopped_inside_the_callee(
        tmp_path, "view.py", "def render(x):\n    shown = x * 10\n    return shown\n", sandbox)
    try:
        assert [(f["source"]["name"], f["line"]) for f in frames[:2]] == [("view.py", 2), ("model.lua", 2)]
        lua_locals = local_values(c, frames[1])
        assert lua_locals["x"]["value"] == "4"
        c.ok("stepOut", threadId=thread)
        c.event("stopped")
        frame = top(c, thread)
        assert (frame["source"]["name"], frame["line"]) == ("model.lua", 3)
        assert local_values(c, frame)["y"]["value"] == "40"
        c.ok("continue", threadId=thread)
        c.event("terminated")
    finally:
        finish(c, proc)
