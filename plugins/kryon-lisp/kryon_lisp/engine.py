"""The Kryon Lisp engine: Hy compiled to Python bytecode.

Everything Lisp shares with Python (namespaces, calls, limits, breakpoints,
reload, the worker processes) is ``kryon_core.pyhost``; this is the Lisp
dialect of it: Hy compilation, the .kl lines and columns, kebab-case names.
"""

from __future__ import annotations

import types

import hy

from kryon_core import CompiledScript
from kryon_core.pyhost import Dialect, HostedScript, PyHostedEngine

from . import bridge, compiler, errors, scan, state, values
from .plugin import LANGUAGE
from .sandbox import LISP_COMPILER, RUNTIME_MODULES

__all__ = ["LispEngine", "LispDialect"]


class LispDialect(Dialect):
    """Kryon Lisp's part of the shared in-process hosting."""

    language = LANGUAGE
    column_base = 0  # Hy's columns are 1-based already
    sets_as_lists = values.SETS_AS_LISTS
    listed_module = True
    reload_hook = "on-reload"
    runtime_modules = RUNTIME_MODULES
    private_prefix = "_"
    compiler_spec = LISP_COMPILER
    # names (mangled identifiers, .kl spellings), errors, values and the API, from their modules
    spelling = staticmethod(compiler.display_name)
    frame_name = staticmethod(errors.lisp_name)
    describe = staticmethod(errors.describe)
    listing = staticmethod(state.listing)
    convert_other = staticmethod(values.convert_other)
    script_api = staticmethod(bridge.build_kryon_api)
    api_name = staticmethod(bridge.api_name)
    api_form = staticmethod(bridge.api_form)
    api_names = staticmethod(bridge.api_names)

    def __init__(self) -> None:
        self._mangled: dict[str, str] = {}

    @staticmethod
    def show_value(value: object) -> tuple[str, str]:
        """A value as the debugger shows it: Lisp notation, and its type."""
        return values.show(value), type(value).__name__

    def compile(self, text: str, name: str, *, sandboxed: bool) -> CompiledScript:
        """A sandboxed script whose forms run code while compiling (its own
        macros, ``require``...) is compiled only inside its worker: this
        process never runs them; the entry holds the source."""
        if sandboxed and scan.may_run_code_while_compiling(text) and scan.sandbox_violation(text, name) is not None:
            return compiler.source_only(text, name)
        return compiler.compile_source(text, name, sandboxed=sandboxed)

    def worker_bytecode(self, compiled: CompiledScript) -> bytes | None:
        """Cached bytecode a sandboxed worker may run: only for source whose
        compiling runs Hy's own macros alone (no form of its own runs code
        while compiling), so that it is the same whoever compiled it; a
        trusted compile of a script with macros ran them with the host's
        rights, and its output never reaches a worker."""
        if not compiled.bytecode or compiled.engine_version != compiler.ENGINE_VERSION:
            return None
        if scan.may_run_code_while_compiling(compiled.source) or scan.may_import_relatively(compiled.source):
            return None  # relative imports resolve through the worker's compile of the script
        return compiled.bytecode

    def code_for(self, compiled: CompiledScript, module: types.ModuleType) -> types.CodeType:
        return compiler.load_code(compiled, module)

    def compile_evaluation(self, code: str, script: HostedScript) -> tuple[types.CodeType, types.CodeType | None]:
        return compiler.compile_evaluation(code, script.id, script.module)

    def compile_module(self, source: str, filename: str, module: types.ModuleType) -> types.CodeType:
        return compiler.compile_module(source, filename, module)

    def identifier(self, name: str) -> str:
        mangled = self._mangled.get(name)
        if mangled is None:
            mangled = self._mangled[name] = str(hy.mangle(name))
        return mangled

    def module_name(self, script_id: str, package: str, as_main: bool) -> str:
        return state.module_name(package, as_main)


class LispEngine(PyHostedEngine):
    """Kryon Lisp (Hy) behind the :class:`~kryon_core.ScriptEngine` contract."""

    language = LANGUAGE
    extensions = (".kl", ".hy")

    def __init__(self) -> None:
        super().__init__(LispDialect())

    @property
    def version(self) -> str:
        return compiler.ENGINE_VERSION

    @property
    def _isolated(self) -> dict[str, CompiledScript]:
        """The scripts running in workers (kept for older tests; use :meth:`is_sandboxed`)."""
        return self.sandboxed.scripts
