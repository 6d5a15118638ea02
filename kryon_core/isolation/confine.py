"""The kernel's confinement of an isolated worker, applied before any script code runs.

Loaded by the worker by file path (it runs as ``python -I -S`` and cannot
import ``kryon_core``); it uses the standard library plus two libraries made
for the job, which the host tells the worker where to find:

- ``landlock`` (PyPI): the Landlock LSM. The file system is closed except for
  read-only grants (the directories of granted modules); TCP bind/connect is
  denied unless the network is granted (Landlock ABI 4+); signals and abstract
  UNIX sockets cannot leave the worker's own Landlock domain (ABI 6+); and a
  Landlock domain cannot ptrace, or read ``/proc/<pid>/mem|environ`` of, a
  process outside it.
- ``pyseccomp`` (libseccomp): an allow-list of system calls. Everything else
  fails with EPERM: new processes and threads, sockets, ptrace, mounts,
  namespaces, keyrings, BPF, io_uring, set*id, capset, prctl, metadata writes
  Landlock does not cover (chmod, chown, utimes, xattrs) ... A foreign system
  call ABI (x32, i386 on x86_64) kills the process.

and namespaces (``unshare``): network (no interfaces), IPC, UTS and mount (every
mount read-only, nosuid, nodev and noexec where the policy allows); a host
running as root drops the worker to ``nobody``; a host that is not root maps
its uid to ``nobody`` in a new user namespace and the worker drops the
capabilities that namespace gave it. Then rlimits (address space, file size,
descriptors, processes, core dumps), ``PR_SET_NO_NEW_PRIVS``, not dumpable, and
``PR_SET_PDEATHSIG``.

:func:`seal` applies all of it in an order where each step still has the
privilege it needs, and returns a report. A mechanism the kernel or the
machine lacks raises :class:`Unavailable` naming it, unless the policy accepts
weaker isolation by that name (``SecurityPolicy.accept_weaker_isolation``).

Also here: the audit hook, the Python-level layer that turns refused
operations into clear errors (the kernel layer holds without it).
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import resource
import struct
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MECHANISMS",
    "NOBODY",
    "Plan",
    "Unavailable",
    "seal",
    "audit_hook",
    "load_libraries",
]

#: the names ``SecurityPolicy.accept_weaker_isolation`` may hold
MECHANISMS = ("landlock", "seccomp", "namespaces")
NOBODY = 65534

# unshare(2) flags
_CLONE_NEWNS = 0x00020000
_CLONE_NEWUTS = 0x04000000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
# mount(2) and mount_setattr(2)
_MS_REC = 0x4000
_MS_PRIVATE = 1 << 18
_NR_MOUNT_SETATTR = 442  # one number on every architecture (asm-generic)
_AT_FDCWD = -100
_AT_RECURSIVE = 0x8000
_MOUNT_ATTR_RDONLY = 0x1
_MOUNT_ATTR_NOSUID = 0x2
_MOUNT_ATTR_NODEV = 0x4
_MOUNT_ATTR_NOEXEC = 0x8
# prctl(2)
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_CAPBSET_DROP = 24
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
# Landlock fields the ``landlock`` library does not model yet (ABI 4 and 6)
_LANDLOCK_NET_BIND_TCP = 1 << 0
_LANDLOCK_NET_CONNECT_TCP = 1 << 1
_LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
_LANDLOCK_SCOPE_SIGNAL = 1 << 1
_LANDLOCK_RULE_PATH_BENEATH = 1
# ioctl requests a worker may make on the descriptors it has
_TCGETS, _FIONREAD, _FIONBIO, _FIONCLEX, _FIOCLEX = 0x5401, 0x541B, 0x5421, 0x5450, 0x5451

#: directories a granted process's programs and libraries are read from
_PROGRAM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", "/etc/ld.so.cache", "/etc/alternatives")
#: files the C library's resolver reads when the network is granted
_RESOLVER_FILES = ("/etc/hosts", "/etc/resolv.conf", "/etc/nsswitch.conf", "/etc/gai.conf", "/etc/host.conf",
                   "/etc/services", "/etc/protocols")


class Unavailable(Exception):
    """Mechanisms the worker could not apply and the policy does not accept
    going without: ``missing`` maps each name (see :data:`MECHANISMS`) to why."""

    def __init__(self, missing: dict[str, str]) -> None:
        self.missing = dict(missing)
        names = ", ".join(f"{name} ({why})" for name, why in sorted(missing.items()))
        super().__init__(
            f"the kernel confinement of sandboxed scripts is not available here: {names}. "
            "The script was not run. A policy may accept weaker isolation by name: "
            f"SecurityPolicy.sandboxed(accept_weaker_isolation={{{', '.join(repr(n) for n in sorted(missing))}}})"
        )


class _Missing(Exception):
    """One mechanism could not be applied (the reason is the message)."""


@dataclass(frozen=True)
class Plan:
    """What to seal, decided by the host from the script's policy."""

    file_system: bool = False
    network: bool = False
    processes: bool = False
    imports: bool = False
    #: directories and files the worker may read after sealing (granted modules)
    read_paths: tuple[str, ...] = ()
    #: bytes the script may allocate on top of what the worker uses when sealing
    memory: int | None = None
    #: the host's pid: a worker whose parent is gone by the time it seals exits
    host_pid: int = 0
    #: mechanisms the policy accepts going without
    accept_weaker: frozenset[str] = frozenset()
    #: test-only: mechanisms to treat as missing from the kernel
    unavailable: frozenset[str] = frozenset()

    @classmethod
    def from_init(cls, init: dict[str, Any], read_paths: Iterable[str]) -> "Plan":
        grants = init.get("grants", {})
        limits = init.get("limits", {})
        memory = limits.get("memory")
        return cls(
            file_system=bool(grants.get("file_system")),
            network=bool(grants.get("network")),
            processes=bool(grants.get("processes")),
            imports=bool(grants.get("imports")),
            read_paths=tuple(read_paths),
            memory=int(memory) if memory else None,
            host_pid=int(init.get("host_pid") or 0),
            accept_weaker=frozenset(init.get("accept_weaker", ())),
            unavailable=frozenset(init.get("test_unavailable", ())),
        )


