"""The isolated worker: a separate Python process that runs untrusted scripts.
This file is its entry point and request loop; the rest lives in siblings.

Started by the host as ``python -I -S <this file>`` with the channel on stdin
and stdout, an empty environment, in its own session, from the host's spawner
thread. It loads its siblings by path (:func:`_load_sibling`): standard
library only, plus the confinement libraries the host tells it where to
find. Each sibling holds one part of the worker:

- ``dombatch``: a script's DOM writes, kept and sent in batches (shared with
  the host, which checks them);
- ``worker_channel``: the worker's state (``S``), the channel and
  ``host_request`` (the worker asking the host), the frames sent to the host,
  the pending DOM writes (``W``);
- ``worker_values``: values crossing the channel (``encode``, host proxies);
- ``worker_timer``: a call's time limit (``ITIMER_REAL``, ``RLIMIT_CPU``);
- ``worker_depth``: the script's recursion limit, set per entry into script code;
- ``worker_compile``: the compiler hook, the guard's check, cached code,
  ``module_source`` (a module-aware compiler's relative imports);
- ``worker_breakpoints``: breakpoints without a debugger;
- ``relative_imports``: files beside a script imported relatively, for
  compilers that are not module-aware (Python's);
- ``worker_debug``: the debugger's agent (with ``kryon_core/debug/pyframes.py``,
  which it shares with the in-process debugger);
- ``worker_calls``: ``load``, ``call``, ``callh``, ``eval``;
- ``worker_errors``: an exception as the host's error reply;
- ``worker_seal``: the warm-up, the granted imports and the seal;
- ``protocol``, ``guard``, ``confine``, ``scriptenv``: shared with the host or
  the policy (the frames, the AST guard, the kernel confinement, what a
  script sees).

Start-up (:func:`main`), in this order:

1. read the ``init`` message: limits, grants, the compiler, the ``kryon`` API names;
2. import everything the policy grants while files can still be read: the
   compiler module (``"python"`` is built in; another is ``"module:function"``,
   e.g. Hy's), the modules scripts may import, asyncio when scripts have async
   functions, the codecs the standard library loads lazily, and the
   confinement libraries;
3. seal (``confine.seal``): namespaces, read-only mounts, rlimits, never root,
   no new privileges, Landlock, seccomp; then the audit hook. A mechanism the
   kernel lacks ends the start with an error naming it, unless the policy
   accepts weaker isolation by that name;
4. serve requests (:func:`serve`): ``load`` (compile, check with the AST
   guard, exec in a namespace with curated builtins), ``call``, ``callh`` (a
   function handle), ``eval`` (code run in a loaded script's namespace, as
   ``load`` runs it), ``setg``/``getg``, ``fns`` (the functions a script
   holds now), ``gc``, ``bps``, ``ping``, ``stk`` (the stack of the script
   waiting for the host), ``unload``, ``exit``, and the
   debugger's questions (``dq``; see ``worker_debug``: any message may carry
   the debugger's mode, ``dm``). The worker asks the host ``api`` (a
   ``kryon`` call), ``callh`` (a host function), ``bp`` (a breakpoint hit),
   ``mod`` (the source of a file beside the script, for relative imports) and
   ``wb`` (a full batch of DOM writes to apply).

A fork server (``zygote.py``) may have done the start-up's imports already
(:func:`warm_up`: loading this file loads every sibling) and forked this
process; it then runs :func:`main` from step 1 like a worker the host started.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import types
from typing import TYPE_CHECKING, Any

_HERE = os.path.dirname(os.path.abspath(__file__))
#: ``kryon_core/debug``: what the worker's debugger agent shares with the in-process one
_DEBUG = os.path.join(os.path.dirname(_HERE), "debug")


def _load_sibling(name: str, directory: str = _HERE) -> types.ModuleType:
    """The sibling ``name``.py, by path (the worker's directory is not a
    package it can import: ``-I -S`` and no ``kryon_core``), as
    ``kryon_isolation_<name>`` in ``sys.modules``, where the siblings that
    load after it find it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"kryon_isolation_{name}", os.path.join(directory, f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING:
    from ..debug import pyframes
    from . import (
        confine,
        dombatch,
        guard,
        protocol,
        relative_imports,
        scriptenv,
        worker_breakpoints,
        worker_calls,
        worker_channel,
        worker_compile,
        worker_debug,
        worker_depth,
        worker_errors,
        worker_seal,
        worker_timer,
        worker_values,
    )
else:  # in dependency order: each finds the ones it uses already loaded
    protocol = _load_sibling("protocol")
    guard = _load_sibling("guard")
    confine = _load_sibling("confine")
    scriptenv = _load_sibling("scriptenv")
    pyframes = _load_sibling("pyframes", _DEBUG)
    worker_debug = _load_sibling("worker_debug")
    dombatch = _load_sibling("dombatch")
    worker_channel = _load_sibling("worker_channel")
    worker_values = _load_sibling("worker_values")
    worker_timer = _load_sibling("worker_timer")
    worker_depth = _load_sibling("worker_depth")
    worker_compile = _load_sibling("worker_compile")
    worker_breakpoints = _load_sibling("worker_breakpoints")
    relative_imports = _load_sibling("relative_imports")
    worker_errors = _load_sibling("worker_errors")
    worker_calls = _load_sibling("worker_calls")
    worker_seal = _load_sibling("worker_seal")

S = worker_channel.S
ScriptTimeout = worker_channel.ScriptTimeout
# the channel, under the names script code inside the worker has always found here
send = worker_channel.send
receive = worker_channel.receive
host_request = worker_channel.host_request
encode = worker_values.encode
error_reply = worker_errors.error_reply
#: the fork server warms up with these (``zygote.py``)
WARM_KEYS = worker_seal.WARM_KEYS
warm_up = worker_seal.warm_up
#: this worker was forked by a fork server (``zygote.py``) rather than started
FORKED = False


# -- the request loop ----------------------------------------------------------------------
def _set_global(name: str, value: Any) -> None:
    S.engine_globals[name] = value
    for b in S.builtins.values():
        b[name] = value


def _dispatch(t: Any, msg: dict[str, Any], rid: Any) -> Any:
    if t == "call":
        return worker_calls.do_call(msg)
    if t == "callh":
        return worker_calls.do_callh(msg)
    if t == "eval":
        return worker_calls.do_eval(msg)
    if t == "load":
        return worker_calls.do_load(msg)
    if t == "unload":
        S.scripts.pop(msg["script"], None)
        S.builtins.pop(msg["script"], None)
        S.module_of.pop(msg["script"], None)
        return None
    if t == "fns":  # the functions a script's namespace holds now (calls may have defined some)
        ns = S.scripts.get(msg.get("script"))  # type: ignore[arg-type]
        return worker_compile.function_infos(msg["script"], ns) if ns is not None else []
    if t == "setg":
        _set_global(msg["n"], msg.get("v"))
        return None
    if t == "getg":
        return encode(S.engine_globals.get(msg["n"]))
    if t == "gc":
        return {"freed": gc.collect()}
    if t == "bps":
        worker_breakpoints.set_breakpoints(msg.get("b"))
        return None
    if t == "dq":
        return D.query(msg)
    if t == "stk":  # the stack of the script waiting for the host (see worker_channel.STACK_SENT)
        return worker_channel.waiting_stack()
    if t == "ping":
        return msg.get("v")
    if t == "exit":
        send({"t": "r", "i": rid, "v": None})
        os._exit(0)
    raise protocol.ProtocolError(f"unknown request {t!r}")


def serve(msg: dict[str, Any]) -> None:
    """Answer one request from the host (also while the worker waits for a
    reply of its own, in ``host_request``)."""
    t = msg.get("t")
    rid = msg.get("i")
    rel = msg.get("rel")
    if rel:
        worker_values.release(rel)
    if t == "release":
        return
    if "sk" in msg:  # the host calls in while it serves a request of ours: that one's stack goes with our next message
        worker_channel.keep_stack()
    serving = S.serving
    try:
        serving.append(rid)  # a cancellation of this request may stop it (worker_timer.on_cancel)
        try:
            if t == "call" and not S.breakpoints and not D.active:
                value = worker_calls.call_plain(msg)  # the common case, flattened
            else:
                value = _dispatch(t, msg, rid)
        finally:
            serving.pop()
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
        del exc
        send(reply)


#: the debugger's agent (see worker_debug): traces only while a debugger asks for events
D = worker_debug.WorkerDebugger(S, host_request, worker_compile.compile_evaluation, ScriptTimeout, worker_timer.fire_soon)
worker_channel.connect(serve, D)


# -- start-up -------------------------------------------------------------------------------
#: the channel's JSON decoder: one per process, made before a fork server forks (see :func:`rehearse`)
DECODER = protocol.decoder(worker_values.decode_tag)
#: what :func:`rehearse` runs: a script with a function, as the host sends it (source and cached code);
#: its names are its own (a rehearsal that interned a script's names ahead of it would flatter a benchmark)
_REHEARSAL = "_rehearsed = 0\ndef _rehearse(k):\n    global _rehearsed\n    _rehearsed += k\n    return _rehearsed\n"


def rehearse(rounds: int = 10) -> None:
    """In a fork server, before its first fork: the start-up's own steps run
    on sample data, without touching this process's state (:data:`S`), so
    that what they make once and keep (type attribute caches, interned
    names, the interpreter's specialised bytecode of the worker's own
    functions, lazily made codecs) is made here and shared, instead of in
    every child, where each first write copies a page. ``rounds`` exceeds
    the number of calls after which CPython specialises a function's
    bytecode. Nothing here confines anything: every child still runs
    :func:`main` from its first step."""
    import marshal

    name = "<rehearsal>"
    api = {"_rehearsal_call": "_rehearsal_call", "_rehearsal_log": "_rehearsal_log"}
    for _ in range(rounds):
        frame = protocol.dumps({"t": "init", "i": 1, "limits": {"time": 5.0, "value_size": 1 << 20}, "api": api,
                                "grants": {}, "globals": {}, "allowed_imports": [], "python_layers": True})
        init = protocol.loads(frame[4:], DECODER)
        kryon = scriptenv.make_kryon_module(init["api"], _call_api)
        scriptenv.ScriptOutput(worker_channel.send_line)
        builtins = scriptenv.make_builtins(init, kryon=kryon, proxies=dict(worker_seal.proxies()),
                                           engine_globals={}, attribute_allowed=guard.attribute_allowed, curated=True)
        tree = worker_compile.resolve_compiler("python")(_REHEARSAL, name)
        code = worker_compile.compile_checked(tree, name)
        cached = encode(marshal.dumps(code))  # as the host sends its cached code
        raw = protocol.loads(protocol.dumps({"t": "load", "code": cached})[4:], DECODER)["code"]
        code = marshal.loads(raw)
        guard.check_code(code)
        module = types.ModuleType(name)
        module.__dict__.update({"__builtins__": builtins, "__file__": name})
        exec(code, module.__dict__)
        reply = {"t": "r", "i": 2, "v": {"f": worker_compile.function_infos(name, module.__dict__), "from": "bytecode"}}
        protocol.dumps(reply)


def _cancel_pipe() -> int:
    """The host's cancel pipe (see ``worker_timer.on_cancel``) on fd 3, as a
    fork server's child has it: a worker the host started is told its
    number (its only argument) and moves it there, so both kinds of worker
    hold the same descriptors (their descriptor limit is the same)."""
    fd = 3
    if not FORKED:
        if len(sys.argv) < 2 or not sys.argv[1].isdigit():
            return -1
        given = int(sys.argv[1])
        if given != fd:
            try:
                os.fstat(fd)
            except OSError:  # free, as it is in a new interpreter
                os.dup2(given, fd)
                os.close(given)
            else:
                fd = given
    os.set_blocking(fd, False)
    return fd


def main() -> None:
    S.cancel_fd = _cancel_pipe()
    # the channel moves off 0 and 1, which point to /dev/null from now on
    S.in_fd = os.dup(0)
    S.out_fd = os.dup(1)
    S.reader = protocol.Reader(S.in_fd)
    S.decoder = DECODER
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    init = receive()
    if init.get("t") != "init":
        raise SystemExit("expected init")
    S.config = init
    S.python_layers = init.get("python_layers", True) is not False
    S.max_value = init.get("limits", {}).get("value_size")
    S.time_limit = init.get("limits", {}).get("time")
    S.columns = bool(init.get("columns"))
    if init.get("recursion"):
        # the worker's own code (compiling included) runs under this; script code under its own (worker_depth)
        S.max_recursion = int(init["recursion"])
        sys.setrecursionlimit(S.max_recursion + 60)
    read_paths = worker_seal.import_what_is_granted(init)
    worker_seal.keep_reachable(read_paths)
    S.kryon = scriptenv.make_kryon_module(init.get("api", {}), _call_api)
    S.engine_globals.update(init.get("globals", {}))
    worker_breakpoints.set_breakpoints(init.get("breakpoints"))
    signal.signal(signal.SIGALRM, worker_timer.on_alarm)
    signal.signal(signal.SIGUSR2, worker_timer.on_cancel)
    D.install_signal()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.stdout = sys.__stdout__ = scriptenv.ScriptOutput(worker_channel.send_line)  # type: ignore[misc,assignment]
    sys.stderr = sys.__stderr__ = scriptenv.ScriptOutput(worker_channel.send_line)  # type: ignore[misc,assignment]
    try:
        report = worker_seal.seal(init, read_paths, FORKED)
    except confine.Unavailable as exc:
        send({"t": "e", "i": init.get("i"), "k": "access", "m": str(exc), "s": []})
        os._exit(0)
    send({"t": "r", "i": init.get("i"), "v": {"pid": os.getpid(), "hardening": report}})
    while True:
        try:
            msg = receive()
        except EOFError:
            os._exit(0)
        serve(msg)


def _call_api(method: str, args: tuple[Any, ...]) -> Any:
    """A script's ``kryon.<method>(...)``: asked of the host, or, for a DOM
    write, kept to go with the next message (see ``dombatch``)."""
    if method in dombatch.BATCHED:
        encoded = worker_values.encode_args(args)
        S.internal += 1  # the worker's own frame walk: the audit hook lets it through at once
        try:
            full = worker_channel.W.add(method, encoded, 2)
        finally:
            S.internal -= 1
        if full:
            host_request("wb", {})
        return None
    return host_request("api", {"n": method, "a": worker_values.encode_args(args)})


if __name__ == "__main__":
    main()
