"""What a language hosted in the Python interpreter supplies.

Python and Kryon Lisp (Hy) both run as Python bytecode; everything they
share lives in :mod:`kryon_core.pyhost`. A :class:`Dialect` is the part that
differs: compiling, the spelling of names (Hy mangles ``set-it!`` to a
Python identifier), how frames and exceptions are worded, how the ``kryon``
API is spelled, and values only the language has (Hy models). Every method
has a plain-Python default, so a dialect overrides only what is its own.
"""

from __future__ import annotations

import abc
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..bridge import ApiMethod
from ..engine import CompiledScript, FunctionInfo

if TYPE_CHECKING:
    from ..isolation import CompilerSpec
    from .api import ScriptApi
    from .state import HostedScript

__all__ = ["Dialect", "NOT_MINE"]

#: returned by :meth:`Dialect.convert_other` for a value the language has nothing to say about
NOT_MINE: Any = object()


class Dialect(abc.ABC):
    """The language-specific part of an in-process Python-hosted engine."""

    #: the language id
    language: str = ""
    #: added to the 0-based columns of ``co_positions`` (None: frames name no column)
    column_base: int | None = 1
    #: whether sets and frozensets leaving a script become lists (else a ConversionError)
    sets_as_lists: bool = False
    #: whether a script module is listed in ``sys.modules`` (Hy's run-time macros look it up)
    listed_module: bool = False
    #: the reload hook's name, in the language's spelling
    reload_hook: str = "on_reload"
    #: modules a script's compiled code imports itself, granted whatever the policy (Hy's runtime)
    runtime_modules: frozenset[str] = frozenset()
    #: how a worker compiles the language (``kryon_core.isolation``)
    compiler_spec: "CompilerSpec"
    #: functions whose names start with this are private: not listed (None: every function is listed)
    private_prefix: str | None = None

    # -- compiling ---------------------------------------------------------------------
    @abc.abstractmethod
    def compile(self, text: str, name: str, *, sandboxed: bool) -> CompiledScript:
        """Compile without running (a CompileError with line and column on failure)."""

    def worker_bytecode(self, compiled: CompiledScript) -> bytes | None:
        """The cached bytecode a sandboxed script's worker may run instead of
        compiling (it checks it first), or None. By default the cache's own:
        compiling Python runs no script code, so whoever compiled the source
        made the same code object."""
        return compiled.bytecode or None

    @abc.abstractmethod
    def code_for(self, compiled: CompiledScript, module: types.ModuleType) -> types.CodeType:
        """The code object to run for ``compiled`` in ``module`` (its cached
        bytecode where valid, else compiled now, with ``module`` as the
        compiling module)."""

    @abc.abstractmethod
    def compile_evaluation(
        self, code: str, script: "HostedScript"
    ) -> tuple[types.CodeType, types.CodeType | None]:
        """``code`` for :meth:`~kryon_core.ScriptEngine.evaluate`: the statements
        to run and, when it ends in an expression, that expression (None otherwise)."""

    @abc.abstractmethod
    def compile_module(self, source: str, filename: str, module: types.ModuleType) -> types.CodeType:
        """A file a script imports relatively, compiled to run in ``module``."""

    # -- names --------------------------------------------------------------------------
    def identifier(self, name: str) -> str:
        """The Python identifier a name of this language becomes."""
        return name

    def spelling(self, identifier: str) -> str:
        """The language's spelling of a Python identifier."""
        return identifier

    def frame_name(self, co_name: str) -> str:
        """A code object's name as stack frames show it."""
        return co_name

    def api_name(self, method: ApiMethod) -> str:
        """The name a script uses for an API method (an identifier)."""
        return method.name

    def api_form(self, method: ApiMethod) -> str:
        """How an API call is written in the language, for arity errors."""
        return f"kryon.{method.name}()"

    # -- values and errors -----------------------------------------------------------------
    def convert_other(self, value: Any, convert: Callable[[Any], Any]) -> Any:
        """A value only this language has (``convert`` converts a part of it),
        or :data:`NOT_MINE`."""
        return NOT_MINE

    def describe(self, exc: BaseException) -> str:
        """The message of a ScriptRuntimeError for a Python exception."""
        text = str(exc)
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

    # -- the API -------------------------------------------------------------------------
    def script_api(self, api: "ScriptApi") -> dict[str, Any]:
        """Names to put in a script's builtins for its ``kryon`` API (the
        module itself is importable as ``kryon`` in every dialect). Python
        binds none: scripts ``import kryon``."""
        return {}

    # -- the sandbox ------------------------------------------------------------------------
    def api_names(self, methods: list[tuple[ApiMethod, Callable[..., Any]]]) -> dict[str, str] | None:
        """Name in a worker script -> bridge method (None: the snake_case names)."""
        return None

    # -- listing ----------------------------------------------------------------------------
    def listing(self, functions: dict[str, FunctionInfo], compiled: CompiledScript) -> dict[str, FunctionInfo]:
        """A script's functions (by identifier, from its namespace or its
        worker) as the registry lists them: by default as they are."""
        return functions

    def module_name(self, script_id: str, package: str, as_main: bool) -> str:
        """The ``__name__`` a script's module gets (``"__main__"`` when it runs as the program)."""
        return "__main__" if as_main else script_id
