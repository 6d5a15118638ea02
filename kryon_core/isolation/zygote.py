"""The fork server's own program: a process that has imported what workers
need and forks a fresh worker on request.

Started by the host (:mod:`.forkserver`) as ``python -I -S <this file>``
from the host's spawner thread, with an environment of ``LC_ALL`` alone, in
its own session, its control socket (a UNIX stream socket) on stdin and
``/dev/null`` on stdout and stderr. Standard library only, like the worker.

1. it reads its warm-up spec (one frame: the part of a worker's init message
   that no policy changes: the path, the confinement libraries, the compiler
   and what it preloads) and imports all of it (``worker.warm_up``), then
   answers ``R`` (ready) or ``E`` and why;
2. for every request (one byte, with the new worker's stdin, stdout and
   stderr passed as descriptors) it forks a child and answers the child's pid
   (4 bytes, negative: an errno).

The child is made with ``clone(CLONE_PARENT)``: its parent is the zygote's
parent, the host's spawner thread, exactly as for a worker the host starts
itself. The host reaps it and learns its exit status, and the child's
parent-death signal (armed while it seals) follows the host, not the
zygote: workers outlive a zygote that dies.

The zygote holds no secret: it never sees a script, a grant or the host's
environment, only the warm-up spec. It stays single-threaded (checked before
each fork: a thread would not exist in the child and might hold a lock). The
child moves its descriptors onto 0, 1 and 2, closes every other one, starts
its own session, reseeds what Python's at-fork handlers reseed (``random``),
and then runs the worker's ``main`` from its first step: it reads its own
init message and confines itself as a freshly started worker does.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import platform
import signal
import socket
import struct
import sys
import types
from collections.abc import Callable
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))

#: ``clone`` system call numbers (the fork server is offered on these architectures only)
CLONE_SYSCALLS = {"x86_64": 56, "aarch64": 220}
_CLONE_PARENT = 0x00008000
_PR_SET_PDEATHSIG = 1
_PID = struct.Struct("<i")
#: this machine's ``clone`` (the host offers the fork server only where it is known)
_CLONE_NUMBER = CLONE_SYSCALLS.get(platform.machine(), -1)
#: a request's ancillary data: at most three descriptors
_FDS_SPACE = socket.CMSG_SPACE(4 * 4)


def _load_worker() -> types.ModuleType:
    import importlib.util

    spec = importlib.util.spec_from_file_location("kryon_isolation_worker", os.path.join(_HERE, "worker.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_libc = ctypes.PyDLL(None, use_errno=True)


#: bytes objects made to fill the free blocks of the zygote's used memory pools (see _fill_free_blocks)
_BALLAST: list[object] = []
_BYTES_OVERHEAD = 33  # a bytes object of length n takes n + 33 bytes (header and the final NUL)


def _free_blocks() -> dict[int, int]:
    """Free blocks in pymalloc's partly used pools, by block size, from
    ``sys._debugmallocstats`` (which writes to the C-level stderr)."""
    read, write = os.pipe()
    saved = os.dup(2)
    try:
        os.dup2(write, 2)
        sys._debugmallocstats()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(write)
    with os.fdopen(read, "rb") as f:
        text = f.read().decode("ascii", "replace")
    free: dict[int, int] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) == 5 and all(w.isdigit() for w in words):
            free[int(words[1])] = int(words[4])
    return free


def _fill_free_blocks() -> None:
    """Fill the free blocks of pymalloc's partly used pools with objects kept
    for good, so that a child's new objects go to fresh pools: left free,
    they are scattered over pages the children share, and each child's first
    allocations would copy one page per block it takes."""
    if not hasattr(sys, "_debugmallocstats"):
        return  # not CPython's allocator
    free = {size: n for size, n in _free_blocks().items() if size > _BYTES_OVERHEAD}
    _BALLAST.extend([None] * sum(free.values()))  # the list first: its growth would free blocks again
    i = 0
    for size, n in free.items():
        for _ in range(n):
            _BALLAST[i] = bytes(size - _BYTES_OVERHEAD)
            i += 1


def _pack_builtins_names() -> None:
    """The builtins module's names, as fresh copies made after the fill,
    so they sit together in a few pages. Every script's builtins are a copy
    of that dict (``scriptenv.make_builtins``), and copying a dict writes the
    reference count of each key: the interpreter's own (interned) names are
    scattered over the pages the children share, so each child copied about
    one page per name. An equal copy finds the same entry (the lookup
    compares hashes, then the text). The old entries are kept: freeing them
    would leave holes a child's allocations would land in."""
    import builtins

    namespace = vars(builtins)
    entries = list(namespace.items())
    # key[:1] + key[1:] is a new string (one-character names are the interpreter's own singletons)
    fresh = {(key[:1] + key[1:]) if len(key) > 1 else key: value for key, value in entries}
    namespace.clear()  # no builtin is looked up from here to the update (a C call)
    namespace.update(fresh)
    _BALLAST.append(entries)


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]


