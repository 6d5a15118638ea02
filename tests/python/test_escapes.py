"""The escape corpus for untrusted Python.

Every attempt runs through ``ScriptManager`` under a sandboxed policy and must
not have its effect, while the host keeps running and another script (the
"bystander", with state) is unaffected.

The threat model is arbitrary Python inside the worker. So the attacker's
corpus (``escape_corpus.py``: files, sockets, processes, signals, ptrace,
privilege, ctypes, walks past the Python layers) runs with the Python-level
layers switched off (no AST guard, Python's own builtins, no audit hook) as
well as on, and then with each kernel mechanism missing in turn, to show what
the others hold alone (the gaps each one leaves are listed and checked).

The Python layers are also tested on their own: the guard, builtins and
imports refuse the classic escapes with a clear AccessDeniedError, and with
``allow_imports`` the audit hook refuses what real ``os``/``socket``/``ctypes``
reach. The last group breaks the worker itself (crash, protocol garbage) and
shows the host restarts it.
"""

from __future__ import annotations

import os
import socket
import sys
import textwrap
import time
from pathlib import Path

import escape_corpus as corpus
import pytest

from kryon_core import (
    AccessDeniedError,
    LimitExceededError,
    MemoryLimitError,
    ScriptError,
    ScriptManager,
    ScriptTimeoutError,
    SecurityPolicy,
)
from kryon_core.isolation.testing import kernel_mechanisms_off, python_layers_off

pytest.importorskip("kryon_python")
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the worker sandbox uses Linux limits")

BYSTANDER = """\
count = 0
def bump():
    global count
    count += 1
    return count
"""

ALLOWED = (AccessDeniedError, MemoryLimitError, ScriptTimeoutError, ScriptError)


def _manager(**overrides) -> ScriptManager:
    policy = SecurityPolicy.sandboxed(**{"time_limit": 5.0, **overrides})
    m = ScriptManager(policy=policy, cache=False, output=lambda lang, text: None)
    m.load_script_from_source("bystander", "python", BYSTANDER)
    assert m.call_function("bystander.bump") == 1
    return m


def _attempt(m: ScriptManager, body: str, expected=ALLOWED, *, name: str = "attack"):
    """Load ``body`` as the function ``attack()`` and call it; the load or
    the call must fail with ``expected``. Returns the error."""
    source = "def attack():\n" + textwrap.indent(textwrap.dedent(body), "    ")
    try:
        m.load_script_from_source(name, "python", source)
    except expected as exc:
        return exc
    with pytest.raises(expected) as info:
        m.call_function(f"{name}.attack")
    return info.value


def _unaffected(m: ScriptManager) -> None:
    assert m.call_function("bystander.bump") == 2, "another script's state must be untouched"
    assert "kryon" not in sys.modules, "the host's sys.modules must not change"
    m.close()


# -- layer 1: the guard, builtins and imports -----------------------------------------------
GUARDED = {
    "subclass walk": "return ().__class__.__base__.__subclasses__()",
    "subclass walk by getattr": "return getattr(getattr((), '__cla' + 'ss__'), '__base__')",
    "mro walk": "return type(()).mro()[-1]",
    "function globals": "return (lambda: 0).__globals__",
    "generator frame walk": "g = (i for i in [1])\nreturn g.gi_frame.f_back.f_globals",
    "traceback frame walk": "try:\n    1 / 0\nexcept Exception as e:\n    return e.__traceback__.tb_frame.f_globals",
    "builtins name": "return __builtins__",
    "__import__": "return __import__('os').system('true')",
    "import os": "import os\nreturn os.getcwd()",
    "import sys for _getframe": "import sys\nreturn sys._getframe(0).f_back",
    "import sys for setrecursionlimit": "import sys\nsys.setrecursionlimit(10**6)",
    "import sys to write sys.modules": "import sys\nsys.modules['json'] = None",
    "importlib": "import importlib\nreturn importlib.import_module('os')",
    "ctypes": "import ctypes\nreturn ctypes.CDLL(None)",
    "open": "return open('/etc/hostname').read()",
    "eval": "return eval('1 + 1')",
    "exec": "exec('x = 1')",
    "compile": "return compile('1', 'x', 'eval')",
    "module private os": "import random\nreturn random._os",
    "module internals": "import json\nreturn json.decoder",
    "socket": "import socket\nreturn socket.socket()",
    "subprocess": "import subprocess\nreturn subprocess.run(['true'])",
    "signal": "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)",
    "vars/globals": "return globals()['__builtins__']",
}


