"""Workers forked by the fork server (kryon_core/isolation/forkserver.py and
zygote.py): confined exactly as a freshly started worker, sharing nothing with
each other or with the zygote, children of the host, and a dead zygote is
replaced."""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import signal
import sys
import time
from pathlib import Path

import escape_corpus as corpus
import pytest

from kryon_core import ScriptManager, SecurityPolicy
from kryon_core.errors import ScriptError
from kryon_core.isolation import forkserver
from kryon_core.isolation.testing import python_layers_off

pytestmark = pytest.mark.skipif(not forkserver.supported(), reason="the fork server needs Linux on x86_64 or aarch64")




def _manager(**policy) -> ScriptManager:
    m = ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=5.0, **policy), cache=False,
                      output=lambda lang, text: None)
    m.engine("python").runtime.prestart(wait=60)
    return m


def _info(m: ScriptManager, script: str, language: str = "python") -> dict:
    return m.engine(language).runtime.worker_info(script)


def _server(m: ScriptManager, language: str = "python") -> forkserver.ForkServer:
    server = forkserver.server_for(m.engine(language).runtime._warm_message(), start=False)
    assert server is not None
    return server


def _status(pid: int, field: str) -> str:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()
    raise KeyError(field)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


PROBE = "import os, random\ndef who():\n    return [os.getpid(), os.getppid(), random.random()]\n"


def _probe(m: ScriptManager, script: str) -> None:
    """A script that reports its worker's pid, parent and a random number (arbitrary Python: layers off)."""
    with python_layers_off():
        m.load_script_from_source(script, "python", PROBE)


def test_a_ready_fork_server_forks_workers_that_are_the_hosts_children() -> None:
    m = _manager()
    _probe(m, "a")
    _probe(m, "b")
    for script in ("a", "b"):
        info = _info(m, script)
        assert info["hardening"]["start"] == "fork"
        pid = info["pid"]
        # CLONE_PARENT: the host is the parent (it reaps the worker and its death signal follows the host)
        assert int(_status(pid, "PPid")) == os.getpid()
        assert _status(pid, "Seccomp") == "2", "the forked worker runs under its seccomp filter"
        assert _status(pid, "NoNewPrivs") == "1"
        assert _status(pid, "Uid").split()[0] != "0"
    a, b = m.call_function("a.who"), m.call_function("b.who")
    assert a[0] != b[0] and a[1] == b[1] == os.getpid()
    assert a[2] != b[2], "each forked worker reseeds random (the zygote's state is not shared)"
    m.close()


def test_forked_workers_share_nothing() -> None:
    """A global, a module attribute and a builtin set by one script's worker
    are not seen by another's (each is its own copy of the zygote)."""
    with python_layers_off():
        m = _manager()
        source = (
            "import sys, math, builtins\nstate = []\n"
            "def mark(v):\n    state.append(v)\n    math.kryon_mark = v\n    builtins.kryon_mark = v\n"
            "    sys.modules['kryon_mark'] = v\n    return len(state)\n"
            "def seen():\n    return [len(state), getattr(math, 'kryon_mark', None), getattr(builtins, 'kryon_mark', None),"
            " 'kryon_mark' in sys.modules]\n"
        )
        m.load_script_from_source("one", "python", source)
        m.load_script_from_source("two", "python", source)
    assert _info(m, "one")["hardening"]["start"] == _info(m, "two")["hardening"]["start"] == "fork"
    assert m.call_function("one.mark", [7]) == 1
    assert m.call_function("one.seen") == [1, 7, 7, True]
    assert m.call_function("two.seen") == [0, None, None, False]
    with python_layers_off():
        m.load_script_from_source("three", "python", source)
    assert m.call_function("three.seen") == [0, None, None, False], "nor by a worker forked later"
    m.close()