# -- libraries ------------------------------------------------------------------------
_LIBRARIES: dict[str, Any] = {}
_LIBRARY_ERRORS: dict[str, str] = {}


def load_libraries(paths: Iterable[str]) -> dict[str, str]:
    """Import ``landlock`` and ``pyseccomp`` (from ``paths``, the directories
    the host found them in) while the file system is still open. Returns the
    libraries that failed to load, with why."""
    for path in paths:
        if path not in sys.path:
            sys.path.append(path)
    failed = {}
    for mechanism, module in (("landlock", "landlock"), ("seccomp", "pyseccomp")):
        try:
            _LIBRARIES[mechanism] = __import__(module)
        except Exception as exc:  # not installed, or libseccomp.so.2 missing
            failed[mechanism] = f"the {module} library cannot be loaded: {exc}"
    _LIBRARY_ERRORS.update(failed)
    return failed


_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.capset.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
_libc.syscall.restype = ctypes.c_long


def _call(fn: Callable[..., int], *args: Any) -> int:
    """A libc call; raises OSError on failure (errno reset first, so a stale
    value from an earlier call is never read as this call's)."""
    ctypes.set_errno(0)
    result = fn(*args)
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(result)


# -- sealing ----------------------------------------------------------------------------
def seal(plan: Plan) -> dict[str, Any]:
    """Confine this process for good. Returns what was applied, for
    ``worker_info``; raises :class:`Unavailable` if a mechanism is missing and
    the policy does not accept it."""
    report: dict[str, Any] = {}
    missing: dict[str, str] = {}
    for name in MECHANISMS:
        if name in plan.unavailable:
            missing[name] = "turned off for a test"
        elif name in ("landlock", "seccomp") and name not in _LIBRARIES:
            missing[name] = _LIBRARY_ERRORS.get(name, "its library was not loaded")
    if "landlock" not in missing:
        try:
            report["landlock_abi"] = _landlock_abi()
        except _Missing as exc:
            missing["landlock"] = str(exc)
    _refuse_unaccepted(missing, plan)
    os.environ.clear()
    if "namespaces" not in missing:
        try:
            report.update(_enter_namespaces(plan))
        except _Missing as exc:
            missing["namespaces"] = str(exc)
            _refuse_unaccepted(missing, plan)
    top_fd = max(_open_fds())
    ruleset = None
    if "landlock" not in missing:
        # the rules' paths are opened before the privilege drop: a granted
        # directory may lie below one that nobody cannot enter
        ruleset, report["landlock"] = _build_landlock(plan, report.pop("landlock_abi"))
    report.update(_set_rlimits(plan))
    report.update(_drop_privilege())
    report.update(_process_flags(plan))
    if ruleset is not None:
        _enforce_landlock(ruleset)  # needs no_new_privs (set above)
    report.update(_limit_descriptors(plan, top_fd))
    if "seccomp" not in missing:
        report["seccomp"] = _apply_seccomp(plan)
    if missing:
        report["weaker"] = dict(missing)
    return report