@pytest.mark.parametrize("name", sorted(GUARDED))
def test_guarded_escape(name: str) -> None:
    m = _manager()
    err = _attempt(m, GUARDED[name], AccessDeniedError)
    assert err.language == "python"
    assert err.script == "attack"
    _unaffected(m)


def test_guard_error_names_the_line() -> None:
    m = _manager()
    with pytest.raises(AccessDeniedError) as info:
        m.load_script_from_source("attack", "python", "x = 1\ny = ().__class__\n")
    assert info.value.line == 2 and info.value.script == "attack"
    _unaffected(m)


def test_safe_modules_still_work() -> None:
    m = _manager()
    m.load_script_from_source(
        "fine",
        "python",
        "import math, json, re\nfrom collections import Counter\n"
        "def go():\n    return [math.sqrt(16), json.dumps({'a': 1}), bool(re.match('a+', 'aa')), Counter('aab')['a']]\n",
    )
    assert m.call_function("fine.go") == [4.0, '{"a": 1}', True, 2]
    _unaffected(m)


# -- layer 2: imports granted; the audit hook and the OS hold --------------------------------
def test_file_write_denied_even_with_imports(tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    m = _manager(allow_imports=True)
    _attempt(m, f"import os\nfd = os.open({str(target)!r}, os.O_WRONLY | os.O_CREAT)\nos.write(fd, b'x')\n")
    _attempt(m, f"open({str(target)!r}, 'w').write('x')", name="attack2")
    _attempt(m, f"import io\nio.open({str(target)!r}, 'w').write('x')", name="attack3")
    assert not target.exists()
    _unaffected(m)


def test_network_denied_even_with_imports() -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    try:
        m = _manager(allow_imports=True)
        _attempt(m, f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n")
        _attempt(m, f"import _socket\ns = _socket.socket()\ns.connect(('127.0.0.1', {port}))\n", name="attack2")
        with pytest.raises(socket.timeout):
            listener.accept()  # nobody connected
        _unaffected(m)
    finally:
        listener.close()


def test_processes_denied_even_with_imports(tmp_path: Path) -> None:
    marker = tmp_path / "child-ran"
    os.chmod(tmp_path, 0o777)  # so that only the sandbox, not file permissions, stops a child
    m = _manager(allow_imports=True)
    _attempt(m, f"import os\nos.system('touch {marker}')\n")
    _attempt(m, f"import subprocess\nsubprocess.run(['touch', {str(marker)!r}])\n", name="attack2")
    _attempt(m, "import os\npid = os.fork()\nif pid == 0:\n    os._exit(0)\n", name="attack3")
    # below the audit hook: the raw fork_exec has no audit event; seccomp (and, as
    # nobody, RLIMIT_NPROC) refuse the clone it makes
    if sys.version_info[:2] in ((3, 11), (3, 12)):
        _attempt(
            m,
            f"""
            import _posixsubprocess, os
            r, w = os.pipe()
            _posixsubprocess.fork_exec(['/usr/bin/touch', {str(marker)!r}], [b'/usr/bin/touch'], True, (), None, None,
                                       -1, -1, -1, -1, -1, -1, r, w, True, False, -1, None, None, -1, -1, None, False)
            """,
            name="attack4",
        )
    assert not marker.exists(), "a child process ran"
    _unaffected(m)


def test_ctypes_denied_even_with_imports() -> None:
    m = _manager(allow_imports=True)
    _attempt(m, "import ctypes\nctypes.string_at(0)\n", AccessDeniedError)
    _unaffected(m)


def test_signals_and_kill_denied_even_with_imports() -> None:
    m = _manager(allow_imports=True)
    _attempt(m, "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n", AccessDeniedError)
    _attempt(m, "import os, signal\nos.killpg(0, signal.SIGKILL)\n", AccessDeniedError, name="attack2")
    _unaffected(m)


def test_environment_is_empty_even_with_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRYON_TEST_SECRET", "s3cret")
    m = _manager(allow_imports=True)
    m.load_script_from_source("env", "python", "import os\ndef env():\n    return dict(os.environ)\n")
    assert "KRYON_TEST_SECRET" not in m.call_function("env.env")
    _unaffected(m)


def test_introspection_denied_even_with_imports() -> None:
    m = _manager(allow_imports=True)
    _attempt(m, "import gc\nreturn len(gc.get_objects())", AccessDeniedError)
    # another audit hook cannot switch the sandbox's off
    _attempt(m, "import sys\nsys.addaudithook(lambda *a: None)\nopen('/etc/hostname')", AccessDeniedError, name="attack2")
    _attempt(m, "import marshal\nmarshal.loads(b'')", AccessDeniedError, name="attack3")
    _unaffected(m)


def test_sys_modules_writes_stay_in_the_worker() -> None:
    m = _manager(allow_imports=True)
    m.load_script_from_source("vandal", "python", "import sys\ndef go():\n    sys.modules['json'] = None\n    return 1\n")
    assert m.call_function("vandal.go") == 1
    m.load_script_from_source("user", "python", "import json\ndef go():\n    return json.dumps([1])\n")
    assert m.call_function("user.go") == "[1]"
    import json

    assert sys.modules["json"] is json
    _unaffected(m)


# -- the kernel layer: arbitrary Python in the worker -------------------------------------------

#: what each kernel mechanism alone holds back: the attacks that do get
#: through when it is missing (the other layers cannot stop them)
_ROOT_HOST = os.geteuid() == 0
WITHOUT_LANDLOCK = {
    # world-readable files and directories: only Landlock closes them
    "read secret with open", "read secret with os.open", "read secret by descriptor (openat)",
    "read secret through a symlink", "read /etc/passwd", "list the root directory", "read the host's cmdline",
    "string.Formatter walk to os", "gc walk to os", "frame walk to the worker",
    "unshare a user namespace and use it",
    # its own memory: not a boundary (the worker may already run any code in itself)
    "open /proc/self/mem",
} | (set() if _ROOT_HOST else {
    # a host that is not root shares its uid with the worker: only Landlock keeps its /proc entries closed
    "read the host's environ", "read the parent's environ", "read the host's memory",
})
WITHOUT_SECCOMP = {
    # pathname UNIX sockets are not a Landlock right on this ABI, nor in the network namespace
    "path UNIX socket",
    # kernel surface, not an effect: creating the object is all these attacks do
    "io_uring_setup", "bpf",
}
MODES = {
    # mode: (python layers, kernel mechanisms off, policy overrides, attacks allowed through)
    "python layers on": (True, (), {}, set()),
    "python layers off": (False, (), {}, set()),
    "python layers off, imports granted": (False, (), {"allow_imports": True}, set()),
    "python layers off, without landlock": (False, ("landlock",), {}, WITHOUT_LANDLOCK),
    "python layers off, without seccomp": (False, ("seccomp",), {}, WITHOUT_SECCOMP),
    "python layers off, without namespaces": (False, ("namespaces",), {}, set()),
}


@pytest.fixture
def traps():
    t = corpus.Traps()
    yield t
    t.close()


def run_corpus(m: ScriptManager, language: str, script: str, attacks: dict[str, str], traps) -> dict[str, list[str]]:
    """Call every attack function of ``script``; returns attack -> what escaped."""
    runtime = m.engine(language).runtime
    escaped = {}
    for fn, name in attacks.items():
        try:
            result = corpus.result_text(m.call_function(f"{script}.{fn}"))
        except ScriptError as exc:
            result = f"{type(exc).__name__}: {exc.message}"
        found = traps.escapes(result)
        pid = runtime.worker_info(script)["pid"]
        if pid and corpus.descendants(pid):
            found.append(f"the worker has child processes {corpus.descendants(pid)}")
        if found:
            escaped[name] = found
    return escaped


@pytest.mark.parametrize("mode", list(MODES))
def test_escape_corpus(mode: str, traps) -> None:
    layers, missing, overrides, gaps = MODES[mode]
    policy = SecurityPolicy.sandboxed(
        time_limit=5.0, accept_weaker_isolation=set(missing), allowed_modules=corpus.GRANTED_MODULES, **overrides
    )
    m = ScriptManager(policy=policy, cache=False, output=lambda lang, text: None)
    with kernel_mechanisms_off(*missing):
        m.load_script_from_source("bystander", "python", BYSTANDER)
        bystander_pid = m.engine("python").runtime.worker_info("bystander")["pid"]
        m.set_global("python", "T", traps.targets(bystander_pid))
        if layers:
            m.load_script_from_source("corpus", "python", corpus.python_corpus_source())
        else:
            with python_layers_off():
                m.load_script_from_source("corpus", "python", corpus.python_corpus_source())
    assert m.call_function("bystander.bump") == 1
    hardening = m.engine("python").runtime.worker_info("corpus")["hardening"]
    assert hardening["guard"] is layers and hardening["uid"] != 0
    assert set(hardening.get("weaker", {})) == set(missing)
    escaped = run_corpus(m, "python", "corpus", corpus.python_attack_functions(), traps)
    unexpected = {name: why for name, why in escaped.items() if name not in gaps}
    assert not unexpected, f"escapes in mode '{mode}': {unexpected}"
    if "landlock" in missing:  # the traps see an escape when there is one
        assert "read secret with open" in escaped
    assert m.call_function("bystander.bump") == 2, "the other script's worker and state are untouched"
    assert os.environ.get("KRYON_ESCAPE_SECRET") == traps.secret_value
    m.close()


def test_corpus_attacks_are_refused_by_the_python_layers_too(traps) -> None:
    """With the layers on, what the kernel would stop is already refused with
    a clear error naming the line (the worker stays up)."""
    m = _manager()
    m.set_global("python", "T", traps.targets(0))
    m.load_script_from_source("corpus", "python", corpus.python_corpus_source())
    for fn in corpus.python_attack_functions():
        with pytest.raises(AccessDeniedError) as info:
            m.call_function(f"corpus.{fn}")
        assert info.value.script == "corpus" and info.value.line is not None
    assert m.engine("python").runtime.worker_info("corpus")["restarts"] == 0
    _unaffected(m)


def test_formatter_fields_follow_the_guard_rule() -> None:
    """string.Formatter.get_field walks attributes named in a string; in the
    sandbox it applies the guard's rule, as getattr does."""
    m = _manager()
    m.load_script_from_source(
        "fmt", "python",
        "import string\nclass P:\n    x = 3\ndef ok():\n    return string.Formatter().format('{0.x}-{1[k]}', P(), {'k': 4})\n"
        "def walk(field):\n    return repr(string.Formatter().get_field(field, [()], {})[0])\n",
    )
    assert m.call_function("fmt.ok") == "3-4"
    for field in ("0.__class__", "0.__class__.__base__.__subclasses__", "0.__init__.__globals__", "0.mro"):
        with pytest.raises(AccessDeniedError):
            m.call_function("fmt.walk", [field])
    _unaffected(m)


@pytest.mark.parametrize("mechanism", ["landlock", "seccomp", "namespaces"])
def test_a_missing_mechanism_refuses_to_start(mechanism: str) -> None:
    m = ScriptManager(policy=SecurityPolicy.sandboxed(), cache=False)
    with kernel_mechanisms_off(mechanism):
        with pytest.raises(AccessDeniedError) as info:
            m.load_script_from_source("s", "python", "def f(): return 1\n")
        assert mechanism in info.value.message and "accept_weaker_isolation" in info.value.message
        assert info.value.script == "s" and "s" not in m.scripts
        weaker = SecurityPolicy.sandboxed(accept_weaker_isolation={mechanism})
        m.load_script_from_source("s", "python", "def f(): return 1\n", policy=weaker)
    assert m.call_function("s.f") == 1
    h = m.engine("python").runtime.worker_info("s")["hardening"]
    assert list(h["weaker"]) == [mechanism]
    assert h["user"] == "nobody" and h["audit_hook"] is True
    m.close()


def test_imports_granted_read_only_what_is_on_the_path(traps, monkeypatch) -> None:
    """allow_imports: modules load lazily from the host's sys.path, read-only;
    nothing outside it is readable, not even through a symlink placed inside
    it, and the worker is never root."""
    libdir = traps.dir / "lib"
    libdir.mkdir()
    os.chmod(libdir, 0o755)
    (libdir / "granted_mod.py").write_text("VALUE = 'from a granted directory'\n")
    (libdir / "inside-link").symlink_to(traps.secret)
    monkeypatch.syspath_prepend(str(libdir))
    traps.initial = sorted(p.name for p in traps.dir.iterdir())
    m = ScriptManager(policy=SecurityPolicy.sandboxed(allow_imports=True), cache=False)
    with python_layers_off():
        m.load_script_from_source(
            "imp", "python",
            "import os\ndef lazy():\n    import granted_mod\n    return granted_mod.VALUE\n"
            "def stdlib():\n    import difflib\n    return difflib.SequenceMatcher(None, 'abc', 'abd').ratio() > 0.5\n"
            "def via_link():\n    return open(T['dir'] + '/lib/inside-link').read()\n"
            "def outside():\n    return open(T['secret']).read()\n"
            "def write_inside():\n    open(T['dir'] + '/lib/new.py', 'w').write('x')\n"
            "def whoami():\n    return [os.getuid(), os.geteuid(), os.getgid()]\n",
        )
    m.set_global("python", "T", traps.targets(0))
    assert m.call_function("imp.lazy") == "from a granted directory"
    assert m.call_function("imp.stdlib") is True  # the standard library, imported after sealing
    for fn in ("via_link", "outside", "write_inside"):
        with pytest.raises(ScriptError) as info:
            m.call_function(f"imp.{fn}")
        assert not traps.escapes(info.value.message), fn
    assert 0 not in m.call_function("imp.whoami")
    assert not traps.escapes("")
    m.close()


# -- limits ------------------------------------------------------------------------------------
def test_memory_exhaustion_at_once() -> None:
    m = _manager(memory_limit=64 * 1024 * 1024)
    _attempt(m, "return len(bytearray(10**10))", MemoryLimitError)
    _unaffected(m)


def test_memory_exhaustion_gradual() -> None:
    m = _manager(memory_limit=64 * 1024 * 1024, time_limit=20)
    _attempt(m, "chunks = []\nwhile True:\n    chunks.append('x' * 1000000 + str(len(chunks)))\n", MemoryLimitError)
    _unaffected(m)


def test_cpu_exhaustion_in_python_code() -> None:
    m = _manager(time_limit=0.3)
    _attempt(m, "while True:\n    pass\n", ScriptTimeoutError)
    _unaffected(m)


def test_cpu_exhaustion_swallowing_the_interrupt() -> None:
    m = _manager(time_limit=0.3)
    _attempt(m, "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass\n",
             ScriptTimeoutError)
    _unaffected(m)


def test_cpu_exhaustion_inside_c_code() -> None:
    m = _manager(time_limit=0.3)
    _attempt(m, "return sum(range(10**13))", ScriptTimeoutError)
    _unaffected(m)


C_LEVEL_LOOPS = {
    # one C call that never returns to the interpreter loop, so the worker's own
    # timer cannot interrupt it: the host stops the worker at its deadline
    "sum of a huge range": "return sum(range(10**12))",
    "factorial": "import math\nreturn math.factorial(10**8) > 0",
    "catastrophic regex": "import re\nreturn bool(re.match(r'(a+)+$', 'a' * 40 + 'b'))",
    # these run into the memory limit first
    "string repeated past memory": "return len('x' * 10**10)",
    "sorted huge range": "return len(sorted(range(10**9)))",
}


@pytest.mark.parametrize("name", sorted(C_LEVEL_LOOPS))
def test_c_level_loops_stop_and_the_engine_stays_usable(name: str) -> None:
    m = _manager(time_limit=0.5)
    body = textwrap.indent(C_LEVEL_LOOPS[name], "    ")
    m.load_script_from_source(
        "spin", "python", f"state = []\ndef keep(x):\n    state.append(x)\n    return len(state)\ndef attack():\n{body}\n"
    )
    assert m.call_function("spin.keep", [1]) == 1
    with pytest.raises((ScriptTimeoutError, MemoryLimitError)) as info:
        m.call_function("spin.attack")
    assert info.value.script == "spin"
    restarted = m.engine("python").runtime.worker_info("spin")["restarts"]
    # a hard stop restarts the worker and reruns the top level (state starts over);
    # an interrupt the worker caught itself keeps the state
    assert m.call_function("spin.keep", [2]) == (1 if restarted else 2)
    _unaffected(m)


def test_a_hard_stop_restarts_on_the_standby_started_during_the_call() -> None:
    """A call still running at half its limit gets a replacement worker started
    beside it; after the kill the script's top level reruns there (no
    interpreter start between the kill and the error)."""
    m = _manager(time_limit=1.0)
    m.load_script_from_source("spin", "python", "def attack():\n    return sum(range(10**12))\ndef ok():\n    return 'ok'\n")
    runtime = m.engine("python").runtime
    first = runtime.worker_info("spin")
    assert not first["from_standby"] and first["standby_pid"] is None
    with pytest.raises(ScriptTimeoutError):
        m.call_function("spin.attack")
    info = runtime.worker_info("spin")
    assert info["restarts"] == 1 and info["from_standby"] and info["pid"] != first["pid"]
    assert m.call_function("spin.ok") == "ok"
    _unaffected(m)


def test_a_standby_worker_ends_with_its_script() -> None:
    m = _manager(time_limit=0.6)
    m.load_script_from_source("spin", "python", "def loop():\n    while True:\n        pass\n")
    with pytest.raises(ScriptTimeoutError):
        m.call_function("spin.loop")  # interrupted in the worker; a standby was started meanwhile
    runtime = m.engine("python").runtime
    for _ in range(100):
        standby = runtime.worker_info("spin")["standby_pid"]
        if standby:
            break
        time.sleep(0.05)
    assert standby and runtime.worker_info("spin")["restarts"] == 0
    m.unload_script("spin")
    assert not _alive(standby)
    _unaffected(m)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ")[1][0] != "Z"


def test_the_hard_deadline_is_within_one_and_a_half_times_the_limit() -> None:
    from kryon_core.isolation.process import MIN_GRACE, kill_after

    for limit in (0.25, 0.5, 1.0, 5.0, 60.0):
        assert limit < kill_after(limit) <= 1.4 * limit + 1e-9
    assert kill_after(0.05) == 0.05 + MIN_GRACE  # below 0.25 s the grace is a fixed minimum


def test_timeout_at_load() -> None:
    m = _manager(time_limit=0.3)
    with pytest.raises(ScriptTimeoutError):
        m.load_script_from_source("attack", "python", "while True:\n    pass\n")
    assert "attack" not in m.scripts
    _unaffected(m)


def test_recursion() -> None:
    m = _manager(max_recursion=50)
    _attempt(m, "def dive(n):\n    return dive(n + 1)\nreturn dive(0)", LimitExceededError)
    _unaffected(m)


def test_deep_c_recursion_with_raised_limit_is_contained() -> None:
    m = _manager(allow_imports=True, time_limit=10)
    # with the limit raised, repr of a deeply nested list overflows the C stack: the worker dies, not the host
    err = _attempt(
        m, "import sys\nsys.setrecursionlimit(10**7)\nx = []\nfor i in range(200000):\n    x = [x]\nreturn repr(x)"
    )
    assert isinstance(err, ScriptError)
    _unaffected(m)


# -- the process boundary: a broken worker ----------------------------------------------------------
def test_protocol_garbage_from_the_worker() -> None:
    m = _manager(allow_imports=True)
    m.load_script_from_source(
        "liar",
        "python",
        "import os\ndef lie(payload):\n    for fd in range(3, 8):\n        try:\n            os.write(fd, payload)\n"
        "        except OSError:\n            pass\n    return 1\ndef ok():\n    return 'fine'\n",
    )
    for payload in (b"\xff\xff\xff\xffjunk", b"\x00\x00\x00\x05nope!", b'\x00\x00\x00\x19{"t":"r","i":999,"v":null}'):
        with pytest.raises(ScriptError) as info:
            m.call_function("liar.lie", [payload])
        assert "protocol" in str(info.value) or "worker" in str(info.value)
        assert m.call_function("liar.ok") == "fine", "the worker was restarted with its script"
    _unaffected(m)


def test_worker_killed_from_outside_is_restarted() -> None:
    m = _manager()
    m.load_script_from_source("victim", "python", "n = 0\ndef inc():\n    global n\n    n += 1\n    return n\n")
    assert m.call_function("victim.inc") == 1
    engine = m.engine("python")
    pid = engine.runtime.worker_info("victim")["pid"]
    os.kill(pid, 9)
    with pytest.raises(ScriptError) as info:
        m.call_function("victim.inc")
    assert "restarted" in str(info.value) and info.value.script == "victim"
    assert m.call_function("victim.inc") == 1, "the script was reloaded (its state restarts)"
    assert engine.runtime.worker_info("victim")["restarts"] == 1
    _unaffected(m)


def test_hardening_report() -> None:
    m = _manager()
    h = m.engine("python").runtime.worker_info("bystander")["hardening"]
    assert h["audit_hook"] is True and h["guard"] is True and h["builtins"] == "curated"
    assert h["fsize"] == 0 and h["nproc"] == 0 and isinstance(h["memory"], int)
    assert h["user"] == "nobody" and h["uid"] != 0 and h["capabilities"] == "none"
    assert h["no_new_privs"] is True and h["dumpable"] is False
    assert "file system closed" in h["landlock"], h["landlock"]
    assert "allow-list" in h["seccomp"], h["seccomp"]
    assert {"network", "ipc", "mount"} <= set(h["namespaces"]), h["namespaces"]
    assert h["mounts"].startswith("read-only"), h["mounts"]
    assert "weaker" not in h
    m.close()
