"""The debugger: one for every language of a manager (``ScriptManager.debugger()``).

It holds the breakpoints (with conditions and hit counts), the exception
filters, and each thread's run state (running, stepping, stopped). Engines
report lines, calls, returns and errors through their :class:`DebugTarget`;
the debugger decides when to stop. A stopped thread stays inside the engine's
event call and serves the debugger's questions there (``stack``, ``scopes``,
``variables``, ``evaluate``): that is the one thread on which touching the
runtime is safe. Anyone may ask from another thread (the Debug Adapter
Protocol server does); the question is handed to the stopped thread and the
answer handed back.

Stepping counts calls and returns reported by every engine on the thread, so
"step in" on a line that calls another language stops at the callee's first
line, and "step out" of it stops back in the caller, whatever the languages.
The cross-language stack comes from the order in which the thread entered each
runtime (recorded by the engines' gates while a debugger is attached) and each
engine's own frames, grouped by activation.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import threads as _gates
from ..errors import ScriptError, StackFrame
from .target import DebugEvents, DebugTarget, FrameInfo, TraceMode, ValueInfo

if TYPE_CHECKING:
    from ..manager import ScriptManager
    from ..policy import SecurityPolicy

__all__ = ["Debugger", "BreakpointSpec", "Breakpoint", "Stop", "Frame", "Scope", "Variable", "DebugError"]


class DebugError(ScriptError):
    """A debugger request that cannot be answered (no such thread, frame or
    reference; the thread is not stopped)."""


@dataclass(frozen=True)
class BreakpointSpec:
    """A breakpoint as asked for: ``condition`` is an expression in the
    script's language; ``hit_condition`` is ``"N"`` (stop from the Nth hit
    on), or an operator and a number: ``">= N"``, ``"== N"``, ``"> N"``,
    ``"< N"``, ``"<= N"``, ``"% N"`` (every Nth hit)."""

    line: int
    condition: str | None = None
    hit_condition: str | None = None


@dataclass
class Breakpoint:
    """A breakpoint as set: ``line`` is where it landed (``verified`` when
    the line holds code)."""

    id: int
    source: str
    requested_line: int
    line: int | None
    verified: bool
    condition: str | None = None
    hit_condition: str | None = None
    message: str | None = None
    hits: int = 0
    script: str | None = None


@dataclass(frozen=True)
class Stop:
    """Why and where a thread stopped (what a ``stopped`` event says)."""

    thread: int
    reason: str  # "breakpoint", "step", "pause", "exception", "entry"
    description: str = ""
    breakpoints: tuple[int, ...] = ()
    error: ScriptError | None = None


@dataclass(frozen=True)
class Frame:
    id: int
    name: str
    language: str
    script: str | None
    file: str | None
    line: int | None
    column: int | None


@dataclass(frozen=True)
class Scope:
    name: str
    reference: int
    expensive: bool = False


@dataclass(frozen=True)
class Variable:
    name: str
    value: str
    type: str
    reference: int = 0  # 0: no children
    count: int | None = None


_HIT_OPS: dict[str, Callable[[int, int], bool]] = {
    ">=": lambda hits, n: hits >= n,
    "==": lambda hits, n: hits == n,
    "<=": lambda hits, n: hits <= n,
    ">": lambda hits, n: hits > n,
    "<": lambda hits, n: hits < n,
    "%": lambda hits, n: n > 0 and hits % n == 0,
}


def parse_hit_condition(text: str) -> Callable[[int], bool]:
    """The test a hit count must pass, from ``"3"``, ``">= 3"``, ``"% 2"`` ..."""
    stripped = text.strip()
    for op in (">=", "<=", "==", ">", "<", "%"):
        if stripped.startswith(op):
            number = stripped[len(op):].strip()
            break
    else:
        op, number = ">=", stripped
    try:
        n = int(number)
    except ValueError:
        raise DebugError(f"hit condition {text!r} is not a number, optionally after >=, ==, >, <, <= or %") from None
    test = _HIT_OPS[op]
    return lambda hits: test(hits, n)


@dataclass
class _Thread:
    ident: int
    name: str
    step: str | None = None  # "in", "over", "out"
    step_depth: int = 0
    depth: int = 0  # calls minus returns since stepping began
    entry: bool = False  # stop at the next line (stopOnEntry)
    paused: bool = False  # a pause was asked for
    stop: Stop | None = None
    commands: "queue.Queue[tuple[Callable[[], Any], _Answer] | None]" = field(default_factory=queue.Queue)
    target: DebugTarget | None = None
    snapshot: list[tuple[str, FrameInfo]] | None = None  # frames of the last error, for a stop after it unwound


class _Answer:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class Debugger(DebugEvents):
    """See the module docstring. Made by ``ScriptManager.debugger()``."""

    def __init__(self, manager: "ScriptManager") -> None:
        self.manager = manager
        self._lock = threading.RLock()
        self._targets: dict[str, DebugTarget] = {}
        self._breakpoints: dict[str, list[Breakpoint]] = {}  # source (script id or path) -> breakpoints
        self._ids = itertools.count(1)
        self._hit_tests: dict[int, Callable[[int], bool]] = {}
        self._threads: dict[int, _Thread] = {}
        self._refs: dict[int, tuple[int, str, Any]] = {}  # reference -> (thread, language, handle)
        self._frames: dict[int, tuple[int, str, FrameInfo]] = {}  # frame id -> (thread, language, frame)
        self._next_ref = itertools.count(1)
        self.break_on_raised = False
        self.break_on_uncaught = False
        self._pause_all = False
        self._attached = False
        self._starting: dict[str, Any] = {}  # scripts whose top level is about to run, by id
        #: called (on the stopped thread) when a thread stops, and when it goes on
        self.on_stop: Callable[[Stop], None] = lambda stop: None
        self.on_continue: Callable[[int], None] = lambda thread: None
        #: called when a breakpoint's verification changes (a script loaded)
        self.on_breakpoint_changed: Callable[[Breakpoint], None] = lambda bp: None

    # -- attaching ---------------------------------------------------------------------
    def attach(self) -> None:
        """Attach to every engine that exists now (engines created later attach
        as they start, see ``ScriptManager.debugger``)."""
        with self._lock:
            self._attached = True
            _gates.track_entries(True)
            for engine in list(self.manager.engines().values()):
                self.attach_engine(engine)

    def attach_engine(self, engine: Any) -> None:
        target = engine.debug_target()
        if target is None or engine.language in self._targets:
            return
        self._targets[engine.language] = target
        target.attach(self)
        self._apply_mode()

    def detach(self) -> None:
        """Detach from every engine: every hook comes off, stopped threads go on.
        Detaching again does nothing (the gates' entry tracking is counted)."""
        with self._lock:
            if not self._attached:
                return
            self._attached = False
            for target in self._targets.values():
                target.detach()
            self._targets.clear()
            _gates.track_entries(False)
            for t in list(self._threads.values()):
                if t.stop is not None:
                    t.commands.put(None)

    @property
    def languages(self) -> list[str]:
        """Languages whose engine supports debugging and is attached."""
        return sorted(self._targets)

    # -- breakpoints ---------------------------------------------------------------------
    def set_breakpoints(self, source: str, specs: list[BreakpointSpec]) -> list[Breakpoint]:
        """Replace the breakpoints of ``source`` (a script id, or a script's
        file path) with ``specs``; returns where each landed."""
        with self._lock:
            out = []
            for spec in specs:
                bp = Breakpoint(next(self._ids), source, spec.line, None, False, spec.condition, spec.hit_condition)
                if spec.hit_condition:
                    self._hit_tests[bp.id] = parse_hit_condition(spec.hit_condition)
                self._resolve(bp)
                out.append(bp)
            self._breakpoints[source] = out
            self._apply_mode()
            return list(out)

    def breakpoints(self) -> list[Breakpoint]:
        with self._lock:
            return [bp for bps in self._breakpoints.values() for bp in bps]

    def script_starting(self, script: Any) -> None:
        """A script's top level is about to run (``script`` is the manager's
        LoadedScript): breakpoints set on its file take effect before it does."""
        with self._lock:
            self._starting[script.id] = script
            try:
                self.scripts_loaded()
            finally:
                del self._starting[script.id]
            self._apply_mode()

    def scripts_loaded(self) -> None:
        """Resolve breakpoints of sources that were not loaded when set (the
        manager calls this after each load and reload)."""
        with self._lock:
            for bps in self._breakpoints.values():
                for bp in bps:
                    before = (bp.verified, bp.line, bp.script)
                    self._resolve(bp)
                    if (bp.verified, bp.line, bp.script) != before:
                        self.on_breakpoint_changed(bp)
            self._apply_mode()

    def _resolve(self, bp: Breakpoint) -> None:
        """Where ``bp`` lands: in a loaded script, or (for a file not loaded
        yet) in the file's text, so an editor sees the real line at once."""
        script, language, source, policy = self._source_of(bp.source)
        bp.script = script
        if language is None:
            bp.verified, bp.line, bp.message = False, None, "no loaded script or known file type"
            return
        target = self._targets.get(language)
        if target is None and language in self.manager.languages and self._attached:
            self.manager.engine(language)  # starts the engine, which attaches it
            target = self._targets.get(language)
        if target is None:
            bp.verified, bp.line, bp.message = False, None, f"the {language} engine cannot be debugged"
            return
        why = target.refuses(policy)
        if why is not None:
            bp.verified, bp.line, bp.message = False, None, why
            return
        if source is None:
            try:
                with open(bp.source, encoding="utf-8") as f:
                    source = f.read()
            except OSError as exc:
                bp.verified, bp.line, bp.message = False, None, f"cannot read {bp.source}: {exc.strerror}"
                return
        name = script or os.path.splitext(os.path.basename(bp.source))[0]
        line = target.resolve_line(name, source, bp.requested_line)
        bp.line, bp.verified = line, line is not None
        bp.message = None if line is not None else f"no code at or after line {bp.requested_line}"

    def _source_of(self, source: str) -> tuple[str | None, str | None, str | None, "SecurityPolicy"]:
        """(script id, language, source text, policy) of a breakpoint's source:
        a loaded script (by id or file), else a file's language alone (and the
        policy it would load under)."""
        scripts = {**self.manager.scripts, **self._starting}
        loaded = scripts.get(source)
        if loaded is None:
            wanted = os.path.realpath(source)
            for s in scripts.values():
                if s.filename and os.path.realpath(s.filename) == wanted:
                    loaded = s
                    break
        if loaded is not None:
            return loaded.id, loaded.language, loaded.compiled.source, loaded.policy
        try:
            language = self.manager.language_for_file(source)
        except ScriptError:
            return None, None, None, self.manager.policy
        return None, language, None, self.manager.policy

    def set_exception_breakpoints(self, *, uncaught: bool = False, raised: bool = False) -> None:
        """Stop where a script error is raised (``raised``), or when one reaches
        the host unhandled (``uncaught``, shown at the line that raised it)."""
        with self._lock:
            self.break_on_uncaught, self.break_on_raised = uncaught, raised
            self._apply_mode()

    # -- running -------------------------------------------------------------------------
    def stop_on_entry(self, thread: int | None = None) -> None:
        """Stop at the next line the thread (default: the caller's) runs."""
        with self._lock:
            self._thread(thread if thread is not None else threading.get_ident()).entry = True
            self._apply_mode()

    def pause(self, thread: int | None = None) -> None:
        """Stop a running thread (every thread when None) at its next line."""
        with self._lock:
            if thread is None:
                self._pause_all = True
            else:
                self._thread(thread).paused = True
            self._apply_mode()

    def resume(self, thread: int, action: str = "continue") -> None:
        """Let a stopped thread go on: ``"continue"``, ``"next"`` (step over),
        ``"stepIn"`` or ``"stepOut"``."""
        steps = {"continue": None, "next": "over", "stepIn": "in", "stepOut": "out"}
        if action not in steps:
            raise DebugError(f"unknown action {action!r}")
        with self._lock:
            t = self._threads.get(thread)
            if t is None or t.stop is None:
                raise DebugError(f"thread {thread} is not stopped")
            t.step, t.depth, t.step_depth = steps[action], 0, 0
            self._apply_mode()
            t.commands.put(None)

    def resume_all(self) -> None:
        with self._lock:
            for t in self._threads.values():
                if t.stop is not None:
                    t.step = None
                    t.commands.put(None)
            self._pause_all = False
            self._apply_mode()

    def threads(self) -> list[tuple[int, str]]:
        """Threads that ran script code while the debugger was attached."""
        with self._lock:
            return [(t.ident, t.name) for t in self._threads.values()]

    def stopped(self) -> list[Stop]:
        with self._lock:
            return [t.stop for t in self._threads.values() if t.stop is not None]

    def _thread(self, ident: int) -> _Thread:
        t = self._threads.get(ident)
        if t is None:
            name = next((th.name for th in threading.enumerate() if th.ident == ident), f"thread {ident}")
            t = self._threads[ident] = _Thread(ident, name)
        return t

    def _apply_mode(self) -> None:
        every = self._pause_all or any(t.step or t.entry or t.paused for t in self._threads.values())
        lines: dict[str, set[int]] = {}
        for bps in self._breakpoints.values():
            for bp in bps:
                if bp.verified and bp.script is not None and bp.line is not None:
                    lines.setdefault(bp.script, set()).add(bp.line)
        if every:
            mode = TraceMode.EVERY_LINE
        elif lines or self.break_on_raised or self.break_on_uncaught:
            mode = TraceMode.BREAKPOINTS
        else:
            mode = TraceMode.OFF
        frozen = {script: frozenset(ls) for script, ls in lines.items()}
        for target in self._targets.values():
            target.set_mode(mode, frozen)

    # -- events from the engines (on the script's thread) -----------------------------------
    def line(self, target: DebugTarget, script: str, line: int) -> None:
        ident = threading.get_ident()
        with self._lock:
            t = self._thread(ident)
            reason, hit = self._stop_reason(t, target, script, line)
        if reason is not None:
            self._stop_here(t, target, Stop(ident, reason, f"{script}:{line}", hit))

    def _stop_reason(self, t: _Thread, target: DebugTarget, script: str, line: int) -> tuple[str | None, tuple[int, ...]]:
        if t.entry:
            t.entry = False
            return "entry", ()
        if t.paused or self._pause_all:
            t.paused = self._pause_all = False
            return "pause", ()
        if t.step == "in" or (t.step == "over" and t.depth <= 0) or (t.step == "out" and t.depth < 0):
            t.step = None
            return "step", ()
        hits = tuple(
            bp.id for bps in self._breakpoints.values() for bp in bps
            if bp.verified and bp.script == script and bp.line == line and self._passes(bp, target)
        )
        return ("breakpoint", hits) if hits else (None, ())

    def _passes(self, bp: Breakpoint, target: DebugTarget) -> bool:
        if bp.condition:
            try:
                frames = target.frames()
                if not self._truthy(target.evaluate(frames[0][0] if frames and frames[0] else None, bp.condition)):
                    return False
            except ScriptError:
                return False  # a condition that fails to evaluate does not stop
        bp.hits += 1
        test = self._hit_tests.get(bp.id)
        return test is None or test(bp.hits)

    @staticmethod
    def _truthy(value: ValueInfo) -> bool:
        return value.value not in ("false", "False", "nil", "null", "None", "undefined", "0", "#f", "")

    def call(self, target: DebugTarget) -> None:
        t = self._threads.get(threading.get_ident())
        if t is not None and t.step:
            t.depth += 1

    def ret(self, target: DebugTarget) -> None:
        t = self._threads.get(threading.get_ident())
        if t is not None and t.step:
            t.depth -= 1

    def exception(self, target: DebugTarget, error: ScriptError) -> None:
        ident = threading.get_ident()
        with self._lock:
            t = self._thread(ident)
        if self.break_on_raised:
            self._stop_here(t, target, Stop(ident, "exception", error.message, error=error))
        elif self.break_on_uncaught:  # remember where it was raised, in case nothing catches it
            t.snapshot = [(target.language, f) for group in target.frames() for f in group]

    def uncaught(self, error: ScriptError) -> None:
        """An error reached the host unhandled (the manager calls this for the
        outermost call of a thread). With the ``uncaught`` filter on, the
        thread stops, showing the frames as they were where it was raised."""
        if not self.break_on_uncaught:
            return
        ident = threading.get_ident()
        with self._lock:
            t = self._thread(ident)
            snapshot = t.snapshot
            t.snapshot = None
        if snapshot is None:  # the engine reported no raise: the error's own stack
            snapshot = [
                (f.language or error.language or "?", FrameInfo(f.function, f.script, f.line, f.column))
                for f in (error.stack or [StackFrame("<error>", error.script, error.line, error.column, error.language)])
            ]
        self._stop_here(t, None, Stop(ident, "exception", error.message, error=error), snapshot=snapshot)

    # -- a stop ------------------------------------------------------------------------------
    def _stop_here(
        self, t: _Thread, target: DebugTarget | None, stop: Stop, *, snapshot: list[tuple[str, FrameInfo]] | None = None
    ) -> None:
        with self._lock:
            t.stop, t.target, t.step = stop, target, None
            t.snapshot = snapshot
            self._apply_mode()
        self.on_stop(stop)
        while True:
            command = t.commands.get()
            if command is None:
                break
            fn, answer = command
            try:
                answer.value = fn()
            except BaseException as exc:  # handed back to the asking thread
                answer.error = exc
            answer.done.set()
        with self._lock:
            t.stop, t.target, t.snapshot = None, None, None
            self._forget(t.ident)
        self.on_continue(t.ident)

    def _ask(self, thread: int, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the stopped thread ``thread`` and return its result."""
        with self._lock:
            t = self._threads.get(thread)
            if t is None or t.stop is None:
                raise DebugError(f"thread {thread} is not stopped")
        if threading.get_ident() == thread:
            return fn()
        answer = _Answer()
        t.commands.put((fn, answer))
        answer.done.wait()
        if answer.error is not None:
            raise answer.error
        return answer.value

    def _forget(self, thread: int) -> None:
        for table in (self._refs, self._frames):
            for key in [k for k, v in table.items() if v[0] == thread]:
                del table[key]

    # -- inspection of a stopped thread ----------------------------------------------------------
    def stack(self, thread: int) -> list[Frame]:
        """The thread's frames across languages, innermost first."""
        return self._ask(thread, lambda: self._stack(thread))  # type: ignore[no-any-return]

    def _stack(self, thread: int) -> list[Frame]:
        t = self._threads[thread]
        pairs = t.snapshot if t.snapshot is not None else self._live_frames(thread)
        out = []
        for language, info in pairs:
            fid = next(self._next_ref)
            self._frames[fid] = (thread, language, info)
            loaded = self.manager.scripts.get(info.script) if info.script else None
            file = loaded.filename if loaded is not None else None
            out.append(Frame(fid, info.name, language, info.script, file, info.line, info.column))
        return out

    def _live_frames(self, thread: int) -> list[tuple[str, FrameInfo]]:
        """Interleave each engine's activations in the order the thread
        entered the runtimes (innermost first)."""
        chain = _gates.entries()  # languages, outermost first (this runs on the stopped thread)
        groups: dict[str, list[list[FrameInfo]]] = {}
        for language, target in self._targets.items():
            found = [g for g in target.frames() if g]
            if found:
                groups[language] = found
        order: list[str] = []
        for language in reversed(chain):  # innermost first, runs of one language merged
            if language in groups and (not order or order[-1] != language):
                order.append(language)
        # runtimes not entered through a gate are not in the chain: the one the
        # thread stopped in is innermost, others outermost
        t = self._threads.get(thread)
        stopped_in = t.target.language if t is not None and t.target is not None else None
        if stopped_in in groups and stopped_in not in order:
            order.insert(0, stopped_in)
        for language in groups:
            if language not in order:
                order.append(language)
        out: list[tuple[str, FrameInfo]] = []
        seen: dict[str, int] = {}
        for i, language in enumerate(order):
            activations = groups[language]
            k = seen.get(language, 0)
            if k >= len(activations):
                continue
            last = language not in order[i + 1:]
            take = activations[k:] if last else activations[k:k + 1]
            seen[language] = k + len(take)
            out.extend((language, f) for group in take for f in group)
        return out

    def scopes(self, frame_id: int) -> list[Scope]:
        thread, language, info = self._frame(frame_id)
        t = self._threads[thread]
        if t.snapshot is not None:
            return []  # a frame already unwound: no variables to show
        target = self._targets[language]

        def work() -> list[Scope]:
            out = []
            for scope in target.scopes(info):
                ref = next(self._next_ref)
                self._refs[ref] = (thread, language, scope.handle)
                out.append(Scope(scope.name, ref, scope.expensive))
            return out

        return self._ask(thread, work)  # type: ignore[no-any-return]

    def variables(self, reference: int) -> list[Variable]:
        """The children of a scope or of a structured value (lazily)."""
        with self._lock:
            entry = self._refs.get(reference)
        if entry is None:
            raise DebugError(f"no variables reference {reference} (the thread went on since)")
        thread, language, handle = entry
        target = self._targets[language]
        return self._ask(thread, lambda: [self._variable(thread, language, v) for v in target.children(handle)])  # type: ignore[no-any-return]

    def evaluate(self, expression: str, frame_id: int | None = None, *, thread: int | None = None) -> Variable:
        """Evaluate in a frame (its locals, closure and globals), under the
        frame's script's policy."""
        if frame_id is not None:
            thread, language, info = self._frame(frame_id)
            frame: FrameInfo | None = info
        else:
            stopped = [s.thread for s in self.stopped()] if thread is None else [thread]
            if not stopped:
                raise DebugError("no thread is stopped")
            thread = stopped[0]
            stopped_thread = thread
            pairs = self._ask(stopped_thread, lambda: self._live_frames(stopped_thread))
            if not pairs:
                raise DebugError("the stopped thread has no script frame")
            language, frame = pairs[0]
        target = self._targets[language]
        assert thread is not None
        return self._ask(thread, lambda: self._variable(thread, language, target.evaluate(frame, expression)))  # type: ignore[no-any-return]

    def _frame(self, frame_id: int) -> tuple[int, str, FrameInfo]:
        with self._lock:
            entry = self._frames.get(frame_id)
        if entry is None:
            raise DebugError(f"no frame {frame_id} (the thread went on since)")
        return entry

    def _variable(self, thread: int, language: str, value: ValueInfo) -> Variable:
        ref = 0
        if value.handle is not None:
            ref = next(self._next_ref)
            self._refs[ref] = (thread, language, value.handle)
        return Variable(value.name, value.value, value.type, ref, value.count)
