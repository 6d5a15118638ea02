"""Which limits of a policy an in-process script can be held to.

A trusted script runs in the host interpreter, so what its policy asks for is
kept as a convenience against mistakes, not as a boundary, and only where the
interpreter can keep it at all:

- kept: ``time_limit`` (the watchdog), ``max_recursion`` (the tracer),
  ``max_value_size`` (the value rules), ``max_source_size`` and the shared-data
  quotas (the manager), ``allow_imports`` / ``allowed_modules`` (the script's
  ``__import__``), and a withheld file system, network or process grant while
  imports are withheld too (``open`` is refused; the modules that reach files,
  sockets or processes cannot be imported unless ``allowed_modules`` names them);
- refused: ``memory_limit`` (the host's heap is shared: no script has its own),
  and a withheld file system, network or process grant while ``allow_imports``
  is on (any module reaches them).

Refusals are :class:`~kryon_core.errors.UnsupportedPolicyError`, naming the
limit, the engine and the way out: a sandboxed policy, whose worker process
keeps every limit.
"""

from __future__ import annotations

from ..errors import UnsupportedPolicyError
from ..policy import SecurityPolicy

__all__ = ["refuse_unkeepable"]

_GRANTS = {
    "allow_file_system": "files",
    "allow_network": "the network",
    "allow_processes": "processes",
}


def refuse_unkeepable(policy: SecurityPolicy, language: str) -> None:
    """Raise UnsupportedPolicyError for the first limit of a trusted ``policy``
    that in-process code cannot keep (see the module docstring)."""
    if policy.sandboxed:
        return
    if policy.memory_limit is not None:
        raise UnsupportedPolicyError(
            f"the {language} engine cannot keep memory_limit for a trusted script: in-process code shares the "
            "host's heap and has none of its own; use a sandboxed policy (SecurityPolicy.sandboxed(memory_limit=...)), "
            "whose worker process has a real memory limit, or drop the limit",
            limit="memory_limit",
            language=language,
        )
    if policy.allow_imports:
        for grant, what in _GRANTS.items():
            if not getattr(policy, grant):
                raise UnsupportedPolicyError(
                    f"the {language} engine cannot keep {grant}=False for a trusted script that may import any "
                    f"module (allow_imports): any module reaches {what}; use a sandboxed policy, or withhold "
                    "imports too (allow_imports=False, naming the modules it may use in allowed_modules)",
                    limit=grant,
                    language=language,
                )
