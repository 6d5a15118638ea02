"""The Tally ScriptEngine: what the Kryon manager talks to.

One engine holds one interpreter and any number of scripts, each a
namespace (an environment whose parent holds the engine's globals, whose
parent holds the builtins and the ``kryon`` API). Every entry from the host
takes the engine's lock, sets the policy's limits when it is the outermost
entry, and turns interpreter errors into kryon_core errors naming the
language, script, line and column, with the Tally stack.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from kryon_core import (
    BreakpointHit,
    CompiledScript,
    CompileError,
    EngineCapabilities,
    EngineConfig,
    FunctionInfo,
    FunctionNotFoundError,
    FunctionRef,
    GarbageCollectionStats,
    MemoryUsage,
    RecursionLimitError,
    ScriptBridge,
    ScriptEngine,
    ScriptError,
    ScriptNotFoundError,
    ScriptRuntimeError,
    SecurityPolicy,
    StackFrame,
)

from . import LANGUAGE, __version__
from .bridge import kryon_api
from .interpreter import Closure, Env, Frame, Interpreter, check_syntax
from .reader import Form, ReadError, read
from .sandbox import Limits, TallyError
from .values import Converter

__all__ = ["TallyEngine", "Script"]


class Script:
    __slots__ = ("id", "env", "policy", "alive")

    def __init__(self, script_id: str, env: Env, policy: SecurityPolicy) -> None:
        self.id, self.env, self.policy, self.alive = script_id, env, policy, True


class TallyEngine(ScriptEngine):
    language = LANGUAGE
    extensions = (".tally",)

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()
        self._limits = self.limits = Limits()
        self._conv = Converter(self)
        self._root = Env()
        self._globals = Env({}, self._root)
        self._interp = Interpreter(self._root, self._limits, self._conv.to_host, self._conv.to_tally)
        self._scripts: dict[str, Script] = {}
        self._active = 0  # nesting of host entries (host -> tally -> host -> tally ...)
        self._breakpoints: dict[int, tuple[str, int]] = {}
        self._next_breakpoint = 1

    # -- identification --------------------------------------------------------
    @property
    def version(self) -> str:
        return f"Tally {__version__}"

    @property
    def capabilities(self) -> EngineCapabilities:
        # only what the contract suite exercises: limits and policy (sandbox),
        # stack traces and breakpoints (debugging)
        return EngineCapabilities(supports_sandbox=True, supports_debugging=True)

    def initialize(self, config: EngineConfig) -> None:
        super().initialize(config)
        self._interp.output = config.output

    def setup_bridge(self, bridge: ScriptBridge) -> None:
        # each script binds its own view of the bridge when it loads (see _run_new)
        super().setup_bridge(bridge)

    def bridge_convert_unknown(self, value: Any) -> Any:
        if self.bridge is None:
            from kryon_core import ConversionError

            raise ConversionError(f"cannot pass a {type(value).__name__} to tally", language=LANGUAGE)
        return self.bridge.convert_unknown(value)

    # -- compile and load --------------------------------------------------------
    def compile(self, source: "str | bytes", name: str, *, policy: SecurityPolicy | None = None) -> CompiledScript:
        text = self._text(source, name)
        forms = self._read(text, name)
        functions = {}
        for form in forms:
            if isinstance(form, Form) and len(form) >= 3 and form[0] == "fn":
                params = [str(p) for p in form[2]]
                functions[str(form[1])] = _info(str(form[1]), params, form.line)
        return CompiledScript(id=name, language=LANGUAGE, source=text, functions=functions,
                              engine_version=self.version)

    def load_script(self, compiled: CompiledScript, *, policy: SecurityPolicy | None = None) -> str:
        with self._lock:
            script = self._run_new(compiled, policy)
            self._scripts[script.id] = script
            return script.id

    def reload_script(self, script_id: str, compiled: CompiledScript, *, policy: SecurityPolicy | None,
                      previous: CompiledScript) -> None:
        # the new version runs in a fresh namespace and replaces the old one
        # only if its top level succeeded: a failed reload leaves the old
        # state untouched
        with self._lock:
            self._scripts[script_id] = self._run_new(compiled, policy)

    def _run_new(self, compiled: CompiledScript, policy: SecurityPolicy | None) -> Script:
        forms = self._read(compiled.source, compiled.id)
        policy = policy or self.config.policy
        # the script's own kryon API: calls through it act on behalf of this script
        api = kryon_api(self.bridge.for_script(compiled.id, policy)) if self.bridge is not None else {}
        script = Script(compiled.id, Env(api, self._globals), policy)
        self._enter(script.policy, lambda: self._interp.run_top(forms, script))
        return script

    def unload_script(self, script_id: str) -> None:
        with self._lock:
            script = self._scripts.pop(script_id, None)
            if script is None:
                raise ScriptNotFoundError(f"no tally script '{script_id}' is loaded", language=LANGUAGE,
                                          script=script_id)
            script.alive = False
            script.env.vars.clear()

    def list_functions(self, script_id: str) -> dict[str, FunctionInfo]:
        script = self._script(script_id)
        return {name: _info(name, f.params + ([f.rest] if f.rest else []), f.line, f.rest is not None)
                for name, f in script.env.vars.items() if type(f) is Closure}

    # -- calls ----------------------------------------------------------------------
    def call_function(self, function: str, args: Sequence[Any], *, script: str) -> Any:
        with self._lock:
            owner = self._script(script)
            f = owner.env.vars.get(function)
            if type(f) is not Closure:
                raise FunctionNotFoundError(f"tally script '{script}' defines no function '{function}'",
                                            language=LANGUAGE, script=script)
            return self.call_closure(f, args)

    def call_closure(self, f: Closure, args: Sequence[Any]) -> Any:
        """Call a Tally function from the host (host values in and out)."""
        with self._lock:
            if not f.script.alive:
                raise ScriptRuntimeError(f"function '{f.name}' belongs to an unloaded script", language=LANGUAGE,
                                         script=f.script.id)
            conv = self._conv

            def run() -> Any:
                return conv.to_host(self._interp.call(f, [conv.to_tally(a) for a in args], strict=False))

            return self._enter(f.script.policy, run)

    def function_ref(self, f: Closure) -> FunctionRef:
        return FunctionRef(lambda *args: self.call_closure(f, args), name=f.name, language=LANGUAGE,
                           script=f.script.id)

    def get_function(self, function: str, *, script: str) -> FunctionRef:
        call = self.call_function
        return FunctionRef(lambda *args: call(function, args, script=script), name=function, language=LANGUAGE,
                           script=script)

    def _enter(self, policy: SecurityPolicy, run: Callable[[], Any]) -> Any:
        """Run with the policy's limits (set by the outermost entry only) and
        turn interpreter errors into kryon errors."""
        outer = self._active == 0
        if outer:
            self._limits.start(policy)
        self._active += 1
        try:
            return run()
        except TallyError as exc:
            raise exc.kind(exc.message, language=LANGUAGE, script=exc.script, line=exc.line, column=exc.col,
                           stack=exc.stack, value=exc.value) from None
        except RecursionError:
            raise RecursionLimitError("Python's stack ran out (recursion too deep)", language=LANGUAGE) from None
        finally:
            self._active -= 1

    # -- globals ------------------------------------------------------------------------
    def set_global(self, name: str, value: Any) -> None:
        with self._lock:
            self._globals.vars[name] = self._conv.to_tally(value)

    def get_global(self, name: str) -> Any:
        with self._lock:
            return self._conv.to_host(self._globals.vars.get(name))

    # -- memory ---------------------------------------------------------------------------
    def get_memory_usage(self) -> MemoryUsage:
        with self._lock:
            used = _deep_size([self._globals.vars] + [s.env.vars for s in self._scripts.values()])
            return MemoryUsage(used_bytes=used, limit=self.config.policy.memory_limit, scripts=len(self._scripts))

    def collect_garbage(self) -> GarbageCollectionStats:
        start = time.perf_counter()
        before = self.get_memory_usage().used_bytes
        freed = gc.collect()
        after = self.get_memory_usage().used_bytes
        return GarbageCollectionStats(before, after, freed, (time.perf_counter() - start) * 1000)

    # -- debugging ----------------------------------------------------------------------------
    def get_stack_trace(self) -> list[StackFrame]:
        return self._interp.stack(with_locals=True)

    def set_breakpoint(self, file: str, line: int) -> int:
        with self._lock:
            bid = self._next_breakpoint
            self._next_breakpoint += 1
            self._breakpoints[bid] = (file, int(line))
            self._interp.on_line = self._on_line
            return bid

    def remove_breakpoint(self, breakpoint_id: int) -> None:
        with self._lock:
            if self._breakpoints.pop(breakpoint_id, None) is None:
                raise ScriptError(f"no breakpoint {breakpoint_id}", language=LANGUAGE)
            if not self._breakpoints:
                self._interp.on_line = None

    def _on_line(self, frame: Frame) -> None:
        for bid, (script, line) in list(self._breakpoints.items()):
            if line == frame.line and script == frame.script.id and self.breakpoint_handler is not None:
                stack = self.get_stack_trace()
                self.breakpoint_handler(BreakpointHit(bid, LANGUAGE, script, line, stack))

    def close(self) -> None:
        with self._lock:
            for script in self._scripts.values():
                script.alive = False
            self._scripts.clear()

    # -- helpers ---------------------------------------------------------------------------------
    def _script(self, script_id: str) -> Script:
        script = self._scripts.get(script_id)
        if script is None:
            raise ScriptNotFoundError(f"no tally script '{script_id}' is loaded", language=LANGUAGE,
                                      script=script_id)
        return script

    @staticmethod
    def _text(source: "str | bytes", name: str) -> str:
        if isinstance(source, str):
            return source
        try:
            return bytes(source).decode("utf-8")
        except UnicodeDecodeError as exc:
            line = bytes(source)[: exc.start].count(b"\n") + 1
            raise CompileError("source is not valid UTF-8", language=LANGUAGE, script=name, line=line) from None

    @staticmethod
    def _read(text: str, name: str) -> list[Any]:
        try:
            forms = read(text)
            for form in forms:
                check_syntax(form)
            return forms
        except ReadError as exc:
            raise CompileError(exc.message, language=LANGUAGE, script=name, line=exc.line, column=exc.col) from None
        except TallyError as exc:
            raise CompileError(exc.message, language=LANGUAGE, script=name, line=exc.line, column=exc.col) from None


def _info(name: str, params: list[str], line: int, variadic: bool = False) -> FunctionInfo:
    if "&" in params:
        params = [p for p in params if p != "&"]
        variadic = True
    return FunctionInfo(name=name, parameter_count=len(params), parameter_names=tuple(params),
                        is_variadic=variadic, line=line)


def _deep_size(roots: list[Any], limit: int = 100_000) -> int:
    """Approximate bytes reachable from ``roots`` through lists and dicts."""
    seen: set[int] = set()
    todo = list(roots)
    total = 0
    while todo and len(seen) < limit:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if type(obj) is dict:
            todo.extend(obj.keys())
            todo.extend(obj.values())
        elif type(obj) is list:
            todo.extend(obj)
    return total
