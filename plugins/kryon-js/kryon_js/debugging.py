"""The debugger's target for JavaScript (``JSEngine.debug_target()``).

QuickJS has no line hook, so a script loaded while a debugger is attached
runs a rewritten copy of its source with a probe before every statement
(:mod:`kryon_js.probes`); ``debugger.js``, run in the script's context first,
defines the probes. A probe keeps a stack of the frames that run (each with
its last statement and an evaluator: a direct ``eval`` in the statement's
scope) and calls the host only when its statement is wanted: every one
while stepping or pausing, those on breakpoint lines otherwise. Scripts
loaded without a debugger run their source as it is, at full speed.

What the debugger wants changes from any thread (a pause comes from the DAP
server's): this side bumps a generation number, and each script's probes
ask for it every 256 statements and whenever the host enters the script,
so an endless loop sees a pause at once. Each host entry into a debugged
script goes through :class:`_DebugGate`, which marks it on the probe stack
(frames are grouped by entry) and hands the probes the current wish and reports a call and a return while the
debugger steps, so stepping out of JavaScript stops back in its caller.

Variables and evaluation run through the frame's evaluator, in the script's
own context and under its own policy: a sandboxed script's evaluation reaches
what the script reaches. Every question gets a budget of 2 s (the script's
deadline is set aside meanwhile), and the time a script spends stopped is
added to its deadline.

Errors: every function body is wrapped in a ``catch`` that reports an error
leaving it (once per error, while the frames where it was raised are still
on the probe stack) and throws it on; a catch clause reports what it caught.
So ``raised`` stops where the error was raised with its variables, and an
uncaught error shows those frames. Limits: an error thrown and caught by
the host's own code between two scripts is reported as it leaves the
script. Scripts loaded before the debugger
attached are not debugged (reload them). Arrow functions with an expression
body have no statements and so no frame of their own.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import threading
import time
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

from kryon_core import ScriptError, ScriptRuntimeError
from kryon_core.debug.target import FrameInfo, PolledDebugTarget, ScopeInfo, TraceMode, ValueInfo

from .errors import parse_stack
from .plugin import LANGUAGE
from .probes import RewriteError, Rewritten, code_lines, rewrite
from .runtime import BINDING_ERRORS, INF

if TYPE_CHECKING:
    from .engine import JSEngine
    from .state import ScriptState

__all__ = ["JSDebugTarget"]

#: an expression evaluated in the debugger (or a listing of values) runs at most this long (seconds)
EVALUATION_BUDGET = 2.0
DEBUGGER_SOURCE = resources.files("kryon_js").joinpath("debugger.js").read_text(encoding="utf-8")
_MODES = {TraceMode.OFF: 0, TraceMode.BREAKPOINTS: 1, TraceMode.EVERY_LINE: 2}
_HELPERS = ("enter", "frames", "scope", "children", "evaluate")


class _Debugged:
    """One script context running a rewritten source: its probes and the
    helpers ``debugger.js`` returned."""

    enter: Any
    frames: Any
    scope: Any
    children: Any
    evaluate: Any

    def __init__(self, state: "ScriptState", rewritten: Rewritten) -> None:
        self.state = state
        self.script = state.script
        self.rewritten = rewritten
        self.wish: tuple[int, str] = (-1, "")  # (generation, the wish text made for it)
        self.sent = -1  # the generation last handed to the probes


class _DebugGate:
    """A debugged script's gate: every host entry is an activation (see
    :meth:`JSDebugTarget._activation`); everything else is the real gate's."""

    __slots__ = ("_gate", "_target", "_debugged")

    def __init__(self, gate: Any, target: "JSDebugTarget", debugged: _Debugged) -> None:
        self._gate, self._target, self._debugged = gate, target, debugged

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._target._events is None:
            return self._gate.run(fn, *args)
        return self._gate.run(self._target._activation, self._debugged, fn, args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._gate, name)


