"""The Python engine: trusted scripts in-process, untrusted ones isolated.

Everything Python shares with Kryon Lisp (namespaces, calls, limits,
breakpoints, reload, the worker processes) is ``kryon_core.pyhost``; this is
the Python dialect of it: the compiler, the spelling of the ``kryon`` API and
Python's own value rules.
"""

from __future__ import annotations

import importlib.util
import sys
import types

from kryon_core import CompiledScript
from kryon_core.pyhost import Dialect, HostedScript, PyHostedEngine

from . import bridge, compiler, state, values
from .plugin import LANGUAGE
from .sandbox import PYTHON_COMPILER

__all__ = ["PythonEngine", "PythonDialect"]

#: part of the compilation-cache key: bytecode depends on the interpreter
VERSION = f"CPython {sys.version.split()[0]} (bytecode magic {importlib.util.MAGIC_NUMBER.hex()})"


class PythonDialect(Dialect):
    """Python's part of the shared in-process hosting."""

    language = LANGUAGE
    sets_as_lists = values.SETS_AS_LISTS
    compiler_spec = PYTHON_COMPILER
    # values and the API, from their modules
    convert_other = staticmethod(values.convert_other)
    script_api = staticmethod(bridge.build_kryon_api)
    api_name = staticmethod(bridge.api_name)
    api_form = staticmethod(bridge.api_form)

    def compile(self, text: str, name: str, *, sandboxed: bool) -> CompiledScript:
        return compiler.compile_source(text, name, VERSION, sandboxed=sandboxed)

    def code_for(self, compiled: CompiledScript, module: types.ModuleType) -> types.CodeType:
        return compiler.code_for(compiled, VERSION)

    def compile_evaluation(self, code: str, script: HostedScript) -> tuple[types.CodeType, types.CodeType | None]:
        return compiler.compile_evaluation(code, script.id)

    def compile_module(self, source: str, filename: str, module: types.ModuleType) -> types.CodeType:
        return compiler.compile_module(source, filename)

    def module_name(self, script_id: str, package: str, as_main: bool) -> str:
        return state.module_name(script_id, as_main)


class PythonEngine(PyHostedEngine):
    """CPython scripts: trusted ones in the host interpreter, sandboxed ones
    in worker processes (``kryon_core.pyhost``)."""

    language = LANGUAGE
    extensions = (".py",)
    supports_coroutines = True
    supports_modules = True

    def __init__(self) -> None:
        super().__init__(PythonDialect())

    @property
    def version(self) -> str:
        return VERSION
