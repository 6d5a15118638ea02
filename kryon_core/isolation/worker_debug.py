"""The debugger's agent inside an isolated worker (standard library only: the
worker loads it by path, as its other siblings).

What both Python debuggers do alike with frames and values (breakpoint
lines, scopes, children) is ``kryon_core/debug/pyframes.py``, which the
worker loads by path before this module.

The host's debug target (``kryon_core.isolation.debugging``) tells the worker
what to report with a mode attached to any message it sends (``"dm"``:
``off``, ``breakpoints`` with the breakpoint lines by script, or
``every-line``). This side traces with ``sys.settrace`` only while the mode
is not ``off``, and only the script frames that need line events (a
breakpoint in their code, or every line while stepping), as the in-process
tracer does (``kryon_core.debug.pytrace``).

A line to report, or an error raised in script code, becomes a ``dbg``
request to the host, made from inside the trace function. The host's
debugger decides whether to stop; while it is stopped the host does not
answer, and the worker's request loop serves the debugger's questions
(``dq``: frames, scopes, children, evaluate) meanwhile. The reply is "go
on". Calls and returns (``every-line`` only) are counted here and sent as
one ``dev`` notification before the next message, so stepping costs no round
trip per call.

While the request waits, the call's timer (``ITIMER_REAL``) is paused: time
spent stopped is not counted. An evaluation runs under the script's builtins,
guard and a timer of its own (the script's time limit).

A pause (or any mode change) while a script runs cannot travel over the
channel, which the worker reads only between requests: the host sends
``SIGUSR1``, whose handler turns line events on for the running script frames;
the next line is reported whatever the mode, and the host's reply brings the
new mode.
"""

from __future__ import annotations

import signal
import sys
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..debug import pyframes
else:  # loaded by worker.py (``_load_sibling``) before this module
    pyframes = sys.modules["kryon_isolation_pyframes"]

__all__ = ["WorkerDebugger"]


def _has_children(value: Any) -> bool:
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        return len(value) > 0
    return hasattr(value, "__dict__") and not callable(value) and not isinstance(value, (type, types.ModuleType))