def test_a_forked_worker_keeps_only_its_own_descriptors() -> None:
    """The zygote's control socket and other workers' pipes do not reach a forked worker."""
    m = _manager()
    _probe(m, "a")
    _probe(m, "b")
    pid = _info(m, "b")["pid"]
    targets = sorted(os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd"))
    assert not [t for t in targets if t.startswith("socket:")], targets
    pipes = [t for t in targets if t.startswith("pipe:")]
    assert len(set(pipes)) == 4, f"its channel (in, out), stderr and the cancel pipe only: {targets}"
    m.close()


def test_a_forked_worker_is_confined_like_a_fresh_one(monkeypatch) -> None:
    """The escape corpus, arbitrary Python (Python layers off), against a
    forked worker: nothing escapes, the zygote's environment and files
    included; the same corpus against a freshly started worker agrees."""
    traps = corpus.Traps()
    try:
        results = {}
        for start in ("fork", "fresh"):
            monkeypatch.setattr(forkserver.ENABLED, "on", start == "fork")
            m = ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=5.0, allowed_modules=corpus.GRANTED_MODULES),
                              cache=False, output=lambda lang, text: None)
            if start == "fork":
                m.engine("python").runtime.prestart(wait=60)
            m.load_script_from_source("bystander", "python", "n = 0\ndef bump():\n    global n\n    n += 1\n    return n\n")
            m.set_global("python", "T", traps.targets(_info(m, "bystander")["pid"]))
            with python_layers_off():
                m.load_script_from_source("corpus", "python", corpus.python_corpus_source())
            assert _info(m, "corpus")["hardening"]["start"] == start
            escaped = {}
            for fn, name in corpus.python_attack_functions().items():
                try:
                    result = corpus.result_text(m.call_function(f"corpus.{fn}"))
                except ScriptError as exc:
                    result = f"{type(exc).__name__}: {exc.message}"
                found = traps.escapes(result)
                if corpus.descendants(_info(m, "corpus")["pid"]):
                    found.append("the worker has child processes")
                if found:
                    escaped[name] = found
            assert not escaped, f"escapes from a {start} worker: {escaped}"
            assert m.call_function("bystander.bump") == 1
            results[start] = _info(m, "corpus")["hardening"]
            m.close()
        # the address-space limit is what the worker uses plus the policy's memory: it differs a little
        fork, fresh = ({k: v for k, v in results[s].items() if k not in ("start", "memory")} for s in ("fork", "fresh"))
        assert fork["seccomp"].endswith("; built ahead by the fork server"), fork["seccomp"]
        fork["seccomp"] = fork["seccomp"].removesuffix("; built ahead by the fork server")
        assert fork == fresh, "a forked worker reports the same confinement as a fresh one"
    finally:
        traps.close()


SIGNALS = """import os
def me():
    os.kill(os.getpid(), 0)
    return "sent"
def other(pid):
    try:
        os.kill(pid, 0)
    except PermissionError as exc:
        return exc.errno
    return "sent"
"""


def test_a_forked_worker_loads_the_zygotes_filter_with_its_own_pid() -> None:
    """The zygote builds the default plan's seccomp program once; a forked
    worker writes its own pid into it: it may signal itself (arbitrary
    Python: layers off, so the kernel decides), not another worker or the host."""
    m = _manager()
    try:
        m.load_script_from_source("other", "python", "x = 1\n")
        with python_layers_off():
            m.load_script_from_source("sig", "python", SIGNALS)
        hardening = _info(m, "sig")["hardening"]
        assert hardening["start"] == "fork"
        assert hardening["seccomp"].endswith("; built ahead by the fork server"), hardening["seccomp"]
        assert m.call_function("sig.me") == "sent"
        assert m.call_function("sig.other", [_info(m, "other")["pid"]]) == errno.EPERM
        assert m.call_function("sig.other", [os.getpid()]) == errno.EPERM
    finally:
        m.close()


def test_a_filter_whose_pid_cannot_be_told_apart_is_not_built_ahead(monkeypatch) -> None:
    """A placeholder pid that equals another constant of the filter (here an
    ioctl request the filter allows) is refused: workers build their own."""
    confine = _confine()
    plan = confine.Plan()
    monkeypatch.setattr(confine, "_PREBUILT", {})
    confine._prebuild_seccomp(plan)
    program, _ = confine._PREBUILT[confine._seccomp_key(plan)]
    assert confine._PLACEHOLDER_PID in confine._jeq_constants(program)
    monkeypatch.setattr(confine, "_PREBUILT", {})
    monkeypatch.setattr(confine, "_PLACEHOLDER_PID", confine._TCGETS)
    confine._prebuild_seccomp(plan)
    assert confine._PREBUILT == {}


