"""The engine contract: what every language plugin implements.

:class:`ScriptEngine` is the specification's ``ScriptEngine`` trait with
snake_case names. An engine holds one language runtime and any number of
loaded scripts, each in its own namespace. The manager talks to engines only
through this class, so a third-party engine is a subclass plus an entry point
(see ``docs/plugins.md``); ``kryon_core.testing`` checks it keeps the contract.

Threading: the manager may call an engine from several threads. An engine
enters its runtime only through an :class:`~kryon_core.threads.EngineGate`
(``self.gate``, or one gate per runtime where an engine keeps several), which
serialises entry and keeps threads that call across engines in opposite
orders from deadlocking (see ``docs/design.md``).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import StackFrame
from .policy import SecurityPolicy
from .threads import EngineGate
from .values import FunctionRef

if TYPE_CHECKING:
    from .bridge import ScriptBridge
    from .debug.target import DebugTarget

__all__ = [
    "EngineCapabilities",
    "EngineConfig",
    "FunctionInfo",
    "CompiledScript",
    "GarbageCollectionStats",
    "MemoryUsage",
    "BreakpointHit",
    "CallerCache",
    "ScriptEngine",
]


@dataclass(frozen=True)
class EngineCapabilities:
    """What an engine can do. A flag is set only where the contract suite
    (or the engine's own tests) shows it works."""

    supports_async: bool = False
    supports_generators: bool = False
    supports_coroutines: bool = False
    supports_modules: bool = False
    supports_debugging: bool = False
    supports_jit: bool = False
    supports_bytecode: bool = False
    supports_sandbox: bool = False

    def as_dict(self) -> dict[str, bool]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class EngineConfig:
    """How the manager sets an engine up (``ScriptEngine.initialize``).

    ``policy`` is the default for scripts loaded without their own;
    ``output`` receives what scripts print (a line without its newline);
    ``module_loader`` resolves a module name a script imports (Wren's
    ``import "name"``) to source text, or None.
    """

    policy: SecurityPolicy = field(default_factory=SecurityPolicy)
    debug: bool = False
    output: Callable[[str], None] = print
    module_loader: Callable[[str, str], "str | None"] | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FunctionInfo:
    """A function a script defines, as the manager lists and resolves it."""

    name: str
    parameter_count: int = 0
    parameter_names: tuple[str, ...] = ()
    is_async: bool = False
    is_generator: bool = False
    is_variadic: bool = False
    line: int | None = None
    documentation: str | None = None
    bytecode_offset: int = 0
    bytecode_length: int = 0

    def as_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["parameter_names"] = list(self.parameter_names)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FunctionInfo":
        d = dict(d)
        d["parameter_names"] = tuple(d.get("parameter_names", ()))
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass
class CompiledScript:
    """The result of ``ScriptEngine.compile``: what the cache stores and
    ``load_script`` runs. ``bytecode`` is the engine's own compiled form
    (empty where it has none: then ``source`` is what gets run)."""

    id: str
    language: str
    source: str
    bytecode: bytes = b""
    functions: dict[str, FunctionInfo] = field(default_factory=dict)
    globals: list[str] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)
    engine_version: str = ""
    filename: str | None = None
    from_cache: bool = False


@dataclass(frozen=True)
class GarbageCollectionStats:
    """What one ``collect_garbage`` did, from the engine's own accounting."""

    bytes_before: int
    bytes_after: int
    objects_freed: int | None = None
    duration_ms: float = 0.0

    @property
    def bytes_freed(self) -> int:
        return max(0, self.bytes_before - self.bytes_after)


@dataclass(frozen=True)
class MemoryUsage:
    """Memory an engine holds now. ``limit`` is None when unlimited."""

    used_bytes: int
    limit: int | None = None
    peak_bytes: int | None = None
    scripts: int = 0


@dataclass
class BreakpointHit:
    """Handed to the breakpoint handler when a script reaches a breakpoint.

    ``stack`` is innermost first, with locals of the innermost frame."""

    breakpoint_id: int
    language: str
    script: str
    line: int
    stack: list[StackFrame]

    @property
    def locals(self) -> dict[str, Any]:
        return self.stack[0].locals if self.stack else {}


class CallerCache:
    """The callables an engine makes for its hot path, one per key (a function
    name, or a name and an arity), made on first use and kept with the script
    version they belong to: a per-script state holds one, and a reload or
    unload drops it with the state (or calls :meth:`clear`)."""

    __slots__ = ("_made",)

    def __init__(self) -> None:
        self._made: dict[Any, Callable[..., Any]] = {}

    def get(self, key: Any, make: Callable[[], Callable[..., Any]]) -> Callable[..., Any]:
        """The callable for ``key``, made by ``make()`` the first time."""
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = make()
        return made

    def peek(self, key: Any) -> Callable[..., Any] | None:
        """The callable for ``key`` if it was made (the hot path's one dict look-up)."""
        return self._made.get(key)

    def drop(self, key: Any) -> None:
        self._made.pop(key, None)

    def clear(self) -> None:
        self._made.clear()

    def __len__(self) -> int:
        return len(self._made)


