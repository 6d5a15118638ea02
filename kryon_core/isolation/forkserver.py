"""The host side of the fork server: one pre-started, not yet confined
process per warm-up spec (``zygote.py``) that has imported what workers need
and forks a worker on request, so a worker start costs a fork and the
worker's own confinement instead of a new interpreter importing everything.

A worker forked this way is the host's own child (``CLONE_PARENT``), starts
from the worker's first step (reads its init message, imports what its
policy grants, seals itself) and is driven exactly like a worker the host
started itself; :class:`ForkedChild` gives it the part of ``subprocess.Popen``
the host uses.

The zygote starts ahead (:func:`prestart`, which the Python and Lisp engines
call when their manager's default policy is sandboxed) or with the first
worker of its spec, which waits for it to warm up (:data:`WARM_WAIT` at
most). A zygote that died, or that fails a request, is replaced: that worker
starts the usual way and a new zygote warms up for the next one.

Where forking is not offered (see :func:`supported`), every worker starts
the usual way.
"""

from __future__ import annotations

import json
import os
import platform
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
from typing import Any

__all__ = ["ForkedChild", "ForkServer", "ZYGOTE_PATH", "fork_worker", "prestart", "supported", "server_for", "ENABLED"]

#: the fork server's program, run as ``python -I -S ZYGOTE_PATH``
ZYGOTE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "zygote.py")
#: the init keys a zygote warms up with (``worker.WARM_KEYS``)
WARM_KEYS = ("sys_path", "confine_paths", "site", "preload", "compiler")
#: architectures whose ``clone`` system call number the zygote knows (``zygote.CLONE_SYSCALLS``)
ARCHITECTURES = ("x86_64", "aarch64")
#: how long a fork request may take before the zygote counts as dead
FORK_TIMEOUT = 10.0
#: how long a worker start waits for a zygote that is still warming up: it
#: started earlier than this worker would, so waiting is not slower than a
#: fresh start unless the zygote is stuck
WARM_WAIT = 5.0
#: zygotes kept at once (one per warm-up spec: a language's compiler and the host's path)
MAX_SERVERS = 4
_PID = struct.Struct("<i")


class _Enabled:
    """Whether workers are forked (tests and benchmarks turn it off to compare)."""

    def __init__(self) -> None:
        self.on = True


ENABLED = _Enabled()


def supported() -> bool:
    """Forking workers is offered on Linux on the architectures above, with
    pidfds (Linux 5.3): elsewhere every worker starts as a new interpreter."""
    return sys.platform == "linux" and platform.machine() in ARCHITECTURES and hasattr(os, "pidfd_open")


def warm_spec(init: dict[str, Any]) -> dict[str, Any]:
    return {k: init.get(k) for k in WARM_KEYS}


class ForkedChild:
    """A worker the zygote forked (the host's child): the part of
    ``subprocess.Popen`` the host uses (pid, the three pipes, wait, kill)."""

    def __init__(self, pid: int, stdin: int, stdout: int, stderr: int) -> None:
        self.pid = pid
        self.args = ["<forked worker>"]
        self.returncode: int | None = None
        self._pidfd = os.pidfd_open(pid)  # the pid stays ours until reaped: no reuse race
        self._lock = threading.Lock()
        self.stdin = open(stdin, "wb", buffering=0)
        self.stdout = open(stdout, "rb", buffering=0)
        self.stderr = open(stderr, "rb", buffering=0)

    def poll(self) -> int | None:
        return self._reap(os.WNOHANG)

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is not None:
            return self.returncode
        if timeout is not None and not _readable(self._pidfd, timeout):
            raise subprocess.TimeoutExpired(self.args, timeout)
        code = self._reap(0)
        assert code is not None
        return code

    def _reap(self, flags: int) -> int | None:
        with self._lock:
            if self.returncode is not None:
                return self.returncode
            try:
                pid, status = os.waitpid(self.pid, flags)
            except ChildProcessError:  # reaped elsewhere (a SIGCHLD handler of the application)
                pid, status = self.pid, 255 << 8
            if pid == 0:
                return None
            self.returncode = os.waitstatus_to_exitcode(status)
            os.close(self._pidfd)
            return self.returncode

    def __del__(self) -> None:
        if self.returncode is None:  # dropped unreaped (never by the host's own paths): keep no descriptor
            try:
                os.close(self._pidfd)
            except OSError:
                pass

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            signal.pidfd_send_signal(self._pidfd, sig)

    def kill(self) -> None:
        try:
            self.send_signal(signal.SIGKILL)
        except (OSError, ValueError):
            pass


