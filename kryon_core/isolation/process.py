"""The host side of one worker process: starting it, the re-entrant request
loop over its channel, the handles that cross, its death, and the watchdog
that kills it past its deadline.

The host never trusts a byte the worker writes: messages are JSON
(:mod:`.protocol`), handle ids are looked up in tables the host owns, frames
past the size limit or malformed ones end the worker, and every wait has a
deadline when the policy has a time limit.

Every worker is started from one long-lived thread (:class:`Spawner`): the
worker asks the kernel to kill it when its parent dies (``PR_SET_PDEATHSIG``),
and Linux sends that signal when the *thread* that forked it ends, so a worker
started from a short-lived thread (a replacement started inside some caller's
call) would die with that thread. A worker forked by a fork server
(:mod:`.forkserver`) has that same thread as its parent: the zygote was started
from it and forks with ``CLONE_PARENT``.
"""

from __future__ import annotations

import itertools
import os
import queue
import signal
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from ..errors import (
    AccessDeniedError,
    CompileError,
    ConversionError,
    DOMError,
    FunctionNotFoundError,
    MemoryLimitError,
    RecursionLimitError,
    ScriptError,
    ScriptRuntimeError,
    ScriptTimeoutError,
    SizeLimitError,
    StackFrame,
)
from ..values import FunctionRef, UserData
from . import dombatch, forkserver, protocol
from .forkserver import ForkedChild

if TYPE_CHECKING:
    from ..policy import SecurityPolicy

__all__ = [
    "ERROR_CLASSES",
    "WORKER_PATH",
    "CONTROL_TIMEOUT",
    "START_TIMEOUT",
    "WorkerDied",
    "WorkerHost",
    "WorkerProcess",
    "Spawner",
    "Watchdog",
    "kill_after",
    "error_kind",
]

#: the worker program, run as ``python -I -S WORKER_PATH``
#: a request id written down the cancel pipe (see :meth:`WorkerProcess.interrupt`)
CANCEL_ID = struct.Struct("<q")
WORKER_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.py")

#: the protocol's error kinds (``protocol.ERROR_KINDS``) and the errors they stand for
ERROR_CLASSES: dict[str, type[ScriptError]] = {
    "runtime": ScriptRuntimeError,
    "compile": CompileError,
    "access": AccessDeniedError,
    "timeout": ScriptTimeoutError,
    "memory": MemoryLimitError,
    "recursion": RecursionLimitError,
    "size": SizeLimitError,
    "conversion": ConversionError,
    "notfound": FunctionNotFoundError,
    "dom": DOMError,
    "script": ScriptError,
}

#: how long control requests (unload, gc, globals) may take when nothing else limits them
CONTROL_TIMEOUT = 10.0
START_TIMEOUT = 30.0
#: the hard deadline is the time limit plus this share of it (and at least MIN_GRACE):
#: a C-level loop, which the worker's own timer cannot interrupt, stops within 1.4x
GRACE_SHARE = 0.4
MIN_GRACE = 0.1
#: a call still running at this share of its time limit gets a standby worker
#: started (once per worker): if it must be killed, the restart costs only the
#: script's top level (a Hy worker takes a good part of a second to start)
STANDBY_SHARE = 0.5


def kill_after(limit: float) -> float:
    """Seconds after a call starts at which the host kills its worker: the
    worker's own timer interrupts Python code at ``limit``; this is the
    backstop for code that never returns to the interpreter loop."""
    return limit + max(GRACE_SHARE * limit, MIN_GRACE)


