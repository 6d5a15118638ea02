"""The debugger's target for languages hosted in this interpreter (Python, Kryon Lisp).

Trusted scripts run here as Python bytecode, so :class:`PyHostDebugTarget`
is a :class:`~kryon_core.debug.pytrace.PyTraceTarget` told the dialect's
ways: a frame is script code when its globals are a script namespace and its
code was compiled for that script (not an evaluation, not a module it
imported); lines are the code objects' own (Hy keeps the .kl lines, and
columns through ``co_positions``); names are spelled as the language spells
them (``set-it!``, not ``hyx_set_itXexclamation_markX``); values are shown
in the language's notation; expressions and breakpoint conditions are
compiled by the dialect and run with the frame's locals and globals.

While attached, every call into a script takes the engine's traced path
(:class:`.tracing.Tracer` installs its hook and hands each script frame to
this target, chained with its own recursion counting), so breakpoints,
stepping and pausing work whatever the script's limits.

Sandboxed scripts run in worker processes (:mod:`.sandboxed`): their frames
are not in this interpreter, and they are debugged inside their workers
(:mod:`kryon_core.isolation.debugging`): this target hands their frames,
scopes, values and evaluations (``WorkerRef`` handles) to it, and gives it
the modes it gets.
"""

from __future__ import annotations

import marshal
import types
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..debug.pytrace import PyTraceTarget, code_lines
from ..debug.target import DebugEvents, FrameInfo, ScopeInfo, TraceMode, ValueInfo
from ..errors import ScriptError, ScriptRuntimeError
from ..isolation.debugging import WorkerDebugHost, WorkerRef

if TYPE_CHECKING:
    from .engine import PyHostedEngine

__all__ = ["PyHostDebugTarget"]


class PyHostDebugTarget(PyTraceTarget):
    """See the module docstring."""

    def __init__(self, engine: "PyHostedEngine") -> None:
        dialect = engine.dialect
        self._engine = engine
        self._tracer = engine.local.tracer
        self._by_ns = engine.local.table.by_ns  # every live script (loading ones too) by namespace
        show = getattr(dialect, "show_value", None)
        super().__init__(
            dialect.language,
            script_of=self._script_of_code,
            frame_script=self._frame_script_of,
            position=self._frame_position,
            line=_frame_line,
            evaluate=self._evaluate_in,
            code_lines=self._lines_of,
            spell=dialect.spelling,
            frame_name=dialect.frame_name,
            **({"show": show} if show is not None else {}),
        )
        #: sandboxed scripts are debugged inside their workers (see isolation.debugging)
        self._workers = WorkerDebugHost(self, frame_name=dialect.frame_name, spelling=dialect.spelling,
                                        describe=dialect.describe)

    # -- attaching: every call into a script goes through the tracer -----------------------
    def attach(self, events: DebugEvents) -> None:
        super().attach(events)
        self._tracer.debug = self
        self._tracer.breakpoints.set_debugging(True)
        self._workers.attach(events)
        self._engine.sandboxed.set_debug(self._workers)

    def detach(self) -> None:
        self._tracer.debug = None
        self._tracer.breakpoints.set_debugging(False)
        self._workers.detach()
        super().detach()

    def set_mode(self, mode: TraceMode, lines: Mapping[str, frozenset[int]]) -> None:
        super().set_mode(mode, lines)
        self._workers.set_mode(mode, lines)

    # -- frames here and in the workers waiting on this thread ----------------------------------
    def frames(self) -> list[list[FrameInfo]]:
        """Trusted frames (this interpreter's) and the frames of every worker
        waiting on this thread: the one that reported the stop first."""
        here = super().frames()
        workers = self._workers.frames()
        return here + workers if self.stopped_here() else workers + here

    def stopped_here(self) -> bool:
        """Whether the thread stopped in a trusted frame (not in a worker)."""
        return getattr(self._local, "frame", None) is not None

    def scopes(self, frame: FrameInfo) -> list[ScopeInfo]:
        if isinstance(frame.handle, WorkerRef):
            return self._workers.scopes(frame)
        return super().scopes(frame)

    def children(self, handle: Any) -> list[ValueInfo]:
        if isinstance(handle, WorkerRef):
            return self._workers.children(handle)
        return super().children(handle)

    def evaluate(self, frame: FrameInfo | None, expression: str) -> ValueInfo:
        if frame is not None and isinstance(frame.handle, WorkerRef):
            return self._workers.evaluate(frame, expression)
        return super().evaluate(frame, expression)

    # -- what is script code, and where -------------------------------------------------------
    def _script_of_code(self, code: types.CodeType) -> str | None:
        name = code.co_filename
        return name if self._engine.local.table.get(name) is not None else None

    def _frame_script_of(self, frame: types.FrameType) -> str | None:
        """The script a frame runs, when it is one of this engine's scripts'
        own code (not an evaluation, not a module it imported)."""
        hosted = self._by_ns.get(id(frame.f_globals))
        return hosted.id if hosted is not None and frame.f_code.co_filename == hosted.id else None

    def _frame_position(self, script: str, frame: types.FrameType) -> tuple[int, int | None]:
        """The line, and the column of the instruction the frame is at; for a
        frame stopped before its line runs, the column where the line's code starts."""
        line, lasti = frame.f_lineno, frame.f_lasti
        if self.at_line_start(frame):
            positions = frame.f_code.co_positions()  # type: ignore[attr-defined]  # 3.11+, as the errors' columns
            starts = [(col, 2 * i) for i, (ln, _, col, _) in enumerate(positions)
                      if ln == line and col is not None]
            lasti = min(starts)[1] if starts else lasti
        info = self._engine.local.errors.frame(frame, line, lasti)
        return line, info.column if info is not None else None

    def _lines_of(self, script: str, source: str) -> set[int]:
        """Lines holding code: the dialect compiles the source (nothing runs
        but what compiling runs, as for a load) and its code objects name them."""
        engine = self._engine
        trusted = engine.local.table.get(script) is not None
        sandboxed = not trusted and (script in engine.sandboxed or engine.config.policy.sandboxed)
        # a sandboxed script's code that runs while compiling (Lisp macros) never runs here
        compiled = engine.dialect.compile(source, script, sandboxed=sandboxed)
        if not compiled.bytecode:  # compiled only when it loads (Lisp with a relative require)
            return {n for n, text in enumerate(source.splitlines(), 1) if text.strip()[:1] not in ("", ";", "#")}
        code = marshal.loads(compiled.bytecode)
        return code_lines(code)

    # -- evaluation -------------------------------------------------------------------------------
    def _evaluate_in(self, script: str, globals_: Mapping[str, Any], locals_: dict[str, Any], expression: str) -> Any:
        hosted = self._by_ns.get(id(globals_))
        if hosted is None:
            raise ScriptRuntimeError("the frame's script is no longer loaded", language=self.language, script=script)
        statements, value = self._engine.dialect.compile_evaluation(expression, hosted)
        try:
            exec(statements, hosted.ns, locals_)  # noqa: S102 - the developer's own expression, in a trusted script
            return None if value is None else eval(value, hosted.ns, locals_)  # noqa: S307
        except ScriptError:
            raise
        except Exception as exc:
            raise ScriptRuntimeError(self._engine.dialect.describe(exc), language=self.language, script=script) from None


def _frame_line(script: str, frame: types.FrameType) -> int:
    return frame.f_lineno
