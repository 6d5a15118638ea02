"""The host side of what a script holds by id: host objects (``UserData``,
element handles) and host callables handed into one script's context.

The script holds its handles and host functions weakly (``prelude.js``); the
ids it dropped are swept from these tables as they grow and on garbage
collection, so a long-running script does not pin host objects forever.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

from kryon_core import ConversionError

from .plugin import LANGUAGE


class HandleTable:
    """Ids for the host objects and callables one script context holds."""

    def __init__(self, script: str, sweep_js: Callable[[], str]) -> None:
        self.script = script
        self.sweep_js = sweep_js
        self.ud_ids: dict[Any, int] = {}
        self.ud_objs: dict[int, Any] = {}
        self.py_ids: dict[int, int] = {}
        self.py_objs: dict[int, Any] = {}
        self.ids = itertools.count(1)
        self.sweep_at = 512

    def clear(self) -> None:
        self.ud_ids.clear()
        self.ud_objs.clear()
        self.py_ids.clear()
        self.py_objs.clear()

    def sweep(self) -> None:
        """Forget handles and host functions the script no longer holds."""
        py_dead, ud_dead = json.loads(self.sweep_js())
        for pid in py_dead:
            fn = self.py_objs.pop(pid, None)
            if fn is not None and self.py_ids.get(id(fn)) == pid:
                del self.py_ids[id(fn)]
        for uid in ud_dead:
            obj = self.ud_objs.pop(uid, None)
            if obj is not None:
                try:
                    if self.ud_ids.get(obj) == uid:
                        del self.ud_ids[obj]
                except TypeError:
                    pass
        self.sweep_at = max(512, 2 * (len(self.py_objs) + len(self.ud_objs)))

    def userdata_id(self, value: Any) -> int:
        """The handle id of a host object: equal handles (ElementHandles of one
        element) share one id and one JS handle object; the latest instance
        passed in is the one that comes back."""
        if len(self.ud_objs) + len(self.py_objs) > self.sweep_at:
            self.sweep()
        try:
            uid = self.ud_ids.get(value)
        except TypeError:  # unhashable UserData subclass: identity only
            uid = next((k for k, obj in self.ud_objs.items() if obj is value), None)
        if uid is None:
            uid = next(self.ids)
            try:
                self.ud_ids[value] = uid
            except TypeError:
                pass
        self.ud_objs[uid] = value
        return uid

    def userdata(self, uid: int) -> Any:
        try:
            return self.ud_objs[uid]
        except KeyError:
            raise ConversionError("unknown handle", language=LANGUAGE, script=self.script) from None

    def callable_id(self, fn: Any) -> int:
        if len(self.ud_objs) + len(self.py_objs) > self.sweep_at:
            self.sweep()
        pid = self.py_ids.get(id(fn))
        if pid is None or self.py_objs.get(pid) is not fn:
            pid = next(self.ids)
            self.py_ids[id(fn)] = pid
            self.py_objs[pid] = fn
        return pid

    def callable(self, pid: int) -> Any:
        try:
            return self.py_objs[pid]
        except KeyError:
            raise ConversionError("unknown host function", language=LANGUAGE, script=self.script) from None
