"""One Lua state with the prelude loaded.

Every sandboxed script gets a state of its own (its own memory cap, gate,
hooks and library tables); trusted scripts whose policies agree on what the
state enforces (grants, memory cap, Lua or LuaJIT) share one, each in its
own environment table (see ``LuaEngine._runtime``). Time and recursion
limits are per call, so they are enforced by the prelude's hook with values
set before each call.
"""

from __future__ import annotations

import time
import traceback
import types
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kryon_core import (
    ConversionError,
    ElementHandle,
    FunctionRef,
    LimitExceededError,
    MemoryLimitError,
    ScriptError,
    ScriptRuntimeError,
    SecurityPolicy,
    StackFrame,
    threads,
)
from kryon_core.plugins import package_text

from .chunks import run_chunk
from .errors import translate
from .plugin import LANGUAGE
from .sandbox import BOUNDED_NAME, load_bounded
from .values import SCALARS, Converter, lua_size

#: argument types that cross from Lua to the host as they are (conv.from_lua returns them
#: unchanged): scalars, and element handles, which come back from Lua as the very host object
AS_THEY_ARE = SCALARS | {ElementHandle}

if TYPE_CHECKING:
    from .engine import LuaEngine

PRELUDE_NAME = "=kryon-prelude"
#: a chunk lupa runs on the thread that called the host (a coroutine's own, from a host function
#: inside one): the stack walk of ``Runtime.script_frames`` sees that thread's frames, not the main thread's
WALK_NAME = "=kryon-walk"
_WALK = "local stack = ...\nreturn stack(1)\n"
#: bytes of headroom a call switched under the cap from the host needs beyond its string arguments
FAST_MARGIN = 256 * 1024
#: the most ``charge(result, 256)`` lets pass for a result lupa pushes without allocating (nil, a
#: boolean, a number: ``lua_size`` counts 32 bytes for it): a host function's scalar result is
#: refused only past this much memory in use
_SCALAR_CHARGE = 256 + 32
#: bytes under the cap lupa needs to push a host function's error into the script
_ERROR_ROOM = 64 * 1024
#: a deadline that has passed (``Runtime._check_time`` is true for it): it ends a call for good
_PASSED = -1.0
_PRELUDE: str | None = None


def prelude_source() -> str:
    global _PRELUDE
    if _PRELUDE is None:
        _PRELUDE = package_text("kryon_lua", "prelude.lua")
    return _PRELUDE


@dataclass(frozen=True)
class RuntimeKey:
    """What a Lua state enforces for every script in it."""

    sandboxed: bool
    #: the count hook runs (time limit, recursion depth): every sandboxed state, and a trusted one
    #: only for policies that set a limit, so trusted scripts without limits share a state without it
    counted: bool
    memory_limit: int | None
    max_value_size: int | None
    jit: bool
    files: bool
    processes: bool
    imports: bool

    @classmethod
    def for_policy(cls, policy: SecurityPolicy) -> "RuntimeKey":
        return cls(
            sandboxed=policy.sandboxed,
            counted=policy.sandboxed or bool(policy.time_limit or policy.max_recursion),
            memory_limit=policy.memory_limit,
            max_value_size=policy.max_value_size,
            jit=policy.use_jit,
            files=policy.allow_file_system,
            processes=policy.allow_processes,
            imports=policy.allow_imports,
        )

    def name(self) -> str:
        """A short name for the state (its gate's)."""
        parts = ["sandboxed" if self.sandboxed else "trusted", "luajit" if self.jit else "lua54"]
        if self.counted and not self.sandboxed:
            parts.append("counted")
        if self.memory_limit:
            parts.append(f"cap{self.memory_limit}")
        if self.max_value_size:
            parts.append(f"max{self.max_value_size}")
        parts += [g for g, on in (("files", self.files), ("processes", self.processes), ("imports", self.imports)) if on]
        return "-".join(parts)