class ScriptEngine(abc.ABC):
    """One language runtime with its loaded scripts.

    Subclasses set ``language`` (an id string) and implement the abstract
    methods. Function names passed to engine methods are bare names within
    ``script`` (the manager resolves "script.fn" before calling).
    """

    #: language id, e.g. "lua"
    language: str = ""
    #: file extensions this engine claims, e.g. (".lua",)
    extensions: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.config = EngineConfig()
        self.bridge: "ScriptBridge | None" = None
        self.breakpoint_handler: Callable[[BreakpointHit], None] | None = None
        #: the way into this engine's runtime; engines with several runtimes make one gate each
        self.gate = self.make_gate("main")

    # -- identification ----------------------------------------------------
    @property
    @abc.abstractmethod
    def version(self) -> str:
        """The language runtime's version, e.g. "Lua 5.4" (part of cache keys)."""

    @property
    @abc.abstractmethod
    def capabilities(self) -> EngineCapabilities:
        """What this engine supports; see :class:`EngineCapabilities`."""

    def make_gate(self, name: str) -> EngineGate:
        """A gate for one runtime of this engine (``self.gate`` is the first);
        engines with a runtime per policy or per script make one each."""
        return EngineGate(f"{self.language or type(self).__name__}/{name}", language=self.language or None)

    # -- lifecycle -----------------------------------------------------------
    def initialize(self, config: EngineConfig) -> None:
        """Set the engine up; called once by the manager before any other call."""
        self.config = config

    def check_policy(self, policy: SecurityPolicy) -> None:  # noqa: B027 (a hook: accepting is the default)
        """Refuse a policy this engine cannot keep. Called by the manager when a
        policy is applied to this engine: the manager's default when the
        engine starts, and a script's own before it compiles. Raise
        :class:`~kryon_core.errors.UnsupportedPolicyError` naming the limit and
        what to use instead; a limit is never silently ignored. The default
        accepts every policy (an engine that keeps every limit)."""

    @abc.abstractmethod
    def compile(self, source: "str | bytes", name: str, *, policy: SecurityPolicy | None = None) -> CompiledScript:
        """Compile without running. Raises CompileError with line and column."""

    @abc.abstractmethod
    def load_script(self, compiled: CompiledScript, *, policy: SecurityPolicy | None = None) -> str:
        """Run a compiled script's top level in a fresh namespace; return its id."""

    @abc.abstractmethod
    def unload_script(self, script_id: str) -> None:
        """Drop the script's namespace, functions and references."""

    def reload_script(
        self, script_id: str, compiled: CompiledScript, *, policy: SecurityPolicy | None, previous: CompiledScript
    ) -> None:
        """Replace a loaded script with a new version, atomically: if the new
        version's top level fails, the old one must be left running. The
        default unloads, loads, and on failure loads ``previous`` again (its
        state restarts); engines that can run the new version beside the old
        and then swap (Lua does) override this to keep the old state intact."""
        from .errors import ScriptError

        self.unload_script(script_id)
        try:
            self.load_script(compiled, policy=policy)
        except ScriptError:
            self.load_script(previous, policy=policy)
            raise

    @abc.abstractmethod
    def list_functions(self, script_id: str) -> dict[str, FunctionInfo]:
        """The callable functions a loaded script defines (after its top level ran)."""

    def current_functions(self, script_id: str) -> dict[str, FunctionInfo]:
        """The functions a loaded script defines now: also those its calls
        defined since it loaded (Lisp's ``hy.eval`` of a ``defn``). The
        manager asks when a name it does not know is looked up and when it
        lists every function. By default what :meth:`list_functions` says."""
        return self.list_functions(script_id)

    # -- calls ---------------------------------------------------------------
    @abc.abstractmethod
    def call_function(self, function: str, args: Sequence[Any], *, script: str) -> Any:
        """Call ``function`` of ``script`` with host values; return a host value."""

    async def call_function_async(self, function: str, args: Sequence[Any], *, script: str) -> Any:
        """Await a function: coroutines, promises and fibers run cooperatively
        on the caller's loop. The default runs the call to completion.

        The policy's ``time_limit`` bounds the whole awaited call, steps and
        suspensions together, from its start (``kryon_core.awaited``): past it
        the engine abandons what it stepped and raises ScriptTimeoutError.
        A cancellation from outside stays a cancellation."""
        import asyncio

        await asyncio.sleep(0)
        return self.call_function(function, args, script=script)

    def get_function(self, function: str, *, script: str) -> FunctionRef:
        """A :class:`FunctionRef` bound to one function, for hot paths.
        Engines override this with a direct handle; the default goes through
        ``call_function`` each time."""
        call = self.call_function

        def bound(*args: Any) -> Any:
            return call(function, args, script=script)

        return self._function_ref(bound, function, script)

    def _function_ref(self, call: Callable[..., Any], function: str, script: str) -> FunctionRef:
        """The handle ``get_function`` returns: ``call`` (the engine's fast
        callable for ``function``) when called, ``call_function_async`` when awaited."""

        async def call_async(*args: Any) -> Any:
            return await self.call_function_async(function, args, script=script)

        return FunctionRef(call, name=function, language=self.language, script=script, call_async=call_async)

    def evaluate(self, script_id: str, code: str) -> Any:
        """Run ``code`` inside a loaded script's namespace, under the script's
        policy, and return its value as a host value: an expression's value,
        or None for statements. Definitions it makes stay in the namespace
        (this is what ``kryon eval`` and ``kryon repl`` use). Errors are
        ScriptErrors naming the script and the line within ``code``."""
        from .errors import ScriptError

        raise ScriptError("this engine cannot evaluate code in a script", language=self.language, script=script_id)

    # -- globals ---------------------------------------------------------------
    @abc.abstractmethod
    def set_global(self, name: str, value: Any) -> None:
        """Set a global every script of this engine sees."""

    @abc.abstractmethod
    def get_global(self, name: str) -> Any:
        """Read a global (None when unset)."""

    # -- memory ----------------------------------------------------------------
    @abc.abstractmethod
    def collect_garbage(self) -> GarbageCollectionStats: ...

    @abc.abstractmethod
    def get_memory_usage(self) -> MemoryUsage: ...

    # -- debugging ---------------------------------------------------------------
    def set_debug_mode(self, enabled: bool) -> None:
        self.config.debug = enabled

    def get_stack_trace(self) -> list[StackFrame]:
        """The script stack at this moment (inside a callback or breakpoint);
        empty when no script is running."""
        return []

    # -- hot functions -------------------------------------------------------------
    def faster_tier(self, script: str, function: str) -> str | None:
        """The name of a faster tier this engine could move ``function`` to
        when it turns hot (for example ``"LuaJIT"``), or None when there is none
        (the default: most engines have one tier)."""
        return None

    def on_hot_function(self, script: str, function: str) -> "tuple[str, float] | None":
        """Called when ``function`` becomes hot (the profiler's threshold). An
        engine with a faster tier moves the function (or its script) there and
        returns ``(tier, measured speed-up)``; the default does nothing and
        returns None."""
        return None

    def debug_target(self) -> "DebugTarget | None":
        """This engine's adapter for the debugger (``ScriptManager.debugger()``),
        or None when it cannot be debugged. Made once; see
        ``kryon_core.debug.target``."""
        return None

    def set_breakpoint(self, file: str, line: int) -> int:
        from .errors import ScriptError

        raise ScriptError("breakpoints are not supported by this engine", language=self.language)

    def remove_breakpoint(self, breakpoint_id: int) -> None:
        from .errors import ScriptError

        raise ScriptError("breakpoints are not supported by this engine", language=self.language)

    def set_breakpoint_handler(self, handler: Callable[[BreakpointHit], None] | None) -> None:
        self.breakpoint_handler = handler

    # -- bridge ------------------------------------------------------------------
    def setup_bridge(self, bridge: "ScriptBridge") -> None:
        """Expose the ``kryon`` API, backed by ``bridge``, to every script."""
        self.bridge = bridge

    def close(self) -> None:  # noqa: B027 (engines with nothing to free need not override it)
        """Free the runtime. The engine is unusable afterwards."""


