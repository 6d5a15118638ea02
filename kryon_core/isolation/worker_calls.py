"""Running script code for the host's requests (worker side, standard library
only, loaded by path like every sibling of ``worker.py``): ``load`` (a
script's top level in a module of its own), ``call`` and ``callh`` (a
function by name or by handle), ``eval`` (code in a loaded script's
namespace).

Each runs under the call's time limit (``worker_timer.Armed``), with the
debugger's tracer when a debugger asks for events (``worker_debug``) or the
breakpoint tracer when breakpoints are set (``worker_breakpoints``); a
coroutine a function returns is run to its end, a generator listed, and
what the script printed without a final newline is flushed to the host.
A script loaded with a compiler that is not module-aware (Python's) gets its
relative imports of files beside it from :data:`IMPORTS` (``relative_imports``).
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import (
        guard,
        relative_imports,
        scriptenv,
        worker_breakpoints,
        worker_channel,
        worker_compile,
        worker_depth,
        worker_errors,
        worker_timer,
        worker_values,
    )
else:  # loaded by worker.py (``_load_sibling``) before this module
    guard = sys.modules["kryon_isolation_guard"]
    relative_imports = sys.modules["kryon_isolation_relative_imports"]
    scriptenv = sys.modules["kryon_isolation_scriptenv"]
    worker_breakpoints = sys.modules["kryon_isolation_worker_breakpoints"]
    worker_channel = sys.modules["kryon_isolation_worker_channel"]
    worker_compile = sys.modules["kryon_isolation_worker_compile"]
    worker_depth = sys.modules["kryon_isolation_worker_depth"]
    worker_errors = sys.modules["kryon_isolation_worker_errors"]
    worker_timer = sys.modules["kryon_isolation_worker_timer"]
    worker_values = sys.modules["kryon_isolation_worker_values"]

S = worker_channel.S
KryonError = scriptenv.KryonError
Armed = worker_timer.Armed
encode = worker_values.encode
function_infos = worker_compile.function_infos
traced = worker_breakpoints.traced
limit_script = worker_depth.limit_script
restore_limit = worker_depth.restore
_get_limit = sys.getrecursionlimit
_set_limit = sys.setrecursionlimit
ScriptOutput = scriptenv.ScriptOutput

#: relative imports of files beside a script (see relative_imports), for compilers that are not module-aware
IMPORTS = relative_imports.RelativeImports(
    worker_compile.module_source, worker_compile.compile_script, scriptenv.AccessDenied, guard.GuardViolation
)


def do_load(msg: dict[str, Any]) -> dict[str, Any]:
    """Compile the script and run its top level in a module of its own. The
    script's limits hold from the first step: compiling may run the script's
    own code (Hy's macros), with the script's builtins."""
    D = worker_channel.D
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
    code = worker_compile.cached_code(msg.get("code"), script)
    S.compiled_from[script] = "bytecode" if code is not None else "source"
    try:
        with Armed():
            S.script_running = True
            try:
                if code is None:
                    code = worker_compile.compile_script(msg["source"], filename)
                if D.active:
                    D.run(_exec, (code, ns))
                elif S.breakpoints:
                    traced(_exec, (code, ns))
                else:
                    _exec(code, ns)
            finally:
                S.script_running = False
                _flush_output()
        S.scripts[script] = ns
        S.builtins[script] = b
    except BaseException as exc:
        worker_errors.keep_stack(exc)
        if script not in S.scripts:
            S.module_of.pop(script, None)
        raise
    finally:
        S.loading.discard(filename)
    return {"f": function_infos(script, ns), "from": S.compiled_from[script]}


def _exec(code: Any, ns: dict[str, Any]) -> None:
    """A script's top level, under its recursion limit (worker_depth)."""
    before = limit_script("load", 1)
    try:
        exec(code, ns)
    finally:
        restore_limit(before)


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
    with Armed():
        was = S.script_running
        try:
            S.script_running = True  # compiling may run the script's macros
            statements, value_code = worker_compile.compile_evaluation(code, script)
            _run(exec, (statements, ns))
            value = _run(eval, (value_code, ns)) if value_code is not None else None
        finally:
            S.script_running = was
            _flush_output()
    return {"v": encode(value), "f": function_infos(script, ns)}


def do_call(msg: dict[str, Any]) -> Any:
    ns = S.scripts.get(msg["script"])
    if ns is None:
        raise KryonError(f"script '{msg['script']}' is not loaded in this worker", "notfound")
    fn = ns.get(msg["fn"])
    if fn is None or not callable(fn):
        raise KryonError(f"script '{msg['script']}' has no function '{msg['fn']}'", "notfound")
    return _call(fn, msg.get("a", ()))


def call_plain(msg: dict[str, Any]) -> Any:
    """``call`` when no debugger traces and no breakpoint is set (the common
    case), in one frame: what :func:`do_call`, :func:`_call`, :func:`_run`,
    :func:`_complete` and :func:`_flush_output` do, with the time limit's
    ``Armed`` entered only when the worker has a limit (without one it does
    nothing). A round trip's worker side is mostly Python calls."""
    script = msg["script"]
    ns = S.scripts.get(script)
    if ns is None:
        raise KryonError(f"script '{script}' is not loaded in this worker", "notfound")
    fn = ns.get(msg["fn"])
    if fn is None or not callable(fn):
        raise KryonError(f"script '{script}' has no function '{msg['fn']}'", "notfound")
    args = msg.get("a", ())
    armed = Armed() if S.time_limit else None
    if armed is not None:
        armed.__enter__()
    try:
        was = S.script_running
        S.script_running = True
        try:
            before = 0
            if S.max_recursion:
                if S.call_limit and not S.waits:  # worker_depth.limit_script's outermost case, written out
                    before = _get_limit()
                    _set_limit(S.call_limit)
                else:
                    before = limit_script("call")
            try:
                result = fn(*args)
            finally:
                if before:
                    _set_limit(before)
            t = type(result)
            if t is types.CoroutineType or t is types.GeneratorType:
                result = _finish(result)
        finally:
            S.script_running = was
            out, err = sys.stdout, sys.stderr
            if (isinstance(out, ScriptOutput) and out.buf) or (isinstance(err, ScriptOutput) and err.buf):
                _flush_output()
    finally:
        if armed is not None:
            armed.__exit__(None, None, None)
    t = type(result)
    if t is int or t is float or t is bool or result is None:
        return result
    return encode(result)


def do_callh(msg: dict[str, Any]) -> Any:
    fn = S.handles.get(msg["h"])
    if fn is None:
        raise KryonError("this function was released or its worker restarted", "runtime")
    return _call(fn, msg.get("a", ()))


def _call(fn: Callable[..., Any], args: Any) -> Any:
    with Armed():
        was = S.script_running
        S.script_running = True
        try:
            result = _run(fn, args)
        finally:
            S.script_running = was
            _flush_output()
    return encode(result)


def _run(fn: Callable[..., Any], args: Any) -> Any:
    D = worker_channel.D
    if D.active:  # the debugger's tracer (see worker_debug), also while a coroutine or generator runs
        return D.run(_complete, (fn, args))
    return _complete(fn, args) if not S.breakpoints else traced(_complete, (fn, args))


def _complete(fn: Callable[..., Any], args: Any) -> Any:
    """``fn(*args)``, a coroutine it returns run to its end, a generator listed."""
    before = limit_script("complete", 1 if fn is exec or fn is eval else 0)
    try:
        result = fn(*args)
    finally:
        restore_limit(before)
    if isinstance(result, (types.CoroutineType, types.GeneratorType)):
        return _finish(result)
    return result


def _finish(result: types.CoroutineType[Any, Any, Any] | types.GeneratorType[Any, Any, Any]) -> Any:
    """A coroutine run to its end, a generator listed. The coroutine runs as
    a task of the worker's loop, under the call's one time limit (the timer
    interrupts the loop's wait as well as script code); a call stopped while
    its task still waits abandons the task (:func:`_abandon`)."""
    if isinstance(result, types.CoroutineType):
        loop = S.loop
        if loop is None:
            result.close()
            raise RuntimeError("async functions need asyncio, which this worker was not started with")
        limits: list[int] = []
        task = loop.create_task(_limited(result, limits))
        try:
            return loop.run_until_complete(task)
        except BaseException as exc:
            if not task.done() or isinstance(exc, worker_channel.ScriptTimeout):
                _mark_suspended(exc, result)
                _abandon(loop)
            raise
        finally:
            if limits:
                restore_limit(limits[0])
    before = limit_script("generator")  # list() resumes the generator's frame (no evaluator entry of its own)
    try:
        return list(result)
    finally:
        restore_limit(before)


async def _limited(coroutine: types.CoroutineType[Any, Any, Any], limits: list[int]) -> Any:
    """The awaited call's coroutine, its task steps (and those of the tasks
    it starts, which the loop runs from this frame's depth: one frame more
    for them) under the script's recursion limit, set from the depth of this
    first step (worker_depth)."""
    limits.append(limit_script("task"))
    return await coroutine


def _mark_suspended(exc: BaseException, coroutine: types.CoroutineType[Any, Any, Any]) -> None:
    """An error that stopped the call while its coroutine waited (the timer
    landed in the loop's wait, not in script code) carries no script frame:
    give it the script frames the coroutine is suspended in, innermost first,
    so the host's error names the line of the ``await``."""
    if worker_channel.traceback_stack(exc.__traceback__):
        return
    S.internal += 1  # the worker's own walk of frames (the audit hook lets it through)
    try:
        frames: list[Any] = []
        awaited: Any = coroutine
        while awaited is not None and len(frames) < 256:
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
            if frame is None:
                break
            frames.append(frame)
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
        stack = [worker_channel.frame_entry(f) for f in reversed(frames) if worker_channel.is_script_frame(f)]
    finally:
        S.internal -= 1
    if stack:
        try:
            exc._kryon_stack = stack  # type: ignore[attr-defined]
        except Exception:  # an exception class that refuses attributes keeps no stack
            pass


def _abandon(loop: Any) -> None:
    """Cancel every task still pending on the worker's loop (the stopped
    call's and those it started: the worker runs one script) and let them
    unwind under a cleanup budget (a quarter of the time limit, the timer's
    ScriptTimeout past it), so none of them runs on inside the script's next
    call. A task that outlasts its budget is left; its script's next call
    times out in turn."""
    import asyncio

    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    if not pending:
        return
    for t in pending:
        t.cancel()
    worker_timer.cleanup_budget()
    S.abandoning = True  # the host's repeated cancel (worker_timer.on_cancel) lets the unwinding finish
    try:
        loop.run_until_complete(asyncio.wait(pending))
    except BaseException:  # noqa: BLE001 - the budget ran out, or an unwinding failed: nobody awaits it
        pass
    finally:
        S.abandoning = False


def _flush_output() -> None:
    """What a call printed without a final newline still reaches the host."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, scriptenv.ScriptOutput) and stream.buf:
            stream.flush()
