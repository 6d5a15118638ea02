"""The isolated worker: a separate Python process that runs untrusted scripts.

Started by the host as ``python -I -S <this file>`` with the channel on stdin
and stdout, an empty environment, in its own session, from the host's spawner
thread. It loads its siblings by path (``protocol``, ``guard``, ``confine``,
``scriptenv``): standard library only, plus the confinement libraries the
host tells it where to find.

Start-up, in this order:

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
4. serve requests: ``load`` (compile, check with the AST guard, exec in a
   namespace with curated builtins), ``call``, ``callh`` (a function handle),
   ``eval`` (code run in a loaded script's namespace, as ``load`` runs it),
   ``setg``/``getg``, ``fns`` (the functions a script holds now), ``gc``, ``bps``, ``ping``, ``unload``, ``exit``, and the
   debugger's questions (``dq``; see ``worker_debug``: any message may carry the
   debugger's mode, ``dm``). The worker asks the host ``api`` (a ``kryon`` call),
   ``callh`` (a host function), ``bp`` (a breakpoint hit) and ``mod`` (the source
   of a file beside the script, for a compiler's relative imports).

Per call the worker keeps ``ITIMER_REAL`` (a ``ScriptTimeout`` raised in script
code; the timer is left running between calls, see "time limits") and
``RLIMIT_CPU`` (the kernel's SIGXCPU if the script hides in C code); the host
keeps its own deadline and kills the process past it.

A fork server (``zygote.py``) may have done the start-up's imports already
(:func:`warm_up`) and forked this process; it then runs :func:`main` from
step 1 like a worker the host started.
"""

from __future__ import annotations

import gc
import itertools
import os
import signal
import sys
import time
import types
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

_HERE = os.path.dirname(os.path.abspath(__file__))


