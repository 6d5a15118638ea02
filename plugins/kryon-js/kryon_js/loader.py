"""Running code in a script's context: a top level (load and reload), the
listing of the functions it defined, code evaluated in the namespace of a
loaded script, and the state a reload carries from the old version to the
new one. Everything here runs inside the script's runtime (``state.run``),
under its deadline."""

from __future__ import annotations

import json
from typing import Any

from kryon_core import (
    CompiledScript,
    CompileError,
    FunctionInfo,
    FunctionRef,
    ScriptRuntimeError,
    ScriptTimeoutError,
    SizeLimitError,
)

from . import capi
from .compiling import checked_source
from .errors import from_info
from .evalsites import may_have_sites
from .plugin import LANGUAGE
from .regexcost import CostlyPattern, ReadTimeout, check_literals
from .runtime import BINDING_ERRORS
from .scan import declared_names, parse_params, scan_functions
from .state import ScriptState

#: the reload hook a new version may define (JavaScript's case style)
RELOAD_HOOK = "onReload"


def compile_in(state: ScriptState, text: str, name: str) -> bytes:
    """Bytecode of ``text`` compiled (not run) in ``state``'s context, named ``name``."""
    try:
        return capi.compile_only(state.ctx, text, name, state.holder)
    except capi.CompileFailed:
        if state.cut:  # the watchdog cut a parse that ran past the deadline (cutoff.py)
            try:
                state.take_held()
            except BINDING_ERRORS:  # the interrupt fires on the way: the held error goes with the runtime
                pass
            raise ScriptTimeoutError("compiling the script ran longer than the policy's time_limit", language=LANGUAGE,
                                     script=name) from None
        state.take_held()
        stash, state.stash = state.stash, None
        info = json.loads(stash[1]) if stash else {"isError": True, "name": "SyntaxError", "message": "?"}
        err = from_info(info, name, input_is_script=False, host_errors={}, compiling=True)
        raise CompileError(err.message, language=LANGUAGE, script=name, line=err.line, column=err.column,
                           stack=err.stack) from None


def compile_limited(state: ScriptState, text: str, name: str) -> bytes:
    """:func:`compile_in`; under a time limit, the regex literals of ``text`` are
    measured first (QuickJS compiles them with the parse, which never polls)."""
    if state.time_limit is None:
        return compile_in(state, text, name)
    try:
        check_literals(text, state.host.expired)
    except ReadTimeout:
        raise ScriptTimeoutError("compiling the script ran longer than the policy's time_limit", language=LANGUAGE,
                                 script=name) from None
    except CostlyPattern as exc:
        raise SizeLimitError(exc.message, language=LANGUAGE, script=name, line=exc.line, column=exc.column) from None
    return compile_in(state, text, name)


def run_top_level(state: ScriptState, compiled: CompiledScript) -> None:
    """Run a script's top level in its fresh context, then its pending jobs,
    then list its functions (call inside ``state.run``)."""
    if state.host.capi:
        code = compiled.bytecode
        probed = _probed_bytecode(state, compiled.id)
        if probed is not None:
            code = probed
        elif state.eval_guard and may_have_sites(compiled.source):  # eval sites rewritten (compiling.py)
            code = compile_limited(state, checked_source(state, compiled.source, compiled.id, top_level=True), compiled.id)
        elif (capi.bytecode_name(code) != compiled.id  # foreign, or compiled under another name
                or (compiled.from_cache and state.policy.sandboxed)):  # disk bytecode is not verified
            code = compile_limited(state, compiled.source, compiled.id)
        if not capi.run_bytecode(state.ctx, code, state.holder):
            state.take_held()
            state.unbox()
    else:
        eval_source(state, checked_source(state, state.debug_source or compiled.source, compiled.id, top_level=True),
                    compiled.id)
    state.pump()
    state.sources.append(compiled.source)
    state.functions = describe(state)


def _probed_bytecode(state: ScriptState, name: str) -> bytes | None:
    """The source with statement probes compiled, while a debugger is attached (debugging.py)."""
    if state.debug_source is None:
        return None
    try:
        return compile_limited(state, checked_source(state, state.debug_source, name, top_level=True), name)
    except CompileError:  # pragma: no cover - a rewrite QuickJS rejects: the script runs undebugged
        state.debug_source = None
        return None


def eval_source(state: ScriptState, source: str, name: str) -> Any:
    """The binding's own eval (when the C API is not reachable)."""
    try:
        return state.ctx.eval(source)
    except BINDING_ERRORS as exc:
        err = state.host.binding_error(state, exc)
        if "SyntaxError" in str(exc.args[0] if exc.args else ""):
            raise CompileError(err.message, language=LANGUAGE, script=name, line=err.line,
                               column=err.column, stack=err.stack) from None
        raise err from None


def describe(state: ScriptState) -> dict[str, FunctionInfo]:
    """The functions the script's globals hold now (global declarations and
    top-level bindings of every source run in it)."""
    text = "\n".join(state.sources)
    listing = json.loads(state.describe(json.dumps(declared_names(text))))
    lines = scan_functions(state.sources[0] if state.sources else "")
    out: dict[str, FunctionInfo] = {}
    for name, src, kind, _length in listing:
        names, variadic = parse_params(src)
        out[name] = FunctionInfo(
            name=name, parameter_count=len(names), parameter_names=tuple(names),
            is_async=kind in ("async", "asyncgenerator"), is_generator=kind in ("generator", "asyncgenerator"),
            is_variadic=variadic, line=lines[name].line if name in lines else None,
        )
    return out


def evaluate_in(state: ScriptState, code: str) -> Any:
    """Run ``code`` as global code of the script's context; its completion
    value as a host value (call inside ``state.run``). Frames of the code
    name the script, lines counted within ``code``."""
    code = checked_source(state, code, state.script)
    if state.host.capi:
        bytecode = compile_limited(state, code, state.script)
        if not capi.run_bytecode(state.ctx, bytecode, state.holder, keep_result=True):
            state.take_held()
            state.unbox()
        value = state.result(state.take_result())
    else:
        value = state.result(state.eval_code(code))
    state.pump()
    state.sources.append(code)
    state.functions = describe(state)
    return value


# -- reload that keeps state --------------------------------------------------------------------
def data_of(state: ScriptState) -> dict[str, Any]:
    """The old version's module-level data as plain values: every global
    binding holding value-model data; functions, and data holding functions,
    are left out (call inside ``state.run``)."""
    names = declared_names("\n".join(state.sources))
    data = state.result(state.snapshot(json.dumps(names)))
    return {k: v for k, v in (data or {}).items() if not _holds_function(v)}


def _holds_function(value: Any) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, FunctionRef):
            return True
        if isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
    return False


def carry_over(state: ScriptState, old: dict[str, Any]) -> None:
    """Give the new version the old version's state (call inside ``state.run``):
    through its ``onReload(oldState)`` hook when it defines one (the map it
    returns is set, name by name), else every old datum the new version
    leaves undefined or null. A failing hook raises (the reload is rolled back)."""
    if RELOAD_HOOK in state.functions:
        returned = state.result(state.call_name(RELOAD_HOOK, state.to_js([old])))
        if returned is None:
            return
        if not isinstance(returned, dict):
            raise ScriptRuntimeError(f"{RELOAD_HOOK} must return an object of module-level names to set, or nothing",
                                     language=LANGUAGE, script=state.script)
        assign(state, returned, only_unset=False)
        return
    assign(state, old, only_unset=True)


def assign(state: ScriptState, values: dict[str, Any], *, only_unset: bool) -> None:
    for name, value in values.items():
        state.result(state.restore(name, state.to_js(value), only_unset))