class CachedCallsEngine(ScriptEngine):
    """A :class:`ScriptEngine` that keeps one state per loaded script in
    ``_scripts``, each with a :class:`CallerCache` under ``callers`` keyed by
    function name. ``call_function`` and ``get_function`` come from here; an
    engine supplies :meth:`script_state` and :meth:`cached_caller`.

    The call path is one dict look-up for the state and one for the caller once
    it is made, with no frame between the manager and the caller."""

    def __init__(self) -> None:
        super().__init__()
        self._scripts: dict[str, Any] = {}

    @abc.abstractmethod
    def script_state(self, script_id: str) -> Any:
        """The state of a loaded script; :class:`ScriptNotFoundError` naming the
        script and language when none is loaded under ``script_id``."""

    @abc.abstractmethod
    def cached_caller(self, state: Any, function: str) -> Callable[..., Any]:
        """The callable that runs ``function`` of one script's ``state`` with host
        values and returns a host value, made on first use and kept in
        ``state.callers`` (so a reload, which makes a new state, drops it)."""

    def call_function(self, function: str, args: Sequence[Any], *, script: str) -> Any:
        state = self._scripts.get(script) or self.script_state(script)
        caller = state.callers.peek(function) or self.cached_caller(state, function)
        return caller(*args)

    def get_function(self, function: str, *, script: str) -> FunctionRef:
        state = self.script_state(script)
        return self._function_ref(self.cached_caller(state, function), function, script)
