"""The compiled caller (``_ccall``, optional C extension) and the checks that
let it be used.

The extension does in C what ``calls.make_caller``'s generated limited
caller does in one Python frame (see ``_ccall.c``). It reaches into lupa: the
Lua C API that lupa's module exports, the ``lua_State`` and the lock of a
``LuaRuntime``, the registry reference of a lupa function, and the memory
counters of lupa's allocator. None of that is lupa's public API, so every
fact is checked on the live objects before a compiled caller is made, and any
mismatch (another lupa version, LuaJIT, a build without the extension, the
environment variable ``KRYON_LUA_NO_CEXT=1``) leaves the Python caller in
place: a wrong guess must never reach the state.
"""

from __future__ import annotations

import gc
import importlib
import os
import re
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kryon_core import SecurityPolicy, speedups, threads

from .runtime import FAST_MARGIN
from .values import SCALARS

if TYPE_CHECKING:
    from .runtime import Runtime

_ccall: Any
try:
    _ccall = importlib.import_module("._ccall", __package__)
except ImportError:  # installed without a compiler: the Python callers do everything
    _ccall = None

#: set to 1 to keep the compiled caller off (the Python callers then do every call)
ENV_OFF = "KRYON_LUA_NO_CEXT"
_PLAIN_RESULTS = SCALARS - {str}
_WORD = 8
_ADDRESS = re.compile(r"0x([0-9a-fA-F]+)")
_loaded: dict[str, bool] = {}


def enabled() -> bool:
    """Whether compiled callers may be made at all (built, and not turned off)."""
    return _ccall is not None and os.environ.get(ENV_OFF, "") in ("", "0")


class StateFacts:
    """What a compiled caller needs of one state, each checked (``_verify``)."""

    def __init__(self, state: int, lock: Any, memory: int, refs: tuple[int, int, int, int], holder: Any, rethrow: Any,
                 keep: tuple[Any, ...]) -> None:
        self.state, self.lock, self.memory = state, lock, memory
        #: registry references: the message handler, K.state, the packer, the key "where_source"
        self.handler, self.state_table, self.packer, self.where_key = refs
        self.holder, self.rethrow, self.keep = holder, rethrow, keep


_facts: "weakref.WeakKeyDictionary[Runtime, StateFacts | None]" = weakref.WeakKeyDictionary()


def facts(rt: "Runtime") -> StateFacts | None:
    """The checked facts of ``rt``'s state, or None when any check fails
    (then no compiled caller is made for it). Called inside the gate."""
    if rt in _facts:
        return _facts[rt]
    try:
        found = _verify(rt)
    except Exception:  # any surprise means: not this lupa, use the Python caller
        found = None
    _facts[rt] = found
    return found


def _address(lua_object: Any) -> int:
    """The address lupa's repr shows (``lua_topointer`` of the value)."""
    m = _ADDRESS.search(repr(lua_object))
    if m is None:
        raise ValueError("no address in repr")
    return int(m.group(1), 16)


def _ref(rt: "Runtime", state: int, obj: Any, kind: int = 6) -> int:
    """The registry reference of lupa object ``obj`` (a function: Lua type
    6, a table: 5), checked: it must point at this very value of this state."""
    assert _ccall is not None
    if type(obj).__basicsize__ < 6 * _WORD:
        raise ValueError("unknown lupa object layout")
    runtime, obj_state, ref = _ccall.object_words(obj)
    if runtime != id(rt.lua) or obj_state != state:
        raise ValueError("lupa object of another state or layout")
    got, pointer = _ccall.ref_pointer(state, ref)
    if got != kind or pointer != _address(obj):
        raise ValueError("registry reference does not hold the value")
    return int(ref)


