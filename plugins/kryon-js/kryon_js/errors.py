"""JavaScript errors -> kryon_core errors, with the JS stack as StackFrames."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from kryon_core import CompileError, ConversionError, ScriptError, ScriptRuntimeError, StackFrame
from kryon_core.errors import MemoryLimitError, RecursionLimitError, ScriptTimeoutError, SizeLimitError  # the limit errors

from .evalsites import ColumnMap
from .plugin import LANGUAGE

#: file names of Kryon's own code inside a context; frames from it are not shown
INTERNAL_FILES = ("<kryon>",)
_FRAME = re.compile(r"^\s*at (?:(?P<fn>[^()]*?) \()?(?P<file>[^()]*?):(?P<line>\d+):(?P<col>\d+)\)?\s*$")
_NATIVE = re.compile(r"^\s*at (?P<fn>.*?) \(native\)\s*$")


def parse_stack(stack: str, script: str | None, *, input_is_script: bool,
                columns: ColumnMap | None = None) -> list[StackFrame]:
    """QuickJS ``Error.stack`` text -> frames, innermost first. Frames of the
    prelude are dropped; ``<input>`` (code run through the binding's eval) is
    the script itself when ``input_is_script``."""
    frames: list[StackFrame] = []
    for raw in (stack or "").splitlines():
        m = _FRAME.match(raw)
        if m is None:
            continue
        file = m.group("file")
        if file in INTERNAL_FILES or (file == "<input>" and not input_is_script):
            continue
        if file == "<input>" or file == "<anonymous>":
            if file == "<anonymous>":
                continue
            file = script or file
        fn = (m.group("fn") or "<main>").strip()
        if fn in ("<eval>", ""):
            fn = "<main>"
        line, col = int(m.group("line")), int(m.group("col"))
        if columns is not None and file == script:  # the script's source ran rewritten (evalsites.py)
            col = columns.original(line, col)
        frames.append(StackFrame(function=fn, script=file, line=line, column=col, language=LANGUAGE))
    return frames


def classify(name: str, message: str) -> type[ScriptError]:
    if name == "InternalError" and message == "interrupted":
        return ScriptTimeoutError
    if message == "out of memory" or (name == "InternalError" and "out of memory" in message):
        return MemoryLimitError
    if message in ("stack overflow", "Maximum call stack size exceeded") or (
        name == "RangeError" and "call stack" in message
    ):
        return RecursionLimitError
    return ScriptRuntimeError


def from_info(info: dict[str, Any], script: str | None, *, input_is_script: bool, host_errors: dict[int, BaseException],
              thrown_value: Any = None, compiling: bool = False, memory_limited: bool = False,
              columns: ColumnMap | None = None, ran_out: Callable[[], bool] | None = None) -> ScriptError:
    """The prelude's error record (``errInfo``) -> a kryon_core error. A ``null``
    thrown under a memory limit is QuickJS failing to allocate its out-of-memory
    error only when ``ran_out()`` (oom.py) finds the evidence; else it is the
    script's own ``throw null``."""
    frames = parse_stack(info.get("stack") or "", script, input_is_script=input_is_script, columns=columns)
    top = frames[0] if frames else None
    where: dict[str, Any] = dict(language=LANGUAGE, script=top.script if top else script, line=top.line if top else None,
                                 column=top.column if top else None)
    if not info.get("isError"):
        text = info.get("message") or "a value"
        if text == "interrupted" and thrown_value is None:  # the interrupt fired again while its error was read
            return ScriptTimeoutError("the call ran longer than the policy's time_limit", stack=frames, **where)
        if memory_limited and thrown_value is None and (
                text == "[uninitialized]" or text == "null" and (ran_out is None or ran_out())):
            # QuickJS throws null when it cannot even allocate the "out of memory" error, and some builtins
            # (normalize) fail an allocation without throwing at all: no exception is pending
            return MemoryLimitError("the script went over the policy's memory_limit (out of memory)",
                                    stack=frames, **where)
        if classify("", text) is RecursionLimitError:  # thrown while the stack was exhausted
            return RecursionLimitError(f"calls nested too deep (stack size exhausted: {text})", stack=frames, **where)
        return ScriptRuntimeError(f"uncaught exception: {text}", stack=frames, value=thrown_value, **where)
    name, message = info.get("name") or "Error", info.get("message") or ""
    host = host_errors.pop(int(info.get("host") or 0), None)
    if host is not None:
        return _from_host(host, message, frames, where)
    if info.get("conv"):
        return ConversionError(message, stack=frames, **where)
    if info.get("size"):  # a source over max_source_size compiled at run time (compile_guards.js)
        return SizeLimitError(f"{name}: {message}", stack=frames, **where)
    if compiling or name == "SyntaxError" and compiling:
        return CompileError(f"{name}: {message}", stack=frames, **where)
    cls = classify(name, message)
    if (cls is ScriptRuntimeError and memory_limited and name == "InternalError" and not message
            and ran_out is not None and ran_out()):
        cls = MemoryLimitError  # QuickJS's out-of-memory error, made without its message (no memory left for it)
    text = message if cls is not ScriptRuntimeError else f"{name}: {message}"
    if cls is ScriptTimeoutError:
        text = "the call ran longer than the policy's time_limit"
    elif cls is MemoryLimitError:
        text = "the script went over the policy's memory_limit (out of memory)"
    elif cls is RecursionLimitError:
        text = f"calls nested too deep (stack size exhausted: {message})"
    return cls(text, stack=frames, **where)


def _from_host(host: BaseException, message: str, frames: list[StackFrame], where: dict[str, Any]) -> ScriptError:
    """An exception a host function raised into JS, surfacing again: the same
    class when it is a kryon error (a limit hit in a callee stays a limit
    error), carrying the JS frames and then the callee's."""
    if isinstance(host, ScriptError):
        callee = list(host.stack)
        text = str(host) if host.language not in (None, LANGUAGE) else host.message
        try:
            err = type(host)(text, stack=frames + callee, value=host.value, **where)
        except TypeError:
            err = ScriptRuntimeError(text, stack=frames + callee, value=host.value, **where)
    elif isinstance(host, RecursionError):
        err = RecursionLimitError(f"calls nested too deep through the host ({host})", stack=frames, **where)
    elif isinstance(host, MemoryError):
        err = MemoryLimitError(f"the host ran out of memory ({host})", stack=frames, **where)
    else:
        err = ScriptRuntimeError(f"{type(host).__name__}: {host}", stack=frames, **where)
    err.__cause__ = host
    return err


_OOM_TEXT = "InternalError: out of memory"


def _cut_oom_text(head: str) -> bool:
    """Whether ``head`` is what is left of QuickJS's out-of-memory error's text when building it ran
    out of memory too: its message alone, its name alone, or nothing (seen: each of them)."""
    return head == "out of memory" or _OOM_TEXT.startswith(head)


def from_exception_text(text: str, script: str | None, *, input_is_script: bool, compiling: bool = False,
                        columns: ColumnMap | None = None, memory_limited: bool = False,
                        ran_out: Callable[[], bool] | None = None) -> ScriptError:
    """The binding's JSException text ("Name: message\\n    at ...") -> error. ``memory_limited``: as
    for :func:`from_info` (a ``null`` that escaped the prelude's own catch under a memory limit is
    QuickJS failing to allocate its out-of-memory error, and the catch failing the same way)."""
    head, _, stack = text.partition("\n")
    # (an error without a message, like QuickJS's out-of-memory InternalError made without its text,
    # is its name alone)
    m = re.match(r"^([A-Za-z]*Error)(?:: (.*))?$", head, re.S)
    if m:
        info = {"isError": True, "name": m.group(1), "message": m.group(2) or "", "stack": stack}
    elif memory_limited and _cut_oom_text(head) and (ran_out is None or ran_out()):
        # the binding could not make the error's whole text ("Name: message" needs memory): an
        # out-of-memory error on a host entry, not the script's own throw
        info = {"isError": True, "name": "InternalError", "message": "out of memory", "stack": stack}
    else:
        info = {"isError": stack.strip() not in ("", "undefined") and False, "message": head}
    return from_info(info, script, input_is_script=input_is_script, host_errors={}, compiling=compiling, columns=columns,
                     memory_limited=memory_limited, ran_out=ran_out)
