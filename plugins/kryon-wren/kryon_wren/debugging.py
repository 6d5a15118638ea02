"""The debugger's target for Wren (``WrenEngine.debug_target()``).

The VM stops where the host asks by patching code (``csrc/debug_step.c``):
a breakpoint patches the first instruction of each run of its line; "step
all" patches every line of every function, so each new line calls back
(``host_breakpoint``). Nothing is patched unless the debugger wants it, so
runs without a debugger execute the code they always did.

The debugger's wishes (:meth:`WrenDebugTarget.set_mode`) may come from any
thread, but a VM may only be touched on the thread running it. So a wish is
recorded and every VM is asked to call back soon (a flag in its memory that
the interpreter reads where a loop jumps back and where a fiber starts):
the callback, on the VM's own thread, applies the patches. That is how a
pause reaches an endless loop.

Stepping needs calls and returns: each line event counts the VM's frames,
and the difference from the last line event is reported as calls or
returns. Frames, locals of every frame, module variables and values are
read through the VM's debug exports; lists, maps and instances' fields are
read only when expanded. Evaluation compiles the expression in the frame's
module as a function whose parameters are the frame's locals the
expression names, and calls it with their values; it runs inside the
script's own VM, under its policy.
"""

from __future__ import annotations

import math
import re
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from kryon_core.debug.target import DebugEvents, DebugTarget, FrameInfo, ScopeInfo, TraceMode, ValueInfo
from kryon_core.errors import ScriptRuntimeError

from . import sandbox
from .errors import compile_error
from .plugin import LANGUAGE
from .scan import THIS, rename_this
from .vm import EPOCH_TICK_SECONDS, TYPE_BOOL, TYPE_LIST, TYPE_MAP, TYPE_NULL, TYPE_NUM, TYPE_STRING, Handle
from .vm_errors import WrenCompileError, WrenRuntimeError

if TYPE_CHECKING:
    from .engine import WrenEngine
    from .state import ScriptState

__all__ = ["WrenDebugTarget"]

_MAX_CHILDREN = 1000
_MAX_TEXT = 200
_MAX_PARAMETERS = 16
_HIDDEN_MODULES = ("kryon", "io")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")



def _number_text(d: float) -> str:
    if d != d:
        return "nan"
    if d in (float("inf"), float("-inf")):
        return "infinity" if d > 0 else "-infinity"
    if d == int(d) and abs(d) < 1e15:
        return str(int(d))
    return repr(d)


def _string_text(s: str) -> str:
    text = '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 4] + '..."'


class _Applied:
    """What one VM has patched for the debugger."""

    def __init__(self) -> None:
        self.version = -1
        self.lines: set[tuple[str, int]] = set()
        self.step_all = False
        self.errors = False