def host_error(exc: BaseException, script: str | None) -> ScriptError:
    """A kryon error for a non-Lua exception that surfaced from a Lua call
    (a host callable's bug, a refused attribute access)."""
    if isinstance(exc, ScriptError):
        return exc
    if isinstance(exc, OverflowError):
        return ConversionError("an integer argument is outside the 64-bit integer range", language=LANGUAGE, script=script)
    if isinstance(exc, UnicodeDecodeError):
        return ConversionError("a Lua string that is not valid UTF-8 cannot cross to the host", language=LANGUAGE,
                               script=script)
    if isinstance(exc, UnicodeEncodeError):  # lupa pushing a str with a lone surrogate: it has no UTF-8 form
        return ConversionError(f"a string cannot cross to Lua ({exc.reason}): Lua strings are UTF-8",
                               language=LANGUAGE, script=script)
    return ScriptRuntimeError(f"{type(exc).__name__}: {exc}", language=LANGUAGE, script=script)


def forget_locals(exc: BaseException) -> None:
    """Clear the local variables of the finished frames in the tracebacks of
    ``exc`` and of the exceptions it chains to. A host function's error lives
    on in the script (a caught error value) and in lupa after the host call;
    its frames could hold wrappers lupa made for the call's Lua arguments,
    which belong to the calling coroutine's thread: one freed after that
    coroutine was collected touches freed memory (the host process crashed).
    The calling frame clears its own (it is still running)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if current.__traceback__ is not None:
            traceback.clear_frames(current.__traceback__)
        current = current.__cause__ or current.__context__


def lupa_module(jit: bool) -> Any:
    if jit:
        import lupa.luajit21 as module
    else:
        import lupa.lua54 as module
    return module


class Runtime:
    def __init__(self, engine: "LuaEngine", key: RuntimeKey, owner: str | None = None) -> None:
        self.engine = engine
        self.key = key
        #: the one script this state belongs to (a sandboxed script's own), or None when shared
        self.owner = owner
        module = lupa_module(key.jit)
        self.module = module
        self.LuaError = module.LuaError
        options: dict[str, Any] = dict(
            unpack_returned_tuples=True,
            register_eval=False,
            register_builtins=False,
            attribute_filter=self._deny_attributes,
        )
        if key.memory_limit:
            options["max_memory"] = key.memory_limit
        self.lua = module.LuaRuntime(**options)
        if key.memory_limit:
            # The cap holds only while script code runs (`K.capped` in the
            # prelude switches it from inside Lua): an allocation refused outside
            # a protected call (lupa pushing an argument or reading a table) is a
            # Lua panic, which ends the whole host process.
            self.lua.set_max_memory(0)
        #: the one way into this state (kryon_core.threads): threads calling
        #: across engines in opposite orders help each other instead of deadlocking
        self.gate = engine.make_gate(key.name() if owner is None else f"{key.name()}/{owner}")
        self._acquire, self._unlock = self.gate.uncontended_inline()
        #: whether the memory cap is in force now (Lua code of a capped state is running)
        self.capped = False
        #: a debugger was attached to this state (debugging.py): host calls go through K.boundary_call
        self.debugged = False
        self.deadline = 0.0
        self.maxdepth = 0
        #: a sandboxed call was ended because a host function's error found no room under the cap
        #: (see ``_cap_for_error``): its error is a MemoryLimitError, whatever the hook raised
        self.overdrawn = False
        self.conv = Converter(self, module.lua_type, key.jit)
        #: argument types lupa passes unchanged and exactly (LuaJIT would round big ints)
        self.passthrough = frozenset((type(None), bool, float, str) if key.jit else (type(None), bool, int, float, str))
        grants = self.lua.table_from({"files": key.files, "processes": key.processes, "imports": key.imports})
        bounded = load_bounded(self.lua, module, key.memory_limit) if key.sandboxed else None
        self.helpers = run_chunk(
            self.lua, module, prelude_source(), PRELUDE_NAME, key.sandboxed, grants, self._output, self._check_time,
            self._on_breakpoint, self._setcap, bounded, key.counted,
        )
        self.state = self.helpers.state
        self._collect = self.helpers.collect
        self._hold_gc, self._release_gc = self.helpers.hold_gc, self.helpers.release_gc
        self._capped = self.helpers.capped
        self._fastcall = self.helpers.fastcapped
        self._slot = self.helpers.slot
        #: fetched once: reading a field of a Lua table from a host callback inside a coroutine the
        #: sandbox's coroutine.wrap resumed can come back as a tuple through lupa (a first kryon.call failed)
        self.lookup = self.helpers.lookup
        self.is_object = self.helpers.is_object
        self._source_of = self.helpers.source_of
        self._stack = self.helpers.stack
        if not key.sandboxed and (key.memory_limit or key.counted):
            self.helpers.guard_catchers()  # no pcall swallows a limit; coroutines run the count hook
        if key.memory_limit and not key.sandboxed:
            # a trusted script may set finalizers, script code run by whatever allocation steps the
            # collector: outside script code (the cap is off there) the collector is held
            self._hold_gc()
        self._raw: "weakref.WeakKeyDictionary[FunctionRef, Any]" = weakref.WeakKeyDictionary()
        self.version = self.lua.lua_implementation

    def _deny_attributes(self, obj: Any, name: str, is_setting: bool) -> Any:
        # Host objects are opaque to Lua: reaching `__class__` or a function's
        # globals would be a way out of any sandbox.
        # (No position here: lupa does not allow calling back into Lua from
        # inside its attribute filter.)
        raise ScriptRuntimeError(f"Lua scripts cannot access attributes of host objects ('{name}')", language=LANGUAGE)

    # -- callbacks from the prelude ----------------------------------------------
    def _output(self, text: str) -> None:
        self.engine.config.output(text)

    def _check_time(self) -> bool:
        return self.deadline != 0.0 and time.monotonic() > self.deadline

    def _setcap(self, on: bool) -> bool:
        """Put the memory cap in force or lift it; the previous state. Called
        from Lua (`K.capped`), so the switch happens inside a protected call.
        Putting it in force also lowers a cap raised for an overdraft (see
        ``_cap_for_error``) to the cap itself."""
        was = self.capped
        if on != was or (on and self.overdrawn):
            self.lua.set_max_memory(self.key.memory_limit if on else 0)
            self.capped = on
        return was

    def _on_breakpoint(self, breakpoint_id: int, source: str, line: int) -> None:
        self.engine._breakpoint_hit(self, int(breakpoint_id), source, int(line))

    # -- calls with limits ----------------------------------------------------------
    def call(self, function: Any, args: list[Any], policy: SecurityPolicy, script: str) -> Any:
        """Call a Lua function under ``policy``'s time, recursion and memory
        limits, through the gate (one thread at a time: the deadline, depth and
        cap are this state's, not the thread's)."""
        return self.gate.run(self._call, function, args, policy, script)

    def call_host(self, function: Any, args: "tuple[Any, ...] | list[Any]", policy: SecurityPolicy, script: str) -> Any:
        """``call`` with host values: the arguments convert into Lua and the
        result back inside the gate (conversions touch the state too)."""
        if not threads.tracking and self._acquire(False):  # the gate's uncontended path, inlined
            try:
                return self._call_host(function, args, policy, script)
            finally:
                self._unlock()  # the gate's release, written out
                if self.gate._waiting:
                    threads.wake_waiters()
        return self.gate.run(self._call_host, function, args, policy, script)

    def _call_host(self, function: Any, args: "tuple[Any, ...] | list[Any]", policy: SecurityPolicy, script: str) -> Any:
        conv = self.conv
        passthrough = self.passthrough
        for a in args:
            if type(a) not in passthrough:
                if self.key.memory_limit:
                    self.charge(args)  # host values entering a capped state must fit under its cap
                args = [conv.to_lua(a) for a in args]
                break
        try:
            result = self._call(function, args, policy, script)
            if type(result) in SCALARS and type(result) is not str:
                return result
            return conv.from_lua(result)
        except UnicodeDecodeError:
            raise ConversionError("a Lua string that is not valid UTF-8 cannot cross to the host", language=LANGUAGE,
                                  script=script) from None
        except ScriptError as exc:  # a conversion of the arguments or the result
            if exc.script is None:
                exc.script = script
            raise

    def _call(self, function: Any, args: "list[Any] | tuple[Any, ...]", policy: SecurityPolicy, script: str) -> Any:
        previous = self.deadline
        if policy.time_limit:
            deadline = time.monotonic() + policy.time_limit
            self.deadline = min(previous, deadline) if previous else deadline
        depth = policy.max_recursion or 0
        if depth != self.maxdepth:
            self.state.maxdepth = depth
            self.maxdepth = depth
        try:
            if not self.key.memory_limit:
                if self.debugged:  # a message handler gives the debugger the error where it is raised
                    return self.helpers.boundary_call(function, *args)
                return function(*args)
            was = self.capped
            if not was and self._headroom(args):
                return self._fast_capped(function, args)
            try:
                return self._capped(function, *args)
            finally:
                if self.capped != was:  # an error outside K.capped's own protection
                    self._setcap(was)
        except Exception as exc:
            raise self.call_failure(exc, script) from None
        finally:
            self.deadline = previous
            if not previous and self.overdrawn:  # the outermost call: one ended by _cap_for_error is over now
                self._clear_overdraft()
            if self.key.memory_limit and not self.capped and self.memory_pressure():
                self._collect_capped()

    def _headroom(self, args: "list[Any] | tuple[Any, ...]") -> bool:
        """Whether lupa can push these arguments under the cap for sure (its
        pushes happen outside any protected call)."""
        need = FAST_MARGIN
        for a in args:
            if type(a) is str or type(a) is bytes:
                need += len(a) * 4 + 64
        return bool(self.lua.get_memory_used() + need < (self.key.memory_limit or 0))

    def _fast_capped(self, function: Any, args: "list[Any] | tuple[Any, ...]") -> Any:
        """A capped call with the cap switched from the host (no callbacks from
        Lua): safe because there is headroom for lupa's pushes of the
        arguments, and because `K.fastcapped` hands back only scalars (other
        results wait in a slot, read once the cap is lifted again)."""
        lua, limit = self.lua, self.key.memory_limit
        lua.set_max_memory(limit)
        self.capped = True
        try:
            r = self._fastcall(function, *args)
        finally:
            lua.set_max_memory(0)
            self.capped = False
        return r if type(r) is not tuple else self.fast_result(r)

    def fast_result(self, r: "tuple[Any, ...]") -> Any:
        """What a `K.fastcapped` call that did not hand back one scalar
        returned: (1, results...), (2, nil) with the results in `K.slot`, or
        (0, message) for an error (raised here as a LuaError)."""
        code = r[0]
        if code == 1:
            rest = r[1:]
        elif code == 2:
            packed = self._slot[1]
            self._slot[1] = None
            rest = tuple(packed[i] for i in range(1, int(packed["n"]) + 1))
        else:
            raise self.LuaError(r[1])
        if not rest:
            return None
        return rest[0] if len(rest) == 1 else rest

    def call_failure(self, exc: Exception, script: str) -> ScriptError:
        """The kryon error for what a call into this state raised, located
        (see ``_located``)."""
        if self.overdrawn:
            self._clear_overdraft()
            err: ScriptError = MemoryLimitError(
                "memory limit exceeded (no room left under the cap for what a host function hands the script)",
                language=LANGUAGE)
            return self._located(err, script)
        if isinstance(exc, self.LuaError):
            return self._located(translate(exc, script), script)
        if isinstance(exc, ScriptError):  # raised by host code the script called, or a conversion
            return self._located(exc, script)
        return host_error(exc, script)

    def _clear_overdraft(self) -> None:
        self.overdrawn = False
        self.state.overdrawn = False

    def _located(self, err: ScriptError, script: str) -> ScriptError:
        """Memory errors carry no position: use the last one the hook saw,
        or at least the script that was called."""
        if err.line is None and self.key.sandboxed:
            source, line = self.state.where_source, self.state.where_line
            if isinstance(source, str) and source.startswith("=") and source not in (PRELUDE_NAME, BOUNDED_NAME):
                err.script, err.line = source[1:], int(line) if line else None
        if err.script is None:
            err.script = script
        return err

    def collect(self) -> None:
        """A full garbage collection, outside any call."""
        self.gate.run(self._collect_uncapped)

    def release(self) -> None:
        """Give back what the state's scripts left (their environment is gone
        by now): a full collection while nothing runs in it. The emptied state
        itself is freed by Python's collector once nothing refers to it (its
        host callbacks and the runtime refer to each other); a FunctionRef
        still held to one of its functions keeps it, and keeps working."""
        self.collect()

    def _collect_uncapped(self) -> None:
        if not self.capped:
            self._collect_capped()

    def collect_quietly(self) -> None:
        """A full collection where the cap is in force already (the fast
        path's, past 90% of the cap): a finalizer's error, or the count hook
        of a call whose deadline passed, stays in it."""
        try:
            self._collect()
        except self.LuaError:
            pass

    def _collect_capped(self) -> None:
        """A full collection with the cap in force, outside any call: the
        finalizers it runs are script code (trusted scripts may set `__gc`),
        and stay under the cap (a finalizer's error stays in the collection)."""
        limit = self.key.memory_limit
        if not limit:
            self._collect()
            return
        self.lua.set_max_memory(limit)
        try:
            self.collect_quietly()
        finally:
            self.lua.set_max_memory(0)

    def charge(self, value: Any, extra: int = 0) -> None:
        """Refuse (MemoryLimitError) a host value that would not fit under the
        memory cap once converted into this state, before converting it."""
        limit = self.key.memory_limit
        if not limit:
            return
        room = limit - self.lua.get_memory_used() - extra
        if room <= 0 or (value is not None and lua_size(value, room) > room):
            err = MemoryLimitError(
                "memory limit exceeded (not enough memory for a value the host hands to the script)", language=LANGUAGE
            )
            self.locate(err)
            raise err

    def memory_pressure(self) -> bool:
        limit = self.key.memory_limit or 0
        return bool(limit) and self.lua.get_memory_used() > limit * 0.9

    # -- functions crossing -------------------------------------------------------------
    def function_ref(self, function: Any) -> FunctionRef:
        """A FunctionRef for a Lua function, owned by the script that defined it."""
        source, line, function = self._source_of(function)
        script = source[1:] if isinstance(source, str) and source.startswith("=") else None
        engine = self.engine

        def call(*args: Any) -> Any:
            return self.call_host(function, args, engine._policy_of(script), script or "?")

        ref = FunctionRef(call, name=f"function <{script or '?'}:{line}>", language=LANGUAGE, script=script)
        self._raw[ref] = function
        return ref

    def lua_callable(self, target: Callable[..., Any], label: str = "host function") -> Any:
        """What Lua receives for a FunctionRef or host callable: arguments
        convert from Lua, the result back; a host error becomes a Lua error
        carrying the Lua position of the call (``label`` names the callee)."""
        if isinstance(target, FunctionRef):
            raw = self._raw.get(target)
            if raw is not None and target.alive:
                return raw  # a function of this very state: no round trip through Python
        conv = self.conv

        def failed(exc: Exception) -> ScriptError:
            forget_locals(exc)
            if isinstance(exc, ScriptError):
                self.locate(exc)
                return exc
            if isinstance(exc, self.LuaError):
                # a limit that fired in Lua code the host function ran (making a FunctionRef of a
                # callback reads the function's source through the prelude): still that limit
                limit = translate(exc, self.owner)
                if isinstance(limit, LimitExceededError):
                    self.locate(limit)
                    return limit
            err = ScriptRuntimeError(f"{label} failed: {type(exc).__name__}: {exc}", language=LANGUAGE)
            err.__cause__ = exc
            self.locate(err)
            return err

        if not self.key.memory_limit:
            from_lua, to_lua = conv.from_lua, conv.to_lua
            if conv.limit is None:
                # no size limit: scalar arguments and element handles need no conversion, and None,
                # bools, floats and ints in the state's range none back (the hot cases of kryon.call and
                # kryon.setProperty; a frame and a list per argument saved)
                int_min, int_max = conv.int_min, conv.int_max

                def from_lua_call(*args: Any) -> Any:
                    try:
                        for a in args:
                            if type(a) not in AS_THEY_ARE:
                                args = tuple([from_lua(a) for a in args])
                                break
                        r = target(*args)
                        t = type(r)
                        if r is None or t is bool or t is float or (t is int and int_min <= r <= int_max):
                            return r
                        return to_lua(r)
                    except Exception as exc:
                        args, a = (), None  # (see forget_locals)
                        raise failed(exc) from None
            else:
                def from_lua_call(*args: Any) -> Any:
                    try:
                        return to_lua(target(*[from_lua(a) for a in args]))
                    except Exception as exc:
                        args = ()  # (see forget_locals)
                        raise failed(exc) from None

            return self._ready(self.helpers.hostfn(from_lua_call) if self.key.jit else from_lua_call)
        setcap, limit = self._setcap, conv.limit
        lua, cap = self.lua, self.key.memory_limit or 0
        # a trusted script may set finalizers: none may run while the cap is lifted for host code
        hold_gc, release_gc = (None, None) if self.key.sandboxed else (self._hold_gc, self._release_gc)
        set_max, memory_used = lua.set_max_memory, lua.get_memory_used
        int_min, int_max = conv.int_min, conv.int_max

        def uncapped_call(*args: Any) -> Any:
            # Host code and the conversions around it run with the cap lifted,
            # as outside calls: an allocation refused there would not be a clean
            # Lua error (see `call`). So what the host hands back is charged
            # before it enters: its Lua size is estimated, and a value that would
            # not fit under the cap is a MemoryLimitError, not an allocation.
            # (Scalars within the size limit, element handles and a None result
            # are what conv.from_lua / conv.to_lua would give, written out; so is
            # the charge of a result lupa pushes without allocating: nil, a
            # boolean or a number is refused exactly when `charge` would.)
            was = self.capped
            if was:
                set_max(0)
                self.capped = False
                if hold_gc is not None:  # (with the cap off: a refused allocation here could not be reported)
                    hold_gc()
            try:
                try:
                    for a in args:
                        t = type(a)
                        if t not in AS_THEY_ARE or (t is str and limit is not None and len(a) > limit):
                            args = tuple([conv.from_lua(a) for a in args])
                            break
                    result = target(*args)
                    t = type(result)
                    if result is None or t is bool or t is float or (t is int and int_min <= result <= int_max):
                        if was and memory_used() + _SCALAR_CHARGE > cap:  # what charge(result, 256) refuses
                            self.charge(result, 256)
                        converted = result
                    else:
                        if was:
                            self.charge(result, 256)
                        converted = conv.to_lua(result)
                except Exception as exc:
                    args, a = (), None  # (see forget_locals)
                    raise failed(exc) from None
            except BaseException:
                if was:  # lupa pushes the error under the cap again
                    if release_gc is not None:
                        release_gc()  # (_cap_for_error holds it again for an overdraft)
                    self._cap_for_error()
                elif self.capped:
                    setcap(False)
                raise
            if was:
                if release_gc is not None:
                    release_gc()
                set_max(cap)
                self.capped = True
            elif self.capped:
                setcap(False)
            return converted

        return self._ready(self.helpers.hostfn(uncapped_call) if self.key.jit else uncapped_call)

    def _cap_for_error(self) -> None:
        """Put the cap back on before lupa pushes a host function's error into
        the script that called it. That push allocates, outside any protected
        call: refused, it would unwind through lupa's C frames around the host
        call and leave the process hung. So with too little room under the cap
        (a script that stopped just short of it; the host function's own
        result refused), the garbage is collected first, and if that is not
        enough the cap goes on just above the memory in use (room for the
        push) and the script's call is ended, so the raised cap cannot be
        used: in a sandboxed state the deadline is set to one that has
        passed, so the sandbox's pcall throws the error on and the count hook
        stops the script within its next 1000 instructions; in a trusted
        state ``state.overdrawn`` makes pcall, xpcall and coroutine.resume
        throw it on (``K.guard_catchers``). The raised cap is for the push
        alone: the collector is held (no finalizer runs) and the first Lua
        code that sees the error lowers the cap again (the prelude's
        ``lower``), before any ``<close>`` handler runs, so the state never
        holds more than the cap plus ``_ERROR_ROOM``. The call fails with a
        MemoryLimitError (``call_failure``)."""
        lua, limit = self.lua, self.key.memory_limit or 0
        if lua.get_memory_used() + _ERROR_ROOM >= limit:
            self._collect_capped()  # (its finalizers under the cap)
            used = lua.get_memory_used()
            if used + _ERROR_ROOM >= limit:
                self.overdrawn = True
                self.state.overdrawn = True  # (a key the table has: no allocation)
                if not self.key.sandboxed:  # no finalizer runs above the cap (`lower` in the prelude lets it go)
                    self._hold_gc()
                lua.set_max_memory(used + _ERROR_ROOM)
                self.capped = True
                if self.key.sandboxed:
                    self.deadline = _PASSED
                return
        lua.set_max_memory(limit)
        self.capped = True

    @staticmethod
    def _ready(function: Any) -> Any:
        """Mark a callable made for Lua, so that converting it again (a host
        function returning it) passes it through instead of wrapping it twice."""
        if isinstance(function, types.FunctionType):  # under LuaJIT it is a Lua function already
            function.lua_ready = True  # type: ignore[attr-defined]
        return function

    # -- stack ------------------------------------------------------------------------------
    def script_frames(self, with_locals: bool = False) -> list[StackFrame]:
        """The script frames on the Lua stack now, innermost first."""
        frames: list[StackFrame] = []
        # (with locals: K.locals reads levels of the main thread, so the walk stays there; under
        # LuaJIT, which shows no frames past the host call, too: its positions come from K.hostfn)
        raw = (self.helpers.stack(1) if with_locals or self.key.jit
               else run_chunk(self.lua, self.module, _WALK, WALK_NAME, self._stack))
        for index in range(1, len(raw) + 1):
            info = raw[index]
            source = info["source"]
            if (not isinstance(source, str) or not source.startswith("=")
                    or source in (PRELUDE_NAME, BOUNDED_NAME, WALK_NAME, "=[C]")):
                continue
            local_vars: dict[str, Any] = {}
            if with_locals and not frames:
                local_vars = self._locals(index)
            line = info["line"]
            frames.append(
                StackFrame(
                    function=str(info["name"] or "?"),
                    script=source[1:],
                    line=line if isinstance(line, int) and line > 0 else None,
                    language=LANGUAGE,
                    locals=local_vars,
                )
            )
        if not frames and self.key.jit:
            frames = self._host_caller()
        return frames

    def _host_caller(self) -> list[StackFrame]:
        """Under LuaJIT, the frame that called the running host function, as
        `K.hostfn` recorded it (LuaJIT shows no frames past the host call)."""
        source, line, name = self.state.host_source, self.state.host_line, self.state.host_name
        if not isinstance(source, str) or not source.startswith("=") or source in (PRELUDE_NAME, BOUNDED_NAME, WALK_NAME):
            return []
        return [StackFrame(function=str(name or "?"), script=source[1:],
                           line=line if isinstance(line, int) and line > 0 else None, language=LANGUAGE)]

    def _locals(self, level: int) -> dict[str, Any]:
        out = {}
        for name, value in self.helpers.locals(level).items():
            try:
                out[name] = self.conv.from_lua(value)
            except ScriptError:
                out[name] = repr(value)
        return out

    def locate(self, exc: ScriptError) -> None:
        """Give an error raised in a host function the Lua position it came from."""
        if exc.language in (None, LANGUAGE) and exc.line is None:
            try:
                frames = self.script_frames()
            except Exception:  # noqa: BLE001 - lupa refused the walk (a host error inside a coroutine):
                return  # the error goes on unlocated rather than replaced by lupa's own
            if frames:
                exc.language, exc.script, exc.line = LANGUAGE, frames[0].script, frames[0].line
                exc.stack = exc.stack or frames

