"""One loaded Wren script (:class:`ScriptState`) and the wasm instance it
lives in (:class:`Pool`).

A script's state is its Wren VM (named module = script id) and what the
engine keeps for it: the registry of host values it holds, the call handles
and glue functions made for it, its callers, its output line, and the
foreign methods bound in it (the ``kryon`` API through the script's own view
of the bridge, ``KryonHost.invoke`` for host callables, ``File`` of module
``io``). :meth:`ScriptState.start` makes the VM and runs the ``kryon``
module and the script's top level in it; a restart after a trap
(:meth:`Pool.rebuild`) does the same in a new instance.
"""

from __future__ import annotations

import functools
import itertools
import os
import struct
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from math import copysign
from typing import TYPE_CHECKING, Any

from kryon_core import (
    AccessDeniedError,
    CallerCache,
    CompiledScript,
    FunctionInfo,
    FunctionRef,
    ScriptBridge,
    ScriptError,
    ScriptRuntimeError,
    SecurityPolicy,
    StackFrame,
    UserData,
)
from kryon_core.sourcefiles import read_source
from kryon_core.threads import EngineGate

from . import sandbox
from .bridge import bars, script_prelude
from .calls import fn_ref
from .plugin import LANGUAGE
from .values import (
    MAX_SAFE,
    WrenObject,
    call_prefix,
    host_callable,
    prepare,
    resolve,
    resolve_call_args,
    resolve_encoded,
)
from .vm_errors import WrenRuntimeError

if TYPE_CHECKING:
    from .engine import WrenEngine

@dataclass
class Pool:
    """The wasm instance one script lives in, and the gate into it. Every
    script has its own, so a trap (out of memory, a time limit, a VM fault)
    restarts that script alone; the others keep their state."""

    key: sandbox.LimitsKey
    instance: Any
    gate: EngineGate
    states: list["ScriptState"] = field(default_factory=list)
    restarts: int = 0

    def rebuild(self) -> None:
        """A new instance for a script whose instance trapped; it runs its top
        level again (its own state restarts; no other script is touched)."""
        sandbox.dispose(self.instance)
        self.instance = sandbox.new_instance(self.key)
        self.restarts += 1
        for state in list(self.states):
            state.vm = None
            try:
                state.start()
            except Exception:  # a script whose top level now fails stays loaded but broken
                state.vm = None