class JSDebugTarget(PolledDebugTarget):
    """See the module docstring."""

    language = LANGUAGE

    def __init__(self, engine: "JSEngine") -> None:
        super().__init__()
        self._engine = engine
        # .stop: the _Debugged this thread stopped in; .active: host entries into debugged
        # scripts, outermost first; .depth: the probe depth of the last line reported
        self._local = threading.local()

    # -- attaching and modes: PolledDebugTarget's (probes poll the generation; detaching leaves
    # scripts their rewritten source, and a reload runs the original again) -------------------
    def prepare(self, state: "ScriptState", source: str) -> None:
        """Called by the engine for a new script context before its top level
        runs: while a debugger is attached, the context gets the probes and
        ``state.debug_source`` the rewritten source."""
        if self._events is None:
            return
        try:
            rewritten = rewrite(source)
        except RewriteError:
            return  # QuickJS reports the syntax error when the original compiles
        debugged = _Debugged(state, rewritten)
        try:
            state.gate.run(self._install, debugged)
        except BINDING_ERRORS:  # no room for the debugger (a tiny memory limit): the script runs undebugged
            return
        state.debug_source = rewritten.source
        state.gate = _DebugGate(state.gate, self, debugged)  # type: ignore[assignment]
        state.callers.clear()

    def _install(self, debugged: _Debugged) -> None:
        ctx = debugged.state.ctx
        ctx.add_callable("__kryon_dbgline", functools.partial(self._on_line, debugged))
        ctx.add_callable("__kryon_dbgsync", functools.partial(self._wish, debugged))
        ctx.add_callable("__kryon_dbgraised", functools.partial(self._on_raised, debugged))
        get = ctx.eval(DEBUGGER_SOURCE)
        for name in _HELPERS:
            setattr(debugged, name, get(name))

    # -- called from the probes (on the script's thread) ---------------------------------------
    def _wish(self, debugged: _Debugged, generation: float) -> str:
        """"" when the script's probes know the current wish, else
        "generation;mode;probe ids to stop at"."""
        current = self._generation
        if int(generation) == current:
            return ""
        debugged.sent = current
        if debugged.wish[0] != current:
            mode = _MODES[self._mode] if self._events is not None else 0
            lines = self._lines.get(debugged.script, frozenset()) if mode == 1 else frozenset()
            ids = ",".join(str(i) for i, p in enumerate(debugged.rewritten.probes) if p.line in lines)
            debugged.wish = (current, f"{current};{mode};{ids}")
        return debugged.wish[1]

    def _on_line(self, debugged: _Debugged, pid: float, depth: float) -> None:
        events = self._events
        probes = debugged.rewritten.probes
        if events is None or not 0 <= int(pid) < len(probes):
            return
        probe, depth = probes[int(pid)], int(depth)
        local = self._local
        if self._mode is TraceMode.EVERY_LINE:
            last = getattr(local, "depth", None)
            if last is not None:
                for _ in range(depth - last):
                    events.call(self)
                for _ in range(last - depth):
                    events.ret(self)
        elif probe.line not in self._lines.get(debugged.script, ()):
            return
        local.depth = depth  # where a step from a stop here counts from
        chain = debugged.state.host.chain
        outer = getattr(local, "stop", None)
        local.stop = debugged
        started, saved = time.monotonic(), chain.deadline
        chain.deadline = INF  # no deadline while stopped: the watchdog must not cut the runtime (cutoff.py)
        try:
            events.line(self, debugged.script, probe.line)
        finally:
            local.stop = outer
            if saved != INF:  # time spent stopped is not the script's
                saved += time.monotonic() - started
            chain.deadline = saved

    def _on_raised(self, debugged: _Debugged, text: str) -> None:
        """An error left a function or entered a catch clause (see debugger.js):
        the ``exception`` event, with the frames where it was raised."""
        events = self._events
        if events is None:
            return
        name, message, stack, depth = json.loads(text)
        at = next((f for f in parse_stack(stack, debugged.script, input_is_script=debugged.state.input_is_script)
                   if f.script == debugged.script), None)
        local = self._local
        err = ScriptRuntimeError(f"{name}: {message}" if message else name, language=LANGUAGE,
                                 script=debugged.script, line=at.line if at else None,
                                 column=at.column if at else None)
        outer = getattr(local, "stop", None), getattr(local, "raised_at", None)
        local.stop, local.raised_at = debugged, (at.line, at.column) if at else None
        local.depth = int(depth)
        chain = debugged.state.host.chain
        started, saved = time.monotonic(), chain.deadline
        chain.deadline = INF
        try:
            events.exception(self, err)
        finally:
            local.stop, local.raised_at = outer
            if saved != INF:
                saved += time.monotonic() - started
            chain.deadline = saved

    def _activation(self, debugged: _Debugged, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """A host entry into a debugged script: marked on its probe stack, and
        reported as a call and a return while the debugger steps (line depths
        count afresh inside)."""
        local = self._local
        active = local.__dict__.setdefault("active", [])
        outer = getattr(local, "depth", None)
        local.depth = None
        events = self._events
        if events is not None and self._mode is TraceMode.EVERY_LINE:
            events.call(self)
        state = debugged.state
        if not state.closed:
            level = sum(1 for d in active if d is debugged)
            try:
                debugged.enter(level, self._wish(debugged, debugged.sent))
            except BINDING_ERRORS:  # the deadline fired: the entry itself fails the same way
                pass
        active.append(debugged)
        try:
            return fn(*args)
        finally:
            active.pop()
            local.depth = outer
            events = self._events
            if events is not None and self._mode is TraceMode.EVERY_LINE:
                events.ret(self)

    # -- breakpoint lines -----------------------------------------------------------------------
    def resolve_line(self, script: str, source: str, line: int) -> int | None:
        try:
            lines = code_lines(source)
        except RewriteError:
            return None
        after = [n for n in lines if n >= line]
        return after[0] if after else None

    # -- inspection (on the stopped thread) -----------------------------------------------------
    def _ask(self, debugged: _Debugged, helper: str, *args: Any) -> Any:
        """A question to ``debugger.js``, its JSON answer decoded; it runs with a
        budget of its own (the script's deadline is put back afterwards)."""
        chain = debugged.state.host.chain
        saved = chain.deadline, chain.extended
        chain.deadline, chain.extended = time.monotonic() + EVALUATION_BUDGET, 0.0
        try:
            return json.loads(getattr(debugged, helper)(*args))
        except BINDING_ERRORS as exc:
            err = debugged.state.host.binding_error(debugged.state, exc)
            raise ScriptRuntimeError(err.message, language=LANGUAGE, script=debugged.script) from None
        finally:
            chain.deadline, chain.extended = saved

    def frames(self) -> list[list[FrameInfo]]:
        active: list[_Debugged] = list(getattr(self._local, "active", ()))
        if not active:
            return []
        groups: dict[int, list[list[list[int]]]] = {}
        cursor: dict[int, int] = {}
        out: list[list[FrameInfo]] = []
        for debugged in reversed(active):  # innermost entry first
            key = id(debugged)
            if key not in groups:
                groups[key] = self._ask(debugged, "frames")
                cursor[key] = 0
            mine = groups[key]
            k = cursor[key]
            cursor[key] = k + 1
            if k >= len(mine):
                continue
            rewritten = debugged.rewritten
            frames = []
            for index, pid in mine[k]:
                if not 0 <= pid < len(rewritten.probes):  # a probe call the script made up
                    continue
                probe = rewritten.probes[pid]
                frames.append(FrameInfo(rewritten.functions[probe.function], debugged.script, probe.line,
                                        probe.column, (debugged, index, probe)))
            out.append(frames)
        raised_at = getattr(self._local, "raised_at", None)
        if raised_at is not None and out and out[0]:  # the raise's own position, not its statement's
            out[0][0] = dataclasses.replace(out[0][0], line=raised_at[0], column=raised_at[1])
        return out

    def scopes(self, frame: FrameInfo) -> list[ScopeInfo]:
        debugged, index, probe = frame.handle
        out = [ScopeInfo("Locals", (debugged, "scope", index, probe.names("Locals")))]
        for name in ("Closure", "Globals"):
            names = probe.names(name)
            if names:
                out.append(ScopeInfo(name, (debugged, "scope", index, names), expensive=name == "Globals"))
        return out

    def children(self, handle: Any) -> list[ValueInfo]:
        debugged, kind, *rest = handle
        if kind == "scope":
            entries = self._ask(debugged, "scope", rest[0], json.dumps(rest[1]))
        else:
            entries = self._ask(debugged, "children", rest[0])
        return [self._value(debugged, e) for e in entries]

    @staticmethod
    def _value(debugged: _Debugged, entry: dict[str, Any]) -> ValueInfo:
        ref = entry["r"]
        return ValueInfo(entry["n"], entry["v"], entry["t"], (debugged, "ref", ref) if ref else None, entry["c"])

    def evaluate(self, frame: FrameInfo | None, expression: str) -> ValueInfo:
        if frame is None or frame.handle is None:
            raise ScriptRuntimeError("no JavaScript frame to evaluate in", language=LANGUAGE)
        debugged, index, _ = frame.handle
        result = self._ask(debugged, "evaluate", index, expression)
        if not result["ok"]:
            raise ScriptRuntimeError(str(result["error"]), language=LANGUAGE, script=debugged.script)
        return self._value(debugged, result["entry"])


def available() -> bool:
    """Whether the parser the probes need is installed."""
    try:
        rewrite("0")
    except (ImportError, ScriptError):  # pragma: no cover - a dependency of kryon-js
        return False
    return True
