"""The script's recursion limit inside the worker (worker side, standard
library only, loaded by path like every sibling of ``worker.py``).

CPython's recursion limit counts every frame of the thread, the worker's
own below the script's first frame included, plus one each time C code
enters the evaluator again (``exec``, ``eval``, a call through a C slot). A
fixed limit of ``max_recursion`` plus room for the worker's frames let a
script nest deeper than its policy allows. So each entry into script code
(a call, a callback from the host, a load's top level, an evaluation, an
awaited call's task steps) sets the limit from the depth measured where
script code starts (:func:`limit_script`): the script's own ``max_recursion``
frames fit, one more is a ``RecursionError`` (the host's
``RecursionLimitError``). A call from the host while the script waits for
it (``kryon.call`` back into the script) continues the waiting script's
count, as the in-process tracer's does. Frames of library code a script calls count as
its own, as Python's limit counts them. Worker code the script calls
(``worker_channel.host_request`` and ``send``) gets ``worker_channel.ROOM``
frames more from its first line, so a script deep in its recursion can
still ask the host and read the reply whole (its first frame is one of the
script's: at the limit itself a script cannot call out).

The depth is CPython's own count (:func:`depth`): ``sys.setrecursionlimit``
refuses a limit below the current depth and names the depth in its error.
An outermost entry's depth (the worker waits for no reply of the host, no
tracer runs) is the same on every call from one place, so it is measured
once per place and kept (:data:`_BASES`).
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import worker_channel
else:  # loaded by worker.py (``_load_sibling``) before this module
    worker_channel = sys.modules["kryon_isolation_worker_channel"]

S = worker_channel.S

_set = sys.setrecursionlimit
_get = sys.getrecursionlimit
_DEPTH = re.compile(r"recursion depth (\d+)")

#: what :func:`depth` counts that does not separate the caller's frame from the script's first:
#: this module's frame, and the unit CPython's check is off from the depth it reports (measured)
_OWN = 2
#: (place, offset) -> the depth at an outermost entry there (see the module doc)
_BASES: dict[tuple[str, int], int] = {}


def depth() -> int:
    """The interpreter's recursion depth in the caller's frame."""
    limit = _get()
    try:
        _set(1)
    except RecursionError as exc:
        found = _DEPTH.search(str(exc))
        if found is not None:
            return int(found.group(1)) - 1  # without this function's own frame
    else:  # a depth this low cannot happen in the worker; put the limit back
        _set(limit)
    S.internal += 1  # a build whose message differs: Python frames only (a little lenient); the worker's own walk
    try:
        frame: Any = sys._getframe(1)
        n = 0
        while frame is not None:
            n += 1
            frame = frame.f_back
        return n
    finally:
        S.internal -= 1


def _script_frames() -> int:
    """The script frames on the stack now (a walk of the worker's own,
    which the audit hook lets through at once)."""
    S.internal += 1
    try:
        n = 0
        frame: Any = sys._getframe(2)
        while frame is not None:
            if worker_channel.is_script_frame(frame):
                n += 1
            frame = frame.f_back
        return n
    finally:
        S.internal -= 1


def limit_script(place: str, offset: int = 0) -> int:
    """Set the limit for script code about to start in the caller's frame:
    ``offset`` is the evaluator entries between that frame and the script's
    first frame (1 for ``exec``/``eval``, 0 for a plain call and for a
    coroutine or generator the caller resumes). Returns the limit before, for
    :func:`restore`; 0 when the worker has no ``max_recursion``."""
    allowed = S.max_recursion
    if not allowed:
        return 0
    before = _get()
    if S.waits == 0 and not S.breakpoints and not worker_channel.D.active:
        # an outermost entry, untraced: the same depth every time from here
        key = (place, offset)
        base = _BASES.get(key)
        if base is None:
            base = _BASES[key] = depth() + offset - _OWN
            if key == ("call", 0):  # the plain call's hot path sets this limit itself (worker_calls.call_plain)
                S.call_limit = base + allowed
    else:  # a call from the host while the worker waits, or a tracer's frames below: measured
        base = depth() + offset - _OWN
        if S.waits:  # the frames of the script waiting below are its depth too (as the in-process tracer counts)
            base -= _script_frames()
    _set(base + allowed)
    return before


def restore(before: int) -> None:
    """Undo :func:`limit_script` once the script code it limited returned."""
    if before:
        _set(before)
