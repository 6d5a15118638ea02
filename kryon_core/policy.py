"""What a script may do: :class:`SecurityPolicy`.

A manager has a default policy and each script may carry its own. A bare
``ScriptManager()`` runs scripts **sandboxed** (see ``docs/security.md`` for
why): no files, network, processes or host imports, and finite limits on
memory, time per call and recursion. Trusted application code opts out with
``SecurityPolicy.trusted()``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

__all__ = ["SecurityPolicy", "MiB", "WEAKER_ISOLATION"]

MiB = 1024 * 1024

#: kernel mechanisms a sandboxed policy may accept going without, by name
#: (``accept_weaker_isolation``; ``docs/security.md`` says what each one denies)
WEAKER_ISOLATION = frozenset({"landlock", "seccomp", "namespaces"})


@dataclass(frozen=True)
class SecurityPolicy:
    """Limits and grants for a script. ``None`` for a limit means unlimited.

    - ``memory_limit``: bytes the engine may allocate for its scripts.
    - ``time_limit``: seconds one call (or a script's top-level run) may take.
    - ``max_recursion``: how deep script calls may nest.
    - ``max_source_size``: bytes of source accepted by ``load_script_from_source``.
    - ``max_value_size``: bytes of a string or elements of a list crossing in or out.
    - ``max_shared_entries`` / ``max_shared_bytes``: how many shared objects a
      script may create, and how many bytes of shared data it may hold (what
      it stored last is charged to it), so no script grows the host through
      shared data.
    - ``max_dom_entries`` / ``max_dom_bytes``: how many things a script may
      hold in the document (elements it created, property, style, class and
      variable values it set, listeners, watchers, timers, animations) and how
      many bytes those values take (``approximate_size``), so no script grows
      the host through DOM writes. A slot is charged to whoever wrote it last.
    - grants: ``allow_file_system``, ``allow_network``, ``allow_processes``,
      ``allow_imports`` (host modules a script may import: Lua ``require``,
      Python ``import``), and ``allowed_modules`` to grant named ones only.
    - ``accept_weaker_isolation``: kernel mechanisms (names from
      ``WEAKER_ISOLATION``: ``"landlock"``, ``"seccomp"``, ``"namespaces"``)
      that untrusted workers may run without where the kernel lacks them;
      by default a worker that cannot apply one refuses to start.

    Trust has a direction (:meth:`covers`): a script may call, without an
    explicit export, only functions of scripts whose grants its own policy
    covers, so it never gains through another script what it is denied.
    """

    # a bool on instances; on the class, the factory ``SecurityPolicy.sandboxed(...)``
    # (see _SandboxedFactory below, which type checkers are told about here)
    if TYPE_CHECKING:
        sandboxed: "_SandboxedFactory" = _SandboxedFactory()  # noqa: F821 (defined below the class)
    else:
        sandboxed: bool = True
    memory_limit: int | None = 256 * MiB
    time_limit: float | None = 5.0
    max_recursion: int | None = 200
    max_source_size: int | None = 4 * MiB
    max_value_size: int | None = 64 * MiB
    max_shared_entries: int | None = 1024
    max_shared_bytes: int | None = 16 * MiB
    max_dom_entries: int | None = 65536
    max_dom_bytes: int | None = 64 * MiB
    allow_file_system: bool = False
    allow_network: bool = False
    allow_processes: bool = False
    allow_imports: bool = False
    allowed_modules: frozenset[str] = field(default_factory=frozenset)
    accept_weaker_isolation: frozenset[str] = field(default_factory=frozenset)
    #: use a JIT where the engine has one (LuaJIT for Lua)
    use_jit: bool = False

    def __post_init__(self) -> None:
        for name in _SET_FIELDS:  # a plain set or list given for a set field
            value = getattr(self, name)
            if not isinstance(value, frozenset):
                object.__setattr__(self, name, frozenset(value))
        unknown = set(self.accept_weaker_isolation) - WEAKER_ISOLATION
        if unknown:
            raise ValueError(
                f"accept_weaker_isolation names unknown mechanisms {sorted(unknown)}; "
                f"known: {sorted(WEAKER_ISOLATION)}"
            )

    @classmethod
    def trusted(cls, **overrides: Any) -> "SecurityPolicy":
        """Full access and no limits: for the application's own scripts."""
        base = cls(
            sandboxed=False,
            memory_limit=None,
            time_limit=None,
            max_recursion=None,
            max_source_size=None,
            max_value_size=None,
            max_shared_entries=None,
            max_shared_bytes=None,
            max_dom_entries=None,
            max_dom_bytes=None,
            allow_file_system=True,
            allow_network=True,
            allow_processes=True,
            allow_imports=True,
        )
        return dataclasses.replace(base, **overrides) if overrides else base

    @classmethod
    def sandboxed_policy(cls, **overrides: Any) -> "SecurityPolicy":
        """No grants and finite limits: for untrusted scripts.

        Also reachable as ``SecurityPolicy.sandboxed(...)`` (see below): the
        dataclass field ``sandboxed`` is the flag, the classmethod the factory."""
        return dataclasses.replace(cls(), **overrides)

    def replace(self, **changes: Any) -> "SecurityPolicy":
        return dataclasses.replace(self, **changes)

    def may_import(self, module: str) -> bool:
        """Whether a script may import the host module ``module``."""
        if self.allow_imports:
            return True
        root = module.split(".", 1)[0]
        return module in self.allowed_modules or root in self.allowed_modules

    def covers(self, other: "SecurityPolicy") -> bool:
        """Whether a script under this policy may do everything a script under
        ``other`` may: trusted covers every policy; a sandboxed policy covers
        another sandboxed one whose grants (files, network, processes,
        imports, named modules) and accepted weaker isolation are all its own
        too. Numeric limits are not
        authority: each side of a call keeps its own."""
        if not self.sandboxed:
            return True
        if not other.sandboxed:
            return False
        for grant in ("allow_file_system", "allow_network", "allow_processes", "allow_imports"):
            if getattr(other, grant) and not getattr(self, grant):
                return False
        if not other.accept_weaker_isolation <= self.accept_weaker_isolation:
            return False  # a worker missing a kernel mechanism may reach what this one may not
        return self.allow_imports or other.allowed_modules <= self.allowed_modules

    def describe(self) -> str:
        if not self.sandboxed:
            return "trusted"
        limits = []
        if self.memory_limit:
            limits.append(f"memory {self.memory_limit // MiB} MiB")
        if self.time_limit:
            limits.append(f"time {self.time_limit:g} s")
        if self.max_recursion:
            limits.append(f"recursion {self.max_recursion}")
        if self.accept_weaker_isolation:
            limits.append("without " + ", ".join(sorted(self.accept_weaker_isolation)))
        return "sandboxed (" + ", ".join(limits) + ")"


_SET_FIELDS = ("allowed_modules", "accept_weaker_isolation")


class _SandboxedFactory:
    """Lets ``SecurityPolicy.sandboxed(...)`` build a policy while
    ``policy.sandboxed`` on an instance still reads the boolean field."""

    @overload
    def __get__(self, instance: None, owner: type[SecurityPolicy]) -> Callable[..., SecurityPolicy]: ...

    @overload
    def __get__(self, instance: SecurityPolicy, owner: type[SecurityPolicy]) -> bool: ...

    def __get__(self, instance: SecurityPolicy | None, owner: type[SecurityPolicy]) -> Any:
        if instance is None:
            return owner.sandboxed_policy
        return instance.__dict__["sandboxed"]

    if TYPE_CHECKING:  # for the dataclass's __init__ as type checkers see it; at run time the
        # descriptor has no __set__, so each instance's own flag (in its __dict__) is what it reads

        def __set__(self, instance: SecurityPolicy, value: bool) -> None: ...


# The dataclass machinery has already read the field default; swap in the
# descriptor so the class attribute is the factory and instances keep the flag.
SecurityPolicy.sandboxed = _SandboxedFactory()