class WorkerDied(Exception):
    """The worker is gone (crash, kill, timeout past the deadline, protocol
    violation); ``kind`` is the error kind the caller's error gets."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class WorkerHost(Protocol):
    """What a worker process needs from the runtime that owns it."""

    language: str
    #: the debugger's side of the workers (``isolation.debugging``), None without a debugger
    debug: Any

    def deliver_output(self, text: str) -> None: ...

    def serve_api(self, proc: "WorkerProcess", name: Any, args: list[Any]) -> Any: ...

    def serve_breakpoint(self, msg: dict[str, Any], stack: list[StackFrame]) -> None: ...

    def serve_module(self, proc: "WorkerProcess", name: Any) -> str | None: ...

    def worker_function(self, proc: "WorkerProcess", hid: int, name: str, script_id: str) -> FunctionRef: ...

    def convert_unknown(self, obj: Any) -> Any: ...

    def push_stack(self, frames: "list[StackFrame] | WaitingStack", proc: "WorkerProcess | None" = None) -> None: ...

    def pop_stack(self) -> None: ...

    def prepare_standby(self, proc: "WorkerProcess") -> None: ...


# -- starting workers from one thread ---------------------------------------------------------
class Spawner:
    """Starts every worker process from one long-lived daemon thread (see the
    module doc: the worker's parent-death signal follows the forking thread)."""

    def __init__(self) -> None:
        self._requests: "queue.SimpleQueue[tuple[Callable[[], Any], list[Any], threading.Event | None]]" = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def spawn(self, argv: list[str], env: dict[str, str], pass_fds: tuple[int, ...] = ()) -> "subprocess.Popen[bytes]":
        """Start ``argv`` from the spawner thread and return its Popen."""
        return self.call(lambda: _popen(argv, env, pass_fds))  # type: ignore[no-any-return]

    def call(self, job: Callable[[], Any]) -> Any:
        """Run ``job`` (which starts a process) on the spawner thread and return its result."""
        thread = self._ensure_thread()
        if threading.current_thread() is thread:
            return job()
        box: list[Any] = []
        done = threading.Event()
        self._requests.put((job, box, done))
        done.wait()
        result = box[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def submit(self, job: Callable[[], Any]) -> None:
        """Run ``job`` on the spawner thread without waiting for it (it starts
        workers itself, which then belong to that thread)."""
        self._ensure_thread()
        self._requests.put((job, [], None))

    def _ensure_thread(self) -> threading.Thread:
        with self._lock:
            # a forked child of the host has no spawner thread: start its own
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._requests = queue.SimpleQueue()
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="kryon-isolation-spawner", daemon=True)
                self._thread.start()
            return self._thread

    def _run(self) -> None:
        requests = self._requests
        while True:
            job, box, done = requests.get()
            try:
                box.append(job())
            except BaseException as exc:  # handed to the waiting caller; a submitted job's is dropped
                box.append(exc)
            if done is not None:
                done.set()


def _popen(argv: list[str], env: dict[str, str], pass_fds: tuple[int, ...] = ()) -> "subprocess.Popen[bytes]":
    return subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,  # only start-up failures and fatal errors land here
        env=env,
        close_fds=True,
        pass_fds=pass_fds,
        start_new_session=True,
    )


SPAWNER = Spawner()


class Flight:
    """An awaited call of a worker, seen from the task awaiting it:
    ``target`` is (worker, request id) while its request runs, else None.
    The id is what a cancellation interrupts (see :meth:`WorkerProcess.interrupt`)."""

    __slots__ = ("target",)

    def __init__(self) -> None:
        self.target: tuple[WorkerProcess, int] | None = None

    def run(self, call: Callable[..., Any], *args: Any) -> Any:
        return call(*args, flight=self)