def _verify(rt: "Runtime") -> StateFacts | None:
    if _ccall is None or rt.key.jit or rt.module.__name__ != "lupa.lua54":
        return None
    path = rt.module.__file__
    if path not in _loaded:
        try:
            _ccall.load_api(path)
            _loaded[path] = True
        except OSError:
            _loaded[path] = False
    if not _loaded[path]:
        return None
    lua = rt.lua
    # the main lua_State: Lua prints the running (main) thread's address
    state = _address(lua.eval("tostring(coroutine.running())"))
    if type(lua).__basicsize__ < 5 * _WORD:
        return None
    words_state, lock_address = _ccall.runtime_words(lua)
    if words_state != state:
        return None
    locks = [o for o in gc.get_referents(lua) if type(o).__name__ == "FastRLock" and id(o) == lock_address]
    if len(locks) != 1 or type(locks[0]).__basicsize__ < 2 * _WORD + 3 * _WORD:
        return None
    lock = locks[0]
    if not _lock_layout_holds(lock):
        return None
    memory = 0
    if rt.key.memory_limit:
        memory = _memory_layout(rt, state)
        if not memory:
            return None
    if not _plain_attributes(rt):
        return None
    # K.fastcapped's message handler, found by name among its upvalues
    handler = lua.eval(_FIND_HANDLER)(rt._fastcall)
    if lua.eval("type")(handler) != "function":
        return None
    holder = lua.table()
    packer = lua.eval(_PACKER)(holder)
    rethrow = lua.eval("function(t) error(t[1], 0) end")
    key = _ccall.string_ref(state, "where_source")
    if _ccall.ref_pointer(state, key)[0] != 4:  # LUA_TSTRING
        return None
    refs = (_ref(rt, state, handler), _ref(rt, state, rt.state, kind=5), _ref(rt, state, packer), key)
    return StateFacts(state, lock, memory, refs, holder, rethrow, (lua, handler, rt.state, packer, holder))


_FIND_HANDLER = """function(f)
  local i = 1
  while true do
    local name, value = debug.getupvalue(f, i)
    if name == nil then return nil end
    if name == "fast_error" then return value end
    i = i + 1
  end
end"""
#: stores all its arguments (a call's outcome) in t[1], with their count
_PACKER = "function(t) local select = select; return function(...) t[1] = { n = select('#', ...), ... } end end"


def _plain_attributes(rt: "Runtime") -> bool:
    """The compiled caller reads and writes ``capped``, ``deadline`` and
    ``maxdepth`` in the runtime's ``__dict__``: they must be plain instance
    attributes (no property or slot of the class in between)."""
    attrs = getattr(rt, "__dict__", None)
    cls = vars(type(rt))
    return (type(attrs) is dict and type(attrs.get("capped")) is bool and type(attrs.get("deadline")) is float
            and type(attrs.get("maxdepth")) is int and not any(n in cls for n in ("capped", "deadline", "maxdepth")))


def _lock_layout_holds(lock: Any) -> bool:
    """The lock's owner and count fields move with its own acquire and release."""
    assert _ccall is not None
    me = threading.get_ident()
    _, count, _, _ = _ccall.lock_fields(lock)
    if not lock.acquire(False):
        return False
    try:
        owner, count2, _, _ = _ccall.lock_fields(lock)
        if owner != me or count2 != count + 1:
            return False
        lock.acquire(False)
        owner, count3, _, _ = _ccall.lock_fields(lock)
        lock.release()
        if count3 != count + 2:
            return False
    finally:
        lock.release()
    return bool(_ccall.lock_fields(lock)[1] == count)


def _memory_layout(rt: "Runtime", state: int) -> int:
    """The allocator userdata's address once its fields follow
    ``get_memory_used`` and ``set_max_memory``; 0 when they do not."""
    assert _ccall is not None
    lua = rt.lua
    if rt.capped:
        return 0
    address, used, base, limit = _ccall.memory_status(state)
    if not address or limit != 0 or used - base != lua.get_memory_used():
        return 0
    probe = 12345
    lua.set_max_memory(probe)
    try:
        _, _, base2, limit2 = _ccall.memory_status(state)
    finally:
        lua.set_max_memory(0)
    ok = base2 == base and limit2 == base + probe and _ccall.memory_status(state)[3] == 0
    return int(address) if ok else 0


def _gate_lock(gate: threads.EngineGate) -> Any:
    """The gate's lock when the compiled caller may take and give it back
    through kryon-core's gate capsule (``kryon_core.threads.direct_lock``
    checks its layout; docs/plugins.md, "The gate from C"), else None: the
    caller calls the lock's methods (a core without its compiled core, one
    older than the capsule, a failed check)."""
    assert _ccall is not None
    direct = getattr(threads, "direct_lock", None)
    if direct is None or not _ccall.has_gate_api():
        return None
    return direct(gate)