def rehearse() -> None:
    """In a fork server, once: what :func:`seal` would build for the
    default plan (no grants), so that its children share it instead of each
    making its own copy while sealing (building the seccomp filter in a
    forked child alone dirtied about 600 KiB of shared pages: its
    allocations land in free slots all over the inherited heap). Nothing is
    enforced here: a Landlock ruleset is made and closed (this warms the
    library's ctypes functions), the seccomp filter is kept unloaded for
    :func:`_apply_seccomp`."""
    plan = Plan()
    if "landlock" in _LIBRARIES:
        try:
            ruleset, _ = _build_landlock(plan, _landlock_abi())
            os.close(ruleset)
        except (_Missing, OSError):
            pass  # seal reports it
    if "seccomp" in _LIBRARIES:
        _prebuild_seccomp(plan)


def _refuse_unaccepted(missing: dict[str, str], plan: Plan) -> None:
    refused = {name: why for name, why in missing.items() if name not in plan.accept_weaker}
    if refused:
        raise Unavailable(refused)


# -- namespaces and mounts ------------------------------------------------------------------
def _enter_namespaces(plan: Plan) -> dict[str, Any]:
    """New network (unless granted), IPC, UTS and mount namespaces; a user
    namespace too when the host is not root (an unprivileged process needs
    one to create the others), with its uid and gid mapped to nobody."""
    flags = _CLONE_NEWNS | _CLONE_NEWUTS | _CLONE_NEWIPC | (0 if plan.network else _CLONE_NEWNET)
    as_root = os.geteuid() == 0
    uid, gid = os.geteuid(), os.getegid()
    if not as_root:
        flags |= _CLONE_NEWUSER
    try:
        _call(_libc.unshare, flags)
    except OSError as exc:
        raise _Missing(f"unshare failed: {exc.strerror}") from None
    names = ["network"] if not plan.network else []
    names += ["ipc", "uts", "mount"]
    if not as_root:
        names.insert(0, "user")
        _map_to_nobody(uid, gid)
    return {"namespaces": names, "mounts": _lock_mounts(plan)}


def _map_to_nobody(uid: int, gid: int) -> None:
    """In a fresh user namespace: the host's uid and gid appear as nobody
    (and nothing maps to root)."""
    for name, text in (("setgroups", "deny"), ("gid_map", f"{NOBODY} {gid} 1"), ("uid_map", f"{NOBODY} {uid} 1")):
        fd = os.open(f"/proc/self/{name}", os.O_WRONLY)
        try:
            os.write(fd, text.encode("ascii"))
        finally:
            os.close(fd)


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _lock_mounts(plan: Plan) -> str:
    """Make this namespace's mounts private (nothing propagates back to the
    host), then read-only (unless files are granted), nosuid, and nodev and
    noexec where nothing granted needs them: writes, chmod, chown and xattrs
    then fail with EROFS even where Landlock is missing."""
    try:
        _call(_libc.mount, None, b"/", None, _MS_REC | _MS_PRIVATE, None)
    except OSError as exc:
        return f"unchanged (making mounts private failed: {exc.strerror})"
    attrs = _MOUNT_ATTR_NOSUID
    words = ["nosuid"]
    if not plan.file_system:
        attrs |= _MOUNT_ATTR_RDONLY
        words.insert(0, "read-only")
    if not (plan.file_system or plan.processes):
        attrs |= _MOUNT_ATTR_NODEV
        words.append("nodev")
    if not (plan.processes or plan.imports or plan.file_system):
        attrs |= _MOUNT_ATTR_NOEXEC
        words.append("noexec")
    attr = _MountAttr(attrs, 0, 0, 0)
    try:
        _call(_libc.syscall, ctypes.c_long(_NR_MOUNT_SETATTR), ctypes.c_long(_AT_FDCWD), ctypes.c_char_p(b"/"),
              ctypes.c_long(_AT_RECURSIVE), ctypes.byref(attr), ctypes.c_long(ctypes.sizeof(attr)))
    except OSError as exc:
        return f"private; attributes unchanged (mount_setattr failed: {exc.strerror})"
    return ", ".join(words)


