"""Running code in a script's VM: compile checks (:class:`Checker`), a
script's top level (load and reload), the listing of the functions it
defined, the state a reload carries over, and code evaluated in a loaded
script's module. Everything that runs script code here runs inside the
script's pool gate, under its instance's deadline.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from kryon_core import CompiledScript, FunctionInfo, ScriptRuntimeError, SecurityPolicy

from . import reload, sandbox
from .errors import after_trap, compile_error, script_runtime_error, trap_error, vm_failure
from .plugin import LANGUAGE
from .scan import scan_functions
from .state import Pool, ScriptState
from .values import resolve
from .vm_errors import WrenCompileError, WrenError, WrenRuntimeError

if TYPE_CHECKING:
    from .engine import WrenEngine

_COMPILE_GUARD = 'Fiber.abort("kryon: compile only")\n'
#: checks a scratch VM serves before it is replaced (its wasm memory never shrinks)
_CHECKS_PER_VM = 200


class Checker:
    """The scratch VM every compile is checked in, without running anything
    of the script (one per engine, entered under its own lock)."""

    def __init__(self, module_ids: Iterator[int]) -> None:
        self.lock = threading.Lock()
        self.vm: Any = None
        self.checks = 0
        self._module_ids = module_ids

    def _ready(self) -> Any:
        """The scratch VM, replaced when dead or after ``_CHECKS_PER_VM`` checks
        (call holding ``lock``)."""
        from .vm import WrenVM

        self.checks += 1
        if self.vm is None or self.vm.instance.dead is not None or self.checks % _CHECKS_PER_VM == 0:
            if self.vm is not None:
                sandbox.dispose(self.vm.instance)
            self.vm = WrenVM(instance=sandbox.new_instance(sandbox.LimitsKey(256 << 20, 10.0)),
                             write=lambda text: None)
        return self.vm

    def compile_bytecode(self, text: str, name: str) -> bytes:
        """Compile in the scratch VM without running anything: every syntax
        error is reported here, and the result is the module's serialized form
        (b"" for a module that cannot be cached: then the source is checked
        the old way and run at load)."""
        with self.lock:
            checker = self._ready()
            module = f"{name}#check{next(self._module_ids)}"
            try:
                data: bytes | None = checker.compile_bytecode(text, module)
            except WrenCompileError as exc:
                error = compile_error(exc, name)
                error.script = name
                raise error from None
            except Exception:  # the checker trapped: the load reports what is wrong
                self.vm = None
                return b""
        if data is None:
            self.check_syntax(text, name)
            return b""
        return data

    def check_syntax(self, text: str, name: str) -> None:
        """Compile in the scratch VM with a first statement that aborts: the
        compiler reports every syntax error and nothing of the script runs."""
        with self.lock:
            checker = self._ready()
            module = f"{name}#check{next(self._module_ids)}"
            if text.startswith("#!"):  # a shebang is skipped only on line 1, where the guard goes
                text = "//" + text
            try:
                checker.interpret(_COMPILE_GUARD + text, module=module)
            except WrenCompileError as exc:
                error = compile_error(exc, name)
                error.script = name
                if error.line is not None:
                    error.line = max(1, error.line - 1)
                raise error from None
            except WrenRuntimeError:
                pass
            except Exception:
                self.vm = None

    def close(self) -> None:
        with self.lock:
            if self.vm is not None:
                sandbox.dispose(self.vm.instance)
            self.vm = None


def start(engine: "WrenEngine", compiled: CompiledScript, policy: SecurityPolicy) -> ScriptState:
    """A new state for ``compiled``, in a new instance, its top level run."""
    key = sandbox.LimitsKey.for_policy(policy)
    pool = Pool(key, sandbox.new_instance(key), engine.make_gate(compiled.id))
    state = ScriptState(engine, compiled, policy, pool)
    return pool.gate.run(run_top_level, state)


def run_top_level(state: ScriptState) -> ScriptState:
    instance = state.pool.instance
    instance.enter()  # the top level, and what the engine does around it, under one deadline
    try:
        try:
            state.start()
        except WrenCompileError as exc:
            raise compile_error(exc, state.script_id) from None
        except WrenError as exc:
            raise vm_failure(state, exc) from None
        state.functions = describe(state)
    except BaseException:
        instance.leave()
        state.close()
        sandbox.dispose(state.pool.instance)
        raise
    instance.leave()
    state.pool.states.append(state)
    return state


def describe(state: ScriptState) -> dict[str, FunctionInfo]:
    """The functions the scan found that the script really defines: classes
    that exist, and variables holding a Fn (with its arity)."""
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


def read_old(old: ScriptState) -> dict[str, Any]:
    """The old version's state for a reload (reload.py), under its gate."""
    try:
        return old.pool.gate.run(reload.read, old)
    except WrenError as exc:  # the old instance faulted: it restarts, as after any trap
        raise old.pool.gate.run(after_trap, old, exc) from None


def carry_over(state: ScriptState, data: dict[str, Any]) -> None:
    """Give the new version the old one's state (call inside its gate)."""
    try:
        reload.carry_over(state, data)
    except WrenRuntimeError as exc:
        state.flush()
        raise script_runtime_error(state, exc) from None
    except WrenError as exc:
        raise trap_error(exc, state.script_id) from None
    finally:
        state.flush()
    state.functions = describe(state)  # the hook may have set a variable to a Fn


def evaluate(state: ScriptState, code: str) -> Any:
    """Run ``code`` in the script's module (see ``WrenEngine.evaluate``;
    call inside the script's gate)."""
    script_id = state.script_id
    vm = state.vm
    if vm is None:
        raise ScriptRuntimeError(f"script '{script_id}' failed to restart after its instance trapped",
                                 language=LANGUAGE, script=script_id)
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
        raise compile_error(exc, script_id) from None
    except WrenError as exc:
        raise vm_failure(state, exc, inst) from None
    finally:
        inst.leave()
        state.flush()
        # a definition may replace a function a caller wraps, or add one
        state.callers.clear()
        found = {**state.compiled.functions, **scan_functions(code)}
        state.compiled = dataclasses.replace(state.compiled, functions=found)
        if state.vm is not None and state.pool.instance.dead is None:
            state.functions = describe(state)

