"""The debugger's side of isolated workers: scripts in worker processes are
debugged inside their workers (``worker_debug.py`` there), and this host side
turns the worker's events and answers into the debugger's terms.

- **Modes** go to a worker on the next message the host sends it (``"dm"``);
  a worker running a script does not read the channel, so it also gets
  ``SIGUSR1``, which makes it report its next line and take the new mode
  from the reply (an endless loop pauses).
- **Events**: a line or a raised error is a ``dbg`` request from the worker,
  served on the thread that waits for the worker (the thread that called the
  script), where the debugger may stop. While it is stopped the call's
  deadline is suspended (the worker pauses its own timer too) and moved by
  the time spent stopped; calls and returns come as counts (``dev``).
- **Questions** (frames, scopes, children, evaluate) are requests to the
  worker, which serves them while it waits for its event's (or callback's)
  answer. Every worker waiting on this thread answers: a stack through
  sandboxed Python, Lua and sandboxed Lisp shows each worker's frames.
  Handles are :class:`WorkerRef` (a worker and its reference number), valid
  while the thread stays stopped. Evaluation runs in the worker under the
  script's guard, builtins and time limit.
"""

from __future__ import annotations

import os
import re
import signal
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..debug.target import DebugEvents, DebugTarget, FrameInfo, ScopeInfo, TraceMode, ValueInfo
from ..errors import ScriptError, ScriptRuntimeError
from .process import CONTROL_TIMEOUT, WATCHDOG, WorkerDied, WorkerProcess, kill_after

if TYPE_CHECKING:
    from .host import IsolatedRuntime

__all__ = ["WorkerRef", "WorkerDebugHost"]

_NAME_ERROR = re.compile(r"NameError: name '([^']*)' is not defined")


@dataclass(frozen=True)
class WorkerRef:
    """A frame, scope or value inside a worker: ``ref`` is the worker's own
    number for it, valid while the thread stays stopped."""

    proc: WorkerProcess
    ref: int
    variables: bool = False  # a scope: its children are variables, named as the language spells them


