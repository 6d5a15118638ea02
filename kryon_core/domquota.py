"""Per-script quotas on what scripts store in the document.

Every slot of the document a script writes (an element it created, one
property, style or class of an element, a variable, a listener, watcher,
timer or animation) is charged to that script: one entry, and the bytes of
the stored value by ``approximate_size`` (the estimate shared data uses). A
slot is charged to whoever wrote it last: an overwrite moves the charge, a
host write or a removal releases it, and unloading a script releases all it
holds. Limits come from ``SecurityPolicy.max_dom_entries`` / ``max_dom_bytes``.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import MemoryLimitError
from .values import approximate_size

if TYPE_CHECKING:
    from .policy import SecurityPolicy

__all__ = ["DomCharge", "DomLedger", "DomUsage", "charge_for", "slot_size"]

#: the writer of a slot: ((language, script), its policy)
DomCharge = tuple[tuple[str, str], "SecurityPolicy"]


@dataclass(slots=True)
class DomUsage:
    """What one script holds in the document."""

    entries: int = 0
    bytes: int = 0


_SCALARS = frozenset({int, float, bool, type(None)})


def slot_size(name: str, value: object) -> int:
    """``approximate_size`` of a named value (the name a str), with the
    common scalar and ASCII-text cases written out: a frame's DOM writes
    are mostly those, and this runs on each."""
    size = 49 + len(name) if name.isascii() else approximate_size(name)
    t = type(value)
    if t in _SCALARS:
        return size + 32
    if t is str and value.isascii():  # type: ignore[attr-defined]
        return size + 49 + len(value)  # type: ignore[arg-type]
    return size + approximate_size(value)


def charge_for(language: str, script: str, policy: "SecurityPolicy") -> DomCharge | None:
    """The charge a script's DOM writes carry, or None when its policy sets no DOM limit."""
    if policy.max_dom_entries is None and policy.max_dom_bytes is None:
        return None
    return ((language, script), policy)


class DomLedger:
    """Which script each charged slot of a document belongs to, and what each
    script holds. The document calls it under its own lock."""

    __slots__ = ("_slots", "_usage")

    def __init__(self) -> None:
        self._slots: dict[Hashable, tuple[tuple[str, str], int]] = {}
        self._usage: dict[tuple[str, str], DomUsage] = {}

    def charge(self, slot: Hashable, by: DomCharge, size: int) -> None:
        """Charge ``slot`` (``size`` bytes) to the writer ``by``, taking it from
        its previous holder; MemoryLimitError past the writer's quota, and then
        nothing changes (the caller stores nothing)."""
        key, policy = by
        held = self._slots.get(slot)
        if held is not None and held[0] == key:  # the script writes its own slot again: only bytes can grow
            held_bytes = held[1]
            if size != held_bytes:
                mine = self._usage[key]
                grown = mine.bytes - held_bytes + size
                limit = policy.max_dom_bytes
                if limit is not None and grown > limit and size > held_bytes:
                    raise _over_bytes(key, grown, limit)
                mine.bytes = grown
                self._slots[slot] = (key, size)
            return
        usage = self._usage.get(key)
        if usage is None:
            usage = self._usage[key] = DomUsage()
        entries = usage.entries + 1
        total = usage.bytes + size
        limit = policy.max_dom_entries
        if limit is not None and entries > limit:
            raise MemoryLimitError(
                f"script '{key[1]}' may hold at most {limit} things in the document (elements, values, "
                "listeners, watchers, timers) (SecurityPolicy.max_dom_entries)",
                language=key[0],
                script=key[1],
            )
        limit = policy.max_dom_bytes
        if limit is not None and total > limit:
            raise _over_bytes(key, total, limit)
        if held is not None:  # another script's slot: it pays no more for it
            self.release(slot)
        usage.entries, usage.bytes = entries, total
        self._slots[slot] = (key, size)

    def release(self, slot: Hashable) -> None:
        """The slot is gone or now held by the host: its writer no longer pays for it."""
        held = self._slots.pop(slot, None)
        if held is not None:
            usage = self._usage[held[0]]
            usage.entries -= 1
            usage.bytes -= held[1]

    def release_owner(self, language: str, script: str) -> int:
        """Release everything charged to a script (it was unloaded); how many slots."""
        key = (language, script)
        doomed = [slot for slot, (k, _) in self._slots.items() if k == key]
        for slot in doomed:
            del self._slots[slot]
        self._usage.pop(key, None)
        return len(doomed)

    def usage(self, language: str, script: str) -> DomUsage:
        usage = self._usage.get((language, script))
        return DomUsage(usage.entries, usage.bytes) if usage is not None else DomUsage()

    def __bool__(self) -> bool:
        return bool(self._slots)


def _over_bytes(key: tuple[str, str], total: int, limit: int) -> MemoryLimitError:
    return MemoryLimitError(
        f"document values of script '{key[1]}' would take {total} bytes, over its quota of "
        f"{limit} (SecurityPolicy.max_dom_bytes)",
        language=key[0],
        script=key[1],
    )
