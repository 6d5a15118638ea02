"""A test double engine for the core tests: scripts are JSON objects naming
functions after a few fixed operations, e.g. {"add": "add", "hello": "greet"}.
It lets the manager's registry, hooks and cache be tested without any real
language installed (the core-only install has none)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from kryon_core import (
    CompiledScript,
    CompileError,
    EngineCapabilities,
    EngineSpec,
    FunctionInfo,
    GarbageCollectionStats,
    MemoryUsage,
    ScriptEngine,
    ScriptNotFoundError,
    ScriptRuntimeError,
    hookimpl,
)

OPERATIONS = {
    "add": (("a", "b"), lambda a, b: a + b),
    "greet": (("name",), lambda name: f"hello {name}"),
    "fail": ((), None),
    "echo": (("x",), lambda x: x),
}


class FakeEngine(ScriptEngine):
    language = "fake"
    extensions = (".fake",)
    compiles = 0

    def __init__(self) -> None:
        super().__init__()
        self.scripts: dict[str, dict[str, str]] = {}
        self.globals: dict[str, Any] = {}

    @property
    def version(self) -> str:
        return "fake 1"

    @property
    def capabilities(self) -> EngineCapabilities:
        return EngineCapabilities()

    def compile(self, source: "str | bytes", name: str, *, policy: Any = None) -> CompiledScript:
        FakeEngine.compiles += 1
        try:
            table = json.loads(source)
        except ValueError as exc:
            raise CompileError(exc.msg, language="fake", script=name, line=exc.lineno, column=exc.colno) from None
        functions = {}
        for fname, op in table.items():
            if op not in OPERATIONS:
                raise CompileError(f"unknown operation {op!r}", language="fake", script=name, line=1)
            params = OPERATIONS[op][0]
            functions[fname] = FunctionInfo(fname, len(params), params)
        return CompiledScript(id=name, language="fake", source=str(source), bytecode=json.dumps(table).encode(),
                              functions=functions, engine_version=self.version)

    def load_script(self, compiled: CompiledScript, *, policy: Any = None) -> str:
        self.scripts[compiled.id] = json.loads(compiled.bytecode or compiled.source)
        return compiled.id

    def unload_script(self, script_id: str) -> None:
        if self.scripts.pop(script_id, None) is None:
            raise ScriptNotFoundError(script_id, language="fake")

    def list_functions(self, script_id: str) -> dict[str, FunctionInfo]:
        return {n: FunctionInfo(n, len(OPERATIONS[op][0]), OPERATIONS[op][0]) for n, op in self.scripts[script_id].items()}

    def call_function(self, function: str, args: Sequence[Any], *, script: str) -> Any:
        op = self.scripts[script][function]
        impl = OPERATIONS[op][1]
        if impl is None:
            raise ScriptRuntimeError("fake failure", language="fake", script=script, line=1)
        return impl(*args)

    def set_global(self, name: str, value: Any) -> None:
        self.globals[name] = value

    def get_global(self, name: str) -> Any:
        return self.globals.get(name)

    def collect_garbage(self) -> GarbageCollectionStats:
        return GarbageCollectionStats(0, 0)

    def get_memory_usage(self) -> MemoryUsage:
        return MemoryUsage(used_bytes=len(json.dumps(self.scripts)), scripts=len(self.scripts))


class FakePlugin:
    """The in-process plugin registering the fake engine."""

    @hookimpl
    def kryon_register_engines(self) -> list[EngineSpec]:
        return [EngineSpec(language="fake", factory=FakeEngine, extensions=(".fake",))]