# -- rlimits and privilege ---------------------------------------------------------------
def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _set_rlimits(plan: Plan) -> dict[str, Any]:
    report: dict[str, Any] = {}
    if plan.memory:
        total = _vm_size() + plan.memory
        resource.setrlimit(resource.RLIMIT_AS, (total, total))
        report["memory"] = total
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if not plan.file_system:
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
        report["fsize"] = 0
    if not plan.processes:
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
        report["nproc"] = 0
    return report


def _open_fds() -> list[int]:
    return [int(name) for name in os.listdir("/proc/self/fd")] or [2]


def _limit_descriptors(plan: Plan, top_fd: int) -> dict[str, Any]:
    """No new descriptors beyond the channel and stdio, and (with modules
    granted) a few for the import system reading a module file."""
    if plan.file_system or plan.network or plan.processes:
        return {}
    top = top_fd + (3 if plan.imports or plan.read_paths else 1)
    resource.setrlimit(resource.RLIMIT_NOFILE, (top, top))
    return {"nofile": top}


def _drop_privilege() -> dict[str, Any]:
    """Never root: as root, become nobody; in a user namespace, give up the
    capabilities it granted. Either way the bounding and ambient sets are
    emptied first, so no later exec can bring a capability back."""
    last_cap = _last_capability()
    for cap in range(last_cap + 1):
        try:
            _call(_libc.prctl, _PR_CAPBSET_DROP, cap, 0, 0, 0)
        except OSError:
            break  # not permitted (no CAP_SETPCAP): the set holds nothing we could use
    try:
        _call(_libc.prctl, _PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    except OSError:
        pass
    if os.geteuid() == 0 or os.getuid() == 0:
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)
    _clear_capabilities()
    return {"user": _user_name(), "uid": os.getuid(), "capabilities": _effective_capabilities()}


def _last_capability() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 40


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _clear_capabilities() -> None:
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _call(_libc.capset, ctypes.byref(header), data)


def _effective_capabilities() -> str:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                value = int(line.split()[1], 16)
                return "none" if value == 0 else hex(value)
    return "unknown"


def _user_name() -> str:
    return "nobody" if os.getuid() == NOBODY else str(os.getuid())


