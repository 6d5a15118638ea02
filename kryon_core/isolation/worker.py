"""The isolated worker: a separate Python process that runs untrusted scripts.

Started by the host as ``python -I -S <this file>`` with the channel on stdin
and stdout, a clean environment, and ``start_new_session``. Standard library
only: it loads ``protocol.py`` and ``guard.py`` beside it by path.

Start-up, in this order:

1. read the ``init`` message: limits, grants, the compiler, the ``kryon`` API names;
2. import what it needs while it still may: the compiler module (``"python"``
   is built in; another is ``"module:function"``, e.g. Hy's), the modules
   scripts may import, asyncio when scripts have async functions;
3. arm the sandbox (:func:`arm`): environment cleared; a fresh network
   namespace with no interfaces (unless network is granted); ``RLIMIT_AS``
   (memory), ``RLIMIT_FSIZE`` 0 (no file writes), ``RLIMIT_NPROC`` 0 (no
   processes or threads), ``RLIMIT_NOFILE`` (no new descriptors), ``RLIMIT_CORE`` 0;
   root drops to nobody; ``PR_SET_NO_NEW_PRIVS``; ``PR_SET_PDEATHSIG``; an
   audit hook refusing files, sockets, processes, signals, ctypes, gc
   introspection, marshal and new audit hooks;
4. serve requests: ``load`` (compile with the compiler, check with the AST
   guard, exec in a namespace with curated builtins), ``call``, ``callh``
   (a function handle), ``setg``/``getg``, ``gc``, ``stats``, ``unload``, ``exit``.

Per call the worker arms ``ITIMER_REAL`` (a ``ScriptTimeout`` raised in script
code) and ``RLIMIT_CPU`` (the kernel's SIGXCPU if the script hides in C code);
the host keeps its own deadline and kills the process past it.
"""

from __future__ import annotations

import builtins
import gc
import itertools
import os
import sys
import types
import weakref

_HERE = os.path.dirname(os.path.abspath(__file__))