def _fill_free_chunks() -> None:
    """The same for glibc's heap (objects over 512 bytes, C libraries'
    allocations): its free chunks outside the top one are taken by small
    allocations never freed. glibc serves a small request from a free chunk
    (splitting it) before it takes from the top, so asking for the smallest
    size until ``mallinfo2`` counts no free space beyond the top uses them
    all up; a child's allocations then come from the top, pages nobody
    shares."""
    try:
        mallinfo2 = _libc.mallinfo2
    except AttributeError:
        return
    mallinfo2.restype = _MallInfo2
    malloc = _libc.malloc
    malloc.restype = ctypes.c_void_p
    malloc.argtypes = [ctypes.c_size_t]
    for _ in range(1 << 16):
        info = mallinfo2()
        free = info.fordblks - info.keepcost
        if free < 4096:
            break
        for _ in range(min(256, free // 32)):
            malloc(24)


def _descriptors(ancillary: list[tuple[int, int, bytes]], rights: tuple[int, int]) -> list[int]:
    """The descriptors of a request's ``SCM_RIGHTS`` message."""
    fds: list[int] = []
    for level, kind, data in ancillary:
        if (level, kind) == rights:
            fds += struct.unpack(f"{len(data) // 4}i", data[: len(data) - len(data) % 4])
    return fds


def _child(worker: Any, control: socket.socket, fds: list[int]) -> None:
    """In the new child: its channel on 0 and 1, its stderr on 2, the host's
    cancel pipe on 3 (see ``worker_timer.on_cancel``), nothing else open, its own session; then the worker's start-up from step one."""
    code = 1
    try:
        control.detach()  # the descriptor is closed below; the object must not close a reused number
        os.setsid()
        for target, fd in enumerate(fds):
            os.dup2(fd, target, inheritable=True)
        os.closerange(len(fds), os.sysconf("SC_OPEN_MAX"))
        gc.enable()
        worker.FORKED = True  # reported in worker_info()["hardening"]["start"]
        worker.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)


def _read_spec(control: socket.socket) -> dict[str, object]:
    header = b""
    while len(header) < 4:
        chunk = control.recv(4 - len(header))
        if not chunk:
            raise SystemExit(0)
        header += chunk
    (n,) = struct.unpack(">I", header)
    body = b""
    while len(body) < n:
        chunk = control.recv(n - len(body))
        if not chunk:
            raise SystemExit(0)
        body += chunk
    spec = json.loads(body.decode("utf-8"))
    if not isinstance(spec, dict):
        raise SystemExit("the warm-up spec must be an object")
    return spec


def _prepare(worker: Any, spec: dict[str, object]) -> None:
    """What the zygote does once, before its first fork: the imports, the
    rehearsals, and what keeps a child's writes off the pages children share."""
    worker.warm_up(spec)
    # the interpreter's method cache holds a reference to each attribute name
    # it caches; the warm-up's lookups (thousands: the module proxies' names)
    # would be replaced by a child's, each dropping a reference on a scattered
    # shared page. Emptied here, it keeps what the rehearsals look up, which
    # is what a child's start-up looks up: hits, which write nothing
    sys._clear_type_cache()
    worker.confine.rehearse()
    worker.rehearse()
    # kept: a child replaces them, and freeing them there would write to shared pages
    _BALLAST.extend([sys.stdin, sys.stdout, sys.stderr])
    _fill_free_blocks()
    _pack_builtins_names()
    _fill_free_chunks()


def main() -> None:
    # no collection in the zygote: it would leave freed slots all over the
    # pages its children share, and each child's first allocations would copy them
    gc.disable()
    control = socket.socket(fileno=os.dup(0))
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.close(null)
    spec = _read_spec(control)
    host = spec.get("host_pid")
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if isinstance(host, int) and os.getppid() != host:
        os._exit(0)  # the host died before the signal was armed
    try:
        worker = _load_worker()
        _prepare(worker, spec)
    except BaseException as exc:
        control.sendall(b"E" + f"{type(exc).__name__}: {exc}".encode("utf-8", "replace")[:500])
        os._exit(1)
    control.sendall(b"R")
    _serve(worker, control, _cloner())


def _cloner() -> Callable[[], int]:
    """``os.fork`` with ``CLONE_PARENT``: Python's own before/after-fork
    steps (locks, thread states, at-fork handlers such as ``random``'s
    reseed) around a raw ``clone``; the function returns 0 in the child, the
    pid in the caller. Made once, after the zygote's fills: the ctypes
    objects it calls are its own, in fresh pages, and its arguments are
    converted once, so a fork writes few pages the children share (see
    :func:`_serve`). PyDLL: the GIL stays held across ``clone``, as
    ``os.fork`` holds it across ``fork``."""
    api = ctypes.PyDLL(None)
    before, parent, child = api.PyOS_BeforeFork, api.PyOS_AfterFork_Parent, api.PyOS_AfterFork_Child
    for f in (before, parent, child):
        f.restype = None
        f.argtypes = []
    libc = ctypes.PyDLL(None, use_errno=True)
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    args = (ctypes.c_long(_CLONE_NUMBER), ctypes.c_ulong(_CLONE_PARENT | signal.SIGCHLD), *[ctypes.c_ulong(0)] * 4)
    set_errno, get_errno = ctypes.set_errno, ctypes.get_errno

    def clone() -> int:
        before()
        set_errno(0)
        pid = syscall(*args)
        if pid == 0:
            child()
            return 0
        errno = get_errno()
        parent()
        if pid < 0:
            raise OSError(errno, os.strerror(errno))
        return int(pid)

    return clone


def _serve(worker: Any, control: socket.socket, clone: Callable[[], int]) -> None:
    """The request loop: a request is one byte with the new worker's stdin,
    stdout, stderr and cancel pipe as descriptors; the answer is the child's pid (negative:
    an errno). Whatever the zygote writes after a fork copies the page it
    writes, and the child forked before keeps the old page to itself: each
    page the loop writes costs every child a page. So the loop touches few
    objects, bound here once, and allocates only what a request needs."""
    recvmsg = control.recvmsg
    sendall = control.sendall
    close = os.close
    freeze = gc.freeze
    stat = os.stat
    pack = _PID.pack
    space = _FDS_SPACE
    rights = (socket.SOL_SOCKET, socket.SCM_RIGHTS)
    while True:
        try:
            msg, ancillary, _flags, _addr = recvmsg(1, space)
        except OSError:
            os._exit(0)
        if not msg:
            os._exit(0)  # the host closed its end (or died)
        fds = _descriptors(ancillary, rights)
        if len(fds) != 4:
            for fd in fds:
                close(fd)
            sendall(pack(-22))  # EINVAL
            continue
        if stat("/proc/self/task").st_nlink != 3:  # ".", ".." and the one thread
            for fd in fds:
                close(fd)
            sendall(pack(-35))  # EDEADLK: forking now could copy a held lock
            continue
        # what the zygote made is never collected in a child: its pages stay shared (copy-on-write)
        freeze()
        try:
            pid = clone()
        except OSError as exc:
            pid = -(exc.errno or 1)
        if pid == 0:
            _child(worker, control, fds)
        for fd in fds:
            close(fd)
        sendall(pack(pid))


if __name__ == "__main__":
    main()
