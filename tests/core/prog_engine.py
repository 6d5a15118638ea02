"""A second test double for the core tests: a script is Python source run
in-process with ``kryon`` bound to the script's own bridge view
(``bridge.for_script``), the way real engines bind it. It lets the core's
per-script rules (trust between scripts, exports, quotas, load transactions)
be tested without any real language installed. Not a sandbox: the policy is
used only to say who is calling. :func:`prog_manager` is a manager with these
engines alone."""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import Any

from kryon_core import (
    CompiledScript,
    EngineCapabilities,
    EngineSpec,
    FunctionInfo,
    FunctionRef,
    GarbageCollectionStats,
    MemoryUsage,
    ScriptEngine,
    ScriptManager,
    ScriptRuntimeError,
    SecurityPolicy,
    hookimpl,
)
from kryon_core.debug.pytrace import PyTraceTarget


class ProgEngine(ScriptEngine):
    language = "prog"
    extensions = (".prog",)

    def __init__(self) -> None:
        super().__init__()
        self.namespaces: dict[str, dict[str, Any]] = {}
        self._debug: PyTraceTarget | None = None
        self._loading: set[str] = set()
        #: names every script's namespace starts with (tests hand scripts their probes this way)
        self.injected: dict[str, Any] = {}

    @property
    def version(self) -> str:
        return "prog 1"

    @property
    def capabilities(self) -> EngineCapabilities:
        return EngineCapabilities()

    def compile(self, source: "str | bytes", name: str, *, policy: Any = None) -> CompiledScript:
        return CompiledScript(id=name, language=self.language, source=str(source), engine_version=self.version)

    def load_script(self, compiled: CompiledScript, *, policy: SecurityPolicy | None = None) -> str:
        policy = policy or self.config.policy
        ns: dict[str, Any] = {"__name__": compiled.id, **self.injected}
        if self.bridge is not None:
            view = self.bridge.for_script(compiled.id, policy)
            ns["kryon"] = types.SimpleNamespace(**{m.name: fn for m, fn in view.methods()})
        language = self.language
        ns["ref"] = lambda fn: FunctionRef(fn, name=fn.__name__, language=language, script=compiled.id)
        self._loading.add(compiled.id)
        try:
            self.gate.run(self._traced, exec, compile(compiled.source, compiled.id, "exec"), ns)
        except Exception as exc:
            if hasattr(exc, "language"):
                raise
            raise ScriptRuntimeError(str(exc), language=self.language, script=compiled.id) from None
        finally:
            self._loading.discard(compiled.id)
        self.namespaces[compiled.id] = ns
        return compiled.id

    def _traced(self, fn: Any, *args: Any) -> Any:
        debug = self._debug
        if debug is None or not debug.active:
            return fn(*args)
        previous = debug.enter()
        try:
            return fn(*args)
        finally:
            debug.leave(previous)

    def debug_target(self) -> PyTraceTarget:
        if self._debug is None:
            self._debug = PyTraceTarget(
                self.language,
                script_of=lambda code: (code.co_filename
                                        if code.co_filename in self.namespaces or code.co_filename in self._loading else None)
            )
        return self._debug

    def unload_script(self, script_id: str) -> None:
        self.namespaces.pop(script_id, None)

    def list_functions(self, script_id: str) -> dict[str, FunctionInfo]:
        ns = self.namespaces[script_id]
        return {
            k: FunctionInfo(k)
            for k, v in ns.items()
            if isinstance(v, types.FunctionType) and not k.startswith("_") and v.__module__ == script_id
        }

    def call_function(self, function: str, args: Sequence[Any], *, script: str) -> Any:
        try:
            return self.gate.run(self._traced, self.namespaces[script][function], *args)
        except Exception as exc:
            if hasattr(exc, "language"):
                raise
            raise ScriptRuntimeError(str(exc), language=self.language, script=script) from None

    def evaluate(self, script_id: str, code: str) -> Any:
        ns = self.namespaces[script_id]
        try:
            return eval(compile(code, script_id, "eval"), ns)
        except SyntaxError:
            exec(compile(code, script_id, "exec"), ns)
            return None

    def set_global(self, name: str, value: Any) -> None:
        for ns in self.namespaces.values():
            ns[name] = value

    def get_global(self, name: str) -> Any:
        return None

    def collect_garbage(self) -> GarbageCollectionStats:
        return GarbageCollectionStats(0, 0)

    def get_memory_usage(self) -> MemoryUsage:
        return MemoryUsage(used_bytes=0, scripts=len(self.namespaces))


class Prog2Engine(ProgEngine):
    """The same engine under a second language id, for cross-language tests."""

    language = "prog2"
    extensions = (".prog2",)


class ProgPlugin:
    @hookimpl
    def kryon_register_engines(self) -> list[EngineSpec]:
        return [
            EngineSpec(language="prog", factory=ProgEngine, extensions=(".prog",)),
            EngineSpec(language="prog2", factory=Prog2Engine, extensions=(".prog2",)),
        ]


def prog_manager(**options: Any) -> ScriptManager:
    """A manager with the prog engines alone (no installed engine is
    discovered) and no compilation cache; ``options`` are the manager's own."""
    return ScriptManager(discover=False, plugins=[ProgPlugin()], cache=False, **options)
