"""The engine gate from C (kryon_core/_speedups.c): the capsule engine extensions import, and
the checks in kryon_core.threads (direct_lock, waiting_offset) that decide whether C code may
read and write a gate's RLock. Every check is broken once here, and each broken check means
None (C code then calls the lock's methods), never a wrong guess about the lock."""

from __future__ import annotations

import ctypes
import sys
import threading
import types
from typing import Any

import pytest

from kryon_core import speedups, threads

pytestmark = pytest.mark.skipif(not speedups.enabled(), reason="the compiled core is not built or is turned off")
DIRECT = sys.implementation.name == "cpython" and sys.version_info[:2] in ((3, 11), (3, 12))


class _Api(ctypes.Structure):  # KryonGateAPI in kryon_core/_speedups_api.h
    _fields_ = [
        ("version", ctypes.c_int),
        ("size", ctypes.c_size_t),
        ("lock_enter", ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object)),
        ("lock_leave", ctypes.PYFUNCTYPE(None, ctypes.py_object)),
        ("gate_waiting", ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object, ctypes.c_ssize_t)),
    ]


def _api() -> _Api:
    capsule = speedups.module().gate_api
    name = b"kryon_core._speedups.gate_api"
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    return _Api.from_address(get(capsule, name))


@pytest.fixture(autouse=True)
def fresh_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "_fresh_ok", [])
    monkeypatch.delenv(speedups.ENV_OFF, raising=False)


def _taken_by_another_thread(lock: Any) -> bool:
    got: list[bool] = []

    def take() -> None:
        if lock.acquire(False):
            got.append(True)
            lock.release()

    t = threading.Thread(target=take)
    t.start()
    t.join(10)
    return got == [True]


@pytest.mark.skipif(not DIRECT, reason="the direct gate is checked for CPython 3.11 and 3.12 only")
def test_the_capsule_takes_and_gives_back_a_checked_lock() -> None:
    api = _api()
    assert api.version == speedups.module().API_VERSION == 1 and api.size == ctypes.sizeof(_Api)
    gate = threads.EngineGate("g")
    lock = threads.direct_lock(gate)
    assert lock is gate._lock
    assert api.lock_enter(lock) == 1 and gate.held() and not _taken_by_another_thread(lock)
    assert api.lock_enter(lock) == 1  # re-entered by its holder
    api.lock_leave(lock)
    assert gate.held() and not _taken_by_another_thread(lock)
    api.lock_leave(lock)
    assert not gate.held() and _taken_by_another_thread(lock)
    # held by another thread: 0, and the lock is left as it was
    inside, leave = threading.Event(), threading.Event()
    holder = threading.Thread(target=lambda: gate.run(lambda: (inside.set(), leave.wait(10))))
    holder.start()
    assert inside.wait(10)
    try:
        assert api.lock_enter(lock) == 0 and not gate.held()
    finally:
        leave.set()
        holder.join(10)
    # the waiting count, read at the checked offset
    offset = threads.waiting_offset(gate)
    assert offset and api.gate_waiting(gate, offset) == 0
    gate._waiting += 1
    try:
        assert api.gate_waiting(gate, offset) == 1
    finally:
        gate._waiting -= 1


@pytest.mark.skipif(not DIRECT, reason="the direct gate is checked for CPython 3.11 and 3.12 only")
def test_a_gate_held_by_this_thread_passes_and_keeps_its_count() -> None:
    gate = threads.EngineGate("g")
    gate._lock.acquire()
    gate._lock.acquire()
    try:
        assert threads.direct_lock(gate) is gate._lock
        assert speedups.module().lock_fields(gate._lock)[1:] == (threading.get_ident(), 2)
    finally:
        gate._lock.release()
        gate._lock.release()
    assert _taken_by_another_thread(gate._lock)


class _Shifted:
    """The extension's readers with one fact wrong, as another lock layout would show."""

    def __init__(self, **wrong: Any) -> None:
        real = speedups._ext
        for name in ("lock_fields", "lock_try", "api_enter", "api_leave", "slot_offset", "read_slot"):
            setattr(self, name, wrong.get(name, getattr(real, name)))


def _broken_readers() -> dict[str, Any]:
    real = speedups._ext
    me = threading.get_ident
    return {
        "owner elsewhere": dict(lock_fields=lambda lock: (real.lock_fields(lock)[0], 0, real.lock_fields(lock)[2])),
        "count elsewhere": dict(lock_fields=lambda lock: real.lock_fields(lock)[:2] + (0,)),
        "no plain lock": dict(lock_fields=lambda lock: (0,) + real.lock_fields(lock)[1:]),
        "owner of another thread": dict(lock_fields=lambda lock: (real.lock_fields(lock)[0], me() + 1, real.lock_fields(lock)[2])),
        "plain lock never held": dict(lock_try=lambda lock: True),
        "plain lock never free": dict(lock_try=lambda lock: False),
        "enter that does not take": dict(api_enter=lambda lock: True),
        "reader refuses the size": dict(lock_fields=lambda lock: (_ for _ in ()).throw(TypeError("size"))),
    }


@pytest.mark.skipif(not DIRECT, reason="the direct gate is checked for CPython 3.11 and 3.12 only")
@pytest.mark.parametrize("case", list(_broken_readers()))
def test_each_broken_lock_check_means_no_direct_lock(monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    gate = threads.EngineGate("g")
    shifted = _Shifted(**_broken_readers()[case])
    monkeypatch.setattr(speedups, "module", lambda: shifted)
    assert threads.direct_lock(gate) is None
    assert not gate.held() and _taken_by_another_thread(gate._lock)  # the check left the lock as it found it


def test_the_other_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threads.EngineGate("g")
    # a Python RLock (not the C one whose layout is known)
    py_gate = threads.EngineGate("py")
    py_gate._lock = threading._PyRLock()  # type: ignore[attr-defined]
    assert threads.direct_lock(py_gate) is None
    # another Python version or implementation
    for fake in (types.SimpleNamespace(implementation=types.SimpleNamespace(name="pypy"), version_info=sys.version_info),
                 types.SimpleNamespace(implementation=sys.implementation, version_info=(3, 13, 0))):
        with monkeypatch.context() as mp:
            mp.setattr(threads, "sys", fake)
            assert threads.direct_lock(gate) is None
    # the switch
    with monkeypatch.context() as mp:
        mp.setenv(speedups.ENV_OFF, "1")
        assert threads.direct_lock(gate) is None and threads.waiting_offset(gate) == 0
    # held by another thread while checked
    inside, leave = threading.Event(), threading.Event()
    holder = threading.Thread(target=lambda: gate.run(lambda: (inside.set(), leave.wait(10))))
    holder.start()
    assert inside.wait(10)
    try:
        assert threads.direct_lock(gate) is None
    finally:
        leave.set()
        holder.join(10)
    # a `_waiting` that is not at the offset its descriptor gives, or a gate of another class
    with monkeypatch.context() as mp:
        mp.setattr(speedups, "module", lambda: _Shifted(slot_offset=lambda d: speedups._ext.slot_offset(d) - 8))
        assert threads.waiting_offset(gate) == 0

    class Gate(threads.EngineGate):
        __slots__ = ()

    assert threads.waiting_offset(Gate("sub")) == 0
    if DIRECT:
        assert threads.direct_lock(gate) is gate._lock and threads.waiting_offset(gate) > 0
