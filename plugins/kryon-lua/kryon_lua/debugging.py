"""The debugger's target for Lua (``LuaEngine.debug_target()``).

Lua's own debug library does the work: ``debugger.lua`` (loaded into each
Lua runtime once a debugger attaches) installs a hook on every Lua thread
that reports lines, calls and returns, and answers questions about the
stopped thread with ``debug.getinfo``, ``getlocal`` and ``getupvalue``;
expressions run through ``load`` with an environment that resolves the
frame's locals, upvalues, then the script's own environment. The runtime's
own hook (the sandbox's count hook keeping the time limit, its call hook
keeping the recursion limit) still gets every event it asked for, and the
time a thread spends stopped is added to its deadline.

What the debugger wants changes from any thread (a pause comes from the DAP
server's). This side never enters a runtime another thread may be running
in: it bumps a generation number, and each Lua thread's hook asks for it on
count events and whenever the host enters Lua, then fetches the new state.

Breakpoint lines are resolved without running anything: the source is
compiled in a private Lua state and the line table of every function is read
from its ``string.dump`` (:func:`code_lines`). Lua 5.4 only: LuaJIT cannot
walk the stack past a host call, so its runtimes are not debugged.

Raised errors: Lua has no hook for them, so while attached the scripts'
``error``/``assert`` report before raising and their ``pcall``/``xpcall``
run with a message handler that reports where the error was raised, the
stack still there (``on_raise``); so do the host's own calls into Lua (the
prelude's message handlers, ``K.boundary_call`` for a state without a cap).
Not reported where raised: VM errors ``coroutine.resume`` catches (the
``uncaught`` stop shows the line the message names).
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import TYPE_CHECKING, Any

from kryon_core import ScriptError, ScriptRuntimeError
from kryon_core.debug.target import DebugEvents, FrameInfo, PolledDebugTarget, ScopeInfo, TraceMode, ValueInfo

from .linetable import code_lines
from .plugin import LANGUAGE

if TYPE_CHECKING:
    from .engine import LuaEngine
    from .runtime import Runtime

__all__ = ["LuaDebugTarget"]

CHUNK_NAME = "=kryon-debug"
#: an expression evaluated in the debugger runs at most this long (CPU seconds)
EVALUATION_BUDGET = 2.0
_MODES = {TraceMode.OFF: "off", TraceMode.BREAKPOINTS: "breakpoints", TraceMode.EVERY_LINE: "every"}
_PACKAGE_DIR = str(resources.files("kryon_lua"))
#: "script:line: message", as Lua positions an error message
_POSITION = re.compile(r"^(?P<src>[^\n]*?):(?P<line>\d+): (?P<msg>.*)$", re.S)


class LuaDebugTarget(PolledDebugTarget):
    """See the module docstring."""

    language = LANGUAGE

    def __init__(self, engine: "LuaEngine") -> None:
        super().__init__()
        self._engine = engine
        self._helpers: dict[int, tuple["Runtime", Any, Any]] = {}  # id(runtime) -> (runtime, D.ask, D.install)
        self._local = threading.local()  # .stop: (runtime, Lua thread) where this thread stopped in Lua

    # -- attaching and modes ---------------------------------------------------------------
    def attach(self, events: DebugEvents) -> None:
        super().attach(events)
        for rt in self._engine._states():
            self.runtime_created(rt)

    # detach (PolledDebugTarget's): hooks come off each Lua thread at its next event (this
    # thread may not enter a runtime another one is running in)

    def runtime_created(self, rt: "Runtime") -> None:
        """Called by the engine for each Lua runtime it makes (and on attach)."""
        if self._events is None or rt.key.jit:
            return
        entry = self._helpers.get(id(rt))
        if entry is None:
            source = resources.files("kryon_lua").joinpath("debugger.lua").read_text(encoding="utf-8")
            helpers = rt.lua.execute(
                source, self._poll, self._fetch, self._line_reporter(rt), self._on_call, self._on_return,
                self._script_env, self._raise_reporter(rt), rt.helpers.base, rt.helpers.is_limit,
                rt.helpers.set_boundary_handler, rt.helpers.raw_resume, name=CHUNK_NAME,
            )
            entry = self._helpers[id(rt)] = (rt, helpers.ask, helpers.install)
        rt.debugged = True
        entry[2]()

    def runtime_released(self, rt: "Runtime") -> None:
        """Called by the engine when a state goes (a sandboxed script's own, at
        unload or after a reload): the debugger forgets it."""
        self._helpers.pop(id(rt), None)

    # -- called from the hook (on the script's thread) ----------------------------------------
    def _poll(self) -> int:
        return self._generation

    def _fetch(self) -> tuple[str, str, bool]:
        """The mode, the breakpoint lines ("=script<TAB>1,2" per line of text)
        and whether a debugger is attached. Only strings and numbers go back
        into Lua: see :meth:`_ask`."""
        lines = "\n".join(f"={script}\t{','.join(map(str, sorted(ls)))}" for script, ls in self._lines.items() if ls)
        return _MODES[self._mode], lines, self._events is not None

    def _script_env(self, script: str) -> tuple[Any, Any]:
        """A loaded script's environment and the table its chunk returned
        (None while its top level runs: the frame's own ``_ENV`` serves then)."""
        state = self._engine._scripts.get(script)
        return (state.env, state.returned) if state is not None else (None, None)

    @contextmanager
    def _stopped_in(self, rt: "Runtime", thread: Any) -> Iterator[None]:
        """While an event may stop the thread: where it stopped (for
        inspection), and the time spent stopped is not counted as the script's."""
        outer = getattr(self._local, "stop", None)
        self._local.stop = (rt, thread)
        started = time.monotonic()
        try:
            yield
        finally:
            self._local.stop = outer
            if rt.deadline:
                rt.deadline += time.monotonic() - started

    def _line_reporter(self, rt: "Runtime") -> Any:
        def on_line(source: str, line: int, thread: Any) -> None:
            events = self._events
            if events is None:
                return
            with self._stopped_in(rt, thread):
                events.line(self, source[1:], int(line))

        return on_line

    def _raise_reporter(self, rt: "Runtime") -> Any:
        """``on_raise(message, thread)``: a script error was raised on the
        thread, whose frames are still there (see ``debugger.lua``)."""
        def on_raise(message: str, thread: Any) -> None:
            events = self._events
            if events is None:
                return
            m = _POSITION.match(message)
            error = ScriptRuntimeError(m["msg"] if m else message, language=LANGUAGE,
                                       script=m["src"] if m else None, line=int(m["line"]) if m else None)
            with self._stopped_in(rt, thread):
                events.exception(self, error)

        return on_raise

    def _on_call(self) -> None:
        if self._events is not None:
            self._events.call(self)

    def _on_return(self) -> None:
        if self._events is not None:
            self._events.ret(self)

    # -- breakpoint lines -----------------------------------------------------------------------
    def resolve_line(self, script: str, source: str, line: int) -> int | None:
        try:
            lines = code_lines(source, script)
        except (ScriptError, ValueError):
            return None
        after = [n for n in lines if n >= line]
        return min(after) if after else None

    # -- inspection (on the stopped thread) -----------------------------------------------------
    def _runtimes_here(self) -> list[tuple["Runtime", Any, Any]]:
        """(runtime, its ``D.ask``, Lua thread it stopped in or None) for each
        runtime this thread is inside: none unless it stopped in Lua or a Lua
        call is on its Python stack (then each runtime whose gate this thread
        holds: another thread may be running in the others)."""
        stop = getattr(self._local, "stop", None)
        if stop is None and not _inside_lua(sys._getframe(1)):
            return []
        out = []
        for rt, ask, _ in list(self._helpers.values()):
            thread = stop[1] if stop is not None and stop[0] is rt else None
            if thread is None and not rt.gate.held():
                continue
            out.append((rt, ask, thread))
        out.sort(key=lambda item: item[2] is None)  # the runtime it stopped in first
        return out

    @staticmethod
    def _ask(ask: Any, *args: Any) -> Any:
        """A question to ``debugger.lua`` (``D.ask``), its JSON answer decoded.

        While a coroutine is stopped, lupa reads the results of any call it
        makes into the runtime from the bottom of the main thread's current
        frame, which holds the resumed coroutine: values come back with
        others in front of them. Every answer is therefore one string, the
        last value, and no Lua object is handed out (they stay in Lua, by number)."""
        answer = ask(*args)
        if isinstance(answer, tuple):
            answer = answer[-1]
        return json.loads(answer)

    def frames(self) -> list[list[FrameInfo]]:
        groups: list[list[FrameInfo]] = []
        for _rt, ask, thread in self._runtimes_here():
            current: list[FrameInfo] = []
            group = None
            for f in self._ask(ask, "frames", thread):
                if group is not None and f["group"] != group and current:
                    groups.append(current)
                    current = []
                group = f["group"]
                line = f["line"]
                current.append(FrameInfo(f["name"], f["source"][1:], line if line and line > 0 else None, None,
                                         (ask, f["id"])))
            if current:
                groups.append(current)
        return groups

    def scopes(self, frame: FrameInfo) -> list[ScopeInfo]:
        ask, frame_id = frame.handle
        return [ScopeInfo(name, (ask, name, frame_id)) for name in self._ask(ask, "scopes", frame_id)]

    def children(self, handle: Any) -> list[ValueInfo]:
        ask, kind, ref = handle
        return [self._value(ask, e) for e in self._ask(ask, kind, ref)]

    @staticmethod
    def _value(ask: Any, entry: dict[str, Any]) -> ValueInfo:
        ref, count = entry["ref"], entry["count"]
        return ValueInfo(entry["name"], entry["text"], entry["type"], (ask, "children", ref) if ref else None,
                         count if count is not False else None)

    def evaluate(self, frame: FrameInfo | None, expression: str) -> ValueInfo:
        if frame is None:
            raise ScriptRuntimeError("no Lua frame to evaluate in", language=LANGUAGE)
        ask, frame_id = frame.handle
        try:
            result = self._ask(ask, "evaluate", frame_id, expression, EVALUATION_BUDGET)
        except Exception as exc:  # a Lua error in the question itself (a frame gone)
            raise ScriptRuntimeError(str(exc), language=LANGUAGE, script=frame.script) from None
        if not result["ok"]:
            message = str(result["error"]).replace("kryon-limit: ", "").replace("kryon-denied:", "")
            raise ScriptRuntimeError(message, language=LANGUAGE, script=frame.script)
        return self._value(ask, result["entry"])


def _inside_lua(frame: Any) -> bool:
    """Whether a call into Lua is on this thread's Python stack (code of this
    package, or the callers it compiles, named ``<kryon-lua ...>``)."""
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(_PACKAGE_DIR) or filename.startswith("<kryon-lua"):
            return True
        frame = frame.f_back
    return False