def _load_sibling(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"kryon_isolation_{name}", os.path.join(_HERE, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


protocol = _load_sibling("protocol")
guard = _load_sibling("guard")
TAG = protocol.TAG

#: modules a sandboxed script may import without a grant: pure computation,
#: handed over as read-only proxies of their public, non-module attributes
SAFE_MODULES = (
    "math", "cmath", "random", "json", "re", "string", "itertools", "functools", "collections",
    "heapq", "bisect", "datetime", "time", "decimal", "fractions", "statistics", "textwrap", "copy",
)

_REMOVED_BUILTINS = (
    "eval", "exec", "compile", "open", "input", "breakpoint", "help", "exit", "quit",
    "__import__", "__loader__", "__spec__", "__build_class__", "copyright", "credits", "license",
    "globals", "locals", "vars", "memoryview",
)


# -- errors ----------------------------------------------------------------------
class AccessDenied(Exception):
    """The sandbox refused an operation (reported to the host as AccessDeniedError)."""


class ScriptTimeout(BaseException):
    """The call ran past its time limit (a BaseException: ``except Exception`` does not hide it)."""


class KryonError(Exception):
    """An error the host reported for a ``kryon`` call; ``kind`` is the error kind."""

    def __init__(self, message, kind="runtime", stack=()):
        super().__init__(message)
        self.kind = kind
        self.host_stack = list(stack)


# -- state -----------------------------------------------------------------------
class State:
    def __init__(self):
        self.in_fd = -1
        self.out_fd = -1
        self.next_id = 1
        self.config = {}
        self.compile = None
        self.scripts = {}  # script id -> namespace
        self.builtins = {}  # script id -> builtins dict
        self.engine_globals = {}
        self.handles = {}  # worker handle id -> callable
        self.handle_ids = {}  # id(callable) -> handle id
        self.released_host = []  # host handle ids dropped by this worker
        self.proxies = {}  # host handle id -> proxy (weak)
        self.modules = {}  # name -> proxy module
        self.kryon = None
        self.loop = None
        self.timer_armed = False
        self.pending_timeout = False
        self.script_running = False
        self.internal = 0
        self.max_value = None
        self.call_depth = 0
        self.loading = set()
        self.breakpoints = {}  # script id -> {str(line): breakpoint id}
        self.time_limit = None
        self.columns = False
        self.cpu_soft = 0
        self.reader = None
        self.decoder = None


S = State()


# -- channel ------------------------------------------------------------------------
def send(msg):
    if S.released_host:
        msg["rel"] = S.released_host
        S.released_host = []
    S.internal += 1
    try:
        protocol.write_frame(S.out_fd, protocol.dumps(msg))
    finally:
        S.internal -= 1


def receive():
    return protocol.loads(S.reader.frame(), S.decoder)


def host_request(kind, payload):
    """Ask the host (a ``kryon`` API call or a host function) and wait for the
    reply, serving requests the host sends meanwhile."""
    rid = S.next_id
    S.next_id += 1
    payload["t"] = kind
    payload["i"] = rid
    payload["st"] = _current_stack(sys._getframe(1))
    was_running = S.script_running
    S.script_running = False  # a timer firing now waits until the script runs again
    try:
        send(payload)
        while True:
            msg = receive()
            t = msg.get("t")
            if t == "r" and msg.get("i") == rid:
                return msg.get("v")
            if t == "e" and msg.get("i") == rid:
                raise KryonError(msg.get("m", "error"), msg.get("k", "runtime"), msg.get("s", ()))
            serve(msg)
    finally:
        S.script_running = was_running
        if was_running and S.pending_timeout:
            S.pending_timeout = False
            raise ScriptTimeout("time limit exceeded")


def _current_stack(frame):
    out = []
    while frame is not None:
        code = frame.f_code
        if code.co_filename in S.scripts or code.co_filename in S.loading:
            out.append(_frame(code, frame.f_lineno, frame.f_lasti))
        frame = frame.f_back
    return out


def _frame(code, line, lasti):
    """A stack frame for the host: [function, script, line], plus
    [language (the runtime's), column] when the compiler's columns are the
    source's own (``CompilerSpec.columns``)."""
    if not S.columns or lasti < 0:
        return [code.co_name, code.co_filename, line]
    pos = next(itertools.islice(code.co_positions(), lasti // 2, None), None)
    return [code.co_name, code.co_filename, line, None, pos[2] if pos else None]


# -- breakpoints -------------------------------------------------------------------------
def _trace_call(frame, event, arg):
    lines = S.breakpoints.get(frame.f_code.co_filename)
    if not lines:
        return None

    def trace_line(frame, event, arg):
        if event == "line":
            bid = lines.get(str(frame.f_lineno))
            if bid is not None:
                _hit(bid, frame)
        return trace_line

    return trace_line


def _hit(bid, frame):
    local_vars = {}
    for k, v in frame.f_locals.items():
        if k.startswith("__"):
            continue
        try:
            local_vars[k] = encode(v)
        except Exception:
            local_vars[k] = repr(v)[:200]
    S.internal += 1
    sys.settrace(None)
    S.internal -= 1
    try:
        host_request("bp", {"b": bid, "l": frame.f_lineno, "s": frame.f_code.co_filename, "v": local_vars})
    finally:
        S.internal += 1
        sys.settrace(_trace_call)
        S.internal -= 1


def _set_breakpoints(bps):
    S.breakpoints = {f: dict(lines) for f, lines in (bps or {}).items() if lines}


# -- values ---------------------------------------------------------------------------
class HostObject:
    """An opaque host value (UserData, an element handle) held by a script."""

    __slots__ = ("_kryon_id", "__weakref__")

    def __init__(self, hid):
        self._kryon_id = hid

    def __repr__(self):
        return f"<host object {self._kryon_id}>"

    def __eq__(self, other):
        return isinstance(other, HostObject) and other._kryon_id == self._kryon_id

    def __hash__(self):
        return hash(("host", self._kryon_id))


class HostFunction(HostObject):
    """A host callable (a FunctionRef into any language, a host function)."""

    __slots__ = ()

    def __call__(self, *args):
        return host_request("callh", {"h": self._kryon_id, "a": encode_args(args)})

    def __repr__(self):
        return f"<host function {self._kryon_id}>"


def _release_host(hid):
    S.proxies.pop(hid, None)
    S.released_host.append(hid)


def _decode_tag(d):
    if TAG not in d:
        return d
    tag = d[TAG]
    if tag == "b":
        return protocol.decode_bytes(d)
    if tag == "h":
        hid = d["v"]
        ref = S.proxies.get(hid)
        obj = ref() if ref is not None else None
        if obj is None:
            obj = HostFunction(hid) if d.get("c") else HostObject(hid)
            S.proxies[hid] = weakref.ref(obj)
            weakref.finalize(obj, _release_host, hid)
        return obj
    if tag == "f":
        fn = S.handles.get(d["v"])
        if fn is None:
            raise protocol.ProtocolError(f"unknown function handle {d['v']}")
        return fn
    if tag == "d":
        return {k: v for k, v in d["v"]}
    raise protocol.ProtocolError(f"unknown tag {tag!r}")


def _export(obj):
    if isinstance(obj, HostObject):
        return {TAG: "h", "v": obj._kryon_id}
    if isinstance(obj, (types.GeneratorType,)):
        return [encode(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        raise protocol.ValueRefused(f"a {type(obj).__name__} cannot cross between languages; use a list")
    if callable(obj) and not isinstance(obj, type):
        key = id(obj)
        hid = S.handle_ids.get(key)
        if hid is None or S.handles.get(hid) is not obj:
            hid = S.next_id
            S.next_id += 1
            S.handles[hid] = obj
            S.handle_ids[key] = hid
        name = getattr(obj, "__name__", None) or "function"
        code = getattr(obj, "__code__", None)
        script = code.co_filename if code is not None and code.co_filename in S.scripts else None
        return {TAG: "f", "v": hid, "n": str(name), "s": script}
    raise protocol.ValueRefused(f"cannot convert a {type(obj).__name__} to a host value")


def encode(value):
    return protocol.encode_value(value, _export, max_size=S.max_value)


def encode_args(args):
    return [encode(a) for a in args]


# -- the sandbox --------------------------------------------------------------------------
_DENY_ALWAYS_PREFIX = ("ctypes.", "gc.get_", "marshal.", "sys.addaudithook", "sys.settrace", "sys.setprofile",
                       "sys._current_frames", "sys.setrecursionlimit", "code.__new__", "function.__new__",
                       "resource.", "signal.", "winreg.", "os.setuid", "os.setgid", "webbrowser.")
_FS_PREFIX = ("open", "os.listdir", "os.scandir", "os.remove", "os.rename", "os.mkdir", "os.rmdir",
              "os.chmod", "os.chown", "os.link", "os.symlink", "os.truncate", "os.utime", "os.chdir",
              "os.chflags", "os.lchown", "os.walk", "os.fwalk", "shutil.", "glob.", "tempfile.", "pathlib.",
              "io.open", "os.mkfifo", "os.mknod", "os.getxattr", "os.setxattr", "os.listxattr", "os.removexattr",
              "os.add_dll_directory", "os.truncate", "fcntl.", "mmap.")
_PROC_PREFIX = ("subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
                "os.kill", "os.killpg", "os.startfile", "pty.", "_thread.start_new_thread", "os.putenv",
                "os.unsetenv")
_NET_PREFIX = ("socket.", "http.", "urllib.", "ftplib.", "smtplib.", "imaplib.", "poplib.", "nntplib.", "telnetlib.")


def _audit_hook(grants, allowed_import):
    deny = list(_DENY_ALWAYS_PREFIX)
    if not grants.get("file_system"):
        deny += _FS_PREFIX
    if not grants.get("processes"):
        deny += _PROC_PREFIX
    if not grants.get("network"):
        deny += _NET_PREFIX
    deny_t = tuple(deny)

    importing_ok = bool(grants.get("imports"))
    import_events = ("open", "os.listdir", "os.scandir", "marshal.loads")

    def hook(event, args):
        if S.internal:
            return
        if importing_ok and event in import_events and _from_importlib(event, args):
            return
        if event == "import":
            name = args[0]
            if name in sys.modules or allowed_import(name):
                return
            raise AccessDenied(f"importing '{name}' is not allowed by the sandbox policy")
        if event.startswith(deny_t):
            raise AccessDenied(f"'{event}' is not allowed by the sandbox policy")

    return hook


_IMPORTLIB_FILES = ("<frozen importlib._bootstrap_external>", "<frozen importlib._bootstrap>", "<frozen zipimport>")


def _from_importlib(event, args):
    """Whether the import system itself (reading a module's source or
    bytecode) raised the event: allowed when imports are granted."""
    if event == "open":
        mode = args[1] if len(args) > 1 else "r"
        if not isinstance(mode, str) or any(c in mode for c in "wax+"):
            return False
    frame = sys._getframe(2)
    return frame is not None and frame.f_code.co_filename in _IMPORTLIB_FILES


def _unshare_net():
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        flags = 0x40000000  # CLONE_NEWNET
        if os.getuid() != 0:
            flags |= 0x10000000  # CLONE_NEWUSER
        if libc.unshare(flags) == 0:
            return "network namespace"
        return f"unshare failed (errno {ctypes.get_errno()})"
    except Exception as exc:  # no libc, no ctypes: other layers still hold
        return f"unshare unavailable ({exc})"


def _prctl(option, value):
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) == 0
    except Exception:
        return False


# -- seccomp: a BPF filter assembled here, loaded with prctl ------------------------------------
_SYSCALLS = {
    # name: (x86_64, aarch64); None where the call does not exist
    "fork": (57, None), "vfork": (58, None), "execve": (59, 221), "execveat": (322, 281),
    "clone": (56, 220), "clone3": (435, 435), "socket": (41, 198), "socketpair": (53, 199),
    "kill": (62, 129), "tkill": (200, 130), "tgkill": (234, 131), "ptrace": (101, 117),
    "process_vm_readv": (310, 270), "process_vm_writev": (311, 271), "unshare": (272, 97),
    "setns": (308, 268), "mount": (165, 40), "bpf": (321, 280), "perf_event_open": (298, 241),
    "keyctl": (250, 219), "userfaultfd": (323, 282), "io_uring_setup": (425, 425),
    "open_by_handle_at": (304, 265), "pidfd_open": (434, 434), "pidfd_send_signal": (424, 424),
}
_ARCHES = {"x86_64": (0, 0xC000003E), "amd64": (0, 0xC000003E), "aarch64": (1, 0xC00000B7), "arm64": (1, 0xC00000B7)}


def _seccomp(grants):
    """Refuse (EPERM) the system calls the policy withholds: new processes
    (fork, vfork, clone without CLONE_THREAD, clone3, execve), sockets, signals
    to other processes, and always ptrace, namespaces, mounts, bpf and the
    like. Returns what happened, for the hardening report."""
    import ctypes
    import struct

    machine = os.uname().machine
    arch = _ARCHES.get(machine.lower())
    if arch is None:
        return f"not applied (no syscall table for {machine})"
    column, audit_arch = arch
    deny = ["ptrace", "process_vm_readv", "process_vm_writev", "unshare", "setns", "mount", "bpf",
            "perf_event_open", "keyctl", "userfaultfd", "io_uring_setup", "open_by_handle_at"]
    if not grants.get("processes"):
        deny += ["fork", "vfork", "execve", "execveat", "clone3", "kill", "tkill", "tgkill", "pidfd_open",
                 "pidfd_send_signal"]
    if not grants.get("network"):
        deny += ["socket", "socketpair"]
    numbers = [_SYSCALLS[n][column] for n in deny if _SYSCALLS[n][column] is not None]
    check_clone = not grants.get("processes")
    LD, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06
    ALLOW, ERRNO_EPERM, KILL = 0x7FFF0000, 0x00050000 | 1, 0x80000000
    prog = [(LD, 0, 0, 4), ("JEQ_ARCH",), (LD, 0, 0, 0)]
    if column == 0:
        prog.append(("JGE_X32",))  # the x32 ABI: syscall numbers with bit 30 set
    for nr in numbers:
        prog.append(("DENY_IF", nr))
    if check_clone:
        clone = _SYSCALLS["clone"][column]
        prog += [("CLONE", clone), (LD, 0, 0, 16), ("THREAD",)]
    prog += [("ALLOW",), ("DENY",), ("KILL",)]
    n = len(prog)
    allow_at, deny_at, kill_at = n - 3, n - 2, n - 1
    out = []
    for i, ins in enumerate(prog):
        op = ins[0]
        if op == "JEQ_ARCH":
            out.append((JEQ, 0, kill_at - i - 1, audit_arch))
        elif op == "JGE_X32":
            out.append((JGE, deny_at - i - 1, 0, 0x40000000))
        elif op == "DENY_IF":
            out.append((JEQ, deny_at - i - 1, 0, ins[1]))
        elif op == "CLONE":
            out.append((JEQ, 0, allow_at - i - 1, ins[1]))
        elif op == "THREAD":
            out.append((JSET, allow_at - i - 1, deny_at - i - 1, 0x00010000))  # CLONE_THREAD
        elif op == "ALLOW":
            out.append((RET, 0, 0, ALLOW))
        elif op == "DENY":
            out.append((RET, 0, 0, ERRNO_EPERM))
        elif op == "KILL":
            out.append((RET, 0, 0, KILL))
        else:
            out.append(ins)
    raw = b"".join(struct.pack("=HBBI", *ins) for ins in out)
    buf = ctypes.create_string_buffer(raw, len(raw))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(out), ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        return f"failed (errno {ctypes.get_errno()})"
    return f"{len(numbers) + (1 if check_clone else 0)} system calls refused"


def _vm_size():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def arm(cfg):
    """Lock the process down according to the init message. Returns a report
    of what was applied (the host shows it in ``worker_info``)."""
    import resource

    grants = cfg.get("grants", {})
    limits = cfg.get("limits", {})
    report = {}
    if not grants.get("processes"):
        os.environ.clear()
    if not grants.get("network"):
        report["network"] = _unshare_net()
    else:
        import ctypes  # noqa: F401  (the seccomp step loads its filter with it)
    mem = limits.get("memory")
    if mem:
        total = _vm_size() + int(mem)
        try:
            resource.setrlimit(resource.RLIMIT_AS, (total, total))
            report["memory"] = total
        except (ValueError, OSError) as exc:
            report["memory"] = f"failed: {exc}"
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if not grants.get("file_system"):
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
        report["fsize"] = 0
    if not grants.get("file_system") and not grants.get("network"):
        # granted imports read module files (one descriptor at a time)
        top = max(S.in_fd, S.out_fd, 2) + (3 if grants.get("imports") else 1)
        resource.setrlimit(resource.RLIMIT_NOFILE, (top, top))
        report["nofile"] = top
    if os.getuid() == 0 and not grants.get("file_system") and not grants.get("processes") and not grants.get("imports"):
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            report["user"] = "nobody"
        except OSError as exc:
            report["user"] = f"failed: {exc}"
    if not grants.get("processes"):
        try:
            resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
            report["nproc"] = 0
        except (ValueError, OSError) as exc:
            report["nproc"] = f"failed: {exc}"
    report["no_new_privs"] = _prctl(38, 1)  # PR_SET_NO_NEW_PRIVS
    report["dumpable"] = not _prctl(4, 0)  # PR_SET_DUMPABLE 0: no core dumps, no ptrace by others
    _prctl(1, 9)  # PR_SET_PDEATHSIG = SIGKILL (after the uid change, which clears it)
    if os.getppid() == 1:
        os._exit(0)  # the host is already gone
    try:
        report["seccomp"] = _seccomp(grants)  # needs NO_NEW_PRIVS (set above)
    except Exception as exc:  # no ctypes or an unknown libc: the other layers still hold
        report["seccomp"] = f"not applied ({exc})"
    allowed = set(cfg.get("allowed_imports", ())) | set(SAFE_MODULES) | {"kryon"}
    allow_all = bool(grants.get("imports"))

    def allowed_import(name):
        return allow_all or name in allowed or name.split(".", 1)[0] in allowed

    sys.addaudithook(_audit_hook(grants, allowed_import))
    report["audit_hook"] = True
    return report


import signal as _signal  # noqa: E402

_setitimer = _signal.setitimer
_ITIMER_REAL = _signal.ITIMER_REAL


def _cpu_now():
    t = os.times()
    return t.user + t.system


def _on_alarm(signum, frame):
    if S.script_running:
        raise ScriptTimeout("time limit exceeded")
    S.pending_timeout = True


class _Armed:
    """Time limits for one outermost call: ITIMER_REAL and RLIMIT_CPU."""

    __slots__ = ("limit", "outer")

    def __init__(self):
        self.limit = S.time_limit
        self.outer = False

    def __enter__(self):
        if self.limit and not S.timer_armed:
            self.outer = True
            S.timer_armed = True
            S.pending_timeout = False
            now = _cpu_now()
            if S.cpu_soft - now < self.limit + 1:
                # the kernel's backstop: SIGXCPU once this process used its
                # CPU budget (refreshed lazily, at most a few limits ahead)
                import resource

                S.cpu_soft = int(now + 4 * self.limit) + 2
                S.internal += 1
                try:
                    resource.setrlimit(resource.RLIMIT_CPU, (S.cpu_soft, resource.RLIM_INFINITY))
                except (ValueError, OSError):
                    pass
                finally:
                    S.internal -= 1
            _setitimer(_ITIMER_REAL, self.limit)
        return self

    def __exit__(self, *exc):
        if self.outer:
            _setitimer(_ITIMER_REAL, 0)
            S.timer_armed = False
            S.pending_timeout = False
        return False


# -- script namespaces ----------------------------------------------------------------------
def _safe_getattr(obj, name, *default):
    if not isinstance(name, str):
        raise TypeError("attribute name must be a string")
    if not guard.attribute_allowed(name):
        raise AccessDenied(f"access to the attribute '{name}' is not allowed in the sandbox")
    return getattr(obj, name, *default)


def _safe_setattr(obj, name, value):
    if not isinstance(name, str) or not guard.attribute_allowed(name):
        raise AccessDenied(f"setting the attribute '{name}' is not allowed in the sandbox")
    setattr(obj, name, value)


def _safe_delattr(obj, name):
    if not isinstance(name, str) or not guard.attribute_allowed(name):
        raise AccessDenied(f"deleting the attribute '{name}' is not allowed in the sandbox")
    delattr(obj, name)


def _safe_hasattr(obj, name):
    if not isinstance(name, str) or not guard.attribute_allowed(name):
        return False
    return hasattr(obj, name)


def _denied(what):
    def stub(*args, **kwargs):
        raise AccessDenied(f"{what} is not allowed by the sandbox policy")

    stub.__name__ = what
    return stub


class _ModuleProxy(types.ModuleType):
    """A safe module's public, non-module attributes; the rest is refused."""

    def __getattr__(self, attr):
        raise AccessDenied(f"'{self.__name__}.{attr}' is not available in the sandbox")


def _proxy_module(name, module):
    proxy = _ModuleProxy(name)
    for attr, value in vars(module).items():
        if attr.startswith("_") or isinstance(value, types.ModuleType):
            continue
        setattr(proxy, attr, value)
    return proxy


def _make_import(cfg):
    grants = cfg.get("grants", {})
    allowed = set(cfg.get("allowed_imports", ()))
    allow_all = bool(grants.get("imports"))

    def safe_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level:
            raise AccessDenied("relative imports are not allowed in the sandbox")
        root = name.split(".", 1)[0]
        if name == "kryon":
            return S.kryon
        if allow_all or name in allowed or root in allowed:
            return __import__(name, globals, locals, fromlist, level)
        if name in S.modules:
            return S.modules[name]
        raise AccessDenied(f"importing '{name}' is not allowed by the sandbox policy")

    return safe_import


def _prepare_modules():
    for name in SAFE_MODULES:
        try:
            S.modules[name] = _proxy_module(name, __import__(name))
        except ImportError:
            pass


def make_builtins(cfg):
    b = dict(vars(builtins))
    for name in _REMOVED_BUILTINS:
        b.pop(name, None)
    b["__build_class__"] = builtins.__build_class__
    b["__import__"] = _make_import(cfg)
    b["getattr"] = _safe_getattr
    b["setattr"] = _safe_setattr
    b["delattr"] = _safe_delattr
    b["hasattr"] = _safe_hasattr
    grants = cfg.get("grants", {})
    b["open"] = open if grants.get("file_system") else _denied("open")
    for name in ("eval", "exec", "compile", "breakpoint", "input", "globals", "locals", "vars"):
        b[name] = _denied(name)
    b["AccessDenied"] = AccessDenied
    b.update(S.engine_globals)
    return b


class _Output:
    """``sys.stdout`` for scripts: each line goes to the host's output."""

    def __init__(self):
        self.buf = ""

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str")
        self.buf += text
        if "\n" in self.buf:
            *lines, self.buf = self.buf.split("\n")
            for line in lines:
                send({"t": "out", "x": line})
        return len(text)

    def flush(self):
        if self.buf:
            send({"t": "out", "x": self.buf})
            self.buf = ""


def make_kryon_module(api_names):
    mod = types.ModuleType("kryon")

    def bind(script_name, method):
        def api(*args):
            return host_request("api", {"n": method, "a": encode_args(args)})

        api.__name__ = script_name
        api.__qualname__ = script_name
        return api

    for script_name, method in api_names.items():
        setattr(mod, script_name, bind(script_name, method))
    mod.KryonError = KryonError
    mod.ScriptError = KryonError
    mod.AccessDenied = AccessDenied
    return mod


# -- compiling --------------------------------------------------------------------------
def _python_compiler(source, filename):
    import ast

    return ast.parse(source, filename, "exec")


def _resolve_compiler(spec):
    if spec in (None, "", "python"):
        return _python_compiler
    module_name, _, attr = spec.partition(":")
    obj = __import__(module_name, fromlist=["_"])
    for part in (attr or "compile").split("."):
        obj = getattr(obj, part)
    return obj


def compile_script(source, filename):
    """The compiler hook returns an ``ast.Module`` (checked by the guard, then
    compiled) or a code object (then it must have checked the code itself)."""
    import ast

    result = S.compile(source, filename)
    if isinstance(result, ast.AST):
        guard.check(result)
        ast.fix_missing_locations(result)
        return compile(result, filename, "exec", dont_inherit=True)
    if isinstance(result, types.CodeType):
        return result
    raise TypeError(f"the compiler returned {type(result).__name__}, not an AST or code object")


def function_infos(script, ns):
    import inspect

    out = []
    for name, value in ns.items():
        if not isinstance(value, types.FunctionType):
            continue
        code = value.__code__
        if code.co_filename != script:
            continue
        params = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        out.append(
            {
                "name": name,
                "parameter_count": code.co_argcount,
                "parameter_names": list(params[: code.co_argcount]),
                "is_async": inspect.iscoroutinefunction(value) or inspect.isasyncgenfunction(value),
                "is_generator": inspect.isgeneratorfunction(value) or inspect.isasyncgenfunction(value),
                "is_variadic": bool(code.co_flags & 0x04),
                "line": code.co_firstlineno,
            }
        )
    return out


# -- errors to the host ---------------------------------------------------------------------------
def _stack(tb):
    frames = []
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename in S.scripts or code.co_filename in S.loading:
            frames.append(_frame(code, tb.tb_lineno, tb.tb_lasti))
        tb = tb.tb_next
    frames.reverse()  # innermost first
    return frames


def error_reply(rid, exc):
    kind = "runtime"
    if isinstance(exc, AccessDenied):
        kind = "access"
    elif isinstance(exc, guard.GuardViolation):
        kind = "access"
    elif isinstance(exc, ScriptTimeout):
        kind = "timeout"
    elif isinstance(exc, MemoryError):
        kind = "memory"
    elif isinstance(exc, RecursionError):
        kind = "recursion"
    elif isinstance(exc, KryonError):
        kind = exc.kind
    elif isinstance(exc, protocol.ValueRefused):
        kind = exc.kind
    elif isinstance(exc, SyntaxError):
        kind = "compile"
    elif isinstance(exc, PermissionError):
        kind = "access"
    stack = getattr(exc, "_kryon_stack", None)
    if stack is None:
        stack = _stack(exc.__traceback__)
    if isinstance(exc, (KryonError, ScriptTimeout, MemoryError, AccessDenied, RecursionError, protocol.ValueRefused,
                        guard.GuardViolation)):
        text = str(exc) or type(exc).__name__
    else:
        text = f"{type(exc).__name__}: {exc}"
    msg = {"t": "e", "i": rid, "k": kind, "m": text, "s": stack}
    if isinstance(exc, SyntaxError):
        msg["m"] = exc.msg or "invalid syntax"
        msg["l"] = exc.lineno
        msg["c"] = exc.offset
    elif isinstance(exc, guard.GuardViolation):
        msg["l"] = exc.line
        msg["c"] = exc.column
    elif stack:
        msg["l"] = stack[0][2]
    if isinstance(exc, KryonError) and exc.host_stack:
        msg["s"] = stack + [list(f) for f in exc.host_stack]
    return msg


# -- requests -------------------------------------------------------------------------------
def _traced(fn, args):
    S.internal += 1
    try:
        sys.settrace(_trace_call)
    finally:
        S.internal -= 1
    try:
        return fn(*args)
    finally:
        S.internal += 1
        try:
            sys.settrace(None)
        finally:
            S.internal -= 1


def _run(fn, args):
    result = _traced(fn, args) if S.breakpoints else fn(*args)
    if isinstance(result, types.CoroutineType):
        if S.loop is None:
            result.close()
            raise RuntimeError("async functions need asyncio, which this worker was not started with")
        result = S.loop.run_until_complete(result)
    elif isinstance(result, types.GeneratorType):
        result = list(result)
    return result


def do_load(msg):
    script = msg["script"]
    filename = script
    S.loading.add(filename)
    try:
        code = compile_script(msg["source"], filename)
        b = make_builtins(S.config)
        ns = {"__name__": script, "__builtins__": b, "__file__": script, "__doc__": None}
        with _Armed():
            S.script_running = True
            try:
                if S.breakpoints:
                    _traced(exec, (code, ns))
                else:
                    exec(code, ns)
            finally:
                S.script_running = False
                _flush_output()
        S.scripts[script] = ns
        S.builtins[script] = b
    except BaseException as exc:
        _keep_stack(exc)
        raise
    finally:
        S.loading.discard(filename)
    return function_infos(script, ns)


def _keep_stack(exc):
    """Take a failed top level's stack now: once the script leaves
    ``S.loading`` its frames no longer count as script frames, and the error
    would reach the host with no line."""
    try:
        exc._kryon_stack = _stack(exc.__traceback__)
    except Exception:  # an exception class that refuses attributes keeps no stack
        pass


def do_call(msg):
    ns = S.scripts.get(msg["script"])
    if ns is None:
        raise KryonError(f"script '{msg['script']}' is not loaded in this worker", "notfound")
    fn = ns.get(msg["fn"])
    if fn is None or not callable(fn):
        raise KryonError(f"script '{msg['script']}' has no function '{msg['fn']}'", "notfound")
    return _call(fn, msg.get("a", ()))


def _call(fn, args):
    with _Armed():
        was = S.script_running
        S.script_running = True
        try:
            result = _run(fn, args)
        finally:
            S.script_running = was
            _flush_output()
    return encode(result)


def _flush_output():
    """What a call printed without a final newline still reaches the host."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, _Output) and stream.buf:
            stream.flush()


def do_callh(msg):
    fn = S.handles.get(msg["h"])
    if fn is None:
        raise KryonError("this function was released or its worker restarted", "runtime")
    return _call(fn, msg.get("a", ()))


def do_gc(msg):
    return {"freed": gc.collect()}


def serve(msg):
    t = msg.get("t")
    rid = msg.get("i")
    rel = msg.get("rel")
    if rel:
        for hid in rel:
            fn = S.handles.pop(hid, None)
            if fn is not None:
                S.handle_ids.pop(id(fn), None)
    if t == "release":
        return
    try:
        if t == "call":
            value = do_call(msg)
        elif t == "callh":
            value = do_callh(msg)
        elif t == "load":
            value = do_load(msg)
        elif t == "unload":
            S.scripts.pop(msg["script"], None)
            S.builtins.pop(msg["script"], None)
            value = None
        elif t == "setg":
            S.engine_globals[msg["n"]] = msg.get("v")
            for b in S.builtins.values():
                b[msg["n"]] = msg.get("v")
            value = None
        elif t == "getg":
            value = encode(S.engine_globals.get(msg["n"]))
        elif t == "gc":
            value = do_gc(msg)
        elif t == "bps":
            _set_breakpoints(msg.get("b"))
            value = None
        elif t == "ping":
            value = msg.get("v")
        elif t == "exit":
            send({"t": "r", "i": rid, "v": None})
            os._exit(0)
        else:
            raise protocol.ProtocolError(f"unknown request {t!r}")
        send({"t": "r", "i": rid, "v": value})
    except ScriptTimeout as exc:
        send(error_reply(rid, exc))
    except (Exception, guard.GuardViolation) as exc:
        if isinstance(exc, protocol.ProtocolError):
            raise
        try:
            reply = error_reply(rid, exc)
        except MemoryError:
            reply = {"t": "e", "i": rid, "k": "memory", "m": "out of memory", "s": []}
        exc = None
        send(reply)


def main():
    # the channel moves off 0 and 1, which point to /dev/null from now on
    S.in_fd = os.dup(0)
    S.out_fd = os.dup(1)
    S.reader = protocol.Reader(S.in_fd)
    S.decoder = protocol.decoder(_decode_tag)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    init = receive()
    if init.get("t") != "init":
        raise SystemExit("expected init")
    S.config = init
    extra_path = init.get("sys_path") or []
    for p in extra_path:
        if p not in sys.path:
            sys.path.append(p)
    if init.get("site"):
        import site

        site.main()
    S.max_value = init.get("limits", {}).get("value_size")
    S.time_limit = init.get("limits", {}).get("time")
    S.columns = bool(init.get("columns"))
    if init.get("recursion"):
        sys.setrecursionlimit(int(init["recursion"]) + 60)
    for name in init.get("preload", ()):
        __import__(name)
    if init.get("grants", {}).get("network"):
        import encodings.idna  # noqa: F401  (host names are encoded with it, lazily)
    for name in init.get("allowed_imports", ()):  # granted modules load now, while files can be read
        try:
            __import__(name)
        except Exception:
            pass
    S.compile = _resolve_compiler(init.get("compiler"))
    _prepare_modules()
    if init.get("asyncio"):
        import asyncio

        S.loop = asyncio.new_event_loop()
    S.kryon = make_kryon_module(init.get("api", {}))
    S.engine_globals.update(init.get("globals", {}))
    _set_breakpoints(init.get("breakpoints"))
    import atexit  # noqa: F401  (weakref.finalize imports it on first use)
    import signal
    import inspect  # noqa: F401  (used by function_infos after arming)
    import ast  # noqa: F401
    import resource  # noqa: F401

    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.stdout = sys.__stdout__ = _Output()
    sys.stderr = sys.__stderr__ = _Output()
    report = arm(init) if init.get("sandbox", True) else {}
    send({"t": "r", "i": init.get("i"), "v": {"pid": os.getpid(), "hardening": report}})
    while True:
        try:
            msg = receive()
        except EOFError:
            os._exit(0)
        serve(msg)


if __name__ == "__main__":
    main()
