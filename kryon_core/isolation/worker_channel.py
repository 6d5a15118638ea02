"""The worker's state and its channel to the host (worker side, standard
library only, loaded by path like every sibling of ``worker.py``).

Holds what every other part of the worker shares: :data:`S` (the scripts,
handles, limits and counters of this process), :class:`ScriptTimeout`, the
frames sent to the host, and the channel itself: :func:`send`,
:func:`receive` and :func:`host_request`, the worker's one way to ask the
host something (a ``kryon`` API call, a host function, a breakpoint hit, a
module's source), which serves the host's own requests while it waits.
:data:`W` keeps a script's DOM writes until the next message the host
answers or waits for carries them (see ``dombatch``).

The request loop (``worker.serve``) and the debugger's agent
(``worker_debug``) are made from functions of the modules that load after
this one; ``worker.py`` hands them over with :func:`connect` before the
first message is read.
"""

from __future__ import annotations

import itertools
import sys
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import dombatch, protocol, scriptenv
    from .worker_debug import WorkerDebugger
else:  # loaded by worker.py (``_load_sibling``) before this module
    protocol = sys.modules["kryon_isolation_protocol"]
    scriptenv = sys.modules["kryon_isolation_scriptenv"]
    dombatch = sys.modules["kryon_isolation_dombatch"]

KryonError = scriptenv.KryonError
_get_limit = sys.getrecursionlimit
_set_limit = sys.setrecursionlimit
#: the frames the channel's code may use past a script's recursion limit (see worker_depth)
ROOM = 100


class ScriptTimeout(BaseException):
    """The call ran past its time limit (a BaseException: ``except Exception`` does not hide it)."""


class State:
    def __init__(self) -> None:
        self.in_fd = -1
        self.out_fd = -1
        self.next_id = 1
        self.config: dict[str, Any] = {}
        self.compile: Callable[..., Any] | None = None
        self.scripts: dict[str, dict[str, Any]] = {}  # script id -> namespace
        self.module_of: dict[str, types.ModuleType] = {}  # script id -> the module whose __dict__ is its namespace
        self.compiled_from: dict[str, str] = {}  # script id -> "bytecode" (the host's cached code) or "source"
        self.builtins: dict[str, dict[str, Any]] = {}  # script id -> builtins dict
        self.engine_globals: dict[str, Any] = {}
        self.handles: dict[int, Any] = {}  # worker handle id -> callable
        self.handle_ids: dict[int, int] = {}  # id(callable) -> handle id
        self.released_host: list[int] = []  # host handle ids dropped by this worker
        self.proxies: dict[int, Any] = {}  # host handle id -> proxy (weak)
        self.modules: dict[str, types.ModuleType] = {}  # name -> read-only module proxy
        self.kryon: types.ModuleType | None = None
        self.loop: Any = None
        self.timer_armed = False  # an outermost call with a time limit runs
        self.call_deadline: float | None = None  # when it must end (monotonic)
        self.timer_at = 0.0  # when ITIMER_REAL fires (0: not armed)
        self.cpu_checked_cpu = 0.0  # the CPU time at the last read, and when (monotonic)
        self.cpu_checked_at = 0.0
        self.pending_timeout = False
        self.script_running = False
        #: the policy's max_recursion (see worker_depth), and the limit of an outermost plain call once measured
        self.max_recursion: int | None = None
        self.call_limit = 0
        #: the replies of the host the worker waits for now (host_request)
        self.waits = 0
        #: the ids of the host's requests being served now, outermost first (worker.serve)
        self.serving: list[Any] = []
        #: the read end of the host's cancel pipe (worker_timer.on_cancel), -1 without one
        self.cancel_fd = -1
        #: an awaited call's tasks are unwinding (worker_calls._abandon): a repeated cancel waits
        self.abandoning = False
        self.internal = 0
        #: the code of the trace functions (debugger, breakpoints): a timeout must not be raised in them
        self.trace_codes: frozenset[types.CodeType] = frozenset()
        self.max_value: int | None = None
        self.loading: set[str] = set()
        self.breakpoints: dict[str, dict[str, int]] = {}  # script id -> {str(line): breakpoint id}
        self.time_limit: float | None = None
        self.columns = False
        self.python_layers = True
        self.cpu_soft = 0
        self.reader: Any = None
        self.decoder: Any = None
        #: the stack of the request the host asked about (``keep_stack``), for the next message
        self.stack_note: list[Any] | None = None


S = State()

#: the debugger's agent and the request loop (see :func:`connect`)
D: WorkerDebugger
_serve: Callable[[dict[str, Any]], None]


def connect(serve: Callable[[dict[str, Any]], None], debugger: WorkerDebugger) -> None:
    """The request loop :func:`host_request` serves the host's requests with
    while it waits, and the debugger's agent the channel tells of mode
    changes (``dm``) and sends counted calls for (``dev``)."""
    global D, _serve
    D, _serve = debugger, serve


# -- the channel ----------------------------------------------------------------------
def send(msg: dict[str, Any]) -> list[Any]:
    """Write one message. Pending DOM writes ride on every message the host
    answers or waits for (see ``dombatch``); returns the stacks of the writes
    it carried (an error naming one of them comes back with its index)."""
    if D.delta:  # calls and returns the debugger counts, before what they led to
        _send_debug_delta()
    stacks: list[Any] = []
    if W.pending and msg.get("t") not in ("out", "dev"):
        msg["w"], stacks = W.take()
        msg["ws"] = stacks
    if S.released_host:
        msg["rel"] = S.released_host
        S.released_host = []
    if S.stack_note is not None:  # see keep_stack
        msg["stk"], S.stack_note = S.stack_note, None
    S.internal += 1
    before = _get_limit()
    _set_limit(before + ROOM)  # a script deep in its recursion may print: the frame is written whole
    try:
        protocol.write_frame(S.out_fd, protocol.dumps(msg))
    finally:
        _set_limit(before)
        S.internal -= 1
    return stacks


