/* The C API of kryon_core's optional compiled core (kryon_core/_speedups.c), for engine
 * extensions that enter an EngineGate from C. See docs/plugins.md, "The gate from C".
 *
 *     PyObject *core = PyImport_ImportModule("kryon_core._speedups");  (PyCapsule_Import reaches
 *     Py_XDECREF(core);                                               it as a package attribute)
 *     const KryonGateAPI *api = core ? PyCapsule_Import(KRYON_GATE_CAPSULE, 0) : NULL;
 *
 * The functions may be used only on a lock that kryon_core.threads.direct_lock(gate)
 * returned (it checks the lock's layout on live objects first); an engine that gets None
 * there, or no capsule at all, calls the gate's Python methods instead. Every function
 * runs with the GIL held. */
#ifndef KRYON_SPEEDUPS_API_H
#define KRYON_SPEEDUPS_API_H

#include <Python.h>

#define KRYON_GATE_CAPSULE "kryon_core._speedups.gate_api"
#define KRYON_GATE_API_VERSION 1

typedef struct {
    int version;      /* KRYON_GATE_API_VERSION: check it before using the rest */
    size_t size;      /* sizeof(KryonGateAPI) of the core that made it; fields are only ever appended */
    /* RLock.acquire(False) on a checked lock: 1 taken (free, or re-entered by this thread),
     * 0 held by another thread (then take the Python path: EngineGate.run waits and helps) */
    int (*lock_enter)(PyObject *lock);
    /* RLock.release() by the thread that holds it */
    void (*lock_leave)(PyObject *lock);
    /* Whether threads poll the gate (its `_waiting` slot, read at the offset that
     * kryon_core.threads.waiting_offset(gate) returned): 1 yes (call
     * kryon_core.threads.wake_waiters after the release), 0 no, -1 error set */
    int (*gate_waiting)(PyObject *gate, Py_ssize_t offset);
} KryonGateAPI;

#endif