def _process_flags(plan: Plan) -> dict[str, Any]:
    """No new privileges, not dumpable (no core file, no ptrace by a process
    of the same uid), and killed with the host. PDEATHSIG is set last: a
    credential change clears it."""
    _call(_libc.prctl, _PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    _call(_libc.prctl, _PR_SET_DUMPABLE, 0, 0, 0, 0)
    _call(_libc.prctl, _PR_SET_PDEATHSIG, 9, 0, 0, 0)
    if plan.host_pid and os.getppid() != plan.host_pid:
        os._exit(0)  # the host died before the signal was armed
    return {"no_new_privs": True, "dumpable": False}


# -- Landlock ------------------------------------------------------------------------------
class _RulesetAttr(ctypes.Structure):
    """``struct landlock_ruleset_attr`` with the ABI 4 (network) and ABI 6
    (scope) fields; the kernel accepts the larger struct while they are zero."""

    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


def _landlock_abi() -> int:
    landlock = _LIBRARIES["landlock"]
    ctypes.set_errno(0)
    try:
        abi = int(landlock.landlock_abi_version())
    except OSError as exc:
        raise _Missing(f"the kernel does not offer it ({exc.strerror})") from None
    if abi < 1:
        raise _Missing("the kernel does not offer it")
    return abi


def _build_landlock(plan: Plan, abi: int) -> tuple[int, str]:
    """The worker's ruleset (a descriptor) and its description."""
    landlock = _LIBRARIES["landlock"]
    plumbing = landlock.plumbing
    access = landlock.FSAccess
    file_rights = int(access.all_file())
    all_rights = int(access.all())
    net = (_LANDLOCK_NET_BIND_TCP | _LANDLOCK_NET_CONNECT_TCP) if abi >= 4 and not plan.network else 0
    scoped = (_LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | _LANDLOCK_SCOPE_SIGNAL) if abi >= 6 else 0
    attr = _RulesetAttr(all_rights, net, scoped)
    ctypes.set_errno(0)
    ruleset = plumbing.get_create_ruleset()(
        ctypes.cast(ctypes.pointer(attr), ctypes.POINTER(plumbing.RulesetAttr)), ctypes.sizeof(attr), 0
    )
    granted = []
    try:
        for path, rights in _landlock_rules(plan):
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # a granted path that does not exist grants nothing
            try:
                # a rule on a file may only hold the rights files have
                mask = all_rights if os.path.isdir(path) else file_rights
                rule = plumbing.PathBeneathAttr((all_rights if rights == -1 else rights) & mask, fd)
                ctypes.set_errno(0)
                plumbing.get_add_rule()(ruleset, _LANDLOCK_RULE_PATH_BENEATH, ctypes.byref(rule), 0)
                granted.append(path)
            finally:
                os.close(fd)
    except BaseException:
        os.close(ruleset)
        raise
    words = [f"ABI {abi}"]
    if plan.file_system:
        words.append("file system granted")
    elif granted:
        words.append(f"file system closed except {len(granted)} read-only path(s)")
    else:
        words.append("file system closed")
    if net:
        words.append("TCP bind/connect denied")
    if scoped:
        words.append("signals and abstract UNIX sockets scoped to the worker")
    return ruleset, "; ".join(words)


def _enforce_landlock(ruleset: int) -> None:
    plumbing = _LIBRARIES["landlock"].plumbing
    try:
        ctypes.set_errno(0)
        plumbing.get_restrict_self()(ruleset, 0)
    finally:
        os.close(ruleset)


def _landlock_rules(plan: Plan) -> list[tuple[str, int]]:
    """(path, rights) pairs: -1 means every right (the file-system grant)."""
    landlock = _LIBRARIES["landlock"]
    read = int(landlock.FSAccess.READ_FILE | landlock.FSAccess.READ_DIR)
    execute = int(landlock.FSAccess.EXECUTE)
    if plan.file_system:
        return [("/", -1)]
    rules = [(path, read) for path in plan.read_paths]
    if plan.processes:
        rules += [(path, read | execute) for path in _PROGRAM_DIRS]
        rules += [(path, read) for path in (sys.base_prefix, sys.prefix, sys.executable)]
        rules.append(("/dev/null", read | int(landlock.FSAccess.WRITE_FILE)))
    if plan.network:
        rules += [(path, read) for path in _RESOLVER_FILES]
    return rules


# -- seccomp ---------------------------------------------------------------------------------
#: what any worker may do: compute, manage its memory, use the descriptors it
#: has, open files (Landlock decides which), keep time, handle its own signals
_ALLOW_ALWAYS = (
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2",
    "lseek", "_llseek", "close", "close_range", "dup", "dup2", "dup3", "fcntl", "fcntl64", "flock",
    "fsync", "fdatasync", "fadvise64", "fadvise64_64",
    "open", "openat", "openat2", "stat", "stat64", "lstat", "lstat64", "fstat", "fstat64", "newfstatat",
    "fstatat64", "statx", "statfs", "statfs64", "fstatfs", "fstatfs64", "access", "faccessat", "faccessat2",
    "readlink", "readlinkat", "getcwd", "chdir", "fchdir", "getdents", "getdents64", "umask",
    "brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise", "msync",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigreturn", "sigaltstack", "rt_sigpending",
    "rt_sigsuspend", "rt_sigtimedwait", "pause",
    "clock_gettime", "clock_gettime64", "clock_getres", "clock_getres_time64", "clock_nanosleep",
    "clock_nanosleep_time64", "nanosleep", "gettimeofday", "time", "setitimer", "getitimer", "alarm", "times",
    "getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid", "getgroups", "getresuid",
    "getresgid", "getpgrp", "getpgid", "getsid", "uname", "sysinfo", "sched_getaffinity", "sched_yield",
    "getrusage", "getpriority", "getcpu", "capget", "getrlimit", "ugetrlimit", "setrlimit",
    "futex", "futex_time64", "set_robust_list", "get_robust_list", "rseq", "restart_syscall",
    "exit", "exit_group", "getrandom",
    "poll", "ppoll", "ppoll_time64", "select", "_newselect", "pselect6", "pselect6_time64",
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2",
    "eventfd", "eventfd2", "pipe", "pipe2",
    "recvfrom", "recvmsg", "recvmmsg", "sendto", "sendmsg", "sendmmsg", "shutdown", "getsockname",
    "getpeername", "getsockopt", "setsockopt",
)
#: creating files, changing their data or metadata: Landlock covers some of
#: these, not chmod/chown/utimes/xattrs; all of them need a file-system grant
_ALLOW_FILES = (
    "mkdir", "mkdirat", "rmdir", "unlink", "unlinkat", "rename", "renameat", "renameat2", "link", "linkat",
    "symlink", "symlinkat", "mknod", "mknodat", "truncate", "truncate64", "ftruncate", "ftruncate64",
    "fallocate", "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat",
    "chown32", "fchown32", "lchown32", "utime", "utimes", "futimesat", "utimensat", "utimensat_time64",
    "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr",
    "getxattr", "lgetxattr", "fgetxattr", "listxattr", "llistxattr", "flistxattr",
    "copy_file_range", "sendfile", "sendfile64", "splice", "tee", "inotify_init1", "inotify_add_watch",
    "inotify_rm_watch",
)
_ALLOW_NETWORK = ("socket", "socketpair", "connect", "bind", "listen", "accept", "accept4")
#: a process grant: children, threads, exec, signals (Landlock keeps signals
#: inside the worker's own domain), and what a new program does as it starts
_ALLOW_PROCESSES = (
    "clone", "clone3", "fork", "vfork", "execve", "execveat", "wait4", "waitid", "kill", "tkill", "tgkill",
    "setpgid", "setsid", "set_tid_address", "arch_prctl", "prlimit64", "sched_setaffinity", "membarrier",
)


def _apply_seccomp(plan: Plan) -> str:
    prebuilt = _PREBUILT.pop(_seccomp_key(plan), None)
    _PREBUILT.clear()
    where = ""
    if prebuilt is not None:
        program, allowed = prebuilt
        _load_program(_with_pid(program, _PLACEHOLDER_PID, os.getpid()))
        where = "; built ahead by the fork server"
    else:
        flt, allowed = _build_seccomp(plan)
        if not plan.processes:
            allowed += _allow_own_process(flt, os.getpid())
        flt.load()
    return f"allow-list of {allowed} system calls; any other fails with EPERM; a foreign ABI kills the worker{where}"


# A fork server builds the filter of the default plan once (:func:`rehearse`)
# and keeps libseccomp's output, the BPF program, with a placeholder where the
# worker's pid goes; a forked worker writes its pid there and loads the program
# with seccomp(2). Building the filter in each child cost about 600 KiB of
# copied pages (libseccomp's allocations land in free slots all over the
# inherited heap); this costs one copy of the program (about 1 KiB).
#: by :func:`_seccomp_key`: (BPF program, system calls allowed)
_PREBUILT: dict[tuple[bool, bool, bool], tuple[bytes, int]] = {}
#: not a pid (pid_max is at most 2**22), nor any other constant of the filter (checked)
_PLACEHOLDER_PID = 0x7FFF_FF5A
_BPF_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K: compare the accumulator with the constant k
_BPF_INSN = struct.Struct("=HBBI")  # struct sock_filter: code, jt, jf, k
_NR_SECCOMP = {"x86_64": 317, "aarch64": 277}
_SECCOMP_SET_MODE_FILTER = 1


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _seccomp_key(plan: Plan) -> tuple[bool, bool, bool]:
    return (plan.file_system, plan.network, plan.processes)


def _exported(plan: Plan, pid: int) -> tuple[bytes, int]:
    """The BPF program libseccomp makes for ``plan`` with ``pid`` as the worker's."""
    flt, allowed = _build_seccomp(plan)
    if not plan.processes:
        allowed += _allow_own_process(flt, pid)
    r, w = os.pipe()
    try:
        with open(w, "wb", closefd=False) as out:
            flt.export_bpf(out)
        os.close(w)
        w = -1
        chunks = []
        while chunk := os.read(r, 65536):
            chunks.append(chunk)
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    return b"".join(chunks), allowed


def _with_pid(program: bytes, old: int, new: int) -> bytes:
    """``program`` with every comparison against ``old`` made against ``new``."""
    out = bytearray(program)
    for offset in range(0, len(out), _BPF_INSN.size):
        code, jt, jf, k = _BPF_INSN.unpack_from(out, offset)
        if code == _BPF_JEQ_K and k == old:
            _BPF_INSN.pack_into(out, offset, code, jt, jf, new)
    return bytes(out)


def _prebuild_seccomp(plan: Plan) -> None:
    """Keep ``plan``'s program for forked workers, if the pid can be written
    into it: the program built with one placeholder, rewritten to a second,
    must equal the program libseccomp builds with the second (so the pid is
    nowhere but in those comparisons, and nothing else compares with it)."""
    if platform.machine() not in _NR_SECCOMP:
        return
    other = _PLACEHOLDER_PID - 1
    program, allowed = _exported(plan, _PLACEHOLDER_PID)
    constants = _jeq_constants(program)
    if len(program) % _BPF_INSN.size or other in constants:
        return
    if not plan.processes and _PLACEHOLDER_PID not in constants:
        return
    if _with_pid(program, _PLACEHOLDER_PID, other) != _exported(plan, other)[0]:
        return
    _PREBUILT[_seccomp_key(plan)] = (program, allowed)


def _jeq_constants(program: bytes) -> set[int]:
    return {k for code, _, _, k in _BPF_INSN.iter_unpack(program) if code == _BPF_JEQ_K}


def _load_program(program: bytes) -> None:
    """seccomp(SECCOMP_SET_MODE_FILTER) with a BPF program (no_new_privs is set already)."""
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // _BPF_INSN.size, ctypes.addressof(buffer))
    _call(_libc.syscall, ctypes.c_long(_NR_SECCOMP[platform.machine()]), ctypes.c_long(_SECCOMP_SET_MODE_FILTER),
          ctypes.c_long(0), ctypes.byref(fprog))


def _build_seccomp(plan: Plan) -> tuple[Any, int]:
    """The filter for ``plan`` (not loaded) and how many system calls it allows."""
    seccomp = _LIBRARIES["seccomp"]
    syscalls = list(_ALLOW_ALWAYS)
    if plan.file_system:
        syscalls += _ALLOW_FILES
    if plan.network:
        syscalls += _ALLOW_NETWORK
    if plan.processes:
        syscalls += _ALLOW_PROCESSES
    flt = seccomp.SyscallFilter(seccomp.ERRNO(errno.EPERM))
    flt.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.KILL_PROCESS)
    allowed = 0
    for name in syscalls:
        allowed += _allow(flt, seccomp, name)
    if not plan.processes:
        # its own process only: prlimit64 of pid 0 (resource.setrlimit); signals: _allow_own_process
        allowed += _allow(flt, seccomp, "prlimit64", seccomp.Arg(0, seccomp.EQ, 0))
    for request in (_TCGETS, _FIONREAD, _FIONBIO, _FIONCLEX, _FIOCLEX):
        _allow(flt, seccomp, "ioctl", seccomp.Arg(1, seccomp.EQ, request))
    allowed += 1
    return flt, allowed


