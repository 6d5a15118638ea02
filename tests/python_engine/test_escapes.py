"""The known-escape corpus for untrusted Python.

Every attempt runs through ``ScriptManager`` under a sandboxed policy and must
end in AccessDeniedError, MemoryLimitError, ScriptTimeoutError or another
contained ScriptError, while:

- the forbidden effect did not happen (no file, no connection, no child process),
- the host keeps running, and
- another script (the "bystander", with state) is unaffected.

The first group is stopped by the in-worker layers (AST guard, curated
builtins and imports). The second group grants ``allow_imports`` so the
script reaches real ``os``/``socket``/``ctypes``; the audit hook and then the
OS limits (uid nobody, RLIMIT_NPROC 0, RLIMIT_NOFILE, RLIMIT_FSIZE 0, an empty
network namespace) still hold. The real boundary is the process: the last
group breaks the worker itself (crash, protocol garbage) and shows the host
restarts it.
"""

from __future__ import annotations

import os
import socket
import sys
import textwrap
from pathlib import Path

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