class WorkerDebugger:
    """The worker's tracer and the answers to the debugger's questions.

    ``state`` is the worker's state (scripts, modules, limits, counters);
    ``host_request(kind, payload)`` asks the host and serves its requests
    until the reply; ``compile_evaluation(code, script)`` compiles code the
    way the worker's ``eval`` request does (the script's compiler, the
    guard), returning (statements, value code or None); ``internal`` wraps
    the worker's own introspection (the audit hook lets it through);
    ``timeout`` is the exception class the worker's timer raises, and
    ``timeout_later()`` has the timer raise it again from script code (a trace
    function must not raise: CPython would then turn tracing off through an
    audited ``sys.settrace``, which the sandbox refuses)."""

    def __init__(
        self,
        state: Any,
        host_request: Callable[[str, dict[str, Any]], Any],
        compile_evaluation: Callable[[str, str], tuple[types.CodeType, types.CodeType | None]],
        timeout: type[BaseException],
        timeout_later: Callable[[], None],
    ) -> None:
        self.S = state
        self.host_request = host_request
        self.compile_evaluation = compile_evaluation
        self.timeout = timeout
        self.timeout_later = timeout_later
        cls = type(self)
        state.trace_codes = state.trace_codes | {cls.global_trace.__code__, cls.local_trace.__code__}
        self.mode = "off"
        self.lines: dict[str, frozenset[int]] = {}
        self.stale = False  # a signal said the mode changed: report the next line whatever it is
        self.delta = 0  # calls minus returns not sent yet
        self.running = 0  # script calls in progress (run)
        self.show: Callable[[Any], str] = pyframes.short_repr
        self.refs: dict[int, Any] = {}
        self._next_ref = 1
        self._waiting = 0  # nested dbg requests in progress
        self._stop_frame: types.FrameType | None = None
        self._stop_event = ""
        self._code_lines: dict[types.CodeType, frozenset[int]] = {}

    # -- modes ----------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.mode != "off" or self.stale

    def apply(self, dm: Any) -> None:
        """A mode the host sent (``{"m": mode, "l": {script: [lines]}}``)."""
        if not isinstance(dm, dict):
            return
        mode = dm.get("m")
        if mode not in ("off", "breakpoints", "every-line"):
            return
        raw = dm.get("l")
        if not isinstance(raw, dict):
            raw = {}
        self.lines = {str(s): frozenset(n for n in ls if isinstance(n, int)) for s, ls in raw.items() if isinstance(ls, list)}
        self.mode = mode
        self.stale = False
        self._code_lines.clear()
        self.S.internal += 1
        try:
            caller = sys._getframe(1)
        finally:
            self.S.internal -= 1
        self._install(caller)

    def _install(self, frame: types.FrameType | None) -> None:
        """The global trace on (or off) while script code runs, and line
        events for the running script frames that need them from now on."""
        S = self.S
        S.internal += 1
        try:
            every = self.mode == "every-line" or self.stale
            in_script = self.running > 0
            f = frame
            while f is not None:
                script = self.script_of(f)
                if script is not None:
                    in_script = True
                    if every or self._has_breakpoint(f.f_code, script):
                        f.f_trace = self.local_trace
                        f.f_trace_lines = True
                f = f.f_back
            sys.settrace(self.global_trace if self.active and in_script else None)
        finally:
            S.internal -= 1

    def run(self, fn: Callable[..., Any], args: Any) -> Any:
        """``fn(*args)`` with the global trace on: only script code pays
        for tracing, not the worker's own loop between requests."""
        S = self.S
        self.running += 1
        S.internal += 1
        try:  # a timeout raised inside the audit hook must not leave the counter up (the hook would pass all)
            sys.settrace(self.global_trace)
        finally:
            S.internal -= 1
        try:
            return fn(*args)
        finally:
            self.running -= 1
            if not self.running and self.refs:  # the call is over: what the debugger was shown goes
                self.refs.clear()
            S.internal += 1
            try:
                sys.settrace(self.global_trace if self.running and self.active else None)
            finally:
                S.internal -= 1

    def on_signal(self, signum: int, frame: Any) -> None:
        """SIGUSR1: the host's mode changed while a script ran."""
        self.stale = True
        self._install(frame)

    def install_signal(self) -> None:
        signal.signal(signal.SIGUSR1, self.on_signal)

    # -- which frames are script code ------------------------------------------------------
    def script_of(self, frame: types.FrameType) -> str | None:
        """The script a frame runs, when it is the script's own code (not an
        evaluation, not the worker's, not a module it imported)."""
        name = frame.f_code.co_filename
        module = self.S.module_of.get(name)
        return name if module is not None and frame.f_globals is module.__dict__ else None

    def _has_breakpoint(self, code: types.CodeType, script: str) -> bool:
        return pyframes.has_breakpoint(self._code_lines, self.lines.get(script), code)

    # -- the trace functions --------------------------------------------------------------------
    # _ROBUST: a trace function never raises. When one does, CPython turns tracing off itself through
    # an audited ``sys.settrace``, which the sandbox refuses, so the script's call ended as an
    # AccessDeniedError: a timeout landing there (worker_timer.fire_soon), but also the script's own
    # ``__str__`` or ``__repr__`` run for a report, or the host failing to take a report.
    def global_trace(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        try:
            if event != "call" or not self.active:
                return None
            script = self.script_of(frame)
            if script is None:
                return None
            every = self.mode == "every-line"
            frame.f_trace_lines = every or self.stale or self._has_breakpoint(frame.f_code, script)
            if every:
                self.delta += 1
            return self.local_trace
        except self.timeout:  # never out of a trace function (see worker_timer.fire_soon)
            self.timeout_later()
            return None
        except Exception:  # nor anything else: the script goes on as without a debugger (_ROBUST)
            return None

    def local_trace(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        try:
            if not self.active:
                return None
            script = self.script_of(frame)
            if script is None:
                return None
            if event == "line":
                line = frame.f_lineno
                if self.stale or self.mode == "every-line" or line in self.lines.get(script, ()):
                    self.stale = False
                    self._report(frame, "line", {"e": "line", "s": script, "l": line})
                frame.f_trace_lines = self.mode == "every-line" or self._has_breakpoint(frame.f_code, script)
            elif event == "return":
                if self.mode == "every-line":
                    self.delta -= 1
            elif event == "exception":
                exc, tb = arg[1], arg[2]
                if isinstance(exc, (*pyframes.CONTROL_FLOW, self.timeout)) or pyframes.passing_through(tb, self.script_of):
                    return self.local_trace
                payload = {"e": "exc", "s": script, "l": frame.f_lineno, "x": type(exc).__name__, "m": str(exc)[:2000]}
                name = getattr(exc, "name", None) if isinstance(exc, NameError) else None
                if isinstance(name, str):
                    payload["n"] = name
                self._report(frame, "exception", payload)
            return self.local_trace
        except self.timeout:  # never out of a trace function (see worker_timer.fire_soon)
            self.timeout_later()
            return self.local_trace
        except Exception:  # (_ROBUST) an exception's text the script's __str__ refused, a failed report
            return self.local_trace

    def _report(self, frame: types.FrameType, event: str, payload: dict[str, Any]) -> None:
        """Ask the host (it answers when the thread goes on), with the call's
        timer paused meanwhile."""
        import signal as _signal

        S = self.S
        outer = self._stop_frame, self._stop_event
        self._stop_frame, self._stop_event = frame, event
        remaining = 0.0
        if S.timer_armed:
            S.internal += 1
            try:
                remaining = _signal.setitimer(_signal.ITIMER_REAL, 0)[0]
            finally:
                S.internal -= 1
        self._waiting += 1
        try:
            self.host_request("dbg", payload)
        finally:
            self._waiting -= 1
            self._stop_frame, self._stop_event = outer
            if self._waiting == 0:
                self.refs.clear()
            if S.timer_armed and remaining > 0:
                S.internal += 1
                try:
                    _signal.setitimer(_signal.ITIMER_REAL, remaining)
                finally:
                    S.internal -= 1

    def take_delta(self) -> int:
        d, self.delta = self.delta, 0
        return d

    # -- the debugger's questions --------------------------------------------------------------
    def _ref(self, value: Any) -> int:
        ref = self._next_ref
        self._next_ref += 1
        self.refs[ref] = value
        return ref

    def query(self, msg: dict[str, Any]) -> Any:
        q = msg.get("q")
        S = self.S
        if q == "evaluate":
            return self._evaluate(msg)
        S.internal += 1
        try:
            if q == "frames":
                return self._frames()
            if q == "scopes":
                return self._scopes(self._get(msg.get("r"), types.FrameType))
            if q == "children":
                return self._children(self._get(msg.get("r"), tuple))
        finally:
            S.internal -= 1
        raise ValueError(f"unknown debugger question {q!r}")

    def _get(self, ref: Any, kind: type) -> Any:
        value = self.refs.get(ref) if isinstance(ref, int) else None
        if not isinstance(value, kind):
            raise LookupError("the debugger's reference is no longer valid (the script went on)")
        return value

    def _frames(self) -> list[list[list[Any]]]:
        """Script frames on the worker's stack, innermost first, grouped by
        activation (worker code between script frames ends one)."""
        return [[[f.f_code.co_name, script, *self._position(f), self._ref(f)] for f, script in group]
                for group in pyframes.activations(sys._getframe(1), self.script_of)]

    def _position(self, frame: types.FrameType) -> tuple[int, int | None]:
        """The line, and the column (1-based) of the instruction the frame is
        at; for a frame stopped before its line runs, where the line's code starts."""
        line = frame.f_lineno
        positions = list(frame.f_code.co_positions())  # type: ignore[attr-defined]  # 3.11+
        column = None
        if frame is self._stop_frame and self._stop_event == "line":
            starts = [col for ln, _, col, _ in positions if ln == line and col is not None]
            column = min(starts) if starts else None
        else:
            i = frame.f_lasti // 2
            if 0 <= i < len(positions) and positions[i][0] == line:
                column = positions[i][2]
        if column is None:
            return line, None
        return line, column + (0 if self.S.columns else 1)

    def _scopes(self, frame: types.FrameType) -> list[list[Any]]:
        return [[name, self._ref(("scope", names)), expensive] for name, names, expensive in pyframes.scopes(frame)]

    def _children(self, handle: tuple[str, Any]) -> list[list[Any]]:
        kind, value = handle
        return [self._value(str(key), item, kind == "scope") for key, item in pyframes.child_items(kind, value)]

    def _value(self, name: str, value: Any, variable: bool = False) -> list[Any]:
        """[name, text, type, reference or 0, count or None, whether name is a variable's]."""
        try:
            text = self.show(value)
        except Exception:  # a value whose own repr fails still shows as something
            text = f"<{type(value).__name__}>"
        ref = self._ref(("value", value)) if _has_children(value) else 0
        return [name, text, type(value).__name__, ref, pyframes.count(value), variable]

    def _evaluate(self, msg: dict[str, Any]) -> list[Any]:
        """An expression in a frame's globals and a copy of its locals,
        compiled by the script's compiler and checked by the guard, run with
        the script's builtins under a timer of the script's time limit, and
        untraced (breakpoints do not fire inside an evaluation)."""
        import signal as _signal

        S = self.S
        code = msg.get("x")
        if not isinstance(code, str):
            raise ValueError("the expression must be text")
        S.internal += 1
        try:
            frame = self._get(msg.get("r"), types.FrameType)
            script = self.script_of(frame)
            if script is None:
                raise LookupError("the frame's script is no longer loaded")
            globals_, locals_ = frame.f_globals, dict(frame.f_locals)
        finally:
            S.internal -= 1
        limit = S.time_limit
        previous = sys.gettrace()
        was_running = S.script_running
        S.internal += 1
        sys.settrace(None)
        if limit:
            _signal.setitimer(_signal.ITIMER_REAL, limit)
        # the expression is the script's code: the audit hook's bypass must be off, whatever asked
        was_internal, S.internal = S.internal - 1, 0
        S.pending_timeout = False
        try:
            S.script_running = True  # compiling may run the script's macros
            statements, value_code = self.compile_evaluation(code, script)
            exec(statements, globals_, locals_)  # noqa: S102 - checked by the guard, under the script's builtins
            value = eval(value_code, globals_, locals_) if value_code is not None else None  # noqa: S307
        finally:
            S.script_running = was_running
            S.internal = was_internal + 1
            try:
                if limit:
                    _signal.setitimer(_signal.ITIMER_REAL, 0)
                sys.settrace(previous)
            finally:
                S.internal -= 1
            S.pending_timeout = False
        S.internal += 1
        try:
            return self._value(code, value)
        finally:
            S.internal -= 1