def _allow_own_process(flt: Any, me: int) -> int:
    """Signals to process ``me`` only (raise, abort)."""
    seccomp = _LIBRARIES["seccomp"]
    allowed = 0
    for name in ("kill", "tkill"):
        allowed += _allow(flt, seccomp, name, seccomp.Arg(0, seccomp.EQ, me))
    return allowed + _allow(flt, seccomp, "tgkill", seccomp.Arg(0, seccomp.EQ, me), seccomp.Arg(1, seccomp.EQ, me))


def _allow(flt: Any, seccomp: Any, name: str, *args: Any) -> int:
    """Add an allow rule; a name this architecture or libseccomp does not
    know is skipped (returns 0)."""
    number = seccomp.resolve_syscall(seccomp.Arch.NATIVE, name)
    if number == -1:
        return 0
    try:
        flt.add_rule(seccomp.ALLOW, number, *args)
    except OSError:
        return 0
    return 1


# -- the audit hook (the Python layer) -------------------------------------------------------
_DENY_ALWAYS_PREFIX = ("ctypes.", "gc.get_", "marshal.", "sys.addaudithook", "sys.settrace", "sys.setprofile",
                       "sys._current_frames", "sys.setrecursionlimit", "code.__new__", "function.__new__",
                       "resource.", "signal.", "winreg.", "os.setuid", "os.setgid", "webbrowser.")