def receive() -> dict[str, Any]:
    msg = protocol.loads(S.reader.frame(), S.decoder)
    dm = msg.get("dm")
    if dm is not None:  # the debugger's mode changed (see worker_debug)
        D.apply(dm)
    return msg


def _send_debug_delta() -> None:
    S.internal += 1
    try:
        protocol.write_frame(S.out_fd, protocol.dumps({"t": "dev", "d": D.take_delta()}))
    finally:
        S.internal -= 1


#: requests whose handler on the host reads the script's stack at once (a
#: breakpoint's hit, a debugger's event): they carry it (``"st"``). The host
#: asks for the stack of any other request only when something wants it
#: (``"stk"``, see :func:`waiting_stack`): a script's walk costs an audited
#: attribute read per frame, more than the rest of a ``kryon`` call.
STACK_SENT = frozenset({"bp", "dbg"})


def host_request(kind: str, payload: dict[str, Any]) -> Any:
    """Ask the host (a ``kryon`` API call or a host function) and wait for the
    reply, serving requests the host sends meanwhile."""
    before = _get_limit()
    _set_limit(before + ROOM)  # first: the reply is read whole however deep the script is (worker_depth)
    was_running = S.script_running
    S.waits += 1
    try:
        rid = S.next_id
        S.next_id += 1
        payload["t"] = kind
        payload["i"] = rid
        if kind in STACK_SENT:
            payload["st"] = waiting_stack(1)
        S.script_running = False  # a timer firing now waits until the script runs again
        stacks = send(payload)
        while True:
            msg = receive()
            t = msg.get("t")
            if t == "r" and msg.get("i") == rid:
                return msg.get("v")
            if t == "e" and msg.get("i") == rid:
                exc = KryonError(msg.get("m", "error"), msg.get("k", "runtime"), msg.get("s", ()))
                wi = msg.get("wi")
                if type(wi) is int and 0 <= wi < len(stacks):  # a batched write failed: its own line
                    exc._kryon_stack = stacks[wi]  # type: ignore[attr-defined]
                raise exc
            _serve(msg)
    finally:
        _set_limit(before)
        S.waits -= 1
        S.script_running = was_running
        if was_running and S.pending_timeout:
            S.pending_timeout = False
            raise ScriptTimeout("time limit exceeded")


def send_line(line: str) -> None:
    """A line a script printed (``sys.stdout`` and ``sys.stderr`` in the worker)."""
    send({"t": "out", "x": line})


def keep_stack() -> None:
    """The host calls into this worker while it serves one of its requests,
    whose stack it has not asked for (``"sk"`` on the host's message): the
    script's stack as it waits rides on the first message this call sends
    (``"stk"``, see :func:`send`), before the host runs anything for it."""
    S.stack_note = waiting_stack(1)


# -- stack frames for the host -----------------------------------------------------------
def waiting_stack(depth: int = 0) -> list[list[Any]]:
    """The script frames above the caller's frame (``depth`` levels up; the
    worker's own frames are skipped), innermost first: the stack of a script
    that waits for the host. The walk is the worker's own (no script code
    runs in it): the audit hook lets its frame reads through at once."""
    S.internal += 1
    try:
        return _current_stack(sys._getframe(depth + 1))
    finally:
        S.internal -= 1


def _current_stack(frame: types.FrameType | None) -> list[list[Any]]:
    out = []
    while frame is not None:
        code = frame.f_code
        if code.co_filename in S.scripts or code.co_filename in S.loading:
            out.append(_frame(code, frame.f_lineno, frame.f_lasti))
        frame = frame.f_back
    return out


def is_script_frame(frame: types.FrameType) -> bool:
    """Whether ``frame`` runs a loaded (or loading) script's own code."""
    name = frame.f_code.co_filename
    return name in S.scripts or name in S.loading


def frame_entry(frame: types.FrameType) -> list[Any]:
    """A suspended (or running) frame as the host's stack entry (:func:`_frame`)."""
    return _frame(frame.f_code, frame.f_lineno, frame.f_lasti)


def traceback_stack(tb: types.TracebackType | None) -> list[list[Any]]:
    """The script frames of a traceback, innermost first."""
    frames = []
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename in S.scripts or code.co_filename in S.loading:
            frames.append(_frame(code, tb.tb_lineno, tb.tb_lasti))
        tb = tb.tb_next
    frames.reverse()  # innermost first
    return frames


def _frame(code: types.CodeType, line: int | None, lasti: int) -> list[Any]:
    """A stack frame for the host: [function, script, line], plus
    [language (the runtime's), column] when the compiler's columns are the
    source's own (``CompilerSpec.columns``)."""
    positions = getattr(code, "co_positions", None)  # Python 3.11+
    if not S.columns or lasti < 0 or positions is None:
        return [code.co_name, code.co_filename, line]
    pos = next(itertools.islice(positions(), lasti // 2, None), None)
    return [code.co_name, code.co_filename, line, None, pos[2] if pos else None]


#: the DOM writes waiting for the next message to the host (see dombatch)
W = dombatch.WriteBatch(lambda name: name in S.scripts or name in S.loading, _frame)
