"""The hot path of a call into a trusted script with nothing to watch.

A bound handle (``ScriptManager.function``) calls this for every call, so it
is made per function, with the function's own number of parameters: a
caller taking ``*args`` pays for packing them into a tuple and unpacking
them again (about as much as a trivial call itself), one taking ``a0, a1``
does not. The source of such a caller is made from a fixed template (the
parameter count is the only thing filled in) and compiled once per arity.

A call with another number of arguments, or made while breakpoints exist,
takes ``general`` (the full path through ``Entry.run``), as does a function
whose parameters are not plain positional ones.

With the compiled core (``kryon_core._speedups``) the caller is made in C
instead (:func:`compiled_caller`): it does the template's common case
itself and hands every other case (another number of arguments, keywords,
breakpoints, entries tracked for a debugger, the gate held by another thread)
to the Python caller made here, so those behave as without the extension.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable
from typing import Any

from .. import speedups, threads
from .entry import PASSTHROUGH
from .values import PLAIN

__all__ = ["fast_caller", "arity", "compiled_caller"]

#: a parameter the caller did not pass
_MISSING: Any = object()


def arity(fn: Callable[..., Any]) -> int | None:
    """The number of parameters of a plain function taking positional
    arguments only (no defaults, ``*args``, keyword-only or ``**kwargs``), else None."""
    if type(fn) is not types.FunctionType:
        return None
    code = fn.__code__
    flags = code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS)
    if flags or code.co_kwonlyargcount or fn.__defaults__ or code.co_argcount > 8:
        return None
    return code.co_argcount


@functools.cache
def _template(n: int) -> types.CodeType:
    names = [f"a{i}" for i in range(n)]
    params = "".join(f"{a}=MISSING, " for a in names)
    given = f"({', '.join(names)},)" if n else "()"
    missing = f" or {names[-1]} is MISSING" if n else ""
    passed = "".join(f", {a}" for a in names)
    source = (
        f"def call({params}*rest):\n"
        f"    if rest{missing} or breakpoints.active:\n"
        f"        return general(tuple(a for a in {given} if a is not MISSING) + rest)\n"
        f"    try:\n"
        f"        result = gate_run(fn{passed})\n"
        f"    except PASSTHROUGH:\n"
        f"        raise\n"
        f"    except BaseException as exc:\n"
        f"        raise fail(exc) from None\n"
        f"    if result.__class__ in PLAIN:\n"
        f"        return result\n"
        f"    return rest_of(result)\n"
    )
    return compile(source, f"<kryon caller of {n} parameters>", "exec")


def fast_caller(
    fn: Callable[..., Any],
    n: int,
    gate_run: Callable[..., Any],
    breakpoints: Any,
    general: Callable[[tuple[Any, ...]], Any],
    fail: Callable[[BaseException], BaseException],
    rest_of: Callable[[Any], Any],
) -> Callable[..., Any]:
    """A caller of ``fn`` (``n`` parameters) through ``gate_run``; ``fail``
    translates an exception, ``rest_of`` converts a result that is not plain."""
    env: dict[str, Any] = dict(
        fn=fn, gate_run=gate_run, breakpoints=breakpoints, general=general, fail=fail, rest_of=rest_of,
        MISSING=_MISSING, PASSTHROUGH=PASSTHROUGH, PLAIN=PLAIN,
    )
    exec(_template(n), env)  # noqa: S102 - a fixed template, only the arity varies
    call: Callable[..., Any] = env["call"]
    return call


def compiled_caller(
    fn: Callable[..., Any],
    n: int | None,
    python: Callable[..., Any],
    gate: threads.EngineGate,
    breakpoints: Any,
    fail: Callable[[BaseException], BaseException],
    rest_of: Callable[[Any], Any],
) -> Callable[..., Any] | None:
    """The compiled caller of ``fn`` (``n`` parameters; None: any number)
    entering ``gate``, with ``python`` (the caller :func:`fast_caller` made,
    or one taking ``*args``) for every case it does not take itself; None when
    the compiled core is off or a check fails (then ``python`` is the caller)."""
    ext = speedups.module()
    if ext is None:
        return None
    attrs = getattr(breakpoints, "__dict__", None)
    # `active` is read from the instance dict on each call: no class attribute (a property, a slot) may stand in front
    if type(attrs) is not dict or type(attrs.get("active")) is not bool or any("active" in vars(k) for k in type(breakpoints).__mro__):
        return None
    lock, waiting = threads.direct_lock(gate), threads.waiting_offset(gate)
    if lock is None or not waiting:
        return None
    speedups.handle_type()  # made once: what the caller names as its handle_type
    caller: Callable[..., Any] = ext.make_caller(
        fn, -1 if n is None else n, python, gate, lock, waiting, threads.wake_waiters, threads.tracking, attrs, fail, rest_of,
        PLAIN, PASSTHROUGH, _MISSING,
    )
    return caller