_FS_PREFIX = ("open", "os.listdir", "os.scandir", "os.remove", "os.rename", "os.mkdir", "os.rmdir",
              "os.chmod", "os.chown", "os.link", "os.symlink", "os.truncate", "os.utime", "os.chdir",
              "os.chflags", "os.lchown", "os.walk", "os.fwalk", "shutil.", "glob.", "tempfile.", "pathlib.",
              "io.open", "os.mkfifo", "os.mknod", "os.getxattr", "os.setxattr", "os.listxattr", "os.removexattr",
              "os.add_dll_directory", "fcntl.", "mmap.")
_PROC_PREFIX = ("subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
                "os.kill", "os.killpg", "os.startfile", "pty.", "_thread.start_new_thread", "os.putenv",
                "os.unsetenv")
_NET_PREFIX = ("socket.", "http.", "urllib.", "ftplib.", "smtplib.", "imaplib.", "poplib.", "nntplib.", "telnetlib.")
_IMPORT_EVENTS = ("open", "os.listdir", "os.scandir", "marshal.loads")
_IMPORTLIB_FILES = ("<frozen importlib._bootstrap_external>", "<frozen importlib._bootstrap>", "<frozen zipimport>")


def audit_hook(
    plan: Plan,
    allowed_import: Callable[[str], bool],
    bypass: Callable[[], bool],
    denied: type[Exception],
    import_denied: type[Exception],
    file_denied: type[Exception] | None = None,
) -> Callable[[str, tuple[Any, ...]], None]:
    """The audit hook: refuses, as ``denied`` errors naming the event (imports
    as ``import_denied``, an ImportError too; file operations as
    ``file_denied``, a PermissionError too), the operations the policy withholds (files, processes, sockets, ctypes, gc and
    frame introspection, marshal, signals, new hooks). ``bypass()`` is true
    while the worker's own code runs (sending a reply, arming a timer)."""
    deny = list(_DENY_ALWAYS_PREFIX)
    if not plan.file_system:
        deny += _FS_PREFIX
    if not plan.processes:
        deny += _PROC_PREFIX
    if not plan.network:
        deny += _NET_PREFIX
    deny_t = tuple(deny)
    files_t = _FS_PREFIX
    importing_ok = plan.imports or bool(plan.read_paths)  # granted packages load submodules lazily

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if bypass():
            return
        if importing_ok and event in _IMPORT_EVENTS and _from_importlib(event, args):
            return
        if event == "open" and args and isinstance(args[0], int):
            return  # a file object around a descriptor the worker already has (a pipe): no path is opened
        if event == "import":
            name = args[0]
            if name in sys.modules or allowed_import(name):
                return
            raise import_denied(f"importing '{name}' is not allowed by the sandbox policy")
        if event.startswith(deny_t):
            refusal = file_denied if file_denied is not None and event.startswith(files_t) else denied
            raise refusal(f"'{event}' is not allowed by the sandbox policy")

    return hook


def _from_importlib(event: str, args: tuple[Any, ...]) -> bool:
    """Whether the import system itself (reading a module's source or
    bytecode) raised the event: allowed when imports are granted."""
    if event == "open":
        mode = args[1] if len(args) > 1 else "r"
        if not isinstance(mode, str) or any(c in mode for c in "wax+"):
            return False
    frame = sys._getframe(2)
    return frame is not None and frame.f_code.co_filename in _IMPORTLIB_FILES
