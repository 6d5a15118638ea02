"""The Wren engine: Kryon's ScriptEngine over the project's own Wren VM.

Every loaded script has its own Wren VM, named module = script id, inside a
wasm instance shared by the scripts of one kind of limits (sandbox.py). In
each VM the module "kryon" (bridge.py) is defined first, so a script writes
``import "kryon" for Kryon``. ``import "other" for X`` asks the manager's
module loader for the source of another loaded Wren script (or a file beside
the importing one) and runs it inside the importing script's VM (a copy with
its own state, as in every Wren host).

Callable functions are static methods of top-level classes
(``"Counter.increment"``, getters too) and top-level variables holding a Fn
(``"greet"``); ``compile`` finds both by scanning the source, ``load_script``
keeps the variables that really hold a Fn, with its arity.

Limits and debugging: the policy's ``max_recursion`` bounds the call frames
of each Wren fiber (the VM's ``wren_set_max_frames``). Breakpoints are
(script, line) pairs applied to every script's VM (the VM patches the first
instruction of each run of the line, so code without breakpoints runs
untouched); ``get_stack_trace`` inside a host function called from Wren, or
inside the breakpoint handler, reads the paused VMs' frames.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import itertools
import math
import re
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kryon_core import (
    AccessDeniedError,
    BreakpointHit,
    CompiledScript,
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
    UserData,
)
from kryon_core.threads import EngineGate

from . import reload, sandbox
from .bridge import IO_SOURCE, kryon_module_source, spread_call_args
from .values import MAX_SAFE, WrenObject, host_callable, prepare, resolve

LANG = "wren"
_IMPORT = re.compile(r'^[ \t]*import[ \t]+"([^"\n]+)"', re.M)
_COMPILE_GUARD = 'Fiber.abort("kryon: compile only")\n'


@dataclass
class _Pool:
    """The wasm instance one script lives in, and the gate into it. Every
    script has its own, so a trap (out of memory, a time limit, a VM fault)
    restarts that script alone; the others keep their state."""

    key: sandbox.LimitsKey
    instance: Any
    gate: EngineGate
    states: list["_VMState"] = field(default_factory=list)
    restarts: int = 0


@functools.lru_cache(maxsize=1)
def _vm_build() -> str:
    """A short digest of the wasm build the engine runs."""
    from .vm import WASM_PATH

    try:
        return hashlib.sha256(WASM_PATH.read_bytes()).hexdigest()[:12]
    except OSError:
        return "unbuilt"


class _VMState:
    """One loaded script: its Wren VM and what the engine knows about it."""

    def __init__(self, engine: "WrenEngine", compiled: CompiledScript, policy: SecurityPolicy, pool: _Pool) -> None:
        self.engine = engine
        self.script_id = compiled.id
        self.compiled = compiled
        self.policy = policy
        self.pool = pool
        self.vm: Any = None
        self.functions: dict[str, FunctionInfo] = {}
        self.callers: dict[str, Callable[..., Any]] = {}
        self.pending: ScriptError | None = None
        self.release_queue: list[Any] = []
        self._line: list[str] = []
        self._reset_registry()

    def _reset_registry(self) -> None:
        self.objects: dict[int, Any] = {}
        self.ids: dict[Any, int] = {}
        self.wren_handles: dict[int, Any] = {}
        self.next_id = itertools.count()
        self.calls: dict[str, Any] = {}

    # -- the VM ----------------------------------------------------------------------
    def start(self) -> None:
        """Make the VM and run the kryon module and the script's top level."""
        from .vm import WrenVM

        self._reset_registry()
        self.callers = {}
        self._api: dict[str, Callable[..., Any]] | None = None
        extras = tuple(self.engine.bridge.extra) if self.engine.bridge is not None else ()
        vm = WrenVM(
            instance=self.pool.instance,
            write=self._write,
            load_module=self._load_module,
            bind_foreign=self._bind_foreign,
            breakpoint=self._on_breakpoint,
            max_frames=self.policy.max_recursion or None,
            prelude=(("kryon", kryon_module_source(extras)),),  # compiled once per process (snapshot.py)
        )
        self.debug_poll = vm._c("wren_debug_poll_pointer")  # a debugger may ask from any thread
        self.vm = vm
        for script, line in self.engine._breakpoint_lines():
            vm.add_breakpoint(script, line)
        if self.engine._debug is not None:
            self.engine._debug.started(self)
        self.host = vm.variable_handle("kryon", "KryonHost")
        bytecode = self.compiled.bytecode
        # A cached module runs without the Wren compiler; an entry the VM
        # refuses (corrupt, another format or VM build) falls back to the source.
        if not bytecode or not vm.interpret_bytecode(bytecode, module=self.script_id):
            vm.interpret(self.compiled.source, module=self.script_id)
        self.flush()

    def close(self) -> None:
        vm, self.vm = self.vm, None
        if vm is not None:
            try:
                vm.close()
            except Exception:
                pass

    def call_handle(self, signature: str) -> Any:
        handle = self.calls.get(signature)
        if handle is None:
            handle = self.calls[signature] = self.vm.make_call_handle(signature)
        return handle

    def helper(self, signature: str, *args: Any) -> Any:
        return self.vm.call(self.host, self.call_handle(signature), *args)

    def ask(self, signature: str, value: Any, otherwise: int) -> int:
        """A kindOf/arityOf question about a script's value; ``otherwise``
        when answering it fails (a class may redefine ``is`` or a static
        ``is(_)``, so ``x is Fn`` holds and ``x.arity`` is missing)."""
        from .vm import WrenRuntimeError

        try:
            return int(self.helper(signature, value))
        except WrenRuntimeError:
            return otherwise

    def invoke(self, fn: Any, args: Sequence[Any]) -> Any:
        """Calls a Fn (or an object with call(...)) with prepared arguments.

        The result travels through ``wren_call_num``: a result left in slot
        0 by ``wren_call`` does not survive a foreign method run during the
        call (the VM resets its slot count), so arguments go in by one call
        (``KryonHost.prep``) and the call runs by a second (``go()``)."""
        vm = self.vm
        vm.call(self.host, self.call_handle("prep(_,_)"), fn, list(args))
        return vm.call_num(self.host, self.call_handle("go()"))

    def method_fn(self, owner: str, method: str, n: int, getter: bool) -> Any:
        """A Fn calling static method ``owner.method`` with n arguments."""
        key = f"fn:{owner}.{method}/{n}"
        handle = self.calls.get(key)
        if handle is None:
            params = ", ".join(f"a{i}" for i in range(n))
            target = f"{owner}.{method}" if getter and n == 0 else f"{owner}.{method}({params})"
            module = f"{self.script_id}#call{next(self.engine._async_ids)}"
            self.vm.interpret(
                f'import "{self.script_id}" for {owner}\nvar run = Fn.new {{{_bars(params)} {target} }}\n', module=module
            )
            handle = self.calls[key] = self.vm.variable_handle(module, "run")
        return handle

    def drain(self) -> None:
        queue, self.release_queue = self.release_queue, []
        for handle in queue:
            if handle.vm is self.vm:
                handle.release()

    # -- output and modules ----------------------------------------------------------
    def _write(self, text: str) -> None:
        parts = text.split("\n")
        if len(parts) == 1:
            self._line.append(text)
            return
        output = self.engine.config.output
        first = "".join(self._line) + parts[0]
        self._line = [parts[-1]] if parts[-1] else []
        output(first)
        for part in parts[1:-1]:
            output(part)

    def flush(self) -> None:
        if self._line:
            text, self._line = "".join(self._line), []
            self.engine.config.output(text)

    def _load_module(self, name: str) -> str | None:
        if name == "io":
            return IO_SOURCE
        loader = self.engine.config.module_loader
        source = loader(self.script_id, name) if loader is not None else None
        if source is None and self.compiled.filename and _plain_module_name(name):
            # while a script's top level runs the manager does not know its
            # file yet: look beside it here (what the manager does later)
            import os

            candidate = os.path.join(os.path.dirname(self.compiled.filename), name + ".wren")
            if os.path.isfile(candidate):
                with open(candidate, encoding="utf-8") as f:
                    source = f.read()
        return source

    # -- host values in Wren -----------------------------------------------------------
    def register(self, value: Any) -> int:
        """The registry number of a host value: equal hashable handles (an
        ElementHandle fetched twice) share one number, so they are one Wren
        object and ``==`` holds in Wren; other objects go by identity."""
        try:
            cls: Any = type(value)
            key: Any = value if cls.__hash__ is not object.__hash__ and cls.__eq__ is not object.__eq__ else None
            if key is not None:
                hash(key)
        except TypeError:
            key = None
        by_id = key is None
        if by_id:
            key = ("id", id(value))
        number_ = self.ids.get(key)
        if number_ is None or (by_id and self.objects.get(number_) is not value):
            number_ = next(self.next_id)
            self.ids[key] = number_
            self.objects[number_] = value
        return number_

    def host_handle(self, value: Any) -> Any:
        """A Wren handle standing for a host value (values.prepare)."""
        if isinstance(value, WrenObject) and getattr(value.value, "vm", None) is self.vm:
            return value.value
        if isinstance(value, FunctionRef):
            own = self.engine._wren_fns.get(value)
            if own is not None and own[0] is self and own[1].vm is self.vm:
                return own[1]
        elif not (isinstance(value, UserData) or host_callable(value)):
            converted = self.engine.convert_unknown(value)
            if converted is not value:
                return prepare(self, converted)
        number_ = self.register(value)
        handle = self.wren_handles.get(number_)
        if handle is None:
            signature = "fn(_)" if host_callable(value) else "ref(_)"
            handle = self.helper(signature, number_)
            self.wren_handles[number_] = handle
        return handle

    def from_handle(self, handle: Any) -> Any:
        """A Wren object read from a slot as a host value (values.resolve)."""
        kind = self.ask("kindOf(_)", handle, -2)
        if kind >= 0:
            handle.release()
            return self.objects[int(kind)]
        if kind == -1:
            return self.engine._fn_ref(self, handle)
        obj = WrenObject(handle)
        weakref.finalize(obj, self.release_queue.append, handle)
        return obj

    # -- foreign methods -----------------------------------------------------------------
    def _bind_foreign(self, module: str, class_name: str, is_static: bool, signature: str) -> Any:
        if not is_static:
            return None
        name = signature[: signature.index("(")] if "(" in signature else signature
        if module == "kryon" and class_name == "Kryon":
            if name == "global":
                return self._foreign(lambda n: self.engine._globals.get(n))
            bridge = self.engine.bridge
            if bridge is None:
                return self._foreign(_no_bridge(name))
            api = self._api
            if api is None:
                # the script's own view: its calls carry its identity and policy,
                # and callbacks it registers are owned by it (unload releases them)
                view = bridge.for_script(self.script_id, self.policy)
                api = self._api = {method.camel: fn for method, fn in reversed(view.methods())}
            fn = api.get(name)
            if fn is None:
                return None
            if name == "call":
                return self._foreign(lambda target, *rest, _fn=fn: _fn(target, *spread_call_args(rest)))
            return self._foreign(fn)
        if module == "kryon" and class_name == "KryonHost" and name == "invoke":
            return self._foreign(lambda number_, args: self.objects[int(number_)](*args))
        if module == "io" and class_name == "File":
            return self._foreign(self._file_method(name))
        return None

    def _foreign(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        state = self
        engine = self.engine

        def foreign(*raw: Any) -> Any:
            active = engine._active
            active.append(state)  # get_stack_trace reads this VM's frames
            try:
                args = [resolve(state, a) for a in raw]
                return prepare(state, fn(*args))
            except ScriptError as exc:
                # Wren sees the error's full text (language, script, line);
                # uncaught, the host caller gets the error itself back
                state.pending = exc
                raise RuntimeError(str(exc)) from None
            finally:
                active.pop()

        return foreign

    def _on_breakpoint(self, module: str, line: int) -> None:
        try:
            debug = self.engine._debug
            if debug is not None:
                debug.on_line(self, module, line)
            if line:  # 0: the debugger's poll (debugging.py)
                self.engine._breakpoint_hit(self, module, line)
        except ScriptError as exc:  # raised by the handler: the host caller gets it back
            self.pending = exc
            raise RuntimeError(str(exc)) from None

    def frames(self, with_locals: bool = False) -> list[StackFrame]:
        """The script frames of this VM now, innermost first (the engine's
        glue modules left out); locals of the innermost one if asked."""
        vm = self.vm
        if vm is None or vm.instance.dead is not None:
            return []
        out: list[StackFrame] = []
        for index, module, line, function in vm.stack():
            if module in ("kryon", "io") or "#" in module:
                continue
            local_vars: dict[str, Any] = {}
            if with_locals and not out:
                for name, raw in vm.frame_locals(index).items():
                    try:
                        local_vars[name] = resolve(self, raw)
                    except ScriptError:
                        local_vars[name] = repr(raw)
            out.append(
                StackFrame(
                    function="<top level>" if function == "(script)" else function,
                    script=module,
                    line=line,
                    language=LANG,
                    locals=local_vars,
                )
            )
        return out

    def _file_method(self, name: str) -> Callable[..., Any]:
        def check(path: Any) -> str:
            if self.policy.sandboxed and not self.policy.allow_file_system:
                raise AccessDeniedError(
                    f"File.{name}: the script's policy does not grant the file system", language=LANG,
                    script=self.script_id,
                )
            if not isinstance(path, str):
                raise ScriptRuntimeError("Path must be a string.", language=LANG)
            return path

        def read(path: Any) -> str:
            with open(check(path), encoding="utf-8") as f:
                return f.read()

        def exists(path: Any) -> bool:
            import os

            return os.path.exists(check(path))

        return read if name == "read" else exists


def _restarted(state: _VMState) -> ScriptError:
    return ScriptRuntimeError(f"script '{state.script_id}' was restarted during the call (its instance trapped "
                              "in a call nested inside it)", language=LANG, script=state.script_id)


def _on_live_vm(state: _VMState, method: str, *args: Any) -> None:
    vm = state.vm
    if vm is not None and state.pool.instance.dead is None:
        getattr(vm, method)(*args)


def _script_id_of(file: str) -> str:
    """A breakpoint's script: the script id, or a file path naming it."""
    name = file.replace("\\", "/").rsplit("/", 1)[-1]
    return name.removesuffix(".wren")


def _bars(params: str) -> str:
    return f"|{params}|" if params else ""


def _plain_module_name(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return bool(name) and not name.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def _no_bridge(name: str) -> Callable[..., Any]:
    def fail(*args: Any) -> Any:
        raise ScriptError(f"Kryon.{name}: no kryon bridge is set up", language=LANG)

    return fail


class WrenEngine(ScriptEngine):
    language = LANG
    extensions = (".wren",)

    def __init__(self) -> None:
        super().__init__()
        self._scripts: dict[str, _VMState] = {}
        self._globals: dict[str, Any] = {}
        self._wren_fns: "weakref.WeakKeyDictionary[FunctionRef, tuple[_VMState, Any]]" = weakref.WeakKeyDictionary()
        #: guards the engine's tables only; never held while script code runs
        #: (each script's runtime is entered through its pool's gate)
        self._lock = threading.RLock()
        self._check_lock = threading.Lock()
        self._checker: Any = None
        self._checks = 0
        self._async_ids = itertools.count(1)
        #: scripts running a host function or a breakpoint handler, innermost last
        self._threads = threading.local()
        self._breakpoints: dict[int, tuple[str, int]] = {}
        self._breakpoint_ids = itertools.count(1)
        self._peak = 0
        self._debug: Any = None  # the debugger's target, once asked for (debugging.py)

    # -- identification ------------------------------------------------------------------
    @property
    def version(self) -> str:
        # The VM build is part of the version, so the compile cache keys its
        # bytecode entries on the build that wrote them.
        return f"Wren 0.4 (kryon-wren VM {_vm_build()} on wasmtime)"

    @property
    def capabilities(self) -> EngineCapabilities:
        return EngineCapabilities(
            supports_async=True,
            supports_generators=False,
            supports_coroutines=True,
            supports_modules=True,
            supports_debugging=True,
            supports_jit=False,
            supports_bytecode=True,
            supports_sandbox=True,
        )

    def initialize(self, config: EngineConfig) -> None:
        super().initialize(config)

    # -- pools -------------------------------------------------------------------------------
    def _pool(self, policy: SecurityPolicy, script_id: str) -> _Pool:
        key = sandbox.LimitsKey.for_policy(policy)
        return _Pool(key, sandbox.new_instance(key), self.make_gate(script_id))

    def _pools(self) -> list[_Pool]:
        with self._lock:
            return [s.pool for s in self._scripts.values()]

    def _rebuild(self, pool: _Pool) -> None:
        """A new instance for a script whose instance trapped; it runs its top
        level again (its own state restarts; no other script is touched)."""
        sandbox.dispose(pool.instance)
        pool.instance = sandbox.new_instance(pool.key)
        pool.restarts += 1
        for state in list(pool.states):
            state.vm = None
            try:
                state.start()
            except Exception:  # a script whose top level now fails stays loaded but broken
                state.vm = None

    def _after_trap(self, state: _VMState, exc: Exception, instance: Any = None) -> ScriptError:
        """The error for a trap of ``instance`` (the state's), after giving
        the script a new instance; nothing more when a trap of a call nested
        inside this one already replaced it."""
        error = sandbox.trap_error(exc, state.script_id)
        pool = state.pool
        if instance is not None and instance is not pool.instance:
            pending, state.pending = state.pending, None
            return pending if pending is not None else error
        if pool.instance.dead is None:
            pool.instance.dead = str(exc)
        if pool.states:
            self._rebuild(pool)
        return error

    # -- compile and load ------------------------------------------------------------------
    def compile(self, source: "str | bytes", name: str, *, policy: SecurityPolicy | None = None) -> CompiledScript:
        text = source.decode("utf-8") if isinstance(source, bytes) else source
        bytecode = self._compile_bytecode(text, name)
        return CompiledScript(
            id=name,
            language=LANG,
            source=text,
            bytecode=bytecode,
            functions=scan_functions(text),
            dependencies=[d for d in dict.fromkeys(_IMPORT.findall(text)) if d not in ("kryon", "io")],
            engine_version=self.version,
        )

    def _compile_bytecode(self, text: str, name: str) -> bytes:
        """Compile in a scratch VM without running anything: every syntax error
        is reported here, and the result is the module's serialized form
        (b"" for a module that cannot be cached: then the source is checked
        the old way and run at load)."""
        from .vm import WrenCompileError, WrenVM

        with self._check_lock:
            self._checks += 1
            if self._checker is None or self._checker.instance.dead is not None or self._checks % 200 == 0:
                if self._checker is not None:
                    sandbox.dispose(self._checker.instance)
                self._checker = WrenVM(instance=sandbox.new_instance(sandbox.LimitsKey(256 << 20, 10.0)),
                                       write=lambda text: None)
            module = f"{name}#check{next(self._async_ids)}"
            try:
                data: bytes | None = self._checker.compile_bytecode(text, module)
            except WrenCompileError as exc:
                error = sandbox.compile_error(exc, name)
                error.script = name
                raise error from None
            except Exception:  # the checker trapped: the load reports what is wrong
                self._checker = None
                return b""
        if data is None:
            self._check_syntax(text, name)
            return b""
        return data

    def _check_syntax(self, text: str, name: str) -> None:
        """Compile in a scratch VM whose first statement aborts: the compiler
        reports every syntax error and nothing of the script runs."""
        from .vm import WrenCompileError, WrenRuntimeError, WrenVM

        with self._check_lock:
            self._checks += 1
            if self._checker is None or self._checker.instance.dead is not None or self._checks % 200 == 0:
                if self._checker is not None:
                    sandbox.dispose(self._checker.instance)
                self._checker = WrenVM(instance=sandbox.new_instance(sandbox.LimitsKey(256 << 20, 10.0)),
                                       write=lambda text: None)
            module = f"{name}#check{next(self._async_ids)}"
            if text.startswith("#!"):  # a shebang is skipped only on line 1, where the guard goes
                text = "//" + text
            try:
                self._checker.interpret(_COMPILE_GUARD + text, module=module)
            except WrenCompileError as exc:
                error = sandbox.compile_error(exc, name)
                error.script = name
                if error.line is not None:
                    error.line = max(1, error.line - 1)
                raise error from None
            except WrenRuntimeError:
                pass
            except Exception:
                self._checker = None

    def load_script(self, compiled: CompiledScript, *, policy: SecurityPolicy | None = None) -> str:
        state = self._start(compiled, policy or self.config.policy)
        with self._lock:
            old = self._scripts.get(compiled.id)
            self._scripts[compiled.id] = state
        if old is not None:
            self._drop(old)
        return compiled.id

    def _start(self, compiled: CompiledScript, policy: SecurityPolicy) -> _VMState:
        pool = self._pool(policy, compiled.id)
        state = _VMState(self, compiled, policy, pool)
        return pool.gate.run(self._run_top_level, state)

    def _run_top_level(self, state: _VMState) -> _VMState:
        from .vm import WrenCompileError, WrenError, WrenRuntimeError

        instance = state.pool.instance
        instance.enter()  # the top level, and what the engine does around it, under one deadline
        try:
            try:
                state.start()
            except WrenCompileError as exc:
                raise sandbox.compile_error(exc, state.script_id) from None
            except WrenRuntimeError as exc:
                state.flush()
                raise self._runtime_error(state, exc) from None
            except WrenError as exc:
                raise self._after_trap(state, exc) from None
            state.functions = self._describe(state)
        except BaseException:
            instance.leave()
            state.close()
            sandbox.dispose(state.pool.instance)
            raise
        instance.leave()
        state.pool.states.append(state)
        return state

    def _describe(self, state: _VMState) -> dict[str, FunctionInfo]:
        functions: dict[str, FunctionInfo] = {}
        vm = state.vm
        for name, info in state.compiled.functions.items():
            if "." in name:
                if vm.has_variable(state.script_id, name.split(".", 1)[0]):
                    functions[name] = info
                continue
            if not vm.has_variable(state.script_id, name):
                continue
            handle = vm.variable_handle(state.script_id, name)  # not converted: it may hold a big value
            try:
                arity = state.ask("arityOf(_)", handle, -1)
            finally:
                handle.release()
            if arity >= 0:
                names = info.parameter_names if len(info.parameter_names) == arity else ()
                functions[name] = FunctionInfo(name=name, parameter_count=arity, parameter_names=names, line=info.line)
        return functions

    def reload_script(
        self, script_id: str, compiled: CompiledScript, *, policy: SecurityPolicy | None, previous: CompiledScript
    ) -> None:
        """The new version starts in a VM (and wasm instance) of its own and
        gets the old one's state (reload.py: its ``onReload(old)`` hook, else
        the module variables it leaves null); the old one is closed only once
        both succeeded (else it keeps running, state and all)."""
        old = self._state(script_id)
        from .vm import WrenError

        state = self._start(compiled, policy or old.policy)
        try:
            try:
                data = old.pool.gate.run(reload.read, old)
            except WrenError as exc:  # the old instance faulted: it restarts, as after any trap
                raise old.pool.gate.run(self._after_trap, old, exc) from None
            state.pool.gate.run(self._carry_over, state, data)
        except BaseException:
            self._drop(state)
            raise
        with self._lock:
            self._scripts[script_id] = state
        self._drop(old)

    def _carry_over(self, state: _VMState, data: dict[str, Any]) -> None:
        from .vm import WrenError, WrenRuntimeError

        try:
            reload.carry_over(state, data)
        except WrenRuntimeError as exc:
            state.flush()
            raise self._runtime_error(state, exc) from None
        except WrenError as exc:
            raise sandbox.trap_error(exc, state.script_id) from None
        finally:
            state.flush()
        state.functions = self._describe(state)  # the hook may have set a variable to a Fn

    def unload_script(self, script_id: str) -> None:
        with self._lock:
            state = self._scripts.pop(script_id, None)
        if state is None:
            raise ScriptNotFoundError(f"no Wren script '{script_id}' is loaded", language=LANG, script=script_id)
        self._drop(state)

    def _drop(self, state: _VMState) -> None:
        pool = state.pool

        def drop() -> None:
            if state in pool.states:
                pool.states.remove(state)
            state.flush()
            state.close()
            if not pool.states:  # the script's instance goes with it: its memory is freed whole
                sandbox.dispose(pool.instance)

        pool.gate.run(drop)

    def evaluate(self, script_id: str, code: str) -> Any:
        """Run ``code`` in the script's module. An expression is evaluated
        (``KryonHost.evalResult = (code)``, tried first: a compile error there
        runs nothing) and its value returned; anything else runs as module
        statements (its ``var`` and ``class`` definitions stay in the module)
        and gives None. Line numbers of errors count from the code's first
        line. Functions the code defines become callable."""
        from .vm import WrenCompileError, WrenError, WrenRuntimeError

        if not isinstance(code, str):
            raise ScriptError(f"code must be a str, not {type(code).__name__}", language=LANG, script=script_id)
        state = self._state(script_id)

        def run() -> Any:
            vm = state.vm
            if vm is None:
                raise ScriptRuntimeError(f"script '{script_id}' failed to restart after its instance trapped",
                                         language=LANG, script=script_id)
            inst = vm.instance
            inst.enter()  # one deadline for the code and the conversion of its value
            try:
                if not vm.has_variable(script_id, "KryonHost"):
                    vm.interpret('import "kryon" for KryonHost\n', module=script_id)
                try:
                    vm.interpret(f"KryonHost.evalResult = ({code}\n)", module=script_id)
                    is_expression = True
                except WrenCompileError:
                    vm.interpret(code, module=script_id)
                    is_expression = False
                result = resolve(state, state.helper("takeEval()")) if is_expression else None
                state.pending = None
                return result
            except WrenCompileError as exc:
                raise sandbox.compile_error(exc, script_id) from None
            except WrenRuntimeError as exc:
                state.flush()
                raise self._runtime_error(state, exc) from None
            except WrenError as exc:
                raise self._after_trap(state, exc, inst) from None
            finally:
                inst.leave()
                state.flush()
                # a definition may replace a function a caller wraps, or add one
                state.callers = {}
                found = {**state.compiled.functions, **scan_functions(code)}
                state.compiled = dataclasses.replace(state.compiled, functions=found)
                if state.vm is not None and state.pool.instance.dead is None:
                    state.functions = self._describe(state)

        return state.pool.gate.run(run)

    def list_functions(self, script_id: str) -> dict[str, FunctionInfo]:
        return dict(self._state(script_id).functions)

    def _state(self, script_id: str) -> _VMState:
        state = self._scripts.get(script_id)
        if state is None:
            raise ScriptNotFoundError(f"no Wren script '{script_id}' is loaded", language=LANG, script=script_id)
        return state

    # -- calls -------------------------------------------------------------------------------
    def call_function(self, function: str, args: Sequence[Any], *, script: str) -> Any:
        state = self._scripts.get(script) or self._state(script)
        caller = state.callers.get(function) or self._caller(state, function)
        return caller(*args)

    def get_function(self, function: str, *, script: str) -> FunctionRef:
        state = self._state(script)
        return self._function_ref(self._caller(state, function), function, script)

    def _target(self, state: _VMState, function: str) -> tuple[Any, str, bool]:
        """(receiver handle, method name, getter?) of a callable name."""
        vm = state.vm
        if vm is None:
            raise ScriptRuntimeError(
                f"script '{state.script_id}' failed to restart after its instance trapped", language=LANG,
                script=state.script_id,
            )
        owner, _, method = function.partition(".")
        if not vm.has_variable(state.script_id, owner):
            raise FunctionNotFoundError(
                f"script '{state.script_id}' defines no function '{function}'", language=LANG, script=state.script_id
            )
        receiver = vm.get_variable(state.script_id, owner)
        if not hasattr(receiver, "release"):
            raise FunctionNotFoundError(
                f"'{function}' of script '{state.script_id}' is not a Fn or class", language=LANG,
                script=state.script_id,
            )
        if method:
            info = state.compiled.functions.get(function)
            getter = bool(info is not None and info.documentation == _GETTER)
            return receiver, method, getter
        if state.ask("arityOf(_)", receiver, -1) < 0:
            receiver.release()
            raise FunctionNotFoundError(
                f"'{function}' of script '{state.script_id}' is not a Fn", language=LANG, script=state.script_id
            )
        return receiver, "call", False

    def _caller(self, state: _VMState, function: str) -> Callable[..., Any]:
        caller = state.callers.get(function)
        if caller is None:
            def make() -> Callable[..., Any]:
                receiver, method, getter = self._target(state, function)
                return self._make_caller(state, function, receiver, method, getter)

            caller = state.callers[function] = state.pool.gate.run(make)
        return caller

    def _make_caller(
        self, state: _VMState, function: str, receiver: Any, method: str, getter: bool
    ) -> Callable[..., Any]:
        from .vm import WrenError, WrenRuntimeError

        vm = state.vm
        handles: dict[int, Any] = {}
        owner = function.partition(".")[0] if method != "call" or "." in function else ""

        def signature(n: int) -> Any:
            handle = handles.get(n)
            if handle is None:
                sig = method if getter and n == 0 else f"{method}({','.join('_' * n)})"
                handle = handles[n] = state.call_handle(sig)  # shared per VM: callers of Fn refs come and go
            return handle

        from .vm import STATUS_MASK, STATUS_TAG

        fast = vm.fast_call()
        inst = vm.instance
        # The scalar fast path writes wren_call_num's raw arguments itself
        # (the layout FastCall documents), saving a Python frame per call.
        export = fast.export
        i32, i64, f64 = export.i32, export.i64, export.f64
        invoke = export.invoke_rearming_lazily()
        s32, s64 = fast.stride32, fast.stride64
        vm_ptr, receiver_ptr = vm.ptr, receiver.ptr
        copysign = math.copysign

        gate = state.pool.gate
        arm, limited, slack, clock = inst._arm_limits, inst.limited, inst._slack, time.perf_counter
        lazy = inst.timeout is not None and inst.fuel is None

        def run(args: tuple[Any, ...]) -> Any:
            if state.vm is not vm or inst.dead is not None:
                return self._stale(state, function, args)
            n = len(args)
            if state.release_queue:
                state.drain()
            # one deadline for the whole call: converting the arguments, the
            # call, host functions it calls and converting the result
            # (WasmInstance.enter and leave, inlined: this is the hot path)
            depth = inst.depth
            if not depth and limited and not (lazy and clock() - inst._armed_at < slack):
                arm()
            inst.depth = depth + 1
            try:
                method_handle = handles.get(n) or signature(n)
                if n <= 4:
                    for a in args:
                        t = type(a)
                        if t is not float and (t is not int or not -MAX_SAFE <= a <= MAX_SAFE):
                            break
                    else:
                        i32[0] = vm_ptr
                        i32[s32] = receiver_ptr
                        i32[2 * s32] = method_handle.ptr
                        i32[3 * s32] = n
                        for i in range(n):
                            f64[(4 + i) * s64] = args[i]
                        invoke()
                        if (i64[0] & STATUS_MASK) != STATUS_TAG:
                            d = f64[0]
                            if d.is_integer() and -MAX_SAFE <= d <= MAX_SAFE and (d or copysign(1.0, d) > 0):
                                return int(d)
                            return d
                        status = i64[0] & 0xFFFF
                        if status != 3:
                            vm.raise_for_status(status)
                        vm.ensure_slots(3)
                        result = vm.get_slot(0)
                        state.pending = None
                        if state.vm is not vm:
                            raise _restarted(state)
                        return resolve(state, result)
                prepared = [prepare(state, a) for a in args]
                fn = state.method_fn(owner, method, n, getter) if owner else receiver
                result = state.invoke(fn, prepared)
                state.pending = None
                if state.vm is not vm:
                    raise _restarted(state)
                return resolve(state, result)
            except WrenRuntimeError as exc:
                state.flush()
                raise self._runtime_error(state, exc) from None
            except WrenError as exc:
                raise self._after_trap(state, exc, inst) from None
            finally:
                inst.depth = depth
                if not depth and inst._close_pending:
                    inst.close()
                if state._line:
                    state.flush()

        def call(*args: Any) -> Any:
            if state.vm is not vm or inst.dead is not None:
                return self._stale(state, function, args)
            return gate.run(run, args)

        debug = self._debug
        if debug is not None and debug.attached:  # calls and returns across languages (debugging.py)
            return debug.activation(call)  # type: ignore[no-any-return]
        return call

    def _stale(self, state: _VMState, function: str, args: Sequence[Any]) -> Any:
        """A caller made for a VM that has since been replaced (a restart)."""
        current = self._scripts.get(state.script_id)
        if current is None:
            raise ScriptRuntimeError(
                f"script '{state.script_id}' was unloaded", language=LANG, script=state.script_id
            )
        if current.pool.instance.dead is not None:
            self._rebuild(current.pool)
        current.callers.pop(function, None)
        return self._caller(current, function)(*args)

    def _runtime_error(self, state: _VMState, exc: Any) -> ScriptError:
        pending, state.pending = state.pending, None
        error = sandbox.runtime_error(exc, state.script_id)
        if isinstance(error, RecursionLimitError) and state.policy.max_recursion:
            error.message = (f"Stack overflow: a fiber went deeper than {state.policy.max_recursion} "
                             "Wren call frames (the policy's max_recursion).")
            error.args = (error.message,)
        if pending is not None and exc.message in (str(pending), pending.message):
            if pending.language in (None, LANG):
                pending.language = LANG
                if pending.script is None:
                    pending.script = error.script
                if pending.line is None:
                    pending.line = error.line
            pending.stack = list(pending.stack) + error.stack
            return pending
        return error

    # -- FunctionRefs of Wren Fns -------------------------------------------------------------
    def _fn_ref(self, state: _VMState, handle: Any) -> FunctionRef:
        vm = state.vm
        # The same caller a Fn held in a script variable gets (scalar fast path,
        # conversions, error translation, output flushing); only a stale VM is
        # handled here, since an anonymous Fn cannot be looked up again by name.
        invoke = self._make_caller(state, "<fn>", handle, "call", False)

        def call(*args: Any) -> Any:
            if state.vm is not vm or vm.instance.dead is not None:
                raise ScriptRuntimeError(
                    "this Wren function no longer exists (its script was unloaded or restarted)",
                    language=LANG, script=state.script_id,
                )
            return invoke(*args)

        ref = FunctionRef(call, name="<fn>", language=LANG, script=state.script_id,
                          release=_Releaser(state, handle))
        self._wren_fns[ref] = (state, handle)
        return ref

    # -- async: fibers -------------------------------------------------------------------------
    async def call_function_async(self, function: str, args: Sequence[Any], *, script: str) -> Any:
        """Run the function in a new fiber. ``Fiber.yield()`` gives the loop a
        turn; ``Fiber.yield(ms)`` with a number sleeps that long; the fiber's
        return value is the result."""
        from .vm import WrenError, WrenRuntimeError

        state = self._state(script)
        gate = state.pool.gate
        fiber = gate.run(self._fiber, state, function, args)
        vm = state.vm

        def step() -> tuple[bool, Any]:
            if state.vm is not vm:
                raise ScriptRuntimeError("the script was unloaded or restarted while awaited",
                                         language=LANG, script=script)
            vm.instance.enter()
            try:
                vm.call(state.host, state.call_handle("prep(_,_)"), fiber, [])
                done, value = vm.call_num(state.host, state.call_handle("stepGo()"))
                state.pending = None
                return bool(done), resolve(state, value)
            except WrenRuntimeError as exc:
                state.flush()
                raise self._runtime_error(state, exc) from None
            except WrenError as exc:
                raise self._after_trap(state, exc, vm.instance) from None
            finally:
                vm.instance.leave()
                state.flush()

        try:
            while True:
                done, value = gate.run(step)
                if done:
                    return value
                delay = value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0
                await asyncio.sleep(max(0.0, float(delay)) / 1000.0)
        finally:
            if state.vm is vm:
                gate.run(fiber.release)

    def _fiber(self, state: _VMState, function: str, args: Sequence[Any]) -> Any:
        from .vm import WrenCompileError, WrenRuntimeError

        params = ", ".join(f"a{i}" for i in range(len(args)))
        owner, _, method = function.partition(".")
        if not state.vm.has_variable(state.script_id, owner):
            raise FunctionNotFoundError(f"script '{state.script_id}' defines no function '{function}'",
                                        language=LANG, script=state.script_id)
        info = state.compiled.functions.get(function)
        if method and not args and info is not None and info.documentation == _GETTER:
            invoke = f"{owner}.{method}"
        else:
            invoke = f"{owner}.{method}({params})" if method else f"{owner}.call({params})"
        key = f"async:{function}/{len(args)}"
        try:
            maker = state.calls.get(key)
            if maker is None:
                module = f"{state.script_id}#async{next(self._async_ids)}"
                source = (f'import "{state.script_id}" for {owner}\n'
                          f"var run = Fn.new {{{_bars(params)} Fiber.new {{ {invoke} }} }}\n")
                state.vm.interpret(source, module=module)
                maker = state.calls[key] = state.vm.variable_handle(module, "run")
            prepared = [prepare(state, a) for a in args]
            return state.invoke(maker, prepared)
        except (WrenCompileError, WrenRuntimeError) as exc:
            raise self._runtime_error(state, exc) from None

    # -- debugging -----------------------------------------------------------------------------------
    @property
    def _active(self) -> list[_VMState]:
        """The calling thread's scripts running a host function or a
        breakpoint handler, innermost last."""
        try:
            return self._threads.active  # type: ignore[no-any-return]
        except AttributeError:
            active = self._threads.active = []
            return active

    def debug_target(self) -> Any:
        """Breakpoints, stepping, pausing and inspection for the debugger
        (see debugging.py); every policy's scripts can be debugged, since
        evaluation runs inside the script's own VM."""
        with self._lock:
            if self._debug is None:
                from .debugging import WrenDebugTarget

                self._debug = WrenDebugTarget(self)
            return self._debug

    def get_stack_trace(self) -> list[StackFrame]:
        """The Wren frames paused under the running host function (or
        breakpoint handler), innermost first, across scripts."""
        frames: list[StackFrame] = []
        seen: set[int] = set()
        for state in reversed(self._active):
            if id(state) not in seen:
                seen.add(id(state))
                frames.extend(state.pool.gate.run(state.frames))
        return frames

    def set_breakpoint(self, file: str, line: int) -> int:
        script = file if file in self._scripts else _script_id_of(file)
        if isinstance(line, bool) or not isinstance(line, int) or line < 1:
            raise ScriptError(f"a breakpoint needs a line number >= 1, not {line!r}", language=LANG, script=script)
        with self._lock:
            bid = next(self._breakpoint_ids)
            self._breakpoints[bid] = (script, line)
        for state in self._live_states():
            state.pool.gate.run(_on_live_vm, state, "add_breakpoint", script, line)
        return bid

    def remove_breakpoint(self, breakpoint_id: int) -> None:
        with self._lock:
            where = self._breakpoints.pop(breakpoint_id, None)
            if where is None:
                raise ScriptError(f"no breakpoint {breakpoint_id}", language=LANG)
            still_set = where in self._breakpoints.values()
        if not still_set:
            for state in self._live_states():
                state.pool.gate.run(_on_live_vm, state, "remove_breakpoint", *where)

    def _breakpoint_lines(self) -> set[tuple[str, int]]:
        return set(self._breakpoints.values())

    def _live_states(self) -> list[_VMState]:
        with self._lock:
            return [s for s in self._scripts.values() if s.vm is not None and s.pool.instance.dead is None]

    def _breakpoint_hit(self, state: _VMState, module: str, line: int) -> None:
        handler = self.breakpoint_handler
        ids = [bid for bid, where in self._breakpoints.items() if where == (module, line)]
        if handler is None or not ids:
            return
        self._active.append(state)
        try:
            handler(BreakpointHit(min(ids), LANG, module, line, state.frames(with_locals=True)))
        finally:
            self._active.pop()

    # -- globals -----------------------------------------------------------------------------------
    def set_global(self, name: str, value: Any) -> None:
        from kryon_core.values import to_host

        self._globals[name] = to_host(value, language=LANG)

    def get_global(self, name: str) -> Any:
        return self._globals.get(name)

    # -- memory ------------------------------------------------------------------------------------
    def collect_garbage(self) -> GarbageCollectionStats:
        """A full collection in every script's VM; the figures are the bytes
        the VMs' collectors account for (live objects)."""
        start = time.perf_counter()

        def collect(state: _VMState) -> tuple[int, int]:
            vm = state.vm
            if vm is None or state.pool.instance.dead is not None:
                return 0, 0
            vm.instance.enter()  # under the script's own time limit, like a call
            try:
                before = vm.bytes_allocated()
                vm.collect_garbage()
                return before, vm.bytes_allocated()
            finally:
                vm.instance.leave()

        before = after = 0
        for state in self._live_states():
            b, a = state.pool.gate.run(collect, state)
            before, after = before + b, after + a
        return GarbageCollectionStats(before, after, None, (time.perf_counter() - start) * 1000)

    def get_memory_usage(self) -> MemoryUsage:
        """``used_bytes``: the linear memory of every script's wasm instance,
        which is what the VMs hold from the process (a wasm memory grows and
        never shrinks; it is freed whole when its script unloads).
        ``peak_bytes``: the largest ``used_bytes`` seen. ``limit``: the sum of
        the scripts' memory caps, None when a script is unlimited."""
        pools = self._pools()
        used = sum(p.instance.memory_size() for p in pools if p.instance.dead is None)
        limits = [p.key.memory_limit for p in pools]
        limited = [m for m in limits if m < sandbox.UNLIMITED_MEMORY]
        limit = sum(limits) if limits and len(limited) == len(limits) else None
        self._peak = max(self._peak, used)
        return MemoryUsage(used_bytes=used, limit=limit, peak_bytes=self._peak, scripts=len(pools))

    # -- bridge ------------------------------------------------------------------------------------
    def setup_bridge(self, bridge: ScriptBridge) -> None:
        super().setup_bridge(bridge)

    def convert_unknown(self, value: Any) -> Any:
        if self.bridge is not None:
            return self.bridge.convert_unknown(value)
        from kryon_core import ConversionError

        raise ConversionError(f"cannot pass a {type(value).__name__} to Wren", language=LANG)

    def close(self) -> None:
        with self._lock:
            states = list(self._scripts.values())
            self._scripts.clear()
        for state in states:
            self._drop(state)
        with self._check_lock:
            if self._checker is not None:
                sandbox.dispose(self._checker.instance)
            self._checker = None


class _Releaser:
    """Finalizer of a Wren Fn's FunctionRef: queues the handle (released at
    the next call into that VM, never from inside a finalizer)."""

    __slots__ = ("state", "handle")

    def __init__(self, state: _VMState, handle: Any) -> None:
        self.state = state
        self.handle = handle

    def __call__(self) -> None:
        self.state.release_queue.append(self.handle)


# -- the source scan ----------------------------------------------------------------------

_GETTER = "Wren getter"


def _tokens(text: str) -> list[tuple[str, int]]:
    """Identifiers and punctuation with their lines; strings and comments skipped."""
    out: list[tuple[str, int]] = []
    i, n, line = 0, len(text), 1

    def skip_string(i: int) -> int:
        nonlocal line
        if text.startswith('"""', i):
            end = text.find('"""', i + 3)
            end = n if end < 0 else end + 3
            line += text.count("\n", i, end)
            return end
        i += 1
        while i < n:
            c = text[i]
            if c == "\\":
                i += 2
                continue
            if c == '"':
                return i + 1
            if c == "\n":
                line += 1
            if c == "%" and i + 1 < n and text[i + 1] == "(":
                depth, i = 1, i + 2
                while i < n and depth:
                    c = text[i]
                    if c == '"':
                        i = skip_string(i)
                        continue
                    if c == "\n":
                        line += 1
                    depth += (c == "(") - (c == ")")
                    i += 1
                continue
            i += 1
        return i

    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c in " \t\r":
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    line += text[i] == "\n"
                    i += 1
        elif c == '"':
            i = skip_string(i)
            out.append(('""', line))
        elif c.isalpha() or c == "_":
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            out.append((text[i:j], line))
            i = j
        else:
            out.append((c, line))
            i += 1
    return out


def _params(toks: list[tuple[str, int]], i: int, close: str) -> tuple[tuple[str, ...], int]:
    names = []
    while i < len(toks) and toks[i][0] != close:
        if toks[i][0] not in (",",):
            names.append(toks[i][0])
        i += 1
    return tuple(names), i + 1


def scan_functions(text: str) -> dict[str, FunctionInfo]:
    """Static methods (and getters) of top-level classes and top-level
    variables that may hold a Fn, with parameter names where the source
    gives them (``Fn.new { |a, b| ... }``)."""
    toks = _tokens(text)
    found: dict[str, FunctionInfo] = {}
    depth = 0
    cls: str | None = None
    i = 0
    while i < len(toks):
        tok, line = toks[i]
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
            if depth == 0:
                cls = None
        elif depth == 0 and tok == "class" and i + 1 < len(toks):
            cls = toks[i + 1][0]
        elif depth == 0 and tok == "var" and i + 1 < len(toks) and toks[i + 1][0].isidentifier():
            name = toks[i + 1][0]
            params: tuple[str, ...] = ()
            if [t for t, _ in toks[i + 3:i + 7]] == ["Fn", ".", "new", "{"] and i + 7 < len(toks) and toks[i + 7][0] == "|":
                params, _ = _params(toks, i + 8, "|")
            found.setdefault(name, FunctionInfo(name=name, parameter_count=len(params), parameter_names=params,
                                                line=line))
        elif depth == 1 and cls is not None and tok in ("static", "construct") and i + 2 < len(toks):
            name, after = toks[i + 1][0], toks[i + 2][0]
            if name.isidentifier() and name not in ("foreign",):
                qualified = f"{cls}.{name}"
                if after == "(":
                    params, _ = _params(toks, i + 3, ")")
                    found.setdefault(qualified, FunctionInfo(name=qualified, parameter_count=len(params),
                                                             parameter_names=params, line=line))
                elif after == "{" and tok == "static":
                    found.setdefault(qualified, FunctionInfo(name=qualified, line=line, documentation=_GETTER))
        i += 1
    return found
