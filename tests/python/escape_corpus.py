"""The attacker's corpus for untrusted workers and the traps that tell
whether an attack had its effect (shared by the Python and Lisp escape tests,
which load this file by path).

The threat model is arbitrary Python inside the worker: the corpus is run with
the Python-level layers switched off (no AST guard, Python's full builtins, no
audit hook) as well as on. Every attack tries to produce an effect the host can
observe without trusting the worker:

- read a secret (a world-readable file in a world-readable directory, so only
  the sandbox and not file permissions stands in the way), ``/etc/shadow``,
  ``/etc/passwd``, the host's environment or memory;
- write, create, chmod, truncate, rename or delete a file in a world-writable
  directory, ``/tmp`` or ``/dev/shm``;
- connect to a TCP listener, an abstract or a path UNIX socket of the host;
- start a process (fork, posix_spawn, subprocess, the raw fork_exec);
- signal or ptrace the host, a decoy process of the host's uid, a decoy of
  the worker's own uid, or another script's worker;
- become root (setuid, a user namespace), or reach the kernel's larger
  surfaces (io_uring, bpf).

Attacks that succeed silently report it: their result then holds ``ESCAPED``.
:class:`Traps` checks the rest from the host after each attack.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ESCAPED = "ESCAPED"

#: attack name -> the body of ``def attack():`` in Python (``T`` is the targets dict)
PY_ATTACKS: dict[str, str] = {
    # -- reading what is not granted
    "read secret with open": "return open(T['secret']).read()",
    "read secret with os.open": (
        "import os\nfd = os.open(T['secret'], os.O_RDONLY)\ntry:\n    return os.read(fd, 100)\nfinally:\n    os.close(fd)"
    ),
    "read secret by descriptor (openat)": (
        "import os\nroot = os.open('/', os.O_PATH)\ntry:\n    fd = os.open(T['secret'].lstrip('/'), os.O_RDONLY, dir_fd=root)\n"
        "    try:\n        return os.read(fd, 100)\n    finally:\n        os.close(fd)\nfinally:\n    os.close(root)"
    ),
    "read secret through a symlink": "return open(T['link']).read()",
    "read secret through a new hard link": "import os\nos.link(T['secret'], T['dir'] + '/hard')\nreturn open(T['dir'] + '/hard').read()",
    "read /etc/shadow": "return open('/etc/shadow').read()",
    "read /etc/passwd": "return open('/etc/passwd').read()",
    "list the root directory": "import os\nreturn '%s %s' % ('ESCAPED' if os.listdir('/') else '', os.listdir('/'))",
    "read inherited descriptors": (
        "import os, stat\nout = []\nfor fd in range(64):\n    try:\n        st = os.fstat(fd)\n    except OSError:\n"
        "        continue\n    if stat.S_ISREG(st.st_mode):\n        out.append(os.pread(fd, 200, 0))\nreturn out"
    ),
    "open /proc/self/mem": "import os\nos.open('/proc/self/mem', os.O_RDWR)\nreturn 'ESCAPED opened'",
    "read the host's environ": "return open('/proc/%d/environ' % T['host_pid'], 'rb').read()",
    "read the parent's environ": "import os\nreturn open('/proc/%d/environ' % os.getppid(), 'rb').read()",
    "read the host's memory": "import os\nos.open('/proc/%d/mem' % T['host_pid'], os.O_RDONLY)\nreturn 'ESCAPED opened'",
    "read the host's cmdline": "return open('/proc/%d/cmdline' % T['host_pid'], 'rb').read() + b'ESCAPED'",
    "own environment": "import os\nreturn dict(os.environ)",
    # -- writing
    "write a file": "open(T['dir'] + '/written', 'w').write('x')",
    "create with os.open": "import os\nos.open(T['dir'] + '/created', os.O_CREAT | os.O_WRONLY, 0o666)",
    "write /tmp": "open('/tmp/kryon-escape-' + T['token'], 'w').write('x')",
    "write /dev/shm": "open('/dev/shm/kryon-escape-' + T['token'], 'w').write('x')",
    "make a symlink": "import os\nos.symlink('/etc/shadow', T['dir'] + '/evil-link')",
    "make a fifo": "import os\nos.mkfifo(T['dir'] + '/fifo')",
    "make a directory": "import os\nos.mkdir(T['dir'] + '/newdir')",
    "chmod the secret": "import os\nos.chmod(T['secret'], 0o666)",
    "chown the secret": "import os\nos.chown(T['secret'], 65534, 65534)",
    "utime the secret": "import os\nos.utime(T['secret'], (0, 0))",
    "setxattr on the secret": "import os\nos.setxattr(T['secret'], 'user.kryon', b'x')",
    "truncate the secret": "import os\nos.truncate(T['secret'], 0)",
    "rename the secret": "import os\nos.rename(T['secret'], T['dir'] + '/moved')",
    "delete the secret": "import os\nos.unlink(T['secret'])",
    # -- network
    "TCP connect": (
        "import socket\ns = socket.socket()\ns.settimeout(1)\ns.connect(('127.0.0.1', T['port']))\nreturn 'ESCAPED connected'"
    ),
    "raw _socket connect": "import _socket\ns = _socket.socket()\ns.settimeout(1)\ns.connect(('127.0.0.1', T['port']))\nreturn 'ESCAPED'",
    "abstract UNIX socket": (
        "import socket\ns = socket.socket(socket.AF_UNIX)\ns.settimeout(1)\ns.connect(T['abstract'])\nreturn 'ESCAPED'"
    ),
    "path UNIX socket": (
        "import socket\ns = socket.socket(socket.AF_UNIX)\ns.settimeout(1)\ns.connect(T['unix_path'])\nreturn 'ESCAPED'"
    ),
    "UDP send": "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                "s.sendto(b'x', ('127.0.0.1', T['port']))\nreturn 'ESCAPED'",
    # -- processes
    "fork": "import os\npid = os.fork()\nif pid == 0:\n    getattr(os, '_exit')(0)\nreturn 'ESCAPED forked %d' % pid",
    "posix_spawn": "import os\nreturn 'ESCAPED %d' % os.posix_spawn('/bin/sh', ['sh', '-c', 'touch ' + T['dir'] + '/spawned'], {})",
    "subprocess": "import subprocess\nsubprocess.run(['/usr/bin/touch', T['dir'] + '/sub'])\nreturn 'ESCAPED ran'",
    "os.system": "import os\nstatus = os.system('touch ' + T['dir'] + '/system')\nreturn 'ESCAPED' if status == 0 else status",
    "a thread": "import threading\nt = threading.Thread(target=print)\nt.start()\nreturn 'ESCAPED thread'",
    # -- other processes
    "kill the decoys": "import os, signal\nfor pid in T['decoys']:\n    os.kill(pid, signal.SIGKILL)\nreturn 'ESCAPED'",
    "signal the host": "import os, signal\nos.kill(T['host_pid'], signal.SIGCONT)\nreturn 'ESCAPED signalled'",
    "kill another script's worker": "import os, signal\nos.kill(T['bystander_pid'], signal.SIGKILL)\nreturn 'ESCAPED'",
    "pidfd signal to the host": (
        "import os, signal\nsignal.pidfd_send_signal(os.pidfd_open(T['host_pid']), signal.SIGCONT)\nreturn 'ESCAPED'"
    ),
    # -- through ctypes: the system calls themselves
    "ctypes ptrace the host": (
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "r = libc.ptrace(16, T['host_pid'], 0, 0)\nreturn 'ESCAPED attached' if r == 0 else r"
    ),
    "ctypes ptrace another worker": (
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "r = libc.ptrace(16, T['bystander_pid'], 0, 0)\nreturn 'ESCAPED attached' if r == 0 else r"
    ),
    "ctypes open /etc/shadow": (
        "import ctypes\nlibc = ctypes.CDLL(None)\nfd = libc.open(b'/etc/shadow', 0)\n"
        "buf = ctypes.create_string_buffer(200)\nn = libc.read(fd, buf, 200)\nreturn buf.raw[:max(n, 0)]"
    ),
    "ctypes socket syscall, then connect": (
        "import ctypes, socket\nr = ctypes.CDLL(None).syscall(41, 2, 1, 0)\nif r < 0:\n    return r\n"
        "s = socket.socket(fileno=r)\ns.settimeout(1)\ns.connect(('127.0.0.1', T['port']))\nreturn 'ESCAPED connected'"
    ),
    "ctypes setresuid 0": (
        "import ctypes, os\nctypes.CDLL(None).setresuid(0, 0, 0)\nreturn 'ESCAPED root' if os.getuid() == 0 else os.getuid()"
    ),
    "setuid 0": "import os\nos.setuid(0)\nreturn 'ESCAPED root'",
    "unshare a user namespace and use it": (
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "if libc.unshare(0x10000000 | 0x00020000) != 0:\n    return 'refused %d' % ctypes.get_errno()\n"
        "out = ['unshared']\nfor name, text in (('setgroups', 'deny'), ('uid_map', '0 %d 1' % os.geteuid())):\n"
        "    try:\n        with open('/proc/self/' + name, 'w') as f:\n            f.write(text)\n"
        "    except OSError as exc:\n        out.append(str(exc))\n"
        "for what in (lambda: open(T['secret']).read(), lambda: open(T['dir'] + '/userns', 'w').write('x'),\n"
        "             lambda: libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)):\n"
        "    try:\n        out.append(repr(what()))\n    except OSError as exc:\n        out.append(str(exc))\n"
        "return out"
    ),
    "io_uring_setup": (
        "import ctypes\np = ctypes.create_string_buffer(120)\nr = ctypes.CDLL(None).syscall(425, 8, p)\n"
        "return 'ESCAPED io_uring' if r >= 0 else r"
    ),
    "bpf": "import ctypes\na = ctypes.create_string_buffer(128)\nr = ctypes.CDLL(None).syscall(321, 0, a, 128)\n"
           "return 'ESCAPED bpf' if r >= 0 else r",
    "x32 system call ABI": (
        "import ctypes, platform\nif platform.machine() != 'x86_64':\n    return 'not x86_64'\n"
        "r = ctypes.CDLL(None).syscall(0x40000000 | 57)\nreturn 'ESCAPED x32 fork' if r >= 0 else r"
    ),
    # -- walking past the Python layers
    "string.Formatter walk to os": (
        "import string\nf = string.Formatter()\n"
        "for cls in f.get_field('0.__class__.__base__.__subclasses__', [()], {})[0]():\n"
        "    try:\n        g = f.get_field('0.__init__.__globals__', [cls], {})[0]\n    except Exception:\n        continue\n"
        "    if g.get('__name__') == 'os':\n"
        "        main = g['sys'].modules.get('__main__')\n"
        "        if hasattr(main, 'S'):\n            main.S.internal = 1  # the audit hook lets everything through\n"
        "        fd = g['open'](T['secret'], 0)\n        try:\n            return g['read'](fd, 100)\n"
        "        finally:\n            g['close'](fd)\n"
        "return 'os not found'"
    ),
    "gc walk to os": (
        "import gc\nfor o in gc.get_objects():\n    if type(o).__name__ == 'module' and o.__name__ == 'os':\n"
        "        fd = o.open(T['secret'], 0)\n        try:\n            return o.read(fd, 100)\n        finally:\n"
        "            o.close(fd)\nreturn 'os not found'"
    ),
    "frame walk to the worker": (
        "import sys\nf = getattr(sys, '_getframe')()\nwhile getattr(f, 'f_back') is not None:\n"
        "    f = getattr(f, 'f_back')\ng = getattr(f, 'f_globals')\ng['S'].internal = 1\nreturn open(T['secret']).read()"
    ),
}

if sys.version_info[:2] in ((3, 11), (3, 12)):
    # below the audit hook: the raw fork_exec raises no audit event
    PY_ATTACKS["raw _posixsubprocess.fork_exec"] = (
        "import _posixsubprocess, os\nr, w = os.pipe()\nw = os.dup(w)  # the error pipe must not be 0-2\n"
        "pid = _posixsubprocess.fork_exec(['/usr/bin/touch', T['dir'] + '/forkexec'], [b'/usr/bin/touch'], True, (), "
        "None, None, -1, -1, -1, -1, -1, -1, r, w, True, False, -1, None, None, -1, -1, None, False)\n"
        "return 'ESCAPED %d' % pid"
    )


#: modules the corpus policy grants as imports (imported before sealing), so
#: that attacks reach the kernel's checks instead of failing to import
GRANTED_MODULES = frozenset({"socket", "_socket", "subprocess", "_posixsubprocess", "threading", "ctypes", "gc",
                             "string", "platform", "signal"})

#: the first thing every attack does: give up /dev/null on descriptors 0 and 1,
#: so the descriptor limit (a layer of its own) leaves room to reach the others
ROOM = """\
def make_room():
    try:
        import os
    except Exception:
        return
    for fd in (0, 1):
        try:
            os.close(fd)
        except OSError:
            pass