# -- one worker -----------------------------------------------------------------------------------
class WorkerProcess:
    """One worker process and its channel. Used inside its script's gate (host.py)."""

    def __init__(self, host: WorkerHost, script_id: str, policy: "SecurityPolicy", owner: Any = None) -> None:
        self.host = host
        #: the runtime's record of the script this worker runs
        self.owner = owner
        self.script_id = script_id
        self.policy = policy
        self.ids = itertools.count(1)
        self.handles: dict[int, Any] = {}  # host handle id -> host object the worker holds
        self.handle_ids: dict[int, int] = {}  # id(obj) -> host handle id
        self.refs: "weakref.WeakValueDictionary[int, FunctionRef]" = weakref.WeakValueDictionary()
        self.exported: "weakref.WeakKeyDictionary[FunctionRef, int]" = weakref.WeakKeyDictionary()
        self.pending_release: list[int] = []
        self.dead: WorkerDied | None = None
        self.deadline: float | None = None
        #: when a call that is still running gets a standby worker started
        self.standby_at: float | None = None
        self.standby_requested = False
        #: this worker was started as a standby and took over after a kill
        self.from_standby = False
        self.init: dict[str, Any] = {}
        self.control = False
        self.depth = 0
        self.hardening: dict[str, Any] = {}
        self.max_frame = max(protocol.DEFAULT_MAX_FRAME, 4 * (policy.max_value_size or 0))
        self.popen: "subprocess.Popen[bytes] | ForkedChild | None" = None
        self.pid = 0
        self.wfd = self.rfd = -1
        #: the write end of the cancel pipe: the id of the call :meth:`interrupt` means (see worker_timer.on_cancel)
        self.cancel_fd = -1
        self._cancel_lock = threading.Lock()  # the fd is closed by the thread that reaps, written by the canceller's
        self.buf = b""
        self.decoder = protocol.decoder(self._decode_tag)
        #: the watchdog knows this worker (it forgets it only once it is dead)
        self.watched = False
        #: the stack of the worker's request the host is serving now, when it came without one
        self.waiting: WaitingStack | None = None

    # -- lifecycle -----------------------------------------------------------
    def start(self, init: dict[str, Any]) -> None:
        """Start the process, send the init message and wait until the worker sealed itself."""
        self.send_init(init)
        self.finish_start()

    def send_init(self, init: dict[str, Any]) -> None:
        """Start the process and send the init message; the worker imports and
        seals itself meanwhile. The process is forked by the fork server of
        ``init``'s warm-up spec when one is ready, else started anew."""
        theirs, self.cancel_fd = os.pipe()  # the worker's end becomes its fd 3 (worker._cancel_pipe)
        os.set_blocking(self.cancel_fd, False)  # a full pipe drops the id: the call is killed past its grace anyway
        try:
            self.popen = forkserver.fork_worker(init, theirs) or SPAWNER.spawn(
                [sys.executable, "-I", "-S", WORKER_PATH, str(theirs)], {"LC_ALL": "C.UTF-8"}, (theirs,)
            )
        finally:
            os.close(theirs)
        self.pid = self.popen.pid
        self.wfd = self.popen.stdin.fileno()  # type: ignore[union-attr]
        self.rfd = self.popen.stdout.fileno()  # type: ignore[union-attr]
        self.init = init
        self._send(dict(init, t="init", i=0))

    def finish_start(self) -> None:
        """Wait for the worker's answer to its init message."""
        self.deadline = time.monotonic() + START_TIMEOUT
        self.control = True
        WATCHDOG.watch(self)
        try:
            reply = self._wait(0)
        finally:
            self.deadline = None
        self.hardening = reply.get("hardening", {}) if isinstance(reply, dict) else {}

    def kill(self, kind: str, message: str) -> None:
        if self.dead is None:
            self.dead = WorkerDied(kind, message)
        if self.popen is None:  # never started
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:
            try:
                self.popen.kill()
            except OSError:
                pass
        self._reap()

    def close(self) -> None:
        if self.dead is not None:
            return
        self.dead = WorkerDied("runtime", "the worker was closed")
        if self.popen is None:
            return
        try:
            protocol.write_frame(self.wfd, protocol.dumps({"t": "exit", "i": next(self.ids)}))
            self.popen.wait(timeout=0.5)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            pass
        self.kill("runtime", "the worker was closed")

    def _stderr_tail(self) -> str:
        """The last line the worker wrote to its stderr (a start-up failure
        or a fatal error), read without blocking."""
        stream = self.popen.stderr if self.popen is not None else None
        if stream is None:
            return ""
        try:
            os.set_blocking(stream.fileno(), False)
            data = os.read(stream.fileno(), 65536)
        except (OSError, ValueError):
            return ""
        lines = [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
        return lines[-1].strip()[:300] if lines else ""

    def _reap(self) -> None:
        with self._cancel_lock:
            if self.cancel_fd >= 0:
                os.close(self.cancel_fd)
                self.cancel_fd = -1
        if self.popen is None:
            return
        for stream in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            try:
                stream.close()  # type: ignore[union-attr]
            except OSError:
                pass
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a zombie we cannot reap
            pass
        self.handles.clear()
        self.handle_ids.clear()

    @property
    def rss(self) -> int:
        try:
            with open(f"/proc/{self.pid}/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return 0

    @property
    def peak(self) -> int | None:
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError):
            pass
        return None

    # -- requests --------------------------------------------------------------
    def request(self, msg: dict[str, Any], *, limit: float | None, control: bool = False,
                flight: "Flight | None" = None) -> Any:
        """Send a request and wait for its reply, serving the worker's own
        requests meanwhile. ``limit`` is the policy's time limit for calls.
        ``flight`` (an awaited call's) knows this request's id while it runs,
        the one a cancellation may interrupt (:meth:`interrupt`)."""
        if self.dead is not None:
            raise self.dead
        rid = next(self.ids)
        msg["i"] = rid
        outer = self.depth == 0
        if outer:
            self.control = control
            if control:
                self.deadline = time.monotonic() + CONTROL_TIMEOUT + (limit or 0)
            elif limit is not None:
                now = time.monotonic()
                self.deadline = now + kill_after(limit)
                self.standby_at = now + STANDBY_SHARE * limit
            else:
                self.deadline = None
            if self.deadline is not None and not self.watched:
                WATCHDOG.watch(self)
        waiting = self.waiting
        if waiting is not None and not waiting.asked and waiting.frames is None and msg["t"] != "stk":
            # a call in while a request of the worker is served: the worker sends that
            # request's stack with its first message (the host may want it while this call runs)
            msg["sk"] = 1
            waiting.asked = True
        self.depth += 1
        if flight is not None:
            flight.target = (self, rid)
        try:
            self._send(msg)
            return self._wait(rid)
        finally:
            if flight is not None:
                flight.target = None
            self.depth -= 1
            if outer:
                self.deadline = self.standby_at = None

    def _send(self, msg: dict[str, Any]) -> None:
        debug = self.host.debug
        if debug is not None:  # the debugger's mode rides on the next message (see worker_debug)
            debug.outgoing(self, msg)
        if self.pending_release:
            released, self.pending_release = self.pending_release, []
            msg["rel"] = released
        try:
            protocol.write_frame(self.wfd, protocol.dumps(msg))
        except (OSError, ValueError):
            self._died()

    def call_plain(self, prefix: bytes, args: list[Any], limit: float | None) -> Any:
        """:meth:`request` of a script call made from outside any other
        request of this worker (``depth`` 0), with no debugger attached and no
        releases pending (the caller checked both): the same steps written
        out in one frame, for the hot path of a bound handle. A reply that is
        only the result is taken at once; anything else the worker sends
        (output, API calls, DOM writes, errors) goes through :meth:`_wait`.
        The message is a ``call`` (``protocol.call_frame``: ``prefix`` names
        the script and function, ``args`` are encoded scalars). ``limit`` is
        the policy's time limit: the watchdog's deadline and the standby's
        start are set as :meth:`request` sets them."""
        if self.dead is not None:
            raise self.dead
        rid = next(self.ids)
        self.control = False
        if limit is not None:
            now = time.monotonic()
            self.deadline = now + kill_after(limit)
            self.standby_at = now + STANDBY_SHARE * limit
            if not self.watched:
                WATCHDOG.watch(self)
        else:
            self.deadline = None
        self.depth = 1
        try:
            try:
                frame = protocol.call_frame(prefix, args, rid)
                n = os.write(self.wfd, frame)  # protocol.write_frame's usual case: a pipe takes it at once
                if n != len(frame):
                    protocol.write_frame(self.wfd, frame[n:])
            except (OSError, ValueError):
                self._died()
            buf = self.buf
            if not buf and self.dead is None:  # _receive's usual case: one read brings the whole reply
                try:
                    buf = os.read(self.rfd, 1 << 16)
                except OSError:
                    buf = b""
                if not buf:
                    self._died()
                if len(buf) >= 4 and protocol.HEADER.unpack_from(buf)[0] + 4 == len(buf) <= self.max_frame + 4:
                    try:
                        reply = protocol.loads(buf[4:], self.decoder)
                    except protocol.ProtocolError as exc:
                        self._violation(str(exc))
                    if reply.get("t") == "r" and reply.get("i") == rid and "w" not in reply and "rel" not in reply:
                        return reply.get("v")
                    return self._wait(rid, reply)
                self.buf = buf
            return self._wait(rid)
        finally:
            self.depth = 0
            self.deadline = self.standby_at = None

    def _wait(self, rid: int, first: dict[str, Any] | None = None) -> Any:
        while True:
            if first is not None:
                msg, first = first, None
            else:
                msg = self._receive()
            rel = msg.get("rel")
            if rel:
                self._drop_handles(rel)
            if "stk" in msg:
                self._stack_note(msg["stk"])
            t = msg.get("t")
            failed = self._apply_writes(msg) if "w" in msg else None
            if t == "r":
                if msg.get("i") == rid:
                    if failed is not None:  # the call's last writes: a refused one is the call's error
                        raise self.error(failed)
                    return msg.get("v")
                self._violation(f"reply to an unknown request {msg.get('i')!r}")
            elif t == "e":
                if msg.get("i") == rid:
                    raise self.error(failed if failed is not None else msg)
                self._violation(f"error for an unknown request {msg.get('i')!r}")
            elif t == "out":
                text = msg.get("x")
                if isinstance(text, str):
                    self.host.deliver_output(text)
            elif failed is not None and t in ("api", "callh", "bp", "mod", "dbg", "wb"):
                # a write the request carried failed: the request is not served,
                # the worker raises the error at the write's line (its index)
                self._send({"t": "e", "i": msg.get("i"), "k": failed["k"], "m": failed["m"],
                            "s": failed["hs"], "wi": failed["wi"]})
            elif t == "api" and "st" not in msg:  # a kryon call (the most common request): _serve written out
                self._serve_api(msg)
            elif t == "wb":  # a full batch of writes, applied above
                self._send({"t": "r", "i": msg.get("i"), "v": None})
            elif t in ("api", "callh", "bp", "mod", "dbg"):
                self._serve(msg)
            elif t == "dev":  # calls and returns counted by the worker's tracer
                if self.host.debug is not None:
                    self.host.debug.calls(self, msg)
            else:
                self._violation(f"unknown message type {t!r}")

    def _serve(self, msg: dict[str, Any]) -> None:
        st = msg.get("st")
        waiting = None if st is not None else WaitingStack(self)
        outer, self.waiting = self.waiting, waiting
        self.host.push_stack(self.frames(st) if waiting is None else waiting, self)
        try:
            self._serve_one(msg.get("i"), msg)
        finally:
            self.host.pop_stack()
            self.waiting = outer

    def _serve_api(self, msg: dict[str, Any]) -> None:
        """:meth:`_serve` of a ``kryon`` call that came without a stack: the
        same steps in one frame, and the reply of a scalar result made
        without the encoder's calls (:func:`.protocol.reply_frame`) when
        nothing rides on it (see :meth:`_send`)."""
        host = self.host
        waiting = WaitingStack(self)
        outer, self.waiting = self.waiting, waiting
        host.push_stack(waiting, self)
        rid = msg.get("i")
        reply = None
        scalar = False
        try:
            try:
                args = msg.get("a", [])
                if type(args) is not list:
                    raise ScriptRuntimeError("arguments must be a list", language=host.language)
                v = host.serve_api(self, msg.get("n"), args)
                t = v.__class__
                scalar = t is int or t is float or t is bool or v is None or (t is str and self._fits(v))
                if not scalar:
                    v = self.encode(v)
            except WorkerDied:
                raise
            except Exception as exc:
                reply = self._failure(rid, exc)
            if self.dead is not None:
                raise self.dead
            if reply is None and scalar and type(rid) is int and host.debug is None and not self.pending_release:
                try:
                    protocol.write_frame(self.wfd, protocol.reply_frame(rid, v))
                except (OSError, ValueError):
                    self._died()
            else:
                self._send(reply if reply is not None else {"t": "r", "i": rid, "v": v})
        finally:
            host.pop_stack()
            self.waiting = outer

    def _fits(self, text: str) -> bool:
        limit = self.policy.max_value_size
        return limit is None or len(text) <= limit

    def _stack_note(self, raw: Any) -> None:
        """The stack of the request of the worker being served, which came
        with the first message of a call made into the worker meanwhile
        (asked for with ``"sk"``, see :meth:`request`)."""
        waiting = self.waiting
        if waiting is None or not waiting.asked or waiting.frames is not None or waiting.raw is not None:
            self._violation("a stack nobody asked for")
        waiting.raw = raw if type(raw) is list else []

    def _serve_one(self, rid: Any, msg: dict[str, Any]) -> None:
        language = self.host.language
        try:
            args = msg.get("a", [])
            if not isinstance(args, list):
                raise ScriptRuntimeError("arguments must be a list", language=language)
            if msg["t"] == "bp":
                self.host.serve_breakpoint(msg, self.frames(msg.get("st")))
                result = None
            elif msg["t"] == "dbg":
                result = self.host.debug.event(self, msg) if self.host.debug is not None else None
            elif msg["t"] == "api":
                result = self.host.serve_api(self, msg.get("n"), args)
            elif msg["t"] == "mod":
                result = self.host.serve_module(self, msg.get("n"))
            else:
                target = self.handles.get(msg.get("h"))  # type: ignore[arg-type]
                if target is None or not callable(target):
                    raise ScriptRuntimeError("unknown host function handle", language=language)
                result = target(*args)
            reply = {"t": "r", "i": rid, "v": self.encode(result)}
        except WorkerDied:
            raise
        except Exception as exc:
            reply = self._failure(rid, exc)
        if self.dead is not None:
            raise self.dead
        self._send(reply)

    @staticmethod
    def _failure(rid: Any, exc: Exception) -> dict[str, Any]:
        """The error reply to a request the host failed to serve."""
        if isinstance(exc, ScriptError):
            return error_message(rid, exc)
        if isinstance(exc, protocol.ValueRefused):
            return {"t": "e", "i": rid, "k": exc.kind, "m": str(exc), "s": []}
        # a host function failed: the script sees it as an error
        return {"t": "e", "i": rid, "k": "runtime", "m": f"{type(exc).__name__}: {exc}", "s": []}

    def _apply_writes(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        """Apply the DOM writes ``msg`` carries (see :mod:`.dombatch`), in
        order, each as the ``kryon`` call it stands for. The first one that
        fails stops them: returned as an error message (the worker's form:
        the write's stack first, then the host's) with ``"wi"``, its index,
        and ``"hs"``, the host's part of the stack. None when all applied."""
        if msg.get("t") not in ("r", "e", "api", "callh", "bp", "mod", "dbg", "wb"):
            self._violation(f"DOM writes on a {msg.get('t')!r} message")
        raw_stacks: list[Any] = msg.get("ws")  # type: ignore[assignment]  # a list once parse_writes accepts it
        writes = dombatch.parse_writes(msg.get("w"), raw_stacks)
        if writes is None:
            self._violation("malformed DOM writes")
        host = self.host
        stacks: dict[int, list[StackFrame]] = {}  # each distinct stack made once
        pushed = -1  # the stack index whose frames are the host's current stack (a loop's writes share one)
        failed: dict[str, Any] | None = None
        try:
            for index, (method, args, si) in enumerate(writes):
                if si != pushed:
                    frames = stacks.get(si)
                    if frames is None:
                        frames = stacks[si] = self.frames(raw_stacks[si])
                    if pushed >= 0:
                        host.pop_stack()
                        pushed = -1
                    host.push_stack(frames, self)
                    pushed = si
                try:
                    host.serve_api(self, method, args)
                except WorkerDied:
                    raise
                except ScriptError as exc:
                    failed = error_message(index, exc)
                except Exception as exc:  # as a failed kryon call: the script's error
                    failed = {"k": "runtime", "m": f"{type(exc).__name__}: {exc}", "s": []}
                if failed is not None:
                    stack = [frame for frame in raw_stacks[si] if isinstance(frame, list)]
                    line = stack[0][2] if stack and len(stack[0]) > 2 else None
                    failed = {"k": failed["k"], "m": failed["m"], "s": stack + failed["s"], "hs": failed["s"],
                              "wi": index, "l": line}
                    break
        finally:
            if pushed >= 0:
                host.pop_stack()
        if self.dead is not None:
            raise self.dead
        return failed

    def _receive(self) -> dict[str, Any]:
        buf = self.buf
        if not buf and self.dead is None:  # the usual case: one read brings the whole message
            try:
                buf = os.read(self.rfd, 1 << 16)
            except OSError:
                buf = b""
            if not buf:
                self._died()
        if len(buf) < 4:
            buf = self._fill(buf, 4)
        (n,) = protocol.HEADER.unpack_from(buf)
        if n > self.max_frame:
            self._violation(f"a message of {n} bytes is larger than allowed")
        end = 4 + n
        if len(buf) < end:
            buf = self._fill(buf, end)
        self.buf = buf[end:]
        try:
            return protocol.loads(buf[4:end], self.decoder)
        except protocol.ProtocolError as exc:
            self._violation(str(exc))

    def _fill(self, buf: bytes, need: int) -> bytes:
        parts = [buf]
        have = len(buf)
        while have < need:
            chunk = self._read(max(1 << 16, min(need - have, 1 << 24)))
            parts.append(chunk)
            have += len(chunk)
        return b"".join(parts)

    def _read(self, n: int) -> bytes:
        """One blocking read of at most ``n`` bytes. Deadlines are kept by the
        watchdog thread, which kills a worker past its deadline: the read then
        ends with EOF and the death's reason says "timeout"."""
        if self.dead is not None:
            raise self.dead
        try:
            chunk = os.read(self.rfd, n)
        except OSError:
            chunk = b""
        if not chunk:
            self._died()
        return chunk

    def expire(self) -> None:
        """Called by the watchdog (another thread) once the deadline passed:
        mark the death and kill the process; the waiting thread reaps it."""
        if self.dead is not None:
            return
        limit = self.policy.time_limit
        if self.control or limit is None:
            self.dead = WorkerDied("runtime", "the worker stopped answering and was stopped")
        else:
            self.dead = WorkerDied(
                "timeout", f"the call ran longer than the time limit ({limit:g} s); the worker was stopped"
            )
        if self.pid <= 0:
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:
            pass

    def interrupt(self, rid: int) -> None:
        """Ask the worker to end the call of request ``rid`` as at its time
        limit (the host's task awaiting it was cancelled): the id goes down
        the cancel pipe, then ``SIGUSR2``. The worker acts on the signal only
        in script code or its loop's wait, and only while it serves a
        request whose id it read from the pipe: a signal sent as that call
        ended never stops the next call, another thread's. The caller sends
        it again while the call runs (``IsolatedRuntime.call_async``)."""
        if self.dead is None and self.pid > 0:
            with self._cancel_lock:
                if self.cancel_fd < 0:
                    return
                try:
                    os.write(self.cancel_fd, CANCEL_ID.pack(rid))
                except OSError:
                    pass
            try:
                os.kill(self.pid, signal.SIGUSR2)
            except OSError:
                pass

    def stop_cancelled(self) -> None:
        """End a call the worker did not stop on :meth:`interrupt` (it hides
        in C code, or its unwinding swallows every cancellation): kill the
        process as :meth:`expire` does; the script restarts."""
        if self.dead is not None:
            return
        self.dead = WorkerDied("timeout", "the awaiting task was cancelled and the call did not stop; the worker was stopped")
        if self.pid > 0:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except OSError:
                pass

    def _died(self) -> NoReturn:
        if self.dead is not None:
            self._reap()
        else:
            try:
                code = self.popen.wait(timeout=2) if self.popen is not None else None
            except subprocess.TimeoutExpired:
                code = None
            tail = self._stderr_tail()
            if code is not None and code < 0 and -code == signal.SIGXCPU:
                self.kill("timeout", "the call used more CPU time than the time limit allows; the worker was stopped")
            elif code is not None and code < 0:
                name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
                self.kill("runtime", f"the worker running the script was killed by {name}" + (f" ({tail})" if tail else ""))
            else:
                self.kill("runtime", f"the worker running the script exited (status {code})" + (f": {tail}" if tail else ""))
        raise self.dead  # type: ignore[misc]

    def _violation(self, what: str) -> NoReturn:
        self.kill("runtime", f"the worker broke the protocol ({what}) and was stopped")
        raise self.dead  # type: ignore[misc]

    def frames(self, raw: Any) -> list[StackFrame]:
        """A stack the worker sent, as StackFrames (anything malformed is skipped)."""
        stack = []
        for frame in raw if isinstance(raw, list) else ():
            if isinstance(frame, list) and len(frame) >= 3:
                fn, script, line = frame[0], frame[1], frame[2]
                lang = frame[3] if len(frame) > 3 and isinstance(frame[3], str) else self.host.language
                col = frame[4] if len(frame) > 4 else None
                stack.append(
                    StackFrame(
                        str(fn),
                        script=str(script) if script is not None else None,
                        line=line if isinstance(line, int) else None,
                        column=col if isinstance(col, int) else None,
                        language=lang,
                    )
                )
        return stack

    def error(self, msg: dict[str, Any]) -> ScriptError:
        """The error a worker's error reply stands for."""
        kind = msg.get("k")
        cls = ERROR_CLASSES.get(kind if isinstance(kind, str) else "runtime", ScriptRuntimeError)
        stack = self.frames(msg.get("s"))
        line = msg.get("l")
        line = line if isinstance(line, int) else (stack[0].line if stack else None)
        col = msg.get("c")
        if not isinstance(col, int):  # a runtime error: the innermost frame's column, if the worker sends columns
            col = stack[0].column if stack and stack[0].line == line else None
        text = msg.get("m")
        script_id = self.script_id
        if stack and stack[0].script:
            script_id = stack[0].script
        return cls(
            str(text) if text is not None else "error",
            language=self.host.language if not stack else (stack[0].language or self.host.language),
            script=script_id,
            line=line,
            column=col,
            stack=stack,
        )

    # -- values --------------------------------------------------------------------
    def _decode_tag(self, d: dict[str, Any]) -> Any:
        if protocol.TAG not in d:
            return d
        tag = d[protocol.TAG]
        if tag == "b":
            return protocol.decode_bytes(d)
        if tag == "h":
            hid = d.get("v")
            if not isinstance(hid, int) or hid not in self.handles:
                raise protocol.ProtocolError(f"unknown host handle {hid!r}")
            return self.handles[hid]
        if tag == "f":
            return self._worker_function(d)
        if tag == "d":
            return _escaped_dict(d)
        raise protocol.ProtocolError(f"unknown tag {tag!r}")

    def _worker_function(self, d: dict[str, Any]) -> FunctionRef:
        hid = d.get("v")
        if not isinstance(hid, int):
            raise protocol.ProtocolError("bad function handle")
        ref = self.refs.get(hid)
        if ref is None:
            name = d.get("n") if isinstance(d.get("n"), str) else "function"
            script = d.get("s") if isinstance(d.get("s"), str) else None
            ref = self.host.worker_function(self, hid, str(name), script or self.script_id)
            self.refs[hid] = ref
            self.exported[ref] = hid
        return ref

    def encode(self, value: Any) -> Any:
        return protocol.encode_value(value, self._export, max_size=self.policy.max_value_size)

    def encode_args(self, args: Any) -> list[Any]:
        """A call's arguments, each as :meth:`encode` makes it."""
        return protocol.encode_args(args, self._export, max_size=self.policy.max_value_size)

    def _export(self, obj: Any) -> Any:
        if isinstance(obj, FunctionRef):
            hid = self.exported.get(obj)
            if hid is not None:
                return {protocol.TAG: "f", "v": hid}
        if isinstance(obj, (FunctionRef, UserData)) or callable(obj):
            key = id(obj)
            hid = self.handle_ids.get(key)
            if hid is None or self.handles.get(hid) is not obj:
                hid = next(self.ids)
                self.handles[hid] = obj
                self.handle_ids[key] = hid
            return {protocol.TAG: "h", "v": hid, "c": 1 if callable(obj) else 0}
        return self.encode(self.host.convert_unknown(obj))

    def _drop_handles(self, ids: Any) -> None:
        if not isinstance(ids, list):
            return
        for hid in ids:
            if isinstance(hid, int):
                obj = self.handles.pop(hid, None)
                if obj is not None and self.handle_ids.get(id(obj)) == hid:
                    del self.handle_ids[id(obj)]


class WaitingStack:
    """The stack of a worker's script while it waits for the host to serve
    one of its requests, fetched only when something asks for it
    (``current_stack``): a worker sends it with a request only when the
    host reads it at once (``worker_channel.STACK_SENT``), and with the
    first message of a call the host makes into it while it waits (``"sk"``
    on the call, ``"stk"`` on that message): the worker is busy then and
    cannot be asked."""

    __slots__ = ("proc", "depth", "frames", "raw", "asked")

    def __init__(self, proc: WorkerProcess) -> None:
        self.proc = proc
        #: the worker's request depth while it waits for this request's answer
        self.depth = proc.depth
        self.frames: list[StackFrame] | None = None
        #: the stack as the worker sent it with a call in (made into ``frames`` when asked for)
        self.raw: list[Any] | None = None
        #: the worker was told to send the stack with a call in (``"sk"``)
        self.asked = False

    def fetch(self) -> list[StackFrame]:
        """The stack: asked of the worker while it waits for this request's
        answer; once a call into it was made meanwhile, the stack that came
        with that call's first message. Empty once the worker died."""
        frames = self.frames
        if frames is None and self.raw is not None:
            frames = self.frames = self.proc.frames(self.raw)
        if frames is None:
            proc = self.proc
            if proc.dead is not None or proc.depth != self.depth:
                return []
            try:
                raw = proc.request({"t": "stk"}, limit=None)
            except WorkerDied:  # the request being served ends with the death
                return []
            frames = self.frames = proc.frames(raw)
        return list(frames)


def _escaped_dict(d: dict[str, Any]) -> dict[str, Any]:
    items = d.get("v")
    if not isinstance(items, list):
        raise protocol.ProtocolError("bad escaped dict")
    out = {}
    for item in items:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            raise protocol.ProtocolError("bad escaped dict item")
        out[item[0]] = item[1]
    return out


# -- the watchdog -------------------------------------------------------------------------------
class Watchdog:
    """One daemon thread that kills workers whose call ran past its deadline.
    It wakes at least every ``TICK`` seconds while some worker is watched and
    sleeps precisely until the nearest deadline it knows of, so a kill comes
    on time while the hot path pays no timer system call on the host. When a
    call has run half its time limit, it asks the runtime for a standby
    worker, so a restart after a kill costs only the script's top level, not
    a whole interpreter start."""

    TICK = 0.05

    def __init__(self) -> None:
        self._procs: "weakref.WeakSet[WorkerProcess]" = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, proc: WorkerProcess) -> None:
        if proc in self._procs:
            return
        with self._lock:
            self._procs.add(proc)
            proc.watched = True
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="kryon-isolation-watchdog", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            now = time.monotonic()
            nearest = now + self.TICK
            with self._lock:
                procs = list(self._procs)
            for proc in procs:
                if proc.dead is not None:
                    with self._lock:
                        self._procs.discard(proc)
                    continue
                soft = proc.standby_at
                if soft is not None and not proc.standby_requested:
                    if now >= soft:  # a long call: have a replacement ready in case it must be killed
                        proc.standby_requested = True
                        proc.host.prepare_standby(proc)
                    else:
                        nearest = min(nearest, soft)
                deadline = proc.deadline
                if deadline is None:
                    continue
                if now >= deadline:
                    proc.expire()
                else:
                    nearest = min(nearest, deadline)
            time.sleep(max(nearest - time.monotonic(), 0.001))


WATCHDOG = Watchdog()


# -- errors going to the worker --------------------------------------------------------------------
def error_kind(exc: ScriptError) -> str:
    """The protocol's error kind for a host error (the most specific class that matches)."""
    for kind, cls in ERROR_CLASSES.items():
        if type(exc) is cls:
            return kind
    for kind, cls in ERROR_CLASSES.items():
        if isinstance(exc, cls) and kind != "script":
            return kind
    return "script"


def error_message(rid: Any, exc: ScriptError) -> dict[str, Any]:
    stack = [[f.function, f.script, f.line, f.language] for f in exc.stack]
    if not stack and exc.script is not None:
        stack = [["<host>", exc.script, exc.line, exc.language]]
    return {"t": "e", "i": rid, "k": error_kind(exc), "m": exc.message, "s": stack}

