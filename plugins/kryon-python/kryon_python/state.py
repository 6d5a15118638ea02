"""What the engine keeps of each trusted (in-process) Python script."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kryon_core import FunctionInfo, SecurityPolicy

__all__ = ["TrustedScript"]


@dataclass
class TrustedScript:
    """A trusted script: its namespace, its own builtins and its policy."""

    id: str
    ns: dict[str, Any]
    builtins: dict[str, Any]
    policy: SecurityPolicy
    source: str
    functions: dict[str, FunctionInfo] = field(default_factory=dict)
