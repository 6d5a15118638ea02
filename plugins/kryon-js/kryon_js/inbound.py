"""Calls from a script into the host: ``kryon.<name>(...)`` (an entry of the
API table, called with the script's bridge view) and host callables the
script holds. Every failure goes back to JavaScript as an Error the script
may catch; uncaught, it surfaces as the original kryon error class."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kryon_core import ScriptBridge, ScriptError, ScriptRuntimeError

from .awaited_jobs import TIMER_ENTRIES, track
from .bridge import REQUIRE, require
from .plugin import LANGUAGE
from .runtime import BINDING_ERRORS
from .values import decode, number_from_js

if TYPE_CHECKING:
    from .state import ScriptState


def arguments(state: "ScriptState", enc: Any, args: tuple[Any, ...]) -> list[Any]:
    """Arguments of a call from JS: as they came (scalars), with handle ids at
    the positions set in an int ``enc`` mask, or tagged JSON."""
    limit = state.max_value
    if type(enc) is str:
        if limit is not None and len(enc) > limit:
            state.too_big("the arguments of a host call")
        return decode(enc, state)  # type: ignore[no-any-return]
    out = list(args)
    for i, a in enumerate(out):
        if type(a) is float:
            out[i] = number_from_js(a)
        elif limit is not None and type(a) is str and len(a) > limit:
            state.too_big("a string")
    if enc:
        mask = int(enc)
        for i in range(len(out)):
            if mask >> i & 1:
                out[i] = state.userdata(int(out[i]))
    return out


def run_host(state: "ScriptState", fn: Callable[..., Any], values: list[Any]) -> Any:
    host = state.host
    chain = host.chains.chain
    outer, depth = chain.inside, chain.nesting
    chain.inside = state
    if not depth:
        host.nested += 1
    chain.nesting = depth + 1
    try:
        return fn(*values)
    finally:
        chain.nesting = depth
        chain.inside = outer
        if not depth:
            host.nested -= 1


def host_call(state: "ScriptState", idx: int, enc: Any, *args: Any) -> Any:
    """``kryon.<name>(...)`` from the script: entry ``idx`` of the API table.
    Every ``kryon.call`` comes this way, so :func:`arguments`, :func:`run_host`
    and the scalar cases of ``to_js`` are written out here (a Python frame
    each saved)."""
    try:
        host = state.host
        name, (lo, hi), fn, on_view = host.api[idx if type(idx) is int else int(idx)]
        values: Any = None  # the arguments as the host function takes them
        if enc == 0 and type(enc) is int:  # no handles, no JSON: scalars as they came, unless a float or too long
            limit = state.max_value
            for a in args:
                t = type(a)
                if t is float or (t is str and limit is not None and len(a) > limit):
                    break
            else:
                values = args
        if values is None:
            values = arguments(state, enc, args) if enc or args else ()
        n = len(values)
        if n < lo or (hi >= 0 and n > hi):
            want = f"{lo}" if lo == hi else (f"at least {lo}" if hi < 0 else f"{lo} to {hi}")
            raise ScriptRuntimeError(f"kryon.{name} takes {want} argument(s), {n} given",
                                     language=LANGUAGE, script=state.script)
        if idx == REQUIRE:
            return require(str(values[0]), state.policy, state.script)
        if fn is None or (on_view and state.view is None):
            raise ScriptRuntimeError(f"kryon.{name} needs a ScriptManager bridge", language=LANGUAGE,
                                     script=state.script)
        # run_host, written out
        chain = host.chains.chain
        outer, depth = chain.inside, chain.nesting
        chain.inside = state
        if not depth:
            host.nested += 1
        chain.nesting = depth + 1
        owner = None
        if state.awaited_call is not None and name in TIMER_ENTRIES:  # a timer of the awaited call (awaited_jobs.py)
            owner, values = track(state, values)
        try:
            r = fn(state.view, *values) if on_view else fn(*values)
        finally:
            chain.nesting = depth
            chain.inside = outer
            if not depth:
                host.nested -= 1
        if owner is not None and type(r) is int:
            owner.timers.add(r)
        # the scalar cases of to_js, written out
        t = type(r)
        if r is None or t is bool or t is float or (t is int and -2147483648 <= r <= 2147483647):
            return r
        if t is str and r.isascii() and (state.max_value is None or len(r) <= state.max_value):
            return r
        return state.to_js(r)
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to JS as an Error
        return failed(state, exc)


#: ``value`` of :func:`element_call` when the method was called with two arguments
_ABSENT: Any = object()


def element_call(state: "ScriptState", fn: Callable[..., Any], uid: Any, name: str, value: Any = _ABSENT) -> Any:
    """``kryon.<method>(element, name[, value])`` for the element methods of
    the API (``ELEMENT_METHODS`` in bridge.py; ``fn`` is the ScriptBridge
    method, bound per script in ``ScriptState._install``) when the prelude
    found the arity right, the element a handle or an element id, the name a
    string and the value a scalar, each crossing as it is: a handle's id comes
    instead of the handle, and the API table look-up and argument scan of
    :func:`host_call` are skipped. Checks, the call through the script's
    bridge view, the result and the errors are those of the general path
    (tests/js/test_dom_fast_path.py)."""
    try:
        # the checks of `arguments`: the strings' sizes, numbers by the JS rule, then the handle
        limit = state.max_value
        t = type(value)
        if limit is not None and (len(name) > limit or (t is str and len(value) > limit)):
            state.too_big("a string")
        if t is float:
            value = number_from_js(value)
        if type(uid) is str:  # an element id
            if limit is not None and len(uid) > limit:
                state.too_big("a string")
            element = uid
        else:
            ud = state.handles.ud_objs.get(uid)
            element = ud if ud is not None else state.userdata(int(uid))
        # run_host, written out
        host = state.host
        chain = host.chains.chain
        outer, depth = chain.inside, chain.nesting
        chain.inside = state
        if not depth:
            host.nested += 1
        chain.nesting = depth + 1
        try:
            r = fn(state.view, element, name) if value is _ABSENT else fn(state.view, element, name, value)
        finally:
            chain.nesting = depth
            chain.inside = outer
            if not depth:
                host.nested -= 1
        # the scalar cases of to_js, written out
        if r is None:
            return r
        t = type(r)
        if t is bool or t is float or (t is int and -2147483648 <= r <= 2147483647):
            return r
        if t is str and r.isascii() and (limit is None or len(r) <= limit):
            return r
        return state.to_js(r)
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to JS as an Error
        return failed(state, exc)


#: ``kryon.call(name)`` with no argument (the routed call's first argument is optional)
_NO_ARGUMENT: Any = object()


def routed_call_for(state: "ScriptState", view: "ScriptBridge") -> Callable[..., Any]:
    """``kryon.call(name, ...args)`` when the prelude found the name a string
    and at most three arguments, all scalars crossing as they are (prelude.js
    ``callMethod``): made per script for its bridge view (``ScriptState._install``),
    with what stays put bound once (the view's manager, caller, policy and
    cached routes; the script's size limit and the host's chains), it goes
    straight to the view's router (``CrossLanguageRegistry.router``),
    skipping :func:`host_call`'s API table look-up and argument scan and the
    ``ScriptBridge.call`` frame. Checks, nesting bookkeeping, result and errors
    are those of the general path (tests/js/test_kcall_fast_path.py)."""
    route = view.router()  # (the language-wide bridge's is under the manager's default policy)
    limit = state.max_value
    host = state.host
    chains = host.chains
    to_js = state.to_js

    def scanned(args: tuple[Any, ...]) -> Any:
        """The checks of `arguments`: the strings' sizes, numbers by the JS rule."""
        values = [number_from_js(x) if type(x) is float else x for x in args]
        if limit is not None:
            for x in values:
                if type(x) is str and len(x) > limit:
                    state.too_big("a string")
        return values

    def routed_call(name: str, a: Any = _NO_ARGUMENT, *more: Any) -> Any:
        try:
            # one argument that crosses as it is (an int, a bool, None, a string within the limit), the
            # usual call, is passed on as it is (no argument tuple made); any other goes through `scanned`
            t = type(a)
            if more or t is float or a is _NO_ARGUMENT or (t is str and limit is not None and len(a) > limit):
                values = scanned(() if a is _NO_ARGUMENT else (a, *more))
            else:
                values = None
            if limit is not None and len(name) > limit:
                state.too_big("a string")
            if route is None:
                raise ScriptError("kryon.call needs a ScriptManager", language=LANGUAGE)
            # run_host, written out
            chain = chains.chain
            outer, depth = chain.inside, chain.nesting
            chain.inside = state
            if not depth:
                host.nested += 1
            chain.nesting = depth + 1
            try:
                r = route(name, a) if values is None else route(name, *values)
            finally:
                chain.nesting = depth
                chain.inside = outer
                if not depth:
                    host.nested -= 1
            # the scalar cases of to_js, written out (an int, the usual result, first)
            t = type(r)
            if (t is int and -2147483648 <= r <= 2147483647) or r is None or t is bool or t is float:
                return r
            if t is str and r.isascii() and (limit is None or len(r) <= limit):
                return r
            return to_js(r)
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to JS as an Error
            if isinstance(exc, ScriptError) and exc.language is None:
                exc.language = LANGUAGE  # as ScriptBridge.call gives it
            return failed(state, exc)

    return routed_call


def invoke(state: "ScriptState", pid: int, enc: Any, *args: Any) -> Any:
    """A host callable the script holds, called from the script."""
    try:
        fn = state.handles.py_objs[int(pid)]
        values = arguments(state, enc, args)
        return state.to_js(run_host(state, fn, values))
    except BaseException as exc:  # noqa: BLE001
        return failed(state, exc)


def failed(state: "ScriptState", exc: BaseException) -> Any:
    """Keep a host exception for the JS error that will carry it; returns the ERR marker. A binding
    error here is the host's own call into the runtime failing while it built the result (handles, a
    list, a boxed string): near the memory limit QuickJS throws ``null`` there, which is read as the
    limit error it is (oom.py), not passed on as a ``JSException``."""
    if isinstance(exc, BINDING_ERRORS):
        exc = state.host.binding_error(state, exc)
    hid = state.host.keep_host_error(exc)
    name = type(exc).__name__
    message = str(exc) if not isinstance(exc, ScriptError) or exc.language not in (None, LANGUAGE) else exc.message
    state.last_host_error = (name, message, hid)
    return state.ERR