class ForkServer:
    """One zygote process and its control socket."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.state = "new"  # new -> starting -> ready | dead
        self.popen: "subprocess.Popen[bytes] | None" = None
        self.sock: socket.socket | None = None
        self.error = ""
        self.forks = 0
        #: it could not import what workers need: it is not started again (workers start the usual way)
        self.warm_failed = False
        self._lock = threading.Lock()

    # -- start-up -------------------------------------------------------------------
    def start(self) -> None:
        """Start the zygote (on the spawner thread: its children get that
        thread as their parent) and send it its spec; it warms up meanwhile."""
        from .process import SPAWNER

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.popen = SPAWNER.call(lambda: _popen_zygote(theirs.fileno()))
        except BaseException as exc:
            ours.close()
            self._fail(f"the fork server could not start: {exc}")
            return
        finally:
            theirs.close()
        self.sock = ours
        body = json.dumps(dict(self.spec, host_pid=os.getpid())).encode("utf-8")
        try:
            ours.sendall(struct.pack(">I", len(body)) + body)
        except OSError as exc:
            self._fail(f"the fork server could not be told its spec: {exc}")
            return
        self.state = "starting"

    def ready(self, timeout: float = 0.0) -> bool:
        """Whether the zygote warmed up (waiting up to ``timeout`` seconds)."""
        with self._lock:
            if self.state == "starting" and self.sock is not None:
                if _readable(self.sock.fileno(), timeout):
                    try:
                        answer = self.sock.recv(600)
                    except OSError as exc:
                        answer = f"E{exc}".encode()
                    if answer == b"R":
                        self.state = "ready"
                    else:
                        self.warm_failed = True
                        self._fail("the fork server failed to warm up: "
                                   + (answer[1:].decode("utf-8", "replace") or "it exited"))
            return self.state == "ready"

    # -- forking ------------------------------------------------------------------------
    def fork(self, extra: int) -> ForkedChild:
        """A new worker, forked by the zygote, with ``extra`` (a descriptor
        the caller keeps) as its fd 3. OSError when the zygote cannot (it is
        then dead: the caller starts the worker the usual way)."""
        pipes = [os.pipe() for _ in range(3)]  # stdin, stdout, stderr of the child
        theirs = [pipes[0][0], pipes[1][1], pipes[2][1]]
        ours = [pipes[0][1], pipes[1][0], pipes[2][0]]
        try:
            with self._lock:
                if self.state != "ready" or self.sock is None:
                    raise OSError("the fork server is not ready")
                try:
                    self.sock.settimeout(FORK_TIMEOUT)
                    socket.send_fds(self.sock, [b"F"], [*theirs, extra])
                    reply = b""
                    while len(reply) < 4:
                        chunk = self.sock.recv(4 - len(reply))
                        if not chunk:
                            raise OSError("the fork server exited")
                        reply += chunk
                except OSError as exc:
                    self._fail(f"the fork server stopped answering: {exc}")
                    raise
                (pid,) = _PID.unpack(reply)
                if pid <= 0:
                    raise OSError(-pid, f"the fork server could not fork: {os.strerror(-pid)}")
                self.forks += 1
        except BaseException:
            for fd in ours:
                os.close(fd)
            raise
        finally:
            for fd in theirs:
                os.close(fd)
        return ForkedChild(pid, *ours)

    # -- the end --------------------------------------------------------------------------
    def _fail(self, why: str) -> None:
        self.state = "dead"
        self.error = why
        self.close()

    def close(self) -> None:
        if self.state != "dead":
            self.state = "dead"
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        popen = self.popen
        if popen is not None:
            try:
                popen.kill()
                popen.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
            for stream in (popen.stdin, popen.stdout, popen.stderr):
                if stream is not None:
                    stream.close()

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None


def _readable(fd: int, timeout: float) -> bool:
    """Whether ``fd`` is readable within ``timeout`` seconds (poll: a host
    with many workers has descriptors past select's limit of 1024)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(max(timeout, 0) * 1000))


def _popen_zygote(control: int) -> "subprocess.Popen[bytes]":
    return subprocess.Popen(
        [sys.executable, "-I", "-S", ZYGOTE_PATH],
        stdin=control,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={"LC_ALL": "C.UTF-8"},
        close_fds=True,
        start_new_session=True,
    )


# -- the servers of this host process -------------------------------------------------------
_servers: dict[str, ForkServer] = {}
_servers_pid = os.getpid()
_servers_lock = threading.Lock()


def server_for(init: dict[str, Any], *, start: bool = True) -> ForkServer | None:
    """The zygote for ``init``'s warm-up spec; a dead one is replaced (and
    a missing one started) when ``start``."""
    global _servers_pid
    spec = warm_spec(init)
    key = json.dumps(spec, sort_keys=True)
    with _servers_lock:
        if _servers_pid != os.getpid():  # a forked host: the parent's zygotes are not its children
            _servers.clear()
            _servers_pid = os.getpid()
        server = _servers.get(key)
        if server is not None and (server.state != "dead" or server.warm_failed):
            return server
        if not start:
            return server
        server = ForkServer(spec)
        _servers.pop(key, None)
        _servers[key] = server
        while len(_servers) > MAX_SERVERS:
            _servers.pop(next(iter(_servers))).close()
    server.start()
    return server


def fork_worker(init: dict[str, Any], extra: int) -> ForkedChild | None:
    """A worker forked by the zygote of ``init``'s spec, or None when there is
    none ready (the caller starts the worker the usual way; a zygote is
    started meanwhile if none is warming up). ``extra`` is a descriptor the
    child gets as its fd 3 (the host's cancel pipe, see ``process``)."""
    if not ENABLED.on or not supported():
        return None
    server = server_for(init)
    if server is None or not server.ready(WARM_WAIT):
        return None
    try:
        return server.fork(extra)
    except OSError:
        server_for(init)  # replace it now, for the next worker
        return None


def prestart(init: dict[str, Any], *, wait: float = 0.0) -> ForkServer | None:
    """Start the zygote for ``init``'s spec ahead of the first worker
    (waiting up to ``wait`` seconds until it is ready)."""
    if not ENABLED.on or not supported():
        return None
    server = server_for(init)
    if server is not None and wait:
        server.ready(wait)
    return server


def close_all() -> None:
    """End every zygote of this host process (workers they forked keep running)."""
    with _servers_lock:
        servers = list(_servers.values())
        _servers.clear()
    for server in servers:
        server.close()