"""


def python_corpus_source() -> str:
    """Every attack as a function ``attack_<n>`` of one script, and
    ``ATTACK_NAMES`` mapping the function names to the attacks' names."""
    parts = [ROOM]
    names = {}
    for n, (name, body) in enumerate(sorted(PY_ATTACKS.items())):
        fn = f"attack_{n}"
        names[fn] = name
        indented = "\n".join("    " + line for line in ["make_room()"] + body.splitlines())
        parts.append(f"def {fn}():\n{indented}\n")
    parts.append(f"ATTACK_NAMES = {names!r}\n")
    return "\n".join(parts)


def python_attack_functions() -> dict[str, str]:
    """Function name in :func:`python_corpus_source` -> attack name."""
    return {f"attack_{n}": name for n, (name, _) in enumerate(sorted(PY_ATTACKS.items()))}


class Traps:
    """What an escape would leave behind, set up on the host and checked
    after every attack (see the module doc)."""

    def __init__(self) -> None:
        #: names the traps' paths; the secret's content and the host's environment hold ``secret``
        self.token = secrets.token_hex(12)
        self.secret_value = secrets.token_hex(12)
        self.dir = Path(tempfile.mkdtemp(prefix="kryon-escape-"))
        os.chmod(self.dir, 0o777)  # anyone may write here: only the sandbox stops a write
        self.secret = self.dir / "secret.txt"
        self.secret.write_text(f"secret {self.secret_value}\n")
        os.chmod(self.secret, 0o644)
        self.link = self.dir / "link-to-secret"
        self.link.symlink_to(self.secret)
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(4)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.tcp.getsockname()[1]))
        self.abstract_name = f"\0kryon-escape-{self.token}"
        self.abstract = socket.socket(socket.AF_UNIX)
        self.abstract.bind(self.abstract_name)
        self.abstract.listen(4)
        self.unix_path = str(self.dir / "sock")
        self.unix = socket.socket(socket.AF_UNIX)
        self.unix.bind(self.unix_path)
        os.chmod(self.unix_path, 0o777)
        self.unix.listen(4)
        for s in (self.tcp, self.udp, self.abstract, self.unix):
            s.setblocking(False)
        self.decoys = [subprocess.Popen(["sleep", "600"])]
        if os.geteuid() == 0:  # a process of the worker's own uid, as another worker would be
            self.decoys.append(subprocess.Popen(["sleep", "600"], user=65534, group=65534))
        self.initial = sorted(p.name for p in self.dir.iterdir())
        self.secret_stat = os.stat(self.secret)
        os.environ["KRYON_ESCAPE_SECRET"] = self.secret_value

    def targets(self, bystander_pid: int) -> dict[str, Any]:
        return {
            "token": self.token,
            "dir": str(self.dir),
            "secret": str(self.secret),
            "link": str(self.link),
            "port": self.tcp.getsockname()[1],
            "abstract": self.abstract_name,
            "unix_path": self.unix_path,
            "decoys": [d.pid for d in self.decoys],
            "host_pid": os.getpid(),
            "bystander_pid": bystander_pid,
        }

    def escapes(self, result: str) -> list[str]:
        """What escaped, judged from the attack's result and the traps."""
        found = []
        if ESCAPED in result:
            found.append(f"the attack says it escaped: {result[:200]}")
        if self.secret_value in result:
            found.append("the secret (a file or the host's environment) was read")
        if "root:" in result:
            found.append("/etc/passwd or /etc/shadow was read")
        now = sorted(p.name for p in self.dir.iterdir())
        if now != self.initial:
            found.append(f"files changed in the trap directory: {sorted(set(now) ^ set(self.initial))}")
        st = os.stat(self.secret)
        if (stat.S_IMODE(st.st_mode), st.st_uid, st.st_size, st.st_mtime) != (
            stat.S_IMODE(self.secret_stat.st_mode), self.secret_stat.st_uid, self.secret_stat.st_size,
            self.secret_stat.st_mtime,
        ):
            found.append("the secret file's data or metadata changed")
        for path in (f"/tmp/kryon-escape-{self.token}", f"/dev/shm/kryon-escape-{self.token}"):
            if os.path.exists(path):
                found.append(f"{path} was written")
        for name, sock in (("TCP", self.tcp), ("abstract UNIX", self.abstract), ("path UNIX", self.unix)):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, OSError):
                continue
            conn.close()
            found.append(f"a {name} connection reached the host")
        try:
            self.udp.recv(64)
            found.append("a UDP datagram reached the host")
        except (BlockingIOError, OSError):
            pass
        for decoy in self.decoys:
            if decoy.poll() is not None:
                found.append(f"a decoy process (pid {decoy.pid}) was killed")
        if _traced():
            found.append("the host is being ptraced")
        return found

    def close(self) -> None:
        os.environ.pop("KRYON_ESCAPE_SECRET", None)
        for s in (self.tcp, self.udp, self.abstract, self.unix):
            s.close()
        for decoy in self.decoys:
            decoy.kill()
            decoy.wait()
        for path in (f"/tmp/kryon-escape-{self.token}", f"/dev/shm/kryon-escape-{self.token}"):
            if os.path.exists(path):
                os.unlink(path)
        shutil.rmtree(self.dir, ignore_errors=True)


def _traced() -> bool:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("TracerPid:"):
                return int(line.split()[1]) != 0
    return False


def descendants(pid: int) -> list[int]:
    """Processes below ``pid`` (a worker must have none)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


def result_text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)