class WrenDebugTarget(DebugTarget):
    """See the module docstring."""

    language = LANGUAGE

    def __init__(self, engine: "WrenEngine") -> None:
        self._engine = engine
        self._events: DebugEvents | None = None
        self._mode = TraceMode.OFF
        self._lines: dict[str, frozenset[int]] = {}
        self._version = 0
        self._applied: "weakref.WeakKeyDictionary[Any, _Applied]" = weakref.WeakKeyDictionary()
        self._local = threading.local()
        self._scratch: Any = None
        self._scratch_lock = threading.Lock()
        self._code_lines: dict[str, list[int]] = {}

    # -- attaching and modes -------------------------------------------------------------
    def attach(self, events: DebugEvents) -> None:
        self._events = events
        self._changed()  # scripts already running (an endless loop too) apply it at their next loop
        self._new_callers()

    def detach(self) -> None:
        self._events = None
        self._mode, self._lines = TraceMode.OFF, {}
        self._changed()
        self._new_callers()

    @property
    def attached(self) -> bool:
        return self._events is not None

    def _new_callers(self) -> None:
        """Callers the engine made are remade: while attached they report
        entering and leaving Wren (:meth:`activation`), otherwise not."""
        for state in self._engine.live_states():
            state.callers.clear()

    def activation(self, call: Callable[..., Any]) -> Callable[..., Any]:
        """``call`` (a host's entry into a Wren function) reporting a call and
        a return while the debugger steps, so stepping over a call into Wren
        from another language does not stop inside it, and stepping out of
        Wren stops back in the caller. Line depths count afresh inside."""
        local = self._local

        def entered(*args: Any) -> Any:
            events = self._events
            if events is None:
                return call(*args)
            outer = getattr(local, "depth", None)
            local.depth = None
            if self._mode is TraceMode.EVERY_LINE:
                events.call(self)
            try:
                return call(*args)
            finally:
                local.depth = outer
                events = self._events
                if events is not None and self._mode is TraceMode.EVERY_LINE:
                    events.ret(self)

        return entered

    def set_mode(self, mode: TraceMode, lines: Mapping[str, frozenset[int]]) -> None:
        self._mode, self._lines = mode, dict(lines)
        self._changed()

    def _changed(self) -> None:
        """A new wish: every VM calls back at its next loop or entry and applies it."""
        self._version += 1
        for state in self._engine.live_states():
            vm = state.vm
            inst = vm.instance if vm is not None else None
            if inst is not None and inst.dead is None and not vm._closed:
                # a plain store to linear memory: safe while another thread runs the VM
                inst.write_bytes(state.debug_poll, b"\x01\x00\x00\x00")

    def started(self, state: "ScriptState") -> None:
        """A VM was made for a script (before any of its code compiles)."""
        self._sync(state)

    def _sync(self, state: "ScriptState") -> None:
        """Apply the current wish to the state's VM (on its thread)."""
        vm = state.vm
        if vm is None or vm.instance.dead is not None:
            return
        applied = self._applied.get(vm)
        if applied is None:
            applied = self._applied[vm] = _Applied()
        version = self._version
        if applied.version == version:
            return
        on = self._events is not None and self._mode is not TraceMode.OFF
        wanted = {(script, line) for script, lines in self._lines.items() for line in lines} if on else set()
        legacy = self._engine.breakpoint_lines()
        for script, line in applied.lines - wanted:
            if (script, line) not in legacy:
                vm.remove_breakpoint(script, line)
        for script, line in wanted - applied.lines:
            vm.add_breakpoint(script, line)
        step_all = on and self._mode is TraceMode.EVERY_LINE
        if step_all != applied.step_all:
            vm._c("wren_debug_step_all", int(step_all))
        if on != applied.errors:
            vm._c("wren_debug_errors", int(on))
        applied.lines, applied.step_all, applied.errors, applied.version = wanted, step_all, on, version

    # -- events from the VM (on its thread) ---------------------------------------------------
    def on_line(self, state: "ScriptState", module: str, line: int) -> None:
        """The VM called back: a patched line (``line`` > 0), a poll (0), or
        a runtime error raised (-1, the error in slot 0)."""
        self._sync(state)
        events = self._events
        if events is not None and line < 0:
            self._raised(state, events)
            return
        if line == 0 or events is None or self._engine.current(module) is None:
            return
        every = self._mode is TraceMode.EVERY_LINE
        if every:
            depth = len(self._script_frames(state))
            last = getattr(self._local, "depth", None)
            if last is not None:
                for _ in range(depth - last):
                    events.call(self)
                for _ in range(last - depth):
                    events.ret(self)
            self._local.depth = depth
        elif line in self._lines.get(module, ()):
            self._local.depth = len(self._script_frames(state))  # where a step from this stop counts from
        else:
            return
        self._stop_point(state, events.line, self, module, line)
        self._sync(state)  # the debugger's answer (go on, step) applies from the next line

    def _raised(self, state: "ScriptState", events: DebugEvents) -> None:
        frames = self._script_frames(state)
        if not frames:
            return  # an error in the host's glue: the caller reports it
        vm = state.vm
        message = vm.get_slot(0) if vm.slot_type(0) == TYPE_STRING else self._read(state, "error", 0).value
        _, module, line, _ = frames[0]
        column = vm._c("wren_debug_frame_column", frames[0][0]) or None
        error = ScriptRuntimeError(message, language=LANGUAGE, script=module, line=line, column=column)
        self._local.depth = len(frames)
        self._stop_point(state, events.exception, self, error)

    def _stop_point(self, state: "ScriptState", report: Any, *args: Any) -> None:
        """Report an event with ``state`` paused; values read meanwhile are
        pinned until it returns. The time and fuel the debugger spends here
        (stopped, evaluating) are not the script's: its time limit and fuel
        budget go on from where they were."""
        engine = self._engine
        inst = state.pool.instance
        remaining = inst.timeout - (time.perf_counter() - inst._armed_at) if inst.timeout else None
        fuel = inst.store.get_fuel() if inst.fuel is not None else None
        _unlimited(inst)  # reading frames and values while stopped is the debugger's time
        engine.active.append(state)
        handles, self._local.handles = getattr(self._local, "handles", None), []
        try:
            report(*args)
        finally:
            engine.active.pop()
            for handle in self._local.handles:
                handle.release()
            self._local.handles = handles
            if inst.dead is None:
                if remaining is not None:
                    inst._armed_at = time.perf_counter() - (inst.timeout - remaining)
                    inst.store.set_epoch_deadline(max(1, math.ceil(remaining / EPOCH_TICK_SECONDS)))
                if fuel is not None:
                    inst.store.set_fuel(fuel)

    # -- breakpoint lines ----------------------------------------------------------------------
    def resolve_line(self, script: str, source: str, line: int) -> int | None:
        lines = self._code_lines.get(source)
        if lines is None:
            lines = self._compile_lines(source)
            if lines is None:
                return None
            if len(self._code_lines) >= 64:  # sources of scripts reloaded many times
                self._code_lines.clear()
            self._code_lines[source] = lines
        after = [n for n in lines if n >= line]
        return min(after) if after else None

    def _compile_lines(self, source: str) -> list[int] | None:
        from .vm import WrenVM

        with self._scratch_lock:
            if self._scratch is None or self._scratch.instance.dead is not None:
                self._scratch = WrenVM(instance=sandbox.new_instance(sandbox.LimitsKey(256 << 20, 10.0)),
                                       write=lambda text: None)
            vm = self._scratch
            ptr = vm.instance.alloc_cstring("//" + source if source.startswith("#!") else source)
            try:
                found = vm._c("wren_debug_code_lines", ptr)
                text = vm.instance.read_cstring(found) if found else None
            except Exception:
                self._scratch = None
                return None
            finally:
                if vm.instance.dead is None:
                    vm.instance.call("wren_dealloc", ptr)
        if text is None:
            return None
        return sorted({int(n) for n in text.split()})

    # -- inspection (on the stopped thread) --------------------------------------------------------
    def _script_frames(self, state: "ScriptState") -> list[tuple[int, str, int, str]]:
        return [f for f in state.vm.stack() if f[1] not in _HIDDEN_MODULES and "#" not in f[1]]

    def frames(self) -> list[list[FrameInfo]]:
        groups: list[list[FrameInfo]] = []
        seen: set[int] = set()
        for state in reversed(self._engine.active):
            vm = state.vm
            if id(state) in seen or vm is None or vm.instance.dead is not None:
                continue
            seen.add(id(state))
            group = []
            for index, module, line, function in self._script_frames(state):
                name = "<top level>" if function == "(script)" else function
                column = vm._c("wren_debug_frame_column", index) or None
                group.append(FrameInfo(name, module, line, column, (state, index)))
            if group:
                groups.append(group)
        return groups

    def scopes(self, frame: FrameInfo) -> list[ScopeInfo]:
        state, index = frame.handle
        scopes = [ScopeInfo("Locals", ("locals", state, index))]
        vm = state.vm
        vm.ensure_slots(1)
        if vm._c("wren_debug_upvalue", index, 0, 0):
            scopes.append(ScopeInfo("Closure", ("closure", state, index)))
        scopes.append(ScopeInfo("Module", ("module", state, frame.script)))
        return scopes

    def children(self, handle: Any) -> list[ValueInfo]:
        kind, state = handle[0], handle[1]
        vm = state.vm
        if vm is None or vm.instance.dead is not None:
            return []
        vm.ensure_slots(4)
        out: list[ValueInfo] = []
        if kind in ("locals", "closure"):
            export = "wren_debug_local" if kind == "locals" else "wren_debug_upvalue"
            i = 0
            while len(out) < _MAX_CHILDREN:
                name = vm._c(export, handle[2], i, 0)
                if not name:
                    break
                out.append(self._read(state, vm.instance.read_cstring(name), 0))
                i += 1
        elif kind == "module":
            ptr = vm.instance.alloc_cstring(handle[2] or state.script_id)
            try:
                i = 0
                while len(out) < _MAX_CHILDREN:
                    name = vm._c("wren_debug_module_variable", ptr, i, 0)
                    if not name:
                        break
                    text = vm.instance.read_cstring(name)
                    if not text.startswith("KryonHost"):
                        out.append(self._read(state, text, 0))
                    i += 1
            finally:
                vm.instance.call("wren_dealloc", ptr)
        elif kind == "list":
            vm.set_slot(0, handle[2])
            count = vm._c("wren_get_list_count", 0)
            for i in range(min(count, _MAX_CHILDREN)):
                vm.set_slot(0, handle[2])
                vm._c("wren_get_list_element", 0, i, 1)
                out.append(self._read(state, f"[{i}]", 1))
        elif kind == "map":
            vm.set_slot(0, handle[2])
            index = vm._c("wren_map_next", 0, 0)
            while index >= 0 and len(out) < _MAX_CHILDREN:
                vm._c("wren_get_map_entry", 0, index, 1, 2)
                key = self._read(state, "key", 1)
                value = self._read(state, key.value, 2)
                out.append(value)
                vm.set_slot(0, handle[2])
                index = vm._c("wren_map_next", 0, index + 1)
        elif kind == "instance":
            vm.set_slot(0, handle[2])
            count = vm._c("wren_debug_instance_field", 0, -1, 1)
            for i in range(min(count, _MAX_CHILDREN)):
                vm.set_slot(0, handle[2])
                vm._c("wren_debug_instance_field", 0, i, 1)
                out.append(self._read(state, f"field {i + 1}", 1))
        return out

    def _pin(self, vm: Any, slot: int) -> Handle:
        handle: Handle = vm.get_slot_handle(slot)
        pinned = getattr(self._local, "handles", None)
        if pinned is not None:
            pinned.append(handle)
        return handle

    def _read(self, state: "ScriptState", name: str, slot: int) -> ValueInfo:
        """The value in ``slot`` as the debugger shows it (children unread)."""
        vm = state.vm
        kind = vm.slot_type(slot)
        if kind in (TYPE_NUM, TYPE_NULL, TYPE_BOOL, TYPE_STRING):
            value = vm.get_slot(slot)
            if kind == TYPE_NUM:
                return ValueInfo(name, _number_text(value), "Num")
            if kind == TYPE_NULL:
                return ValueInfo(name, "null", "Null")
            if kind == TYPE_BOOL:
                return ValueInfo(name, "true" if value else "false", "Bool")
            return ValueInfo(name, _string_text(value), "String")
        handle = self._pin(vm, slot)
        if kind == TYPE_LIST:
            count = vm._c("wren_get_list_count", slot)
            return ValueInfo(name, self._preview(state, handle, count, "list"), "List",
                             ("list", state, handle) if count else None, count)
        if kind == TYPE_MAP:
            count = vm._c("wren_get_map_count", slot)
            return ValueInfo(name, f"{{{count} entries}}" if count != 1 else "{1 entry}", "Map",
                             ("map", state, handle) if count else None, count)
        class_name = vm.instance.read_cstring(vm._c("wren_debug_class_name", slot))
        if class_name.endswith(" metaclass"):
            return ValueInfo(name, class_name[: -len(" metaclass")], "Class")
        fields = vm._c("wren_debug_instance_field", slot, -1, slot)
        if fields >= 0:
            return ValueInfo(name, f"instance of {class_name}", class_name,
                             ("instance", state, handle) if fields else None, fields)
        return ValueInfo(name, class_name, class_name)

    def _preview(self, state: "ScriptState", handle: Handle, count: int, kind: str) -> str:
        """A list's text with its first elements (nested values by kind only)."""
        vm = state.vm
        parts: list[str] = []
        length = 2
        for i in range(count):
            vm.set_slot(0, handle)
            vm._c("wren_get_list_element", 0, i, 1)
            t = vm.slot_type(1)
            if t in (TYPE_NUM, TYPE_NULL, TYPE_BOOL, TYPE_STRING):
                v = vm.get_slot(1)
                part = (_number_text(v) if t == TYPE_NUM else "null" if t == TYPE_NULL
                        else ("true" if v else "false") if t == TYPE_BOOL else _string_text(v))
            else:
                part = "[...]" if t == TYPE_LIST else "{...}" if t == TYPE_MAP else "..."
            length += len(part) + 2
            if length > _MAX_TEXT:
                parts.append("...")
                break
            parts.append(part)
        return "[" + ", ".join(parts) + "]"

    @staticmethod
    def _raw_call(vm: Any, receiver: Any, method: Any, args: list[Any]) -> None:
        """Call with the result left in slot 0, unread (a value may be cyclic)."""
        vm.ensure_slots(len(args) + 3)
        vm.set_slot(0, receiver)
        for i, arg in enumerate(args):
            vm.set_slot(i + 1, arg)
        vm.raise_for_status(vm._c("wren_call", method.ptr))

    # -- evaluation ---------------------------------------------------------------------------
    @staticmethod
    def _assign_back(vm: Any, index: int, params: list[str], sources: list[tuple[str, int]]) -> None:
        """Store the parameters' values after an evaluation (the list it
        returned, in slot 0) into the frame's variables they came from."""
        vm.ensure_slots(2)
        for position, (param, (export, i)) in enumerate(zip(params, sources, strict=True)):
            if param == THIS:  # `this` is never assigned (Wren forbids it; the renamed name would allow it)
                continue
            vm._c("wren_get_list_element", 0, position, 1)
            vm._c("wren_debug_assign", index, int(export == "wren_debug_upvalue"), i, 1)

    def evaluate(self, frame: FrameInfo | None, expression: str) -> ValueInfo:
        if frame is None:
            raise ScriptRuntimeError("no Wren frame to evaluate in", language=LANGUAGE)
        state, index = frame.handle
        vm = state.vm
        module = frame.script or state.script_id
        if vm is None or vm.instance.dead is not None:
            raise ScriptRuntimeError("the frame's script is no longer running", language=LANGUAGE, script=module)
        # the frame's locals the expression names become the function's parameters; `this` is
        # renamed (a function outside the class may not say `this`) and never assigned back
        code = rename_this(expression)
        mentioned = set(_NAME.findall(code))
        params: list[str] = []
        sources: list[tuple[str, int]] = []
        vm.ensure_slots(2)
        for export in ("wren_debug_local", "wren_debug_upvalue"):  # a local shadows a captured name
            i = 0
            while True:
                name_ptr = vm._c(export, index, i, 0)
                if not name_ptr:
                    break
                name = vm.instance.read_cstring(name_ptr)
                param = THIS if name == "this" else name
                if param in mentioned and param not in params:
                    if len(params) == _MAX_PARAMETERS:
                        raise ScriptRuntimeError(f"the expression names more than {_MAX_PARAMETERS} locals",
                                                 language=LANGUAGE, script=module)
                    params.append(param)
                    sources.append((export, i))
                i += 1
        if THIS in mentioned and THIS not in params:
            if not vm._c("wren_debug_receiver", index, 0):
                raise ScriptRuntimeError("'this' is defined only in a method's frame", language=LANGUAGE, script=module)
            params.append(THIS)
            sources.append(("wren_debug_receiver", -1))
        values = []
        for export, i in sources:
            if i < 0:
                vm._c(export, index, 0)
            else:
                vm._c(export, index, i, 0)
            values.append(self._pin(vm, 0) if vm.slot_type(0) not in (TYPE_NUM, TYPE_NULL, TYPE_BOOL, TYPE_STRING)
                          else vm.get_slot(0))
        bars = f"|{', '.join(params)}|" if params else ""
        if vm.instance.limited:
            vm.instance._arm_limits()  # each evaluation gets the script's limits afresh (see _stop_point)
        try:
            if not vm.has_variable(module, "KryonHost"):
                vm.interpret('import "kryon" for KryonHost\n', module=module)
            # the function hands back its parameters, so an assignment (`x = 5`) reaches the frame
            vm.interpret(f"KryonHost.evalResult = Fn.new {{ {bars}\nKryonHost.evalResult = ({code}\n)\n"
                         f"return [{', '.join(params)}]\n}}", module=module)
            fn = state.helper("takeEval()")
            try:
                self._raw_call(vm, fn, state.call_handle(f"call({','.join('_' * len(params))})"), values)
            finally:
                if isinstance(fn, Handle):
                    fn.release()
            self._assign_back(vm, index, params, sources)
            self._raw_call(vm, state.host, state.call_handle("takeEval()"), [])
        except WrenCompileError as exc:
            raise compile_error(exc, module) from None
        except WrenRuntimeError as exc:
            pending, state.pending = state.pending, None  # an error a host function raised
            raise ScriptRuntimeError(pending.message if pending is not None else exc.message,
                                     language=LANGUAGE, script=module) from None
        finally:
            state.flush()
            _unlimited(vm.instance)
        # takeEval's result is in slot 0
        return self._read(state, expression, 0)


def _unlimited(inst: Any) -> None:
    """No deadline and no fuel budget (while the debugger holds a script stopped)."""
    if inst.dead is None:
        if inst.timeout is not None:
            inst.store.set_epoch_deadline(1 << 40)
        if inst.fuel is not None:
            inst.store.set_fuel(1 << 40)

