"""Script results as JSON text, the way ``run --call`` and ``eval`` print them.

JSON has no NaN or infinities. Like JavaScript's own ``JSON.stringify``, a
non-finite number is printed as ``null``; the command then adds a note on
stderr saying which values were replaced, so the output stays valid JSON
and nothing is lost silently. Bytes are printed as a list of byte values,
function handles and opaque host objects as their description in a string.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["to_json"]


def to_json(value: Any, *, indent: int | None = None) -> tuple[str, list[str]]:
    """(the JSON text, notes about values JSON cannot hold)."""
    notes: list[str] = []
    return json.dumps(_plain(value, "result", notes), indent=indent, ensure_ascii=False), notes


def _plain(value: Any, path: str, notes: list[str]) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        notes.append(f"{path} is {_js_name(value)}, printed as null (JSON has no {_js_name(value)})")
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray)):
        return list(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{path}[{i}]", notes) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{path}.{k}", notes) for k, v in value.items()}
    return repr(value)


def _js_name(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"