def test_the_zygote_fills_the_free_blocks_of_its_memory_pools() -> None:
    """What the zygote does before forking so that a child's new objects go to
    fresh pools instead of copying one shared page per free block: after it,
    the partly used pools of the sizes it fills have (almost) no free block left."""
    spec = importlib.util.spec_from_file_location("kryon_test_zygote", forkserver.ZYGOTE_PATH)
    zygote = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(zygote)
    junk = [bytes(n % 400 + 20) for n in range(20_000)][::3]  # free blocks in many pools
    before = sum(n for size, n in zygote._free_blocks().items() if size > zygote._BYTES_OVERHEAD)
    zygote._fill_free_blocks()
    after = sum(n for size, n in zygote._free_blocks().items() if size > zygote._BYTES_OVERHEAD)
    assert before > 1000 and after < before // 10, (before, after)
    assert len(zygote._BALLAST) >= before // 2
    del junk


def _load_zygote():
    spec = importlib.util.spec_from_file_location("kryon_test_zygote", forkserver.ZYGOTE_PATH)
    zygote = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(zygote)
    return zygote


def _run_python(code: str) -> dict:
    """``code`` in a fresh interpreter (what it leaks or changes stays there); its last line of output as JSON."""
    import subprocess

    done = subprocess.run([sys.executable, "-c", code, str(forkserver.ZYGOTE_PATH)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


_ZYGOTE_IN_CHILD = (
    "import importlib.util, json, sys\n"
    "spec = importlib.util.spec_from_file_location('z', sys.argv[1])\n"
    "zygote = importlib.util.module_from_spec(spec)\n"
    "spec.loader.exec_module(zygote)\n"
)


def test_the_zygote_fills_the_free_chunks_of_the_c_heap() -> None:
    """The same for glibc's heap (larger objects, C allocations): after it,
    (almost) no free space is left outside the heap's top chunk."""
    result = _run_python(_ZYGOTE_IN_CHILD + (
        "info = getattr(zygote._libc, 'mallinfo2', None)\n"
        "if info is None:\n"
        "    print(json.dumps({'before': None}))\n"
        "    sys.exit(0)\n"
        "info.restype = zygote._MallInfo2\n"
        "def free():\n"
        "    i = info()\n"
        "    return i.fordblks - i.keepcost\n"
        "junk = [bytes(600 + n % 3000) for n in range(3000)]\n"
        "del junk[::2]\n"
        "before = free()\n"
        "zygote._fill_free_chunks()\n"
        "print(json.dumps({'before': before, 'after': free()}))\n"
    ))
    if result["before"] is None:
        pytest.skip("no mallinfo2 (not glibc 2.33 or later)")
    assert result["before"] > 1_000_000 and result["after"] < 8192, result


def test_the_zygote_packs_the_builtins_names_together() -> None:
    """Every script's builtins copy the builtins module's dict, which writes
    each name's reference count: after the zygote packs them, its names are
    equal fresh copies on a few pages (not the interned names, scattered),
    with the same values, and builtins are still found by name."""
    result = _run_python(_ZYGOTE_IN_CHILD + (
        "import builtins\n"
        "def pages():\n"
        "    return len({id(k) // 4096 for k in vars(builtins)})\n"
        "before = dict(vars(builtins))\n"
        "spread = pages()\n"
        "zygote._fill_free_blocks()\n"
        "zygote._pack_builtins_names()\n"
        "after = vars(builtins)\n"
        "same = after == before and all(after[k] is v for k, v in before.items())\n"
        "fresh = sum(sys.intern(k) is not k for k in after)\n"
        "ns = {}\n"
        "exec('x = len(sorted(map(abs, [-2, 1])))', ns)\n"
        "print(json.dumps({'names': len(after), 'spread': spread, 'packed': pages(), 'same': same,\n"
        "                  'fresh': fresh, 'x': ns['x']}))\n"
    ))
    assert result["same"] and result["x"] == 2, result
    assert result["fresh"] >= result["names"] - 5, result  # all but one-character names (singletons)
    assert result["packed"] * 4 <= result["spread"], result


def test_the_zygote_empties_the_method_cache_between_warm_up_and_rehearsal() -> None:
    """The interpreter's method cache holds a reference to each name it
    caches: what the warm-up looked up is dropped before the rehearsals
    run (a child would drop it, copying a shared page per name), and what
    the rehearsals look up stays cached for the children."""
    result = _run_python(_ZYGOTE_IN_CHILD + (
        "import types\n"
        "class Probe:\n"
        "    kryon_warm_attribute = 1\n"
        "    kryon_rehearsed_attribute = 2\n"
        "warm, rehearsed = 'kryon_warm_attribute', 'kryon_rehearsed_attribute'\n"
        "seen = {}\n"
        "def warm_up(spec):\n"
        "    seen['base'] = sys.getrefcount(warm)\n"
        "    Probe.kryon_warm_attribute\n"
        "    seen['warm'] = sys.getrefcount(warm)\n"
        "def rehearse():\n"
        "    seen['rehearsal'] = sys.getrefcount(warm)\n"
        "    seen['before'] = sys.getrefcount(rehearsed)\n"
        "    Probe.kryon_rehearsed_attribute\n"
        "worker = types.SimpleNamespace(warm_up=warm_up, rehearse=rehearse,\n"
        "                               confine=types.SimpleNamespace(rehearse=lambda: None))\n"
        "zygote._prepare(worker, {})\n"
        "seen['after'] = sys.getrefcount(rehearsed)\n"
        "print(json.dumps(seen))\n"
    ))
    assert result["warm"] > result["base"] == result["rehearsal"], result  # the warm-up's entries are gone
    assert result["after"] > result["before"], result  # the rehearsal's stay


_SERVE = (
    "import importlib.util, os, socket, sys, threading, types\n"
    "spec = importlib.util.spec_from_file_location('z', sys.argv[1])\n"
    "zygote = importlib.util.module_from_spec(spec)\n"
    "spec.loader.exec_module(zygote)\n"
    "control, hold = (int(a) for a in sys.argv[2:4])\n"
    "threading.Thread(target=os.read, args=(hold, 1)).start()  # alive until the test writes\n"
    "def main():\n"
    "    os.write(1, f'{os.getppid()} {os.getpid()} {os.get_inheritable(1)} {os.listdir(\"/proc/self/fd\")}'.encode())\n"
    "zygote._serve(types.SimpleNamespace(main=main), socket.socket(fileno=control), zygote._cloner())\n"
)


def _ask(host, fds: list[int]) -> int:
    import socket
    import struct

    socket.send_fds(host, [b"F"], fds)
    reply = b""
    while len(reply) < 4:
        chunk = host.recv(4 - len(reply))
        assert chunk, "the zygote exited"
        reply += chunk
    return struct.unpack("<i", reply)[0]


def test_the_zygotes_loop_answers_each_request(tmp_path) -> None:
    """The zygote's request loop (in a fresh interpreter): EDEADLK while a
    second thread runs, EINVAL for a request without four descriptors, then
    a child of the zygote's parent (here the test) with those four on 0, 1,
    2 and 3 and no other, which runs the worker's main; the loop ends when the
    host closes its end."""
    import socket
    import subprocess

    host, control = socket.socketpair()
    hold_r, hold_w = os.pipe()
    out_r, out_w = os.pipe()
    null = os.open(os.devnull, os.O_RDWR)
    zygote = subprocess.Popen([sys.executable, "-c", _SERVE, forkserver.ZYGOTE_PATH, str(control.fileno()), str(hold_r)],
                              pass_fds=(control.fileno(), hold_r))
    control.close()
    os.close(hold_r)
    try:
        host.settimeout(60)
        assert _ask(host, [null, out_w, null, null]) == -errno.EDEADLK  # its second thread still runs
        assert _ask(host, [null, null]) == -errno.EINVAL  # two descriptors: refused before anything else
        os.write(hold_w, b"x")
        for _ in range(600):  # until the thread has ended
            pid = _ask(host, [null, out_w, null, null])  # the fourth: the cancel pipe
            if pid != -errno.EDEADLK:
                break
            time.sleep(0.05)
        assert pid > 0
        os.close(out_w)
        with os.fdopen(out_r, "rb") as out:
            ppid, child, inheritable, fds = out.read().decode().split(" ", 3)
        assert (int(ppid), int(child)) == (os.getpid(), pid)  # CLONE_PARENT: the test's child, not the zygote's
        assert inheritable == "True" and sorted(json.loads(fds.replace("'", '"'))) == ["0", "1", "2", "3", "4"]  # 4: listdir's own
        assert os.waitpid(pid, 0) == (pid, 0)
        host.close()
        assert zygote.wait(timeout=60) == 0
    finally:
        host.close()
        os.close(hold_w)
        os.close(null)
        zygote.kill()
        zygote.wait()


def test_the_rehearsal_leaves_the_workers_state_alone() -> None:
    """The zygote runs the start-up's steps on sample data before forking;
    a child still starts from nothing: no script, no kryon module, no
    config, the interpreter's own output streams and signal handlers."""
    result = _run_python(_ZYGOTE_IN_CHILD + (
        "import signal\n"
        "worker = zygote._load_worker()\n"
        "S = worker.S\n"
        "def state():\n"
        "    return repr(sorted((k, repr(v)) for k, v in vars(S).items())), sys.stdout, sys.stderr, \\\n"
        "        [signal.getsignal(n) for n in (signal.SIGALRM, signal.SIGUSR1, signal.SIGINT)]\n"
        "before = state()\n"
        "worker.rehearse(rounds=2)\n"
        "after = state()\n"
        "print(json.dumps({'same': before == after, 'before': repr(before), 'after': repr(after),\n"
        "                  'scripts': len(S.scripts), 'kryon': S.kryon is None}))\n"
    ))
    assert result["same"], (result["before"], result["after"])
    assert result["scripts"] == 0 and result["kryon"]


def _confine():
    from kryon_core.isolation import confine

    failed = confine.load_libraries([])
    if "seccomp" in failed:
        pytest.skip(failed["seccomp"])
    return confine


def test_a_dead_fork_server_is_replaced_and_its_workers_live_on() -> None:
    m = _manager()
    _probe(m, "before")
    assert _info(m, "before")["hardening"]["start"] == "fork"
    old = _server(m)
    os.kill(old.pid, signal.SIGKILL)
    old.popen.wait(timeout=10)
    # the worker it forked is the host's child, not the zygote's: it lives on
    assert m.call_function("before.who")[1] == os.getpid()
    # the next worker starts the usual way (the dead zygote fails its request) ...
    _probe(m, "during")
    assert _info(m, "during")["hardening"]["start"] == "fresh"
    # ... and a new zygote warms up for the ones after
    new = _server(m)
    assert new is not old and new.pid != old.pid
    assert new.ready(60)
    _probe(m, "after")
    assert _info(m, "after")["hardening"]["start"] == "fork"
    assert m.call_function("before.who")[0] == _info(m, "before")["pid"]
    m.close()


def test_a_zygote_that_cannot_warm_up_is_not_restarted() -> None:
    """A warm-up that fails (here: a preloaded module that does not exist)
    leaves workers to start the usual way, without a zygote start each time."""
    spec = {"sys_path": list(sys.path), "confine_paths": [], "site": False, "preload": ["kryon_no_such_module"],
            "compiler": "python"}
    server = forkserver.server_for(spec)
    assert server is not None
    try:
        assert not server.ready(60)
        assert server.warm_failed and "kryon_no_such_module" in server.error
        assert forkserver.server_for(spec) is server, "not started again"
        assert forkserver.fork_worker(spec, 0) is None
    finally:
        with forkserver._servers_lock:  # it would take a place among the kept zygotes
            forkserver._servers.pop(json.dumps(forkserver.warm_spec(spec), sort_keys=True), None)


def test_worker_killed_past_its_deadline_is_reaped() -> None:
    """The host reaps a forked worker it killed (it is its child): no zombie is left."""
    m = ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=0.3), cache=False, output=lambda lang, text: None)
    m.engine("python").runtime.prestart(wait=60)
    m.load_script_from_source("s", "python", "def hang():\n    return sum(range(10**12))\n")
    pid = _info(m, "s")["pid"]
    assert _info(m, "s")["hardening"]["start"] == "fork"
    with pytest.raises(ScriptError):
        m.call_function("s.hang")
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}"), "the killed worker was reaped"
    m.close()