def _load_sibling(name: str) -> types.ModuleType:
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"kryon_isolation_{name}", os.path.join(_HERE, f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING:
    from . import confine, dombatch, guard, protocol, relative_imports, scriptenv, worker_debug
else:
    protocol = _load_sibling("protocol")
    dombatch = _load_sibling("dombatch")
    guard = _load_sibling("guard")
    confine = _load_sibling("confine")
    scriptenv = _load_sibling("scriptenv")
    worker_debug = _load_sibling("worker_debug")
    relative_imports = _load_sibling("relative_imports")

TAG = protocol.TAG
AccessDenied = scriptenv.AccessDenied
KryonError = scriptenv.KryonError


class ScriptTimeout(BaseException):
    """The call ran past its time limit (a BaseException: ``except Exception`` does not hide it)."""


# -- state -----------------------------------------------------------------------
class State:
    def __init__(self) -> None:
        self.in_fd = -1
        self.out_fd = -1
        self.next_id = 1
        self.config: dict[str, Any] = {}
        self.compile: Callable[..., Any] | None = None
        self.scripts: dict[str, dict[str, Any]] = {}  # script id -> namespace
        self.module_of: dict[str, types.ModuleType] = {}  # script id -> the module whose __dict__ is its namespace
        self.compiled_from: dict[str, str] = {}  # script id -> "bytecode" (the host's cached code) or "source"
        self.builtins: dict[str, dict[str, Any]] = {}  # script id -> builtins dict
        self.engine_globals: dict[str, Any] = {}
        self.handles: dict[int, Any] = {}  # worker handle id -> callable
        self.handle_ids: dict[int, int] = {}  # id(callable) -> handle id
        self.released_host: list[int] = []  # host handle ids dropped by this worker
        self.proxies: dict[int, Any] = {}  # host handle id -> proxy (weak)
        self.modules: dict[str, types.ModuleType] = {}  # name -> read-only module proxy
        self.kryon: types.ModuleType | None = None
        self.loop: Any = None
        self.timer_armed = False  # an outermost call with a time limit runs
        self.call_deadline: float | None = None  # when it must end (monotonic)
        self.timer_at = 0.0  # when ITIMER_REAL fires (0: not armed)
        self.cpu_checked_cpu = 0.0  # the CPU time at the last read, and when (monotonic)
        self.cpu_checked_at = 0.0
        self.pending_timeout = False
        self.script_running = False
        self.internal = 0
        self.max_value: int | None = None
        self.loading: set[str] = set()
        self.breakpoints: dict[str, dict[str, int]] = {}  # script id -> {str(line): breakpoint id}
        self.time_limit: float | None = None
        self.columns = False
        self.python_layers = True
        self.cpu_soft = 0
        self.reader: Any = None
        self.decoder: Any = None


S = State()


# -- channel ------------------------------------------------------------------------
def send(msg: dict[str, Any]) -> list[Any]:
    """Write one message. Pending DOM writes ride on every message the host
    answers or waits for (see ``dombatch``); returns the stacks of the writes
    it carried (an error naming one of them comes back with its index)."""
    if D.delta:  # calls and returns the debugger counts, before what they led to
        _send_debug_delta()
    stacks: list[Any] = []
    if W.pending and msg.get("t") not in ("out", "dev"):
        msg["w"], stacks = W.take()
        msg["ws"] = stacks
    if S.released_host:
        msg["rel"] = S.released_host
        S.released_host = []
    S.internal += 1
    try:
        protocol.write_frame(S.out_fd, protocol.dumps(msg))
    finally:
        S.internal -= 1
    return stacks


def receive() -> dict[str, Any]:
    msg = protocol.loads(S.reader.frame(), S.decoder)
    dm = msg.get("dm")
    if dm is not None:  # the debugger's mode changed (see worker_debug)
        D.apply(dm)
    return msg


def _send_debug_delta() -> None:
    S.internal += 1
    try:
        protocol.write_frame(S.out_fd, protocol.dumps({"t": "dev", "d": D.take_delta()}))
    finally:
        S.internal -= 1


def host_request(kind: str, payload: dict[str, Any]) -> Any:
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
        stacks = send(payload)
        while True:
            msg = receive()
            t = msg.get("t")
            if t == "r" and msg.get("i") == rid:
                return msg.get("v")
            if t == "e" and msg.get("i") == rid:
                exc = KryonError(msg.get("m", "error"), msg.get("k", "runtime"), msg.get("s", ()))
                wi = msg.get("wi")
                if type(wi) is int and 0 <= wi < len(stacks):  # a batched write failed: its own line
                    exc._kryon_stack = stacks[wi]  # type: ignore[attr-defined]
                raise exc
            serve(msg)
    finally:
        S.script_running = was_running
        if was_running and S.pending_timeout:
            S.pending_timeout = False
            raise ScriptTimeout("time limit exceeded")


def _call_api(method: str, args: tuple[Any, ...]) -> Any:
    if method in dombatch.BATCHED:  # a DOM write: sent with the next message (see dombatch)
        encoded = encode_args(args)
        S.internal += 1  # the worker's own frame walk: the audit hook lets it through at once
        try:
            full = W.add(method, encoded, 2)
        finally:
            S.internal -= 1
        if full:
            host_request("wb", {})
        return None
    return host_request("api", {"n": method, "a": encode_args(args)})


def _current_stack(frame: types.FrameType | None) -> list[list[Any]]:
    out = []
    while frame is not None:
        code = frame.f_code
        if code.co_filename in S.scripts or code.co_filename in S.loading:
            out.append(_frame(code, frame.f_lineno, frame.f_lasti))
        frame = frame.f_back
    return out


def _frame(code: types.CodeType, line: int | None, lasti: int) -> list[Any]:
    """A stack frame for the host: [function, script, line], plus
    [language (the runtime's), column] when the compiler's columns are the
    source's own (``CompilerSpec.columns``)."""
    positions = getattr(code, "co_positions", None)  # Python 3.11+
    if not S.columns or lasti < 0 or positions is None:
        return [code.co_name, code.co_filename, line]
    pos = next(itertools.islice(positions(), lasti // 2, None), None)
    return [code.co_name, code.co_filename, line, None, pos[2] if pos else None]


# -- breakpoints -------------------------------------------------------------------------
def _trace_call(frame: types.FrameType, event: str, arg: Any) -> Any:
    lines = S.breakpoints.get(frame.f_code.co_filename)
    if not lines:
        return None

    def trace_line(frame: types.FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            bid = lines.get(str(frame.f_lineno))
            if bid is not None:
                _hit(bid, frame)
        return trace_line

    return trace_line


def _hit(bid: int, frame: types.FrameType) -> None:
    local_vars = {}
    for k, v in frame.f_locals.items():
        if k.startswith("__"):
            continue
        try:
            local_vars[k] = encode(v)
        except Exception:
            local_vars[k] = repr(v)[:200]
    _settrace(None)
    try:
        host_request("bp", {"b": bid, "l": frame.f_lineno, "s": frame.f_code.co_filename, "v": local_vars})
    finally:
        _settrace(_trace_call)


def _settrace(fn: Any) -> None:
    S.internal += 1
    try:
        sys.settrace(fn)
    finally:
        S.internal -= 1


def _set_breakpoints(bps: Any) -> None:
    S.breakpoints = {f: dict(lines) for f, lines in (bps or {}).items() if lines}


# -- values ---------------------------------------------------------------------------
class HostObject:
    """An opaque host value (UserData, an element handle) held by a script."""

    __slots__ = ("_kryon_id", "__weakref__")

    def __init__(self, hid: int) -> None:
        self._kryon_id = hid

    def __repr__(self) -> str:
        return f"<host object {self._kryon_id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HostObject) and other._kryon_id == self._kryon_id

    def __hash__(self) -> int:
        return hash(("host", self._kryon_id))


class HostFunction(HostObject):
    """A host callable (a FunctionRef into any language, a host function)."""

    __slots__ = ()

    def __call__(self, *args: Any) -> Any:
        return host_request("callh", {"h": self._kryon_id, "a": encode_args(args)})

    def __repr__(self) -> str:
        return f"<host function {self._kryon_id}>"


def _release_host(hid: int) -> None:
    S.proxies.pop(hid, None)
    S.released_host.append(hid)


def _decode_tag(d: dict[str, Any]) -> Any:
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


def _export(obj: Any) -> Any:
    if isinstance(obj, HostObject):
        return {TAG: "h", "v": obj._kryon_id}
    if isinstance(obj, types.GeneratorType):
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


def encode(value: Any) -> Any:
    t = type(value)
    if t is int or t is float or t is bool or value is None:  # a call's usual result, without the encoder's calls
        return value
    return protocol.encode_value(value, _export, max_size=S.max_value, room=True)


def encode_args(args: Any) -> list[Any]:
    """Arguments of a host request, encoded; plain scalars and host objects
    (what DOM calls pass, once each per write) without the encoder's walk."""
    out = []
    limit = S.max_value
    for a in args:
        t = type(a)
        if t is int or t is float or t is bool or a is None or (t is str and (limit is None or len(a) <= limit)):
            out.append(a)
        elif t is HostObject or t is HostFunction:
            out.append({TAG: "h", "v": a._kryon_id})
        else:
            out.append(encode(a))
    return out


# -- time limits --------------------------------------------------------------------------
# Arming and disarming ITIMER_REAL and reading the CPU clock for every call
# cost more than the rest of a trivial call's round trip (system calls are
# dear in a VM). So the kernel timer is left running after a call: a later
# call whose deadline is later finds it armed and lets it fire early; the
# handler then re-arms it for the rest of that call's limit (or does nothing
# when no call runs). The CPU backstop is refreshed only when the CPU time
# used since the last check could, at most, have reached it: a process uses
# no more CPU time than wall time times its CPUs.
_setitimer = signal.setitimer
_ITIMER_REAL = signal.ITIMER_REAL
_monotonic = time.monotonic
_CPUS = os.cpu_count() or 1


def _cpu_now() -> float:
    t = os.times()
    return t.user + t.system


def _on_alarm(signum: int, frame: Any) -> None:
    S.timer_at = 0.0
    deadline = S.call_deadline
    if deadline is None:
        return  # the timer of a call that already ended
    left = deadline - _monotonic()
    if left > 0:  # armed by an earlier call: the rest of this call's limit
        S.timer_at = deadline
        _setitimer(_ITIMER_REAL, left)
        return
    if S.script_running:
        raise ScriptTimeout("time limit exceeded")
    S.pending_timeout = True


def _refresh_cpu_limit(limit: float, now: float) -> None:
    """The kernel's backstop: SIGXCPU once this process used its CPU budget
    (kept a few limits ahead; read and moved only when it could be near)."""
    if S.cpu_checked_cpu + (now - S.cpu_checked_at) * _CPUS + limit + 1 <= S.cpu_soft:
        return
    cpu = _cpu_now()
    S.cpu_checked_cpu, S.cpu_checked_at = cpu, now
    if S.cpu_soft - cpu < limit + 1:
        import resource

        S.cpu_soft = int(cpu + 4 * limit) + 2
        S.internal += 1
        try:
            resource.setrlimit(resource.RLIMIT_CPU, (S.cpu_soft, resource.RLIM_INFINITY))
        except (ValueError, OSError):
            pass
        finally:
            S.internal -= 1


class _Armed:
    """Time limits for one outermost call: ITIMER_REAL and RLIMIT_CPU."""

    __slots__ = ("limit", "outer")

    def __init__(self) -> None:
        self.limit = S.time_limit
        self.outer = False

    def __enter__(self) -> "_Armed":
        limit = self.limit
        if limit and not S.timer_armed:
            self.outer = True
            S.timer_armed = True
            S.pending_timeout = False
            now = _monotonic()
            deadline = now + limit
            S.call_deadline = deadline
            _refresh_cpu_limit(limit, now)
            if not S.timer_at or S.timer_at <= now or S.timer_at > deadline:
                S.timer_at = deadline
                _setitimer(_ITIMER_REAL, limit)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.outer:
            S.call_deadline = None  # the timer may still fire: the handler then does nothing
            S.timer_armed = False
            S.pending_timeout = False


# -- compiling --------------------------------------------------------------------------
def _python_compiler(source: str, filename: str) -> Any:
    import ast

    return ast.parse(source, filename, "exec")


def _resolve_compiler(spec: str | None) -> Callable[[str, str], Any]:
    if spec in (None, "", "python"):
        return _python_compiler
    module_name, _, attr = str(spec).partition(":")
    obj: Any = __import__(module_name, fromlist=["_"])
    for part in (attr or "compile").split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]


def compile_tree(source: str, filename: str) -> Any:
    """What the compiler hook makes of ``source``: an ``ast.Module`` (to be
    checked by the guard) or a code object (the hook checked it itself).

    A hook marked ``kryon_module_aware`` (Hy's) compiles in the script's own
    module, where code it runs while compiling (macros) lives and finds the
    script's builtins, and gets the guard to check that code with first."""
    import ast

    assert S.compile is not None
    if getattr(S.compile, "kryon_module_aware", False):
        module = S.module_of.get(filename)
        result = S.compile(source, filename, module=module, check=_check_tree, load_module=module_source)
    else:
        result = S.compile(source, filename)
    if isinstance(result, (ast.Module, types.CodeType)):
        return result
    raise TypeError(f"the compiler returned {type(result).__name__}, not an AST module or code object")


def module_source(name: str) -> str | None:
    """The source of the file ``name`` (``helpers``, ``sub/helpers``; no
    extension) beside the loading script, asked of the host, whose module
    loader keeps it inside the script's root: None when there is none, an
    ``AccessDenied`` when the host refuses it. For a module-aware compiler's
    relative imports."""
    try:
        source = host_request("mod", {"n": name})
    except KryonError as exc:
        if exc.kind == "access":
            raise AccessDenied(str(exc)) from None
        raise
    if source is not None and not isinstance(source, str):
        raise protocol.ProtocolError("a module's source must be text")
    return source


def _check_tree(tree: Any) -> None:
    if S.python_layers:
        guard.check(tree)


def compile_checked(tree: Any, filename: str, mode: str = "exec") -> types.CodeType:
    """An AST checked by the guard (when the Python layers are on) and compiled."""
    if S.python_layers:
        guard.check(tree)
    fix_locations(tree)
    code: types.CodeType = compile(tree, filename, mode, dont_inherit=True)
    return code


def fix_locations(tree: Any) -> None:
    """Positions for nodes a compiler left without them; an end filled in
    before its start (a node with a start and no end, under a parent with
    neither) is moved to the start, which ``compile`` requires."""
    import ast

    ast.fix_missing_locations(tree)
    for node in ast.walk(tree):
        start, end = getattr(node, "col_offset", None), getattr(node, "end_col_offset", None)
        if start is not None and end is not None and getattr(node, "end_lineno", None) == getattr(node, "lineno", None):
            if end < start:
                node.end_col_offset = start  # type: ignore[attr-defined]


def compile_script(source: str, filename: str) -> types.CodeType:
    """The compiler hook returns an ``ast.Module`` (checked by the guard, then
    compiled) or a code object (then it must have checked the code itself)."""
    result = compile_tree(source, filename)
    return result if isinstance(result, types.CodeType) else compile_checked(result, filename)


def function_infos(script: str, ns: dict[str, Any]) -> list[dict[str, Any]]:
    import inspect

    out = []
    for name, value in ns.items():
        if not isinstance(value, types.FunctionType):
            continue
        code = value.__code__
        if code.co_filename != script and value.__globals__ is not ns:  # defined in the namespace: hy.eval's too
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
def _stack(tb: types.TracebackType | None) -> list[list[Any]]:
    frames = []
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename in S.scripts or code.co_filename in S.loading:
            frames.append(_frame(code, tb.tb_lineno, tb.tb_lasti))
        tb = tb.tb_next
    frames.reverse()  # innermost first
    return frames


_KINDS: tuple[tuple[Any, str], ...] = ()


def _error_kind(exc: BaseException) -> str:
    global _KINDS
    if not _KINDS:
        _KINDS = (
            (AccessDenied, "access"), (guard.GuardViolation, "access"), (ScriptTimeout, "timeout"),
            (MemoryError, "memory"), (RecursionError, "recursion"), (SyntaxError, "compile"),
            (PermissionError, "access"),
        )
    if isinstance(exc, (KryonError, protocol.ValueRefused)):
        return exc.kind
    for cls, kind in _KINDS:
        if isinstance(exc, cls):
            return kind
    return "runtime"


def error_reply(rid: Any, exc: BaseException) -> dict[str, Any]:
    kind = _error_kind(exc)
    stack = getattr(exc, "_kryon_stack", None)
    if stack is None:
        stack = _stack(exc.__traceback__)
    if isinstance(exc, (KryonError, ScriptTimeout, MemoryError, AccessDenied, RecursionError, protocol.ValueRefused,
                        guard.GuardViolation)):
        text = str(exc) or type(exc).__name__
    else:
        text = f"{type(exc).__name__}: {exc}"
    msg: dict[str, Any] = {"t": "e", "i": rid, "k": kind, "m": text, "s": stack}
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
def _traced(fn: Callable[..., Any], args: Any) -> Any:
    _settrace(_trace_call)
    try:
        return fn(*args)
    finally:
        _settrace(None)


def _run(fn: Callable[..., Any], args: Any) -> Any:
    if D.active:  # the debugger's tracer (see worker_debug), also while a coroutine or generator runs
        return D.run(_complete, (fn, args))
    return _complete(fn, args) if not S.breakpoints else _traced(_complete, (fn, args))


def _complete(fn: Callable[..., Any], args: Any) -> Any:
    """``fn(*args)``, a coroutine it returns run to its end, a generator listed."""
    result = fn(*args)
    if isinstance(result, types.CoroutineType):
        if S.loop is None:
            result.close()
            raise RuntimeError("async functions need asyncio, which this worker was not started with")
        result = S.loop.run_until_complete(result)
    elif isinstance(result, types.GeneratorType):
        result = list(result)
    return result


def do_load(msg: dict[str, Any]) -> dict[str, Any]:
    """Compile the script and run its top level in a module of its own. The
    script's limits hold from the first step: compiling may run the script's
    own code (Hy's macros), with the script's builtins."""
    script = msg["script"]
    filename = script
    b = scriptenv.make_builtins(
        S.config,
        kryon=S.kryon,  # type: ignore[arg-type]
        proxies=S.modules,
        engine_globals=S.engine_globals,
        attribute_allowed=guard.attribute_allowed,
        curated=S.python_layers,
    )
    module = types.ModuleType(script)
    ns = module.__dict__
    ns.update({"__builtins__": b, "__file__": script})
    if S.config.get("api_in_namespace") and S.kryon is not None:
        ns.update({k: v for k, v in vars(S.kryon).items() if not k.startswith("_")})
    S.loading.add(filename)
    S.module_of[script] = module
    if not getattr(S.compile, "kryon_module_aware", False):  # such a compiler resolves them itself
        IMPORTS.attach(module, script)  # files beside the script, imported relatively
    code = cached_code(msg.get("code"), script)
    S.compiled_from[script] = "bytecode" if code is not None else "source"
    try:
        with _Armed():
            S.script_running = True
            try:
                if code is None:
                    code = compile_script(msg["source"], filename)
                if D.active:
                    D.run(exec, (code, ns))
                elif S.breakpoints:
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
        if script not in S.scripts:
            S.module_of.pop(script, None)
        raise
    finally:
        S.loading.discard(filename)
    return {"f": function_infos(script, ns), "from": S.compiled_from[script]}


def cached_code(raw: Any, script: str) -> types.CodeType | None:
    """The code object the host sent from its compilation cache (a warm load
    compiles nothing), or None to compile the source instead: when none was
    sent, when it is not a valid code object of this Python, or when the
    guard's rules refuse it (:func:`guard.check_code`, the same rules the
    AST check applies to source). Unmarshalling and renaming are the
    worker's own steps (the audit hook refuses both to scripts)."""
    if not isinstance(raw, bytes):
        return None
    import marshal

    S.internal += 1
    try:
        code = marshal.loads(raw)
        if not isinstance(code, types.CodeType):
            return None
        if code.co_filename != script:
            code = _renamed(code, script)
    except (ValueError, EOFError, TypeError):
        return None
    finally:
        S.internal -= 1
    if S.python_layers:
        try:
            guard.check_code(code)
        except guard.GuardViolation:
            return None
    return code


def _renamed(code: types.CodeType, filename: str) -> types.CodeType:
    consts = tuple(_renamed(c, filename) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _keep_stack(exc: BaseException) -> None:
    """Take a failed top level's stack now: once the script leaves
    ``S.loading`` its frames no longer count as script frames, and the error
    would reach the host with no line."""
    try:
        exc._kryon_stack = _stack(exc.__traceback__)  # type: ignore[attr-defined]
    except Exception:  # an exception class that refuses attributes keeps no stack
        pass


def do_eval(msg: dict[str, Any]) -> dict[str, Any]:
    """``code`` run in a loaded script's namespace, under the script's limits
    and guards: its statements, then the value of its last expression (None
    when it ends with a statement). Its lines are the lines within ``code``;
    definitions stay in the namespace, and the reply lists the script's
    functions again (the code may have added some)."""
    script = msg["script"]
    ns = S.scripts.get(script)
    if ns is None:
        raise KryonError(f"script '{script}' is not loaded in this worker", "notfound")
    code = msg.get("code")
    if not isinstance(code, str):
        raise KryonError("code must be text", "runtime")
    with _Armed():
        was = S.script_running
        try:
            S.script_running = True  # compiling may run the script's macros
            statements, value_code = compile_evaluation(code, script)
            _run(exec, (statements, ns))
            value = _run(eval, (value_code, ns)) if value_code is not None else None
        finally:
            S.script_running = was
            _flush_output()
    return {"v": encode(value), "f": function_infos(script, ns)}


def compile_evaluation(code: str, script: str) -> tuple[types.CodeType, types.CodeType | None]:
    """``code`` compiled by the script's compiler and checked by the guard:
    its statements, and the value of its last expression (None when it ends
    with a statement)."""
    import ast

    tree = compile_tree(code, script)
    expression = None
    last = tree.body[-1] if isinstance(tree, ast.Module) and tree.body else None
    if isinstance(last, ast.Expr):
        tree.body.pop()
        expression = ast.Expression(last.value)
    statements = compile_checked(tree, script) if not isinstance(tree, types.CodeType) else tree
    value_code = compile_checked(expression, script, "eval") if expression is not None else None
    return statements, value_code


def do_call(msg: dict[str, Any]) -> Any:
    ns = S.scripts.get(msg["script"])
    if ns is None:
        raise KryonError(f"script '{msg['script']}' is not loaded in this worker", "notfound")
    fn = ns.get(msg["fn"])
    if fn is None or not callable(fn):
        raise KryonError(f"script '{msg['script']}' has no function '{msg['fn']}'", "notfound")
    return _call(fn, msg.get("a", ()))


def _call(fn: Callable[..., Any], args: Any) -> Any:
    with _Armed():
        was = S.script_running
        S.script_running = True
        try:
            result = _run(fn, args)
        finally:
            S.script_running = was
            _flush_output()
    return encode(result)


def _flush_output() -> None:
    """What a call printed without a final newline still reaches the host."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, scriptenv.ScriptOutput) and stream.buf:
            stream.flush()


def do_callh(msg: dict[str, Any]) -> Any:
    fn = S.handles.get(msg["h"])
    if fn is None:
        raise KryonError("this function was released or its worker restarted", "runtime")
    return _call(fn, msg.get("a", ()))


def _release(ids: Any) -> None:
    for hid in ids:
        fn = S.handles.pop(hid, None)
        if fn is not None:
            S.handle_ids.pop(id(fn), None)


def _set_global(name: str, value: Any) -> None:
    S.engine_globals[name] = value
    for b in S.builtins.values():
        b[name] = value


def _dispatch(t: Any, msg: dict[str, Any], rid: Any) -> Any:
    if t == "call":
        return do_call(msg)
    if t == "callh":
        return do_callh(msg)
    if t == "eval":
        return do_eval(msg)
    if t == "load":
        return do_load(msg)
    if t == "unload":
        S.scripts.pop(msg["script"], None)
        S.builtins.pop(msg["script"], None)
        S.module_of.pop(msg["script"], None)
        return None
    if t == "fns":  # the functions a script's namespace holds now (calls may have defined some)
        ns = S.scripts.get(msg.get("script"))  # type: ignore[arg-type]
        return function_infos(msg["script"], ns) if ns is not None else []
    if t == "setg":
        _set_global(msg["n"], msg.get("v"))
        return None
    if t == "getg":
        return encode(S.engine_globals.get(msg["n"]))
    if t == "gc":
        return {"freed": gc.collect()}
    if t == "bps":
        _set_breakpoints(msg.get("b"))
        return None
    if t == "dq":
        return D.query(msg)
    if t == "ping":
        return msg.get("v")
    if t == "exit":
        send({"t": "r", "i": rid, "v": None})
        os._exit(0)
    raise protocol.ProtocolError(f"unknown request {t!r}")


def serve(msg: dict[str, Any]) -> None:
    t = msg.get("t")
    rid = msg.get("i")
    rel = msg.get("rel")
    if rel:
        _release(rel)
    if t == "release":
        return
    try:
        value = _dispatch(t, msg, rid)
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


#: relative imports of files beside a script (see relative_imports), for compilers that are not module-aware
IMPORTS = relative_imports.RelativeImports(module_source, compile_script, AccessDenied, guard.GuardViolation)

#: the DOM writes waiting for the next message to the host (see dombatch)
W = dombatch.WriteBatch(lambda name: name in S.scripts or name in S.loading, lambda c, line, lasti: _frame(c, line, lasti))

#: the debugger's agent (see worker_debug): traces only while a debugger asks for events
D = worker_debug.WorkerDebugger(S, host_request, compile_evaluation, ScriptTimeout)


# -- start-up -------------------------------------------------------------------------------
#: the init keys :func:`warm_up` reads: what no policy changes
WARM_KEYS = ("sys_path", "confine_paths", "site", "preload", "compiler")
#: the warm-up this process did (a fork server's child inherits it)
_warmed: tuple[Any, ...] | None = None
#: read-only proxies of the modules every script may import (made by warm_up)
_proxies: dict[str, types.ModuleType] = {}
#: this worker was forked by a fork server (``zygote.py``) rather than started
FORKED = False


def warm_up(init: dict[str, Any]) -> None:
    """The imports every worker with these :data:`WARM_KEYS` makes, whatever
    its policy: the path, the confinement libraries, ``site``, the preloaded
    modules, the lazily loaded codecs, the compiler. A fork server does this
    once; its children skip it (``site.main`` must not run twice)."""
    global _warmed
    key = tuple(json_key(init.get(k)) for k in WARM_KEYS)
    if _warmed == key:
        return
    confine.load_libraries(init.get("confine_paths") or [])
    for p in init.get("sys_path") or []:
        if p not in sys.path:
            sys.path.append(p)
    if init.get("site"):
        import site

        site.main()
    for name in init.get("preload", ()):
        __import__(name)
    for name in scriptenv.EAGER_MODULES + scriptenv.SAFE_MODULES:
        try:
            __import__(name)
        except ImportError:
            pass
    _resolve_compiler(init.get("compiler"))
    _proxies.clear()
    _proxies.update(scriptenv.proxy_modules(guard.attribute_allowed))
    import ast  # noqa: F401  (compile_script and function_infos use these after sealing)
    import atexit  # noqa: F401  (weakref.finalize imports it on first use)
    import inspect  # noqa: F401
    import resource  # noqa: F401

    _warmed = key


def json_key(value: Any) -> Any:
    """``value`` (plain JSON data) as something hashable and comparable."""
    if isinstance(value, list):
        return tuple(json_key(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, json_key(v)) for k, v in value.items()))
    return value


def _import_what_is_granted(init: dict[str, Any]) -> list[str]:
    """Everything scripts may use, imported while files can still be read.
    Returns the directories granted modules load submodules from lazily."""
    warm_up(init)
    if init.get("grants", {}).get("network"):
        import encodings.idna  # noqa: F401  (host names are encoded with it, lazily)
    granted_dirs: list[str] = []
    for name in init.get("allowed_imports", ()):
        try:
            module = __import__(name)
        except Exception:
            continue
        granted_dirs += [p for p in getattr(sys.modules.get(name, module), "__path__", ()) if isinstance(p, str)]
    S.compile = _resolve_compiler(init.get("compiler"))
    if init.get("debug_show"):  # how the debugger shows values (Lisp notation), resolved while imports work
        D.show = _resolve_compiler(init["debug_show"])  # type: ignore[assignment]  # text from a value
    S.modules = dict(_proxies)
    if init.get("asyncio"):
        import asyncio

        S.loop = asyncio.new_event_loop()
        # scripts with async code may import it (what it would do with files,
        # sockets or processes is refused when they try)
        S.modules.setdefault("asyncio", scriptenv.proxy_module("asyncio", asyncio))

    if init.get("grants", {}).get("imports"):
        # any module on the path may be imported lazily: its directories stay readable
        return [p for p in sys.path if isinstance(p, str) and os.path.isdir(p)]
    return granted_dirs


def _keep_reachable(paths: list[str]) -> None:
    """Granted directories stay importable after the drop to nobody.

    A worker started as root becomes nobody, who may not be allowed to walk
    into a directory above a granted one (an interpreter under a home only
    its owner may enter). Each granted directory is opened now, and the
    import system (``sys.path`` and packages' ``__path__``) reaches it as
    ``/proc/self/fd/N``, which does not walk its parents. Landlock still
    decides what may be read there; the descriptors do not reach children."""
    if os.geteuid() != 0:
        return
    mapping: list[tuple[str, str]] = []
    for path in paths:
        try:
            fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            continue
        mapping.append((path.rstrip(os.sep) or os.sep, f"/proc/self/fd/{fd}"))
    if not mapping:
        return  # nothing granted to reach: the path stays as it is
    mapping.sort(key=lambda pair: len(pair[0]), reverse=True)  # the deepest directory wins

    def through_fd(entry: Any) -> Any:
        if not isinstance(entry, str):
            return entry
        for directory, fd_path in mapping:
            if entry == directory or entry.startswith(directory + os.sep):
                return fd_path + entry[len(directory):]
        return entry

    sys.path[:] = [through_fd(entry) for entry in sys.path]
    for module in list(sys.modules.values()):
        search = getattr(module, "__path__", None)
        if type(search) is list:
            search[:] = [through_fd(entry) for entry in search]
    sys.path_importer_cache.clear()


def _allowed_import(init: dict[str, Any]) -> Callable[[str], bool]:
    allowed = set(init.get("allowed_imports", ())) | set(scriptenv.SAFE_MODULES) | {"kryon"}
    allow_all = bool(init.get("grants", {}).get("imports"))

    def allowed_import(name: str) -> bool:
        return allow_all or name in allowed or name.split(".", 1)[0] in allowed

    return allowed_import


def _seal(init: dict[str, Any], read_paths: list[str]) -> dict[str, Any]:
    """The kernel's confinement, then the audit hook (when the Python layers are on)."""
    plan = confine.Plan.from_init(init, read_paths)
    report = confine.seal(plan)
    if S.python_layers:
        sys.addaudithook(
            confine.audit_hook(plan, _allowed_import(init), lambda: S.internal > 0, AccessDenied, scriptenv.ImportDenied)
        )
    report["audit_hook"] = S.python_layers
    report["guard"] = S.python_layers
    report["builtins"] = "curated" if S.python_layers else "python"
    report["start"] = "fork" if FORKED else "fresh"
    return report


def main() -> None:
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
    S.python_layers = init.get("python_layers", True) is not False
    S.max_value = init.get("limits", {}).get("value_size")
    S.time_limit = init.get("limits", {}).get("time")
    S.columns = bool(init.get("columns"))
    if init.get("recursion"):
        sys.setrecursionlimit(int(init["recursion"]) + 60)
    read_paths = _import_what_is_granted(init)
    _keep_reachable(read_paths)
    S.kryon = scriptenv.make_kryon_module(init.get("api", {}), _call_api)
    S.engine_globals.update(init.get("globals", {}))
    _set_breakpoints(init.get("breakpoints"))
    signal.signal(signal.SIGALRM, _on_alarm)
    D.install_signal()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.stdout = sys.__stdout__ = scriptenv.ScriptOutput(_send_line)  # type: ignore[misc,assignment]
    sys.stderr = sys.__stderr__ = scriptenv.ScriptOutput(_send_line)  # type: ignore[misc,assignment]
    try:
        report = _seal(init, read_paths)
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


def _send_line(line: str) -> None:
    send({"t": "out", "x": line})


if __name__ == "__main__":
    main()
