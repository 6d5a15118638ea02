"""Per-function callers: the manager's and bound handles' path into Lua.

One caller is made per (script version, function). For a function of 0-4
fixed parameters it is generated source (``make_caller``) that, given that
many simple arguments (nil, booleans, numbers, short ASCII strings), does the
whole call in one Python frame: the gate's uncontended acquire, the deadline
and recursion depth written where the count hook reads them, the memory cap
switched on around the lupa call and off after it, and the result handed back
without the generic converter. A call made from a host function that a
script of the same state called takes that path too (the cap is lifted
there; the enclosing call's deadline is kept). Everything else (other
arguments, the cap in force, low headroom under the cap, a contended gate, a
debugger recording gate entries) goes through the generic path
(``Runtime.call_host``), which gives the same results and errors.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kryon_core import SecurityPolicy, threads
from kryon_core.errors import ScriptError
from kryon_core.values import MAX_SAFE_DOUBLE_INT

from .ccall import compiled
from .errors import translate
from .runtime import FAST_MARGIN, host_error
from .values import SCALARS

if TYPE_CHECKING:
    from .runtime import Runtime

_PARAMS = ("a", "b", "c", "d")
_MISSING = object()
#: a str argument this long at most (and ASCII: no encodability check needed) takes the fast path;
#: the headroom check's margin covers it
_SHORT_STR = 4096
#: results handed back as they are; a str result goes through the converter (its size limit)
_PLAIN_RESULTS = SCALARS - {str}


def limited(rt: "Runtime", policy: SecurityPolicy) -> bool:
    """Whether calls into ``rt`` under ``policy`` have limits to enforce (a
    trusted policy's time and recursion limits too: its state then runs the
    count hook, ``RuntimeKey.counted``)."""
    return bool(rt.key.memory_limit or rt.key.max_value_size or policy.time_limit or policy.max_recursion)


def make_caller(rt: "Runtime", f: Any, policy: SecurityPolicy, script: str, nparams: int | None) -> Callable[..., Any]:
    """The caller of Lua function ``f`` of ``script`` with host values.
    ``nparams`` is its fixed parameter count, None when it is variadic or
    unknown (then every call takes the generic path)."""
    generic = _generic(rt, f, policy, script)
    if nparams is None or not 0 <= nparams <= len(_PARAMS):
        return generic
    # the compiled caller (kryon_lua/ccall.py) when the extension loaded and every check of it holds
    fast = compiled(rt, f, policy, script, nparams, limited(rt, policy), generic,
                    (lambda exc: rt.call_failure(exc, script)) if limited(rt, policy) else _unlimited_failure(rt, script))
    if fast is not None:
        return fast
    params = _PARAMS[:nparams]
    listed = "".join(p + ", " for p in params)
    simple = rt.passthrough - {str}
    # LuaJIT numbers are doubles: an int crosses exactly (as to_lua lets it) only within +-2**53
    exact_int = f" and (type({{p}}) is not int or not {-MAX_SAFE_DOUBLE_INT} <= {{p}} <= {MAX_SAFE_DOUBLE_INT})" if rt.key.jit else ""
    if limited(rt, policy):  # a str argument must fit the headroom and pass to_lua's checks unchecked
        check = (" or (type({p}) not in simple" + exact_int
                 + " and (type({p}) is not str or len({p}) > short or not {p}.isascii()))")
    else:  # what lupa passes exactly (a str that is not UTF-8-encodable fails there, with the same error)
        check = " or (type({p}) not in passthrough" + exact_int + ")"
    checks = "".join(check.format(p=p) for p in params)
    signature = "".join(p + "=_MISSING, " for p in params) + "*rest"
    missing = f" or {params[-1]} is _MISSING" if params else ""
    head = (
        f"def call({signature}):\n"
        f"    if rest{missing} or tracking{checks}:\n"
        f"        return generic(*[x for x in ({listed}*rest,) if x is not _MISSING])\n"
        f"    if not acquire(False):\n"
        f"        return generic({listed})\n"
        f"    try:\n"
    )
    tail = (
        "    except Exception as exc:\n"
        "        raise failure(exc) from None\n"
        "    finally:\n"
        "        unlock()  # the gate's release, written out (EngineGate.uncontended_inline)\n"
        "        if gate._waiting:\n"
        "            wake_waiters()\n"
    )
    acquire, unlock = rt.gate.uncontended_inline()
    namespace: dict[str, Any] = {
        "_MISSING": _MISSING, "tracking": threads.tracking, "simple": simple, "passthrough": rt.passthrough, "short": _SHORT_STR,
        "generic": generic, "acquire": acquire, "unlock": unlock, "gate": rt.gate, "wake_waiters": threads.wake_waiters,
        "f": f,
    }
    if not limited(rt, policy):
        body = (
            f"        r = f({listed})\n"
            f"        return r if type(r) in scalars else from_lua(r)\n"
        )
        namespace.update(scalars=SCALARS, from_lua=rt.conv.from_lua, failure=_unlimited_failure(rt, script))
    else:
        body = _limited_body(rt, policy, listed)
        limit = rt.key.memory_limit or 0
        namespace.update(
            rt=rt, call_host=rt.call_host, policy=policy, script=script,
            depth=policy.max_recursion or 0, luastate=rt.state, time_limit=policy.time_limit or 0.0,
            monotonic=time.monotonic, memory_used=rt.lua.get_memory_used, set_max=rt.lua.set_max_memory,
            limit=limit, margin=FAST_MARGIN, pressure=int(limit * 0.9),  # an int: compared with an int, cheaper than a float
            collect=rt.collect_quietly,
            fastcall=rt._fastcall, fast_result=rt.fast_result, plain=_PLAIN_RESULTS,
            from_lua=rt.conv.from_lua, failure=lambda exc: rt.call_failure(exc, script),
        )
    exec(compile(head + body + tail, f"<kryon-lua caller/{nparams}>", "exec"), namespace)
    call: Callable[..., Any] = namespace["call"]
    return call


def _limited_body(rt: "Runtime", policy: SecurityPolicy, listed: str) -> str:
    """The fast path under limits. It runs whenever the cap is not in force:
    as the outermost call into the state, or from a host function a script
    of the state called (``Runtime.lua_callable`` has lifted the cap there;
    an enclosing call's deadline stays in force when it is the earlier one,
    and is back once this call returns). With a memory cap, it runs only with
    headroom for lupa to push the arguments (its pushes happen outside any
    protected call: a refused allocation there is a panic). The cap goes on
    from the host and ``K.fastcapped`` hands back scalars only, as
    ``Runtime._fast_capped``."""
    lines = [
        "        if rt.capped:  # only the generic path switches the cap from inside Lua\n",
        f"            return call_host(f, ({listed}), policy, script)\n",
    ]
    if rt.key.memory_limit:
        lines += [
            "        if memory_used() + margin >= limit:\n",
            f"            return call_host(f, ({listed}), policy, script)\n",
        ]
    lines += [
        "        if rt.maxdepth != depth:\n",
        "            luastate.maxdepth = depth\n",
        "            rt.maxdepth = depth\n",
        "        previous = rt.deadline  # an enclosing call's, or 0.0\n",
    ]
    if policy.time_limit:
        lines += [
            "        deadline = monotonic() + time_limit  # the count hook reads rt.deadline (Runtime._check_time)\n",
            "        if not previous or deadline < previous:\n",
            "            rt.deadline = deadline\n",
        ]
    if rt.key.memory_limit:
        lines += [
            "        set_max(limit)\n",
            "        rt.capped = True\n",
            "        try:\n",
            f"            r = fastcall(f, {listed})\n",
            "        finally:\n",
            "            rt.deadline = previous\n",
            "            if memory_used() > pressure:  # under the cap: the finalizers it runs are script code\n",
            "                collect()  # (never raises)\n",
            "            set_max(0)\n",
            "            rt.capped = False\n",
            "        if type(r) in plain:  # the common case, first\n",
            "            return r\n",
            "        if type(r) is tuple:\n",
            "            r = fast_result(r)\n",
        ]
    else:
        lines += [
            "        try:\n",
            f"            r = f({listed})\n",
            "        finally:\n",
            "            rt.deadline = previous\n",
        ]
    lines.append("        return r if type(r) in plain else from_lua(r)\n")
    return "".join(lines)


def _generic(rt: "Runtime", f: Any, policy: SecurityPolicy, script: str) -> Callable[..., Any]:
    """The caller for any arguments: the limited path's ``call_host``, or,
    with no limits, the converter around a plain call."""
    if limited(rt, policy):
        call_host = rt.call_host

        def call(*args: Any) -> Any:
            return call_host(f, args, policy, script)

        return call
    to_lua, from_lua, passthrough = rt.conv.to_lua, rt.conv.from_lua, rt.passthrough
    gate = rt.gate
    acquire, unlock = gate.uncontended_inline()
    run, tracking, wake_waiters = gate.run, threads.tracking, threads.wake_waiters
    failure = _unlimited_failure(rt, script)

    def converting(callee: Callable[..., Any]) -> Callable[..., Any]:
        def inside(*args: Any) -> Any:  # in the gate: conversions touch the state too
            for a in args:
                if type(a) not in passthrough:
                    args = tuple([to_lua(a) for a in args])
                    break
            result = callee(*args)
            if type(result) in SCALARS:
                return result
            return from_lua(result)

        return inside

    inside = converting(f)
    # once a debugger has attached: K.boundary_call's message handler shows it where an error is raised
    inside_boundary = converting(lambda *args: rt.helpers.boundary_call(f, *args))

    def inside_debugged(*args: Any) -> Any:
        return (inside_boundary if rt.debugged else inside)(*args)

    def unlimited(*args: Any) -> Any:
        try:
            if not tracking and acquire(False):  # the gate's uncontended path, inlined
                try:
                    return inside(*args)
                finally:
                    unlock()  # the gate's release, written out
                    if gate._waiting:
                        wake_waiters()
            return run(inside_debugged, *args)  # contended, or a debugger is attached
        except Exception as exc:
            raise failure(exc) from None

    return unlimited


def _unlimited_failure(rt: "Runtime", script: str) -> Callable[[Exception], ScriptError]:
    LuaError = rt.LuaError

    def failure(exc: Exception) -> ScriptError:
        """The kryon error for what a call into Lua raised."""
        if isinstance(exc, LuaError):
            return translate(exc, script)
        return host_error(exc, script)

    return failure