class WorkerDebugHost:
    """One engine's workers under the debugger (``IsolatedRuntime.debug``).

    ``target`` is the engine's debug target (the events name it);
    ``frame_name`` and ``spelling`` name functions and variables as the
    language does; ``describe`` words an exception as the language's errors do."""

    def __init__(
        self,
        target: DebugTarget,
        *,
        frame_name: Callable[[str], str] = str,
        spelling: Callable[[str], str] = str,
        describe: Callable[[BaseException], str] | None = None,
    ) -> None:
        self.target = target
        self.language = target.language
        self.frame_name = frame_name
        self.spelling = spelling
        self.describe = describe
        self.events: DebugEvents | None = None
        self.runtime: "IsolatedRuntime | None" = None
        self.version = 1
        self.payload: dict[str, Any] = {"m": TraceMode.OFF.value, "l": {}}
        self._told: "weakref.WeakKeyDictionary[WorkerProcess, int]" = weakref.WeakKeyDictionary()

    # -- attaching, modes ---------------------------------------------------------------------
    def bind(self, runtime: "IsolatedRuntime") -> None:
        """Serve ``runtime``'s workers (its ``debug`` hook)."""
        self.runtime = runtime
        runtime.debug = self

    def attach(self, events: DebugEvents) -> None:
        self.events = events

    def detach(self) -> None:
        """Every worker is told to stop tracing (on its next message, or
        signalled if it is running); the hook comes off once all were told."""
        self.events = None
        self.set_mode(TraceMode.OFF, {})

    def set_mode(self, mode: TraceMode, lines: Mapping[str, frozenset[int]]) -> None:
        self.payload = {"m": mode.value, "l": {s: sorted(ls) for s, ls in lines.items()}}
        self.version += 1
        runtime = self.runtime
        if runtime is None:
            return
        for proc in runtime.workers():
            if proc.depth > 0:  # running a call: it reads no message until it asks the host something
                try:
                    os.kill(proc.pid, signal.SIGUSR1)
                except OSError:
                    pass
        self._release_if_done()

    def outgoing(self, proc: WorkerProcess, msg: dict[str, Any]) -> None:
        """Called for every message the host sends a worker: the mode goes
        along when the worker has not seen it yet."""
        if self._told.get(proc) != self.version:
            msg["dm"] = self.payload
            self._told[proc] = self.version
            if self.events is None:
                self._release_if_done()

    def _release_if_done(self) -> None:
        """Detached, and every live worker told so: the hook comes off."""
        runtime = self.runtime
        if self.events is not None or runtime is None or runtime.debug is not self:
            return
        if all(self._told.get(p) == self.version for p in runtime.workers()):
            runtime.debug = None

    # -- events from a worker (on the thread waiting for it) -------------------------------------
    def calls(self, proc: WorkerProcess, msg: dict[str, Any]) -> None:
        events = self.events
        d = msg.get("d")
        if events is None or not isinstance(d, int):
            return
        for _ in range(min(abs(d), 100_000)):
            if d > 0:
                events.call(self.target)
            else:
                events.ret(self.target)

    def event(self, proc: WorkerProcess, msg: dict[str, Any]) -> None:
        """A line about to run or an error raised in the worker: the debugger
        decides here whether to stop, the call's deadline suspended meanwhile."""
        events = self.events
        if events is None:
            return None
        script, line = msg.get("s"), msg.get("l")
        if not isinstance(script, str) or not isinstance(line, int):
            return None
        deadline, standby_at = proc.deadline, proc.standby_at
        proc.deadline = proc.standby_at = None
        start = time.monotonic()
        try:
            if msg.get("e") == "line":
                events.line(self.target, script, line)
            elif msg.get("e") == "exc":
                text = self._describe(str(msg.get("x") or "Error"), str(msg.get("m") or ""), msg.get("n"))
                events.exception(self.target, ScriptRuntimeError(text, language=self.language, script=script, line=line))
        finally:
            stopped = time.monotonic() - start
            if deadline is not None:
                proc.deadline = deadline + stopped
            if standby_at is not None:
                proc.standby_at = standby_at + stopped
        return None

    def _describe(self, kind: str, text: str, name: Any) -> str:
        if kind == "NameError" and isinstance(name, str) and self.describe is not None:
            error = NameError(f"name '{name}' is not defined")
            error.name = name
            return self.describe(error)
        return f"{kind}: {text}" if text else kind

    # -- the debugger's questions (on the stopped thread) ---------------------------------------------
    def frames(self) -> list[list[FrameInfo]]:
        """Each worker waiting on this thread: its activations, innermost first."""
        runtime = self.runtime
        if runtime is None or self.events is None:
            return []
        groups: list[list[FrameInfo]] = []
        seen: set[int] = set()
        for proc in reversed(runtime.serving()):
            if id(proc) in seen or proc.dead is not None:
                continue
            seen.add(id(proc))
            try:
                raw = self._ask(proc, {"q": "frames"})
            except ScriptError:
                continue  # a worker that died while stopped shows no frames
            for group in raw if isinstance(raw, list) else ():
                out = [info for info in (self._frame(proc, f) for f in group if isinstance(f, list)) if info is not None]
                if out:
                    groups.append(out)
        return groups

    def _frame(self, proc: WorkerProcess, raw: list[Any]) -> FrameInfo | None:
        if len(raw) < 5 or not isinstance(raw[4], int):
            return None
        name, script, line, column = raw[0], raw[1], raw[2], raw[3]
        shown = "<top level>" if name == "<module>" else self.frame_name(str(name))
        return FrameInfo(
            shown,
            str(script) if script is not None else None,
            line if isinstance(line, int) else None,
            column if isinstance(column, int) else None,
            WorkerRef(proc, raw[4]),
        )

    def scopes(self, frame: FrameInfo) -> list[ScopeInfo]:
        ref: WorkerRef = frame.handle
        raw = self._ask(ref.proc, {"q": "scopes", "r": ref.ref})
        out = []
        for item in raw if isinstance(raw, list) else ():
            if isinstance(item, list) and len(item) == 3 and isinstance(item[1], int):
                out.append(ScopeInfo(str(item[0]), WorkerRef(ref.proc, item[1], True), bool(item[2])))
        return out

    def children(self, handle: WorkerRef) -> list[ValueInfo]:
        raw = self._ask(handle.proc, {"q": "children", "r": handle.ref})
        return [v for v in (self._value(handle.proc, item) for item in (raw if isinstance(raw, list) else ())) if v]

    def evaluate(self, frame: FrameInfo, expression: str) -> ValueInfo:
        ref: WorkerRef = frame.handle
        try:
            raw = self._ask(ref.proc, {"q": "evaluate", "r": ref.ref, "x": expression})
        except ScriptError as exc:
            match = _NAME_ERROR.fullmatch(exc.message)
            if match is not None and self.describe is not None:
                exc.message = self._describe("NameError", "", match.group(1))
                exc.args = (exc.message,)
            raise
        value = self._value(ref.proc, raw)
        if value is None:
            raise ScriptRuntimeError("the worker sent a malformed evaluation", language=self.language,
                                     script=frame.script)
        return value

    def _value(self, proc: WorkerProcess, raw: Any) -> ValueInfo | None:
        if not (isinstance(raw, list) and len(raw) == 6):
            return None
        name, text, type_name, ref, count, variable = raw
        shown = self.spelling(str(name)) if variable else str(name)
        handle = WorkerRef(proc, ref) if isinstance(ref, int) and ref > 0 else None
        return ValueInfo(shown, str(text), str(type_name), handle, count if isinstance(count, int) else None)

    def _ask(self, proc: WorkerProcess, question: dict[str, Any]) -> Any:
        """A question to a worker waiting on this thread, with a deadline of
        its own (an evaluation may loop): past it, the worker is killed."""
        limit = proc.policy.time_limit
        saved = proc.deadline
        proc.deadline = time.monotonic() + (kill_after(limit) if limit else CONTROL_TIMEOUT)
        WATCHDOG.watch(proc)
        try:
            return proc.request(dict(question, t="dq"), limit=None)
        except WorkerDied as dead:
            raise ScriptRuntimeError(f"the script's worker is gone ({dead})", language=self.language,
                                     script=proc.script_id) from None
        finally:
            if proc.dead is None:
                proc.deadline = saved
