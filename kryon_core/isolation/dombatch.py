"""DOM writes from an isolated worker, sent in batches instead of one round trip each.

Standard library only: the worker loads it by file path (like ``protocol``),
the host imports it as ``kryon_core.isolation.dombatch``.

A script's ``kryon`` call of a method in :data:`BATCHED` (writes that return
nothing) is not sent at once: the worker keeps it, its arguments already
encoded, with the script's stack at the write. The pending writes ride on the
next message the worker sends that the host answers or waits for: a request
(any other ``kryon`` call, a host function call, a breakpoint), the reply or
error that ends a call, or a flush request of their own (``"wb"``) once
:data:`MAX_PENDING` wait. The host applies them, in order, before it looks at
the message, so every read the script makes sees its own writes, and a call's
caller sees them all when the call returns.

A write the host refuses stops the batch there (the writes after it are
dropped, as a script that stopped at the failing write would not have made
them). The error names the write's own script and line: the host answers the
carrying request with the error and the write's index (the worker raises it in
the script at the request, with the write's stack), or, when the batch rode on
the call's reply, raises it to the call's caller instead of the result.

Wire form, on the carrying message: ``"w"``: ``[[method, args, stack index], ...]``
and ``"ws"``: the distinct stacks of those writes (a loop writing from one
line sends its stack once).
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

__all__ = ["BATCHED", "MAX_PENDING", "WriteBatch", "parse_writes"]

#: ``kryon`` API methods (bridge method names) that only write the document and return nothing
BATCHED = frozenset({"set_property", "set_style", "add_class", "remove_class", "append_child", "remove_element"})
#: writes kept before they are flushed on their own; also the most one message may carry
MAX_PENDING = 512

#: a stack as the protocol sends it: [[function, script, line(, language, column)], ...], innermost first
Stack = list[list[Any]]


class WriteBatch:
    """The worker's pending writes. ``is_script(filename)`` says whether a
    frame is script code; ``frame_of(code, line, lasti)`` makes one stack
    entry (the worker's own format, columns included when it sends them)."""

    __slots__ = ("pending", "stacks", "_index", "_is_script", "_frame_of", "_last")

    def __init__(self, is_script: Callable[[str], bool], frame_of: Callable[[types.CodeType, int | None, int], list[Any]]) -> None:
        self.pending: list[list[Any]] = []
        self.stacks: list[Stack] = []
        # (id(code), lasti) of each script frame -> stack index; the key tuple's
        # code objects are kept with it, so no id is reused while the batch lives
        self._index: dict[tuple[Any, ...], tuple[int, tuple[types.CodeType, ...]]] = {}
        self._is_script = is_script
        self._frame_of = frame_of
        # where the last write was made (its calling frame and instruction, and
        # the frame that called that one, at its instruction: a generator's
        # caller changes between its steps) and its stack index. A loop writing
        # from one place repeats them, and its stack is the same (the frames
        # above a running frame stay where they are), so it is not walked again
        self._last: tuple[tuple[Any, ...], int] = ((), -1)

    def add(self, method: str, args: list[Any], depth: int) -> bool:
        """Keep one write (``args`` already encoded), made by the frame
        ``depth`` levels above the caller. True when the batch is full."""
        caller = sys._getframe(depth + 1)
        back = caller.f_back
        where = (caller, caller.f_lasti, back, back.f_lasti if back is not None else -1)
        last_where, last_index = self._last
        if where == last_where:
            self.pending.append([method, args, last_index])  # one append: see below
            return len(self.pending) >= MAX_PENDING
        index = self._stack_index(caller)
        self._last = (where, index)
        # one append (a time limit's signal cannot leave a half-kept write)
        self.pending.append([method, args, index])
        return len(self.pending) >= MAX_PENDING

    def _stack_index(self, caller: types.FrameType) -> int:
        """The index of the script stack above ``caller`` in :attr:`stacks` (added when new)."""
        frame: types.FrameType | None = caller
        frames = []
        key: list[Any] = []
        is_script = self._is_script
        while frame is not None:
            code = frame.f_code
            if is_script(code.co_filename):
                frames.append(frame)
                key.append(id(code))
                key.append(frame.f_lasti)
            frame = frame.f_back
        k = tuple(key)
        known = self._index.get(k)
        if known is None:
            stack = [self._frame_of(f.f_code, f.f_lineno, f.f_lasti) for f in frames]
            index = len(self.stacks)
            self.stacks.append(stack)
            self._index[k] = (index, tuple(f.f_code for f in frames))
        else:
            index = known[0]
        return index

    def take(self) -> tuple[list[list[Any]], list[Stack]]:
        """The pending writes and their stacks; the batch is empty afterwards."""
        pending, stacks = self.pending, self.stacks
        self.pending, self.stacks, self._index, self._last = [], [], {}, ((), -1)
        return pending, stacks


def parse_writes(writes: Any, stacks: Any) -> list[tuple[str, list[Any], int]] | None:
    """The writes a message carries, checked strictly (the host trusts nothing
    the worker sends): ``(method, args, stack index)`` each, or None when they
    are malformed (a method outside :data:`BATCHED`, more than
    :data:`MAX_PENDING` writes or stacks, a stack that is not a list, an
    index out of range)."""
    if type(writes) is not list or type(stacks) is not list or len(writes) > MAX_PENDING:
        return None
    if len(stacks) > len(writes) or not all(type(s) is list for s in stacks):
        return None
    out = []
    for entry in writes:
        if type(entry) is not list or len(entry) != 3:
            return None
        method, args, index = entry
        if type(method) is not str or method not in BATCHED or type(args) is not list:
            return None
        if type(index) is not int or not 0 <= index < len(stacks):
            return None
        out.append((method, args, index))
    return out