def _waiting_slot(gate: threads.EngineGate) -> int:
    """The offset of the gate's ``_waiting`` slot (read there by the compiled
    caller on each release), or 0 when it is not a plain object slot."""
    assert _ccall is not None
    try:
        offset = int(_ccall.slot_offset(vars(type(gate))["_waiting"]))
        return offset if _ccall.read_slot(gate, offset) is gate._waiting else 0
    except (KeyError, TypeError, ValueError):
        return 0


def _handle_type() -> None:
    """Name kryon-core's vectorcalling ``FunctionRef`` subclass
    (``speedups.handle_type``) as the type of compiled callers' bound handles
    (``Caller.handle_type``; ``ScriptManager._bind``). Without the compiled
    core, handles stay plain ``FunctionRef.direct`` ones."""
    assert _ccall is not None
    made = speedups.handle_type()
    if made is not None:
        _ccall.set_handle_type(made)


def compiled(rt: "Runtime", f: Any, policy: SecurityPolicy, script: str, nparams: int, limited: bool,
             generic: Callable[..., Any], failure: Callable[[Exception], Exception]) -> Callable[..., Any] | None:
    """The compiled caller of Lua function ``f``, or None when the extension
    is off or any check fails. ``limited``: the policy has limits to enforce
    (``calls.limited``); ``generic`` takes every call the compiled path does
    not; ``failure`` is the kryon error for what a call raised."""
    if not enabled():
        return None
    if rt.key.memory_limit and not rt.key.sandboxed:
        # a trusted state with a cap holds its collector outside script code and K.fastcapped lets it
        # run around the call (prelude.lua, held_call), which this caller does not do: the Python one
        return None
    found = facts(rt)
    if found is None:
        return None
    try:
        fref = _ref(rt, found.state, f)
    except Exception:
        return None
    assert _ccall is not None
    holder, rethrow, LuaError, LuaMemoryError = found.holder, found.rethrow, rt.LuaError, rt.module.LuaMemoryError
    from_lua = rt.conv.from_lua
    # limited: as K.fastcapped and the generated caller hand results back (a str through the converter)
    plain = _PLAIN_RESULTS if limited else SCALARS

    def fail(exc: Exception) -> None:
        raise failure(exc) from None

    def finish(status: int | None, message: str | None) -> Any:
        """The outcome the compiled caller could not hand back itself: an error
        ``message`` it decoded (trusted), or what it packed into ``holder[1]``:
        the function's results (status 0) or its error."""
        try:
            if message is not None:
                raise (LuaMemoryError if status == 4 else LuaError)(message)  # 4: LUA_ERRMEM, as lupa tells them
            packed = holder[1]
            holder[1] = None
            if status is None or packed is None:  # no room even to pack the outcome
                raise LuaMemoryError("not enough memory")
            values = tuple(packed[i] for i in range(1, int(packed["n"]) + 1))
            if status:
                if values and type(values[0]) is str:  # limited: K.fastcapped's (0, message)
                    raise LuaError(values[0])
                rethrow(packed)  # what lupa raises for it: the host's own exception, or the error object
            r: Any = values[0] if len(values) == 1 else values
            return r if type(r) in plain else from_lua(r)
        except Exception as exc:
            raise failure(exc) from None

    _handle_type()
    limit = rt.key.memory_limit or 0
    acquire, unlock = rt.gate.uncontended_inline()
    caller: Callable[..., Any] = _ccall.make_caller(
        found.state, found.lock, found.memory, limit, FAST_MARGIN, int(limit * 0.9),
        fref, found.handler, found.state_table, found.packer, nparams, limited, float(policy.time_limit or 0.0),
        policy.max_recursion or 0, found.keep + (f,), rt, vars(rt), acquire, unlock, rt.gate, threads.wake_waiters,
        threads.tracking, generic, finish, rt._collect_capped, fail,  # finalizers run under the cap
        _gate_lock(rt.gate), _waiting_slot(rt.gate), found.where_key,
    )
    return caller