class ScriptState:
    """One loaded script: its Wren VM and what the engine knows about it."""

    def __init__(self, engine: "WrenEngine", compiled: CompiledScript, policy: SecurityPolicy, pool: Pool) -> None:
        self.engine = engine
        self.script_id = compiled.id
        self.compiled = compiled
        self.policy = policy
        self.pool = pool
        self.vm: Any = None
        self.functions: dict[str, FunctionInfo] = {}
        self.callers = CallerCache()
        self.pending: ScriptError | None = None
        self.release_queue: list[Any] = []
        self.partial_line: list[str] = []
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
        self.callers.clear()
        self._api: dict[str, Callable[..., Any]] | None = None
        extras = tuple(self.engine.bridge.extra) if self.engine.bridge is not None else ()
        vm = WrenVM(
            instance=self.pool.instance,
            write=self._write,
            load_module=self._load_module,
            bind_foreign=self._bind_foreign,
            breakpoint=self._on_breakpoint,
            max_frames=self.policy.max_recursion or None,
            prelude=script_prelude(extras),  # compiled once per process (snapshot.py)
        )
        self.debug_poll = vm._c("wren_debug_poll_pointer")  # a debugger may ask from any thread
        self.vm = vm
        for script, line in self.engine.breakpoint_lines():
            vm.add_breakpoint(script, line)
        if self.engine.debugger is not None:
            self.engine.debugger.started(self)
        self.host = vm.variable_handle("kryon", "KryonHost")
        # host objects passed to foreign methods come as registry numbers, not
        # handles asked about (values.resolve): the DOM element of every
        # Kryon.setProperty crosses without calls back into Wren
        vm.set_host_classes("kryon", "HostRef", "HostFn")
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
        """An arityOf question about a script's value; ``otherwise``
        when answering it fails (a class may redefine ``is`` or a static
        ``is(_)``, so ``x is Fn`` holds and ``x.arity`` is missing)."""
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
            module = f"{self.script_id}#call{next(self.engine.module_ids)}"
            self.vm.interpret(
                f'import "{self.script_id}" for {owner}\nvar run = Fn.new {{{bars(params)} {target} }}\n', module=module
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
            self.partial_line.append(text)
            return
        output = self.engine.config.output
        first = "".join(self.partial_line) + parts[0]
        self.partial_line = [parts[-1]] if parts[-1] else []
        output(first)
        for part in parts[1:-1]:
            output(part)

    def flush(self) -> None:
        if self.partial_line:
            text, self.partial_line = "".join(self.partial_line), []
            self.engine.config.output(text)

    def _load_module(self, name: str) -> str | None:
        # "io", "random" and "meta" are loaded with the VM (bridge.script_prelude): never asked here
        loader = self.engine.config.module_loader
        source = loader(self.script_id, name) if loader is not None else None
        if source is None and self.compiled.filename and plain_module_name(name):
            # while a script's top level runs the manager does not know its
            # file yet: look beside it here (what the manager does later)
            candidate = os.path.join(os.path.dirname(self.compiled.filename), name + ".wren")
            if os.path.isfile(candidate):
                source = read_source(candidate, self.policy.max_source_size, language=LANGUAGE,
                                     script=self.script_id).decode("utf-8")
        return source

    # -- host values in Wren -----------------------------------------------------------
    def register(self, value: Any) -> int:
        """The registry number of a host value: equal hashable handles (an
        ElementHandle fetched twice) share one number, so they are one Wren
        object and ``==`` holds in Wren; other objects go by identity."""
        key = registry_key(value)
        by_id = type(key) is tuple and len(key) == 2 and key[0] is _BY_ID
        number_ = self.ids.get(key)
        if number_ is None or (by_id and self.objects.get(number_) is not value):
            number_ = next(self.next_id)
            self.ids[key] = number_
            self.objects[number_] = value
        return number_

    def host_handle(self, value: Any) -> Any:
        """A Wren handle standing for a host value (values.prepare)."""
        if isinstance(value, WrenObject) and getattr(value.value, "vm", None) is self.vm and value.value.ptr:
            return value.value
        if isinstance(value, FunctionRef):
            own = self.engine.wren_fns.get(value)
            if own is not None and own[0] is self and own[1].vm is self.vm and own[1].ptr:
                return own[1]
        elif not (isinstance(value, UserData) or host_callable(value)):
            converted = self.engine.convert_unknown(value)
            if converted is not value:
                return prepare(self, converted)
        number_ = self.register(value)
        handle = self.wren_handles.get(number_)
        if handle is None:
            handle = self.vm.new_host_object(1 if host_callable(value) else 0, number_)
            self.wren_handles[number_] = handle
        return handle

    def from_handle(self, handle: Any) -> Any:
        """A Wren object read from a slot as a host value (values.resolve).
        Whether it is a host object is the VM's answer (an instance the host
        made, carrying its registry number), never Wren code's: a script's
        class may answer ``is`` and ``hostId`` as it likes."""
        kind = self.vm.kind_of(handle)
        if kind >= 0:
            handle.release()
            return self.objects[kind]
        if kind == -1:
            return fn_ref(self, handle)
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
                return self._foreign(lambda n: self.engine.globals.get(n))
            bridge = self.engine.bridge
            if bridge is None:
                return self._foreign(no_bridge(name))
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
                return self._call_foreign(fn, signature.count("_"))
            return self._foreign(fn)
        if module == "kryon" and class_name == "KryonHost" and name == "invoke":
            return self._foreign(self._invoke)
        if module == "io" and class_name == "File":
            return self._foreign(self._file_method(name))
        return None

    def _foreign(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """A foreign method calling host function ``fn``. The VM decodes its
        arguments with its ``decode_args`` (values.resolve_encoded: host
        values in one pass, a DOM element by its registry number); the
        usual results (null, a number, a bool) go back without
        ``prepare``: the hot path out of Wren for a UI driven at frame rate."""
        state = self
        engine = self.engine

        local = engine._threads  # engine.active without the property's frame

        def foreign(*args: Any) -> Any:
            try:
                active = local.active
            except AttributeError:  # this thread's first host call
                active = engine.active
            active.append(state)  # get_stack_trace reads this VM's frames
            try:
                result = fn(*args)
                t = type(result)
                return result if result is None or t is float or t is bool else prepare(state, result)
            except ScriptError as exc:
                # Wren sees the error's full text (language, script, line);
                # uncaught, the host caller gets the error itself back
                state.pending = exc
                raise RuntimeError(str(exc)) from None
            finally:
                active.pop()

        def decode_args(data: bytes, count: int) -> list[Any]:
            try:
                return resolve_encoded(state, data, count)
            except ScriptError as exc:  # as from foreign itself
                state.pending = exc
                raise RuntimeError(str(exc)) from None

        foreign.decode_args = decode_args  # type: ignore[attr-defined]
        return foreign

    def _call_foreign(self, call: Callable[..., Any], arity: int) -> Callable[..., Any]:
        """Kryon.call's foreign method: :meth:`_foreign` with the arguments
        spread by the rule of bridge.py's docstring (one List argument is
        the argument list), and scalar results passed back without
        ``prepare``: the hot path out of Wren. Its ``decode_args`` gives
        the name and the spread arguments, resolved
        (values.resolve_call_args: ``Kryon.call(name, [numbers])`` in one
        pass). With two arguments (``Kryon.call(name, list)``) and the
        router at hand, its ``encoded`` makes the call from the encoded
        arguments, the usual ``Kryon.call(name, [x])`` without decoding
        the name again (values.call_prefix)."""
        state = self
        engine = self.engine
        view: Any = getattr(call, "__self__", None)
        # ScriptBridge.call written out below (one Python frame less per
        # call), only when ``call`` is exactly that method of a script's view
        # (a view's manager, script, policy and routes are fixed when made)
        route: Any = None
        if (isinstance(view, ScriptBridge) and getattr(call, "__func__", None) is ScriptBridge.call
                and view.manager is not None and view.policy is not None):
            route = view.router()  # errors without a language get the view's

        local = engine._threads  # engine.active without the property's frame

        def foreign(name: Any, *args: Any) -> Any:
            try:
                active = local.active  # the calling thread's (not the loading thread's)
            except AttributeError:  # this thread's first host call
                active = engine.active
            active.append(state)  # get_stack_trace reads this VM's frames
            try:
                if route is not None and type(name) is str:
                    result = route(name, *args)
                else:
                    result = call(name, *args)
                t = type(result)
                if result is None or t is float or t is bool or (t is int and -MAX_SAFE <= result <= MAX_SAFE):
                    return result  # WrenVM._on_foreign sends an int as its float
                return prepare(state, result)
            except ScriptError as exc:
                state.pending = exc
                raise RuntimeError(str(exc)) from None
            finally:
                active.pop()

        foreign.decode_args = functools.partial(resolve_call_args, state)  # type: ignore[attr-defined]
        if route is None or arity != 2:
            return foreign
        prefixes: dict[bytes, str] = {}  # see values.call_prefix
        self.call_prefixes = prefixes
        unpack = struct.Struct("<d").unpack_from

        def encoded(data: bytes) -> Any:
            """The call from its encoded arguments: ``Kryon.call(name, [x])``
            of a name seen before is one look-up and one unpack (no
            argument list made, no decoder frame); any other goes the
            general way."""
            name = prefixes.get(data[:-8]) or call_prefix(state, data, prefixes)
            if name is None:
                return foreign(*resolve_call_args(state, data, 2))
            d = unpack(data, len(data) - 8)[0]
            if -MAX_SAFE <= d <= MAX_SAFE:
                i = int(d)
                if i == d and (i or copysign(1.0, d) > 0):  # an integral number (not -0) is an int
                    return foreign(name, i)
            return foreign(name, d)

        foreign.encoded = encoded  # type: ignore[attr-defined]
        return foreign

    def _on_breakpoint(self, module: str, line: int) -> None:
        try:
            debug = self.engine.debugger
            if debug is not None:
                debug.on_line(self, module, line)
            if line:  # 0: the debugger's poll (debugging.py)
                self.engine.breakpoint_hit(self, module, line)
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
                    language=LANGUAGE,
                    locals=local_vars,
                )
            )
        return out

    def _invoke(self, fn: Any, args: Any) -> Any:
        """``KryonHost.invoke(fn, args)``, what a HostFn's ``call`` runs:
        ``fn`` must be a host function handed to this script (a HostFn the
        host made), not a number, a HostRef of a callable object or
        anything else the script could pass."""
        target: Callable[..., Any] = fn
        number_ = self.ids.get(registry_key(target)) if host_callable(target) else None
        if number_ is None or self.objects.get(number_) is not target or not isinstance(args, list):
            raise AccessDeniedError("KryonHost.invoke: not a host function handed to this script",
                                    language=LANGUAGE, script=self.script_id)
        return target(*args)

    def _file_method(self, name: str) -> Callable[..., Any]:
        def check(path: Any) -> str:
            if self.policy.sandboxed and not self.policy.allow_file_system:
                raise AccessDeniedError(
                    f"File.{name}: the script's policy does not grant the file system", language=LANGUAGE,
                    script=self.script_id,
                )
            if not isinstance(path, str):
                raise ScriptRuntimeError("Path must be a string.", language=LANGUAGE)
            return path

        def read(path: Any) -> str:
            with open(check(path), encoding="utf-8") as f:
                return f.read()

        def exists(path: Any) -> bool:
            return os.path.exists(check(path))

        return read if name == "read" else exists


_BY_ID = object()


def registry_key(value: Any) -> Any:
    """The key of ``value`` in a script's registry (ScriptState.register):
    the value itself when it is hashable with its own equality, else its
    identity."""
    try:
        cls: Any = type(value)
        if cls.__hash__ is not object.__hash__ and cls.__eq__ is not object.__eq__:
            hash(value)
            return value
    except TypeError:
        pass
    return (_BY_ID, id(value))


def plain_module_name(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return bool(name) and not name.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def no_bridge(name: str) -> Callable[..., Any]:
    def fail(*args: Any) -> Any:
        raise ScriptError(f"Kryon.{name}: no kryon bridge is set up", language=LANGUAGE)

    return fail