def test_lisp_workers_fork_from_their_own_zygote() -> None:
    pytest.importorskip("kryon_lisp")
    m = ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=10.0), cache=False, output=lambda lang, text: None)
    m.engine("lisp").runtime.prestart(wait=120)
    m.load_script_from_source("l1", "lisp", "(defn add [a b] (+ a b))\n(setv state [])\n(defn mark [] (.append state 1) (len state))\n")
    m.load_script_from_source("l2", "lisp", "(defn add [a b] (+ a b))\n(setv state [])\n(defn mark [] (.append state 1) (len state))\n")
    assert _info(m, "l1", "lisp")["hardening"]["start"] == "fork"
    assert m.call_function("l1.add", [2, 3]) == 5
    assert m.call_function("l1.mark") == 1 and m.call_function("l1.mark") == 2
    assert m.call_function("l2.mark") == 1
    assert _server(m, "lisp").spec["compiler"] != "python", "Lisp's zygote has imported Hy's compiler"
    m.close()


# -- the fork server's own limits -------------------------------------------------------------------
FAKE_SPEC = {"sys_path": [], "confine_paths": [], "site": False, "preload": [], "compiler": "python"}


def _fake_zygote(tmp_path: Path, monkeypatch, body: str, tag: str) -> dict:
    """A zygote program that misbehaves as ``body`` says (its control socket is fd 0)."""
    program = tmp_path / f"zygote_{tag}.py"
    program.write_text("import os, socket, time\ncontrol = socket.socket(fileno=0)\ncontrol.recv(65536)\n" + body)
    monkeypatch.setattr(forkserver, "ZYGOTE_PATH", str(program))
    return dict(FAKE_SPEC, preload=[f"kryon_fake_{tag}"])  # a spec of its own


