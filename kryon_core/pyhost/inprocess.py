"""Trusted scripts in the host interpreter: load, reload, unload, call, evaluate.

Each script version is a :class:`HostedScript` whose top level runs through
:class:`Entry` like any call. A reload runs the new version beside the old
one, hands it the old state (:mod:`.reload`) and swaps only when all of that
succeeded; until then the old version runs on untouched.
"""

from __future__ import annotations

import linecache
import sys
import types
from collections.abc import Callable, Sequence
from typing import Any

from ..bridge import ApiMethod, ScriptBridge
from ..engine import CompiledScript, EngineConfig, FunctionInfo
from ..errors import ConversionError, FunctionNotFoundError, ScriptNotFoundError
from ..policy import SecurityPolicy
from ..threads import EngineGate
from ..values import FunctionRef
from .api import ScriptApi, api_names, arity_error
from .calls import Calls
from .dialect import Dialect
from .entry import Entry, is_cancellation
from .errors import ErrorTranslator
from .imports import PACKAGES, Printer, script_builtins
from .memory import reachable_size
from .reload import carry_state
from .state import HostedScript, ScriptTable, new_package
from .tracing import Breakpoints, Tracer
from .values import PASSING, Converter, check_size, passes

__all__ = ["InProcess"]

_CO_VARARGS, _CO_GENERATOR, _CO_COROUTINE, _CO_ASYNC_GENERATOR = 0x04, 0x20, 0x80, 0x200


