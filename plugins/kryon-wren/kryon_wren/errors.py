"""All error translation of kryon-wren: the exceptions the VM wrapper raises
(``vm_errors.py``) become :mod:`kryon_core.errors`, naming language, script,
line and column, with the Wren stack as StackFrames.

A trap (out of memory, a time limit, a VM fault) kills the script's wasm
instance: :func:`after_trap` gives the script a new one (its state restarts,
no other script is touched) and returns the error to raise.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from kryon_core import CompileError, ScriptError, ScriptRuntimeError, StackFrame
from kryon_core.errors import MemoryLimitError, RecursionLimitError, ScriptTimeoutError  # the limit errors

from .plugin import LANGUAGE
from .vm_errors import WrenError, WrenMemoryError, WrenRuntimeError, WrenTimeoutError

if TYPE_CHECKING:
    from .state import ScriptState

_TRACE_LINE = re.compile(r"\[(?P<module>.*?) line (?P<line>\d+)(?::(?P<column>\d+))?\] in (?P<fn>.*)")
_COMPILE_PREFIX = re.compile(r"^\[(?P<module>.*?) line (?P<line>\d+)\] ")


def parse_trace(trace: str) -> list[StackFrame]:
    frames = []
    for line in trace.splitlines():
        m = _TRACE_LINE.match(line.strip())
        if m:
            fn = m.group("fn")
            frames.append(
                StackFrame(
                    function="<top level>" if fn == "(script)" else fn,
                    script=m.group("module"),
                    line=int(m.group("line")),
                    column=int(m.group("column")) if m.group("column") else None,
                    language=LANGUAGE,
                )
            )
    return frames


def compile_error(exc: Any, script: str) -> CompileError:
    message = exc.message
    m = _COMPILE_PREFIX.match(message)
    if m:
        message = message[m.end():]
    module = exc.module or script
    return CompileError(message, language=LANGUAGE, script=module, line=exc.line or None,
                        column=getattr(exc, "column", 0) or None)


def runtime_error(exc: Any, script: str) -> ScriptRuntimeError:
    frames = parse_trace(getattr(exc, "trace", "") or "")
    # No module and no frame: the host's call itself failed (a wrong arity, a
    # missing method), so no Wren line is to blame; a calling script's
    # engine fills in its own location.
    module = exc.module or (frames[0].script if frames else None)
    line = exc.line or (frames[0].line if frames else None)
    cls = RecursionLimitError if exc.message == "Stack overflow." else ScriptRuntimeError
    column = getattr(exc, "column", 0) or (frames[0].column if frames and not exc.line else None)
    return cls(exc.message, language=LANGUAGE, script=module, line=line, column=column or None, stack=frames)


def trap_error(exc: Any, script: str) -> ScriptError:
    """The error for a trap: its script and line are those of the innermost
    script frame running when it happened (the engine's glue left out)."""
    stack = [
        StackFrame(function="<top level>" if fn == "(script)" else fn, script=module, line=line, language=LANGUAGE)
        for _, module, line, fn in getattr(exc, "frames", ())
        if module not in ("kryon", "io") and "#" not in module
    ]
    # where the running script stood when the limit fired (vm._fault_where), else its innermost frame
    line = getattr(exc, "line", None) or (stack[0].line if stack else None)
    kind = ScriptTimeoutError if isinstance(exc, WrenTimeoutError) else \
        MemoryLimitError if isinstance(exc, WrenMemoryError) else ScriptRuntimeError
    return kind(str(exc), language=LANGUAGE, script=getattr(exc, "module", None) or (stack[0].script if stack else script),
                line=line, column=getattr(exc, "column", None) or None, stack=stack)


def script_runtime_error(state: "ScriptState", exc: Any) -> ScriptError:
    """The error for a Wren runtime error of a call into ``state``'s VM: a
    host function's own error when that is what aborted the fiber (with the
    Wren line and stack added), else the Wren error translated."""
    pending, state.pending = state.pending, None
    error = runtime_error(exc, state.script_id)
    if isinstance(error, RecursionLimitError) and state.policy.max_recursion:
        error.message = (f"Stack overflow: a fiber went deeper than {state.policy.max_recursion} "
                         "Wren call frames (the policy's max_recursion).")
        error.args = (error.message,)
    if pending is not None and exc.message in (str(pending), pending.message):
        if pending.language in (None, LANGUAGE):
            pending.language = LANGUAGE
            if pending.script is None:
                pending.script = error.script
            if pending.line is None:
                pending.line = error.line
        pending.stack = list(pending.stack) + error.stack
        return pending
    return error


def after_trap(state: "ScriptState", exc: Exception, instance: Any = None) -> ScriptError:
    """The error for a trap of ``instance`` (the state's), after giving
    the script a new instance; nothing more when a trap of a call nested
    inside this one already replaced it."""
    error = trap_error(exc, state.script_id)
    pool = state.pool
    if instance is not None and instance is not pool.instance:
        pending, state.pending = state.pending, None
        return pending if pending is not None else error
    if pool.instance.dead is None:
        pool.instance.dead = str(exc)
    if pool.states:
        pool.rebuild()
    return error


def vm_failure(state: "ScriptState", exc: WrenError, instance: Any = None) -> ScriptError:
    """A VM error out of a call, an evaluation or a load into ``state``: a
    Wren runtime error as the script's (what it printed flushed first, so it
    comes before the error), any other (a trap, a limit) as :func:`after_trap`
    makes it."""
    if isinstance(exc, WrenRuntimeError):
        state.flush()
        return script_runtime_error(state, exc)
    return after_trap(state, exc, instance)


def restarted(state: "ScriptState") -> ScriptError:
    return ScriptRuntimeError(f"script '{state.script_id}' was restarted during the call (its instance trapped "
                              "in a call nested inside it)", language=LANGUAGE, script=state.script_id)