def _forget(spec: dict) -> None:
    with forkserver._servers_lock:
        server = forkserver._servers.pop(json.dumps(forkserver.warm_spec(spec), sort_keys=True), None)
    if server is not None:
        server.close()


def test_a_worker_waits_for_a_warming_zygote_only_so_long(tmp_path, monkeypatch) -> None:
    """A zygote that never finishes warming up: a worker start waits
    WARM_WAIT for it, then starts the usual way."""
    spec = _fake_zygote(tmp_path, monkeypatch, "time.sleep(600)\n", "stuck")
    monkeypatch.setattr(forkserver, "WARM_WAIT", 0.3)
    try:
        assert forkserver.fork_worker(spec, 0) is None
        server = forkserver.server_for(spec, start=False)
        assert server is not None and server.state == "starting", "still warming: it may serve a later worker"
    finally:
        _forget(spec)


def test_a_zygote_that_does_not_answer_a_fork_is_dropped(tmp_path, monkeypatch) -> None:
    """A ready zygote that does not answer a fork request within
    FORK_TIMEOUT counts as dead: the worker starts the usual way."""
    spec = _fake_zygote(tmp_path, monkeypatch, "control.sendall(b'R')\ntime.sleep(600)\n", "mute")
    monkeypatch.setattr(forkserver, "FORK_TIMEOUT", 0.3)
    try:
        server = forkserver.server_for(spec)
        assert server is not None and server.ready(60)
        assert forkserver.fork_worker(spec, 0) is None
        assert server.state == "dead" and "stopped answering" in server.error
        assert server.popen is not None and server.popen.poll() is not None, "the mute zygote was ended"
    finally:
        _forget(spec)