class InProcess:
    """The trusted scripts of one engine (see the module docstring)."""

    def __init__(self, dialect: Dialect, gate: EngineGate, config: Callable[[], EngineConfig],
                 bridge: Callable[[], ScriptBridge | None], breakpoints: Breakpoints, errors: ErrorTranslator) -> None:
        self.dialect = dialect
        self.language = dialect.language
        self._config = config
        self._bridge = bridge
        self.table = ScriptTable()
        self.errors = errors
        self.tracer = Tracer(breakpoints)
        self.entry = Entry(gate, self.tracer, self._fail)
        self.converter = Converter(dialect, self._wrap, self._unknown)
        self.calls = Calls(self.language, self.entry, self.converter, self.table, dialect.frame_name)
        self.printer = Printer(lambda: self._config().output)
        self.globals: dict[str, Any] = {}  # identifier -> value, seen by every script
        self._api_names = api_names(dialect)
        self._api_functions: dict[ApiMethod, Callable[..., Any]] = {}

    # -- loading -------------------------------------------------------------------------
    def start(self, compiled: CompiledScript, policy: SecurityPolicy) -> HostedScript:
        """A new version of a script with its top level run (not yet the loaded one)."""
        dialect = self.dialect
        package = new_package()
        as_main = self._config().options.get("main") == compiled.id
        api = ScriptApi(compiled.id, policy, self._bridge, self._bind, self._api_names, dialect.api_name,
                        lambda text: self._config().output(text))
        builtins = script_builtins(policy, self.language, api.module, dialect.runtime_modules)
        builtins["print"] = self.printer
        builtins.update(dialect.script_api(api))
        builtins.update(self.globals)
        script = HostedScript(compiled, policy, builtins, package, dialect.module_name(compiled.id, package, as_main))
        PACKAGES.add(package, compiled.id, builtins, self._config().module_loader, dialect.compile_module)
        if dialect.listed_module and not as_main:
            sys.modules[script.module.__name__] = script.module
        self.table.start(script)
        linecache.cache[compiled.id] = (len(compiled.source), None, compiled.source.splitlines(True), compiled.id)
        try:
            code = dialect.code_for(compiled, script.module)
            self.entry.run(script, exec, (code, script.ns), _raw)
        except BaseException:
            self.retire(script)
            if self.table.get(compiled.id) is None:  # a failed first load leaves no source behind
                linecache.cache.pop(compiled.id, None)
            raise
        return script

    def load(self, compiled: CompiledScript, policy: SecurityPolicy) -> None:
        self.commit(self.start(compiled, policy))

    def reload(self, compiled: CompiledScript, policy: SecurityPolicy) -> None:
        old = self.table.get(compiled.id)
        new = self.start(compiled, policy)
        if old is not None:
            try:
                carry_state(old, new, self.dialect, self._run_raw, self._copy)
            except BaseException:
                self.retire(new)
                raise
        self.commit(new)

    def commit(self, script: HostedScript) -> None:
        old = self.table.commit(script)
        if old is not None:
            self.retire(old)

    def retire(self, script: HostedScript) -> None:
        self.table.retire(script)
        PACKAGES.drop(script.package)
        if sys.modules.get(script.module.__name__) is script.module:
            del sys.modules[script.module.__name__]

    def unload(self, script_id: str) -> None:
        script = self.script(script_id)
        self.retire(script)
        linecache.cache.pop(script_id, None)
        script.ns.clear()

    def script(self, script_id: str) -> HostedScript:
        script = self.table.get(script_id)
        if script is None:
            raise ScriptNotFoundError(f"no {self.language} script '{script_id}' is loaded", language=self.language,
                                      script=script_id)
        return script

    def functions(self, script_id: str) -> dict[str, FunctionInfo]:
        script = self.script(script_id)
        private = self.dialect.private_prefix
        found = {}
        for key, value in list(script.ns.items()):
            if type(value) is types.FunctionType and value.__globals__ is script.ns:
                if private is None or not key.startswith(private):
                    found[key] = self._info(key, value)
        return self.dialect.listing(found, script.compiled)

    def _info(self, key: str, fn: types.FunctionType) -> FunctionInfo:
        code = fn.__code__
        n = code.co_argcount + code.co_kwonlyargcount
        return FunctionInfo(
            name=key,
            parameter_count=code.co_argcount,
            parameter_names=tuple(self.dialect.spelling(p) for p in code.co_varnames[:n]),
            is_async=bool(code.co_flags & (_CO_COROUTINE | _CO_ASYNC_GENERATOR)),
            is_generator=bool(code.co_flags & (_CO_GENERATOR | _CO_ASYNC_GENERATOR)),
            is_variadic=bool(code.co_flags & _CO_VARARGS),
            line=code.co_firstlineno,
        )

    # -- calls --------------------------------------------------------------------------
    def resolve(self, function: str, script_id: str) -> tuple[HostedScript, Callable[..., Any]]:
        script = self.script(script_id)
        fn = script.ns.get(self.dialect.identifier(function))
        if fn is None or not callable(fn):
            raise FunctionNotFoundError(f"script '{script_id}' defines no function '{function}'",
                                        language=self.language, script=script_id)
        return script, fn

    def call(self, function: str, args: Sequence[Any], script_id: str) -> Any:
        script, fn = self.resolve(function, script_id)
        return self.calls.caller(script, fn)(*args)

    async def call_async(self, function: str, args: Sequence[Any], script_id: str) -> Any:
        script, fn = self.resolve(function, script_id)
        if script.policy.max_value_size is not None:
            check_size(args, script.policy.max_value_size, self.language, script_id)
        return await self.calls.awaited(script, fn, args)

    def function_ref(self, function: str, script_id: str) -> FunctionRef:
        script, fn = self.resolve(function, script_id)
        return self.calls.ref(script, fn, function)

    def evaluate(self, script_id: str, code: str) -> Any:
        script = self.script(script_id)
        statements, expression = self.dialect.compile_evaluation(code, script)
        self.entry.run(script, exec, (statements, script.ns), _raw)
        if expression is None:
            return None
        return self.entry.run(script, eval, (expression, script.ns), self.calls.finish)

    # -- the rest -------------------------------------------------------------------------
    def set_global(self, name: str, value: Any) -> None:
        key = self.dialect.identifier(name)
        self.globals[key] = value
        for script in self.table.live():
            script.builtins[key] = value

    def get_global(self, name: str) -> Any:
        """The value the host set (the manager checked it on the way in)."""
        return self.globals.get(self.dialect.identifier(name))

    def estimate(self) -> int:
        """Bytes the scripts' namespaces hold (see :mod:`.memory`)."""
        live = self.table.live()
        return reachable_size([s.ns for s in live] + [self.globals], {id(s.builtins) for s in live})

    def close(self) -> None:
        for script in self.table.live():
            self.retire(script)
            linecache.cache.pop(script.id, None)
        self.entry.close()

    # -- plumbing -----------------------------------------------------------------------------
    def _fail(self, exc: BaseException, script: HostedScript) -> BaseException:
        if is_cancellation(exc):  # passes through as it is (see entry.PASSTHROUGH)
            return exc
        policy = script.policy
        return self.errors.translate(exc, script.id, policy.time_limit, policy.max_recursion).with_traceback(None)

    def _run_raw(self, script: HostedScript, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        return self.entry.run(script, fn, args, _raw)

    def _copy(self, value: Any) -> Any:
        return self.converter.out(value)

    def _wrap(self, fn: Callable[..., Any], owner: str | None) -> FunctionRef:
        return self.calls.wrap(fn, owner)

    def _unknown(self, value: Any) -> Any:
        bridge = self._bridge()
        if bridge is None:
            raise ConversionError(f"cannot convert a {type(value).__name__} to a host value", language=self.language)
        return bridge.convert_unknown(value)

    def _bind(self, method: ApiMethod, host: Callable[..., Any], script_id: str, policy: SecurityPolicy) -> Callable[..., Any]:
        """The function a script calls for one API method: the method's shared
        function (see :meth:`_api_function`) bound to what is this script's."""
        shared = self._api_functions.get(method)
        if shared is None:
            shared = self._api_functions[method] = self._api_function(method)
        return types.MethodType(shared, _ApiTarget(host, script_id, policy.max_value_size))

    def _api_function(self, method: ApiMethod) -> Callable[..., Any]:
        """One API method's function, shared by every script: arity checked in
        the language's words, arguments made host values (script callables
        become FunctionRefs owned by the script), results size-checked under a
        limit. What is the script's own comes in ``target``."""
        lo, hi = method.arity
        form = self.dialect.api_form(method)
        out = self.converter.out
        language = self.language

        def api(target: _ApiTarget, *args: Any) -> Any:
            n = len(args)
            if n < lo or (hi >= 0 and n > hi):
                raise arity_error(method, form, n)
            limit = target.limit
            for a in args:
                if limit is not None or a.__class__ not in PASSING and not passes(a):
                    args = tuple(out(v, target.script_id, limit) for v in args)
                    break
            result = target.host(*args)
            if limit is not None and result is not None:
                check_size(result, limit, language, target.script_id)
            return result

        api.__name__ = api.__qualname__ = self.dialect.api_name(method)
        api.__doc__ = method.doc
        return api


class _ApiTarget:
    """What one script's API function acts on: the host function of its
    bridge view, the script, and its value-size limit."""

    __slots__ = ("host", "script_id", "limit")

    def __init__(self, host: Callable[..., Any], script_id: str, limit: int | None) -> None:
        self.host, self.script_id, self.limit = host, script_id, limit

def _raw(value: Any, script: HostedScript) -> Any:
    return value
