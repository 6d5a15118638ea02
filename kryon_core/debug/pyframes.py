"""Python frames as both Python debuggers show them: the in-process tracer
(:mod:`kryon_core.debug.pytrace`) and the isolated worker's agent
(``kryon_core/isolation/worker_debug.py``).

What they share: which frames need line events for a breakpoint, whether an
error is only passing through, script frames grouped by activation, a
frame's scopes and a value's children. Each debugger keeps its own idea of
which frames are script code and its own shape for what it reports.

Standard library only, with no import from ``kryon_core``: the worker, which
runs as ``python -I -S`` and cannot import ``kryon_core``, loads this file
by path.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Collection, Mapping, MutableMapping
from typing import Any

#: how many children of one value are listed
MAX_CHILDREN = 1000
#: how long a value's text may be
MAX_TEXT = 200
#: exceptions that are how Python ends iterations and generators, not errors
CONTROL_FLOW = (StopIteration, StopAsyncIteration, GeneratorExit)
#: the containers whose length is shown with them
SIZED = (list, tuple, dict, set, frozenset)

#: the script a frame runs when it is script code, else None
FrameScript = Callable[[types.FrameType], "str | None"]


def short_repr(value: Any) -> str:
    """``repr(value)``, cut to :data:`MAX_TEXT` characters."""
    text = repr(value)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def count(value: Any) -> int | None:
    """The number of items, for the containers that show it."""
    return len(value) if isinstance(value, SIZED) else None


def visible(names: Mapping[Any, Any]) -> dict[str, Any]:
    """A namespace without the interpreter's and the host's own entries (``__x__``)."""
    return {str(k): v for k, v in names.items() if not (str(k).startswith("__") and str(k).endswith("__"))}


def has_breakpoint(cache: MutableMapping[types.CodeType, frozenset[int]], wanted: Collection[int] | None,
                   code: types.CodeType) -> bool:
    """Whether a line in ``wanted`` is a line of ``code`` itself (not of the
    functions nested in it): only such frames pay for line events while
    breakpoints are set. ``cache`` keeps each code object's lines."""
    if not wanted:
        return False
    lines = cache.get(code)
    if lines is None:
        lines = cache[code] = frozenset(ln for _, _, ln in code.co_lines() if ln is not None)
    return not lines.isdisjoint(wanted)


def passing_through(tb: types.TracebackType | None, frame_script: FrameScript) -> bool:
    """Whether an exception, at the frame ``tb`` stands for, already went
    through a deeper script frame (it is reported once, where script code
    raised it)."""
    tb = tb.tb_next if tb is not None else None
    while tb is not None:
        if frame_script(tb.tb_frame) is not None:
            return True
        tb = tb.tb_next
    return False


def activations(frame: types.FrameType | None, frame_script: FrameScript) -> list[list[tuple[types.FrameType, str]]]:
    """The script frames from ``frame`` outwards with their scripts,
    innermost first, grouped by activation: code that is not a script's
    between script frames (the host, the worker) ends one."""
    groups: list[list[tuple[types.FrameType, str]]] = []
    current: list[tuple[types.FrameType, str]] = []
    while frame is not None:
        script = frame_script(frame)
        if script is not None:
            current.append((frame, script))
        elif current:
            groups.append(current)
            current = []
        frame = frame.f_back
    if current:
        groups.append(current)
    return groups


def scopes(frame: types.FrameType) -> list[tuple[str, dict[str, Any], bool]]:
    """A frame's scopes as (name, variables, expensive): its locals, the
    closure's variables among them, and its module's globals (expensive to
    list when there are many)."""
    local_names = visible(frame.f_locals)
    out = [("Locals", local_names, False)]
    free = frame.f_code.co_freevars
    if free:
        out.append(("Closure", {n: local_names[n] for n in free if n in local_names}, False))
    if frame.f_globals is not frame.f_locals:
        module = visible(frame.f_globals)
        out.append(("Globals", module, len(module) > 100))
    return out


def child_items(kind: str, value: Any) -> list[tuple[Any, Any]]:
    """The first :data:`MAX_CHILDREN` (key, item) pairs of a scope's
    variables (``kind`` "scope") or of a value: a mapping's entries, a
    sequence's or a set's items by index, an object's attributes."""
    if kind == "scope" or isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, (list, tuple)):
        items = list(enumerate(value))
    elif isinstance(value, (set, frozenset)):
        items = list(enumerate(sorted(value, key=repr)))
    else:
        items = [(k, v) for k, v in vars(value).items() if not str(k).startswith("__")]
    return items[:MAX_CHILDREN]