def test_only_so_many_zygotes_are_kept(tmp_path, monkeypatch) -> None:
    """One zygote per warm-up spec, MAX_SERVERS at most: the oldest is ended."""
    monkeypatch.setattr(forkserver, "MAX_SERVERS", 2)
    specs = [_fake_zygote(tmp_path, monkeypatch, "control.sendall(b'R')\ntime.sleep(600)\n", f"kept{i}")
             for i in range(3)]
    servers = []
    try:
        for spec in specs:
            servers.append(forkserver.server_for(spec))
        assert len(forkserver._servers) <= 2
        assert servers[0].state == "dead" and servers[0].popen.wait(10) is not None
        assert servers[2].ready(60)
    finally:
        for spec in specs:
            _forget(spec)


def test_a_host_with_descriptors_past_1024_still_waits_for_its_workers() -> None:
    """The host waits on a forked worker's pidfd (and a zygote's socket) with
    poll: select refuses descriptors past 1024, which a busy host reaches."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1400:
        pytest.skip("the descriptor limit is too low to pass 1024")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1400), hard))
    null = os.open(os.devnull, os.O_RDONLY)
    filler = [os.dup(null) for _ in range(1100)]
    try:
        m = _manager()
        _probe(m, "a")
        proc = m.engine("python").runtime._scripts["a"].proc
        assert _info(m, "a")["hardening"]["start"] == "fork"
        assert proc.popen._pidfd > 1024
        pid = proc.pid
        m.close()  # asks the worker to exit, waits for it on the pidfd, reaps it
        assert proc.popen.returncode is not None
        assert not os.path.exists(f"/proc/{pid}")
    finally:
        for fd in filler + [null]:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
