"""Carrying a Wren script's state across a hot reload.

Each version of a script runs in a wasm instance of its own (a trap of one
must not take the other with it, and the old version must stay whole until
the new one is accepted), so no Wren object can be shared between them: the
old version's module variables are read into a plain tree here (``read``,
under the old instance's gate) and copies are built in the new VM (``Writer``,
under the new one's). Shared and cyclic structure is kept: each old object
(named by ``wren_object_id``) becomes exactly one new object.

What crosses ("portable"): null, booleans, numbers, strings, Lists and Maps
(keys null, booleans, numbers or strings) of portable values, host objects
(the same host value, registered in the new VM), and instances of a class
the module itself defines or imports when the new version has a class of
that name with the same number of fields (a new instance of the new class,
no constructor run, fields copied by position). A value holding anything
else (a Fn, a Fiber, a class, a Range, an instance of a class that changed
its field count or went away), or nested deeper than ``MAX_DEPTH``, does not
cross as a whole.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kryon_core import ScriptRuntimeError

from .plugin import LANGUAGE
from .values import MAX_DEPTH, prepare

if TYPE_CHECKING:
    from .state import ScriptState

#: the new version's hook: a top-level variable holding a Fn of one argument
HOOK = "onReload"
# ObjType (csrc/value.h)
OBJ_STRING, OBJ_LIST, OBJ_MAP, OBJ_RANGE, OBJ_FN, OBJ_CLOSURE, OBJ_UPVALUE, OBJ_CLASS, OBJ_INSTANCE = range(9)
_TYPE_BOOL, _TYPE_NUM, _TYPE_NULL, _TYPE_STRING = 0, 1, 5, 6


@contextlib.contextmanager
def host_work(inst: Any) -> Iterator[None]:
    """Copying runs no script code and is bounded by the old version's heap:
    it runs without the fuel and time budget (as the VM's set-up calls do),
    so a big state is neither cut short nor, in the old instance, killed by
    a deadline. Inside a running call it stays under that call's budget."""
    lifted = not inst.depth and inst.limited
    if lifted:
        inst.limited = False
        if inst.fuel is not None:
            inst.store.set_fuel(1 << 40)
        if inst.timeout is not None:
            inst.store.set_epoch_deadline(1 << 40)
    inst.enter()
    try:
        yield
    finally:
        inst.leave()
        if lifted:
            inst.limited = True
            inst._armed_at = -1e18  # the next limited call re-arms


class Unportable(Exception):
    """A value that cannot be copied into the new version."""


@dataclass(eq=False)
class WList:
    items: list[Any] = field(default_factory=list)


@dataclass(eq=False)
class WMap:
    pairs: list[tuple[Any, Any]] = field(default_factory=list)


@dataclass(eq=False)
class WInstance:
    cls: str
    fields: list[Any] = field(default_factory=list)


@dataclass(eq=False)
class HostValue:
    value: Any


class _Reader:
    """Reads values of the old VM into the plain tree (the VM's slots from
    ``base`` up are scratch: depth d uses slots base + d and base + d + 1)."""

    def __init__(self, state: "ScriptState") -> None:
        self.state = state
        self.vm = vm = state.vm
        self.memo: dict[int, Any] = {}
        self.classes: dict[int, str] = {}  # class id -> the module variable naming it
        self.host_classes: set[int] = set()
        for name in ("HostRef", "HostFn"):
            if vm.has_variable("kryon", name):
                vm._load_variable("kryon", name, 0)
                self.host_classes.add(vm._c("wren_object_id", 0))

    def value(self, slot: int, depth: int) -> Any:
        vm = self.vm
        kind = vm._c("wren_get_slot_type", slot)
        if kind in (_TYPE_BOOL, _TYPE_NUM, _TYPE_NULL, _TYPE_STRING):
            return vm.get_slot(slot)
        if depth > MAX_DEPTH:
            raise Unportable("nested too deeply")
        ident = vm._c("wren_object_id", slot)
        known = self.memo.get(ident)
        if known is not None:
            return known
        obj_type = vm._c("wren_object_type", slot)
        inner = slot + 1
        if obj_type == OBJ_LIST:
            items = WList()
            self.memo[ident] = items
            for i in range(vm._c("wren_get_list_count", slot)):
                vm._c("wren_get_list_element", slot, i, inner)
                items.items.append(self.value(inner, depth + 1))
            return items
        if obj_type == OBJ_MAP:
            out = WMap()
            self.memo[ident] = out
            index = vm._c("wren_map_next", slot, 0)
            while index >= 0:
                vm._c("wren_get_map_entry", slot, index, inner, inner + 1)
                if vm._c("wren_get_slot_type", inner) not in (_TYPE_BOOL, _TYPE_NUM, _TYPE_NULL, _TYPE_STRING):
                    raise Unportable("a map key that is an object")
                key = vm.get_slot(inner)
                vm._c("wren_get_map_entry", slot, index, inner + 1, inner)  # the value to `inner`
                out.pairs.append((key, self.value(inner, depth + 1)))
                index = vm._c("wren_map_next", slot, index + 1)
            return out
        if obj_type == OBJ_INSTANCE:
            vm._c("wren_class_of", slot, inner)
            cls = vm._c("wren_object_id", inner)
            count = vm._c("wren_debug_instance_field", slot, -1, inner)
            if cls in self.host_classes:
                vm._c("wren_debug_instance_field", slot, 0, inner)
                number = vm.get_slot(inner)
                objects = self.state.objects
                if not isinstance(number, float) or int(number) not in objects:
                    raise Unportable("a host object the script no longer holds")
                host = self.memo[ident] = HostValue(objects[int(number)])
                return host
            name = self.classes.get(cls)
            if name is None:
                raise Unportable("an instance of a class the module does not name")
            instance = self.memo[ident] = WInstance(name)
            for i in range(count):
                vm._c("wren_debug_instance_field", slot, i, inner)
                instance.fields.append(self.value(inner, depth + 1))
            return instance
        raise Unportable("a function, fiber, class or range")


def read(state: "ScriptState") -> dict[str, Any]:
    """The old version's module variables that can cross, by name (static
    fields as ``Class.__field``), as a plain tree. Runs under its gate."""
    vm = state.vm
    if vm is None or state.pool.instance.dead is not None:
        return {}
    inst = vm.instance
    with host_work(inst):
        return _read(state, vm, inst)


def _read(state: "ScriptState", vm: Any, inst: Any) -> dict[str, Any]:
    ptr = inst.alloc_cstring(state.script_id)
    try:
        reader = _Reader(state)
        names: list[str] = []
        i = 0
        while True:
            name_ptr = vm._c("wren_debug_module_variable", ptr, i, 0)
            if not name_ptr:
                break
            name = inst.read_cstring(name_ptr)
            names.append(name)
            if vm._c("wren_object_type", 0) == OBJ_CLASS:
                reader.classes[vm._c("wren_object_id", 0)] = name
            i += 1
        data: dict[str, Any] = {}
        for i, name in enumerate(names):
            vm._c("wren_debug_module_variable", ptr, i, 0)
            if vm._c("wren_get_slot_type", 0) == _TYPE_NULL:
                continue
            before = set(reader.memo)
            try:
                data[name] = reader.value(0, 0)
            except Unportable:  # what this walk half-read must not be reused by a later one
                for ident in set(reader.memo) - before:
                    del reader.memo[ident]
        return data
    finally:
        if inst.dead is None:
            inst.call("wren_dealloc", ptr)


class Writer:
    """Builds plain-tree values in the new VM. Host values get their Wren
    handles first (making one runs Wren code, which would clobber the slots
    the build works in)."""

    def __init__(self, state: "ScriptState", data: dict[str, Any]) -> None:
        self.state = state
        self.vm = state.vm
        self.memo: dict[int, Any] = {}  # id(tree node) -> handle of its copy
        self.fields: dict[str, int] = {}  # class name -> field count in the new version (-1: none)
        self.hosts: dict[int, Any] = {id(node): prepare(self.state, node.value) for node in _nodes(list(data.values()))
                      if isinstance(node, HostValue)}

    def release(self) -> None:
        for handle in self.memo.values():
            handle.release()
        self.memo.clear()

    def to_slot(self, node: Any, slot: int) -> None:
        """Writes the copy of ``node`` to ``slot`` (slots above it are scratch)."""
        vm = self.vm
        if node is None or isinstance(node, (bool, float, str)):
            vm.set_slot(slot, node)
            return
        if isinstance(node, HostValue):
            vm.set_slot(slot, self.hosts[id(node)])
            return
        made = self.memo.get(id(node))
        if made is not None:
            vm.set_slot(slot, made)
            return
        inner = slot + 1
        if isinstance(node, WList):
            vm._c("wren_set_slot_new_list", slot)
            self.memo[id(node)] = vm.get_slot_handle(slot)
            for item in node.items:
                self.to_slot(item, inner)
                vm._c("wren_insert_in_list", slot, -1, inner)
        elif isinstance(node, WMap):
            vm._c("wren_set_slot_new_map", slot)
            self.memo[id(node)] = vm.get_slot_handle(slot)
            for key, item in node.pairs:
                self.to_slot(item, inner + 1)
                vm.set_slot(inner, key)
                vm._c("wren_set_map_value", slot, inner, inner + 1)
        elif isinstance(node, WInstance):
            if len(node.fields) != self._field_count(node.cls):
                raise Unportable(f"class {node.cls} changed its fields or went away")
            vm._c_text("wren_get_variable", (self.state.script_id, node.cls), inner)
            vm._c("wren_new_instance", inner, slot)
            self.memo[id(node)] = vm.get_slot_handle(slot)
            for i, item in enumerate(node.fields):
                self.to_slot(item, inner)
                vm._c("wren_set_instance_field", slot, i, inner)
        else:  # pragma: no cover - the reader makes nothing else
            raise Unportable(type(node).__name__)

    def _field_count(self, cls: str) -> int:
        count = self.fields.get(cls)
        if count is None:
            vm = self.vm
            count = -1
            if vm._c_text("wren_get_variable", (self.state.script_id, cls), 1):
                count = vm._c("wren_new_instance", 1, 2)  # a probe; the garbage collector takes it
            self.fields[cls] = count
        return count

    def portable(self, node: Any) -> bool:
        """Whether ``node`` can be built here: every instance in it has its
        class, with the same field count, in the new version."""
        return all(len(item.fields) == self._field_count(item.cls)
                   for item in _nodes([node]) if isinstance(item, WInstance))


def _nodes(roots: list[Any]) -> Iterator[Any]:
    """Every node of the copied trees reachable from ``roots``, once each
    (shared and cyclic data make the trees a graph)."""
    todo, seen = list(roots), set()
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        if isinstance(node, WList):
            todo.extend(node.items)
        elif isinstance(node, WMap):
            todo.extend(v for _, v in node.pairs)
        elif isinstance(node, WInstance):
            todo.extend(node.fields)


def carry_over(state: "ScriptState", data: dict[str, Any]) -> None:
    """Gives the new version (``state``, its top level run) the old one's
    data: through its ``onReload(old)`` hook when it defines one, else every
    module variable it leaves null gets the old value of that name. Raises a
    ScriptError when the hook fails or returns what cannot be set (the
    reload is then rolled back). Runs under the new version's gate; the hook
    under the new version's limits, the copying without them (host_work)."""
    vm = state.vm
    module = state.script_id
    inst = vm.instance
    writer = None
    hook_fn = old_map = None
    try:
        with host_work(inst):
            writer = Writer(state, data)
            data = {name: node for name, node in data.items() if writer.portable(node)}
            vm.ensure_slots(4)
            hook = vm._c_text("wren_get_variable", (module, HOOK), 0)
            if hook and vm._c("wren_get_slot_type", 0) != _TYPE_NULL:
                if vm._c("wren_object_type", 0) != OBJ_CLOSURE:
                    raise _error(state, f"{HOOK} must be a Fn taking the old version's data (a Map)")
                hook_fn = vm.get_slot_handle(0)
                writer.to_slot(WMap([(name, node) for name, node in data.items()]), 1)
                old_map = vm.get_slot_handle(1)
            else:
                for name, node in data.items():
                    if not vm._c_text("wren_get_variable", (module, name), 0) or \
                            vm._c("wren_get_slot_type", 0) != _TYPE_NULL:
                        continue
                    writer.to_slot(node, 0)
                    vm._c_text("wren_set_variable", (module, name), 0)
            writer.release()
        if hook_fn is not None:
            inst.enter()  # the hook is script code: the new version's deadline
            try:
                _run_hook(state, hook_fn, old_map)
            finally:
                inst.leave()
    finally:
        if writer is not None:
            writer.release()
        for handle in (hook_fn, old_map):
            if handle is not None:
                handle.release()


def _run_hook(state: "ScriptState", hook: Any, old: Any) -> None:
    """Calls ``onReload(old)``; a Map it returns is set name by name (keys
    name the new version's module variables; static fields as
    ``Class.__field``), null keeps the new top level's values."""
    vm = state.vm
    call = state.call_handle("call(_)")
    vm.ensure_slots(2)
    vm.set_slot(0, hook)
    vm.set_slot(1, old)
    vm.raise_for_status(vm._c("wren_call", call.ptr))
    if vm._c("wren_get_slot_type", 0) == _TYPE_NULL:
        return
    if vm._c("wren_object_type", 0) != OBJ_MAP:
        raise _error(state, f"{HOOK} must return a Map of module variable names to set, or null "
                            "(a one-line Fn returns its expression's value)")
    index = vm._c("wren_map_next", 0, 0)
    while index >= 0:
        vm._c("wren_get_map_entry", 0, index, 1, 2)
        if vm._c("wren_get_slot_type", 1) != _TYPE_STRING:
            raise _error(state, f"{HOOK} returned a Map whose key is not a String")
        name = vm.get_slot(1)
        if not vm._c_text("wren_set_variable", (state.script_id, name), 2):
            raise _error(state, f"{HOOK} returned '{name}', which the new version does not define")
        index = vm._c("wren_map_next", 0, index + 1)


def _error(state: "ScriptState", message: str) -> ScriptRuntimeError:
    return ScriptRuntimeError(message, language=LANGUAGE, script=state.script_id)
