/* kryon_wren._ccall: a compiled caller for the scalar calls into Wren (see
 * kryon_wren/ccall.py, which checks every fact used here on live objects and
 * keeps the Python caller when any check fails).
 *
 * It does what calls.py's `call` does on its hot path, without a Python
 * frame: the gate's uncontended acquire, the numbers written into the
 * ScalarCall's parameter block, the instance's depth and its lazy epoch
 * deadline, one `wasmtime_func_call_unchecked` (the GIL released around it,
 * as ctypes releases it today: the epoch ticker thread must keep time while
 * the script runs, and other host threads run meanwhile), and a number result
 * read back (or null, true, false). Everything else goes to Python: any other argument kind or
 * count, a stale VM, a dead instance, handles to release, a debugger tracking
 * gate entries or a contended gate (the Python caller, `generic`), and a
 * trap, an error, a closing instance, pending output or a string or object result
 * (`finish`, inside the gate, which builds today's errors).
 *
 * wasmtime's C API is not linked: wasmtime-py has already loaded its shared
 * library, and ccall.py hands this module its path; the one function needed
 * is resolved with dlopen(RTLD_NOLOAD)/dlsym. Its prototype is declared here
 * from wasmtime's C API documentation (wasmtime/func.h).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>
#include <limits.h>
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

typedef void *(*call_unchecked_fn)(void *context, const void *func, void *args_and_results, size_t len,
                                   void **trap);
static call_unchecked_fn call_unchecked = NULL;
static unsigned long long crossings = 0; /* wasm calls made by compiled callers (tests count them) */

#define MAX_SAFE 9007199254740992LL /* 2**53: numbers within it are exact as doubles */
/* wren_call_scalar's status results (csrc/api.c, vm.py): signalling-NaN bits 0x7FF4 << 48 | status */
#define STATUS_HIGH 0x7FF4u
#define SCALAR_NULL 5
#define SCALAR_TRUE 6
#define SCALAR_FALSE 7
#define MAX_ARGS 4

static double monotonic_now(void) { /* the clock of time.perf_counter() on Linux (checked in ccall.py) */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* -- the gate's lock ------------------------------------------------------- */

/* The gate's lock, taken and given back through kryon-core's compiled core (its capsule,
 * kryon_core/_speedups_api.h; docs/plugins.md in the repository root, "The gate from C"): the
 * struct as that header declares it, version 1, imported once at module set-up. A lock is used
 * through it only once kryon_core.threads.direct_lock accepted it (ccall.py, `_direct_lock`);
 * otherwise (no compiled core, another version, a failed check) the caller calls the lock's
 * methods. Only the uncontended cases are taken here: free, or already this thread's. */
typedef struct {
    int version;
    size_t size;
    int (*lock_enter)(PyObject *lock);
    void (*lock_leave)(PyObject *lock);
    int (*gate_waiting)(PyObject *gate, Py_ssize_t offset);
} KryonGateAPI;

static const KryonGateAPI *gate_api;

static PyObject *has_gate_api(PyObject *self, PyObject *unused) { /* whether kryon-core's gate capsule was found */
    return PyBool_FromLong(gate_api != NULL);
}

/* -- module set-up ---------------------------------------------------------- */

static void *resolved = NULL; /* what `resolve` found, used once ccall.py checked it (`use_api`) */

static PyObject *resolve(PyObject *self, PyObject *arg) { /* -> the function's address in the loaded library */
    const char *path = PyUnicode_AsUTF8(arg);
    if (!path) return NULL;
    void *h = dlopen(path, RTLD_NOLOAD | RTLD_LAZY);
    if (!h) { PyErr_Format(PyExc_OSError, "not loaded: %s", path); return NULL; }
    void *f = dlsym(h, "wasmtime_func_call_unchecked");
    dlclose(h); /* RTLD_NOLOAD took a reference of a library wasmtime-py keeps loaded */
    if (!f) { PyErr_SetString(PyExc_OSError, "no symbol wasmtime_func_call_unchecked"); return NULL; }
    resolved = f;
    return PyLong_FromVoidPtr(f);
}

static PyObject *use_api(PyObject *self, PyObject *arg) { /* the checked address: compiled callers may call it */
    void *f = PyLong_AsVoidPtr(arg);
    if (!f && PyErr_Occurred()) return NULL;
    if (!f || f != resolved) { PyErr_SetString(PyExc_ValueError, "not the resolved function"); return NULL; }
    call_unchecked = (call_unchecked_fn)f;
    Py_RETURN_NONE;
}

static PyObject *crossings_made(PyObject *self, PyObject *noargs) { return PyLong_FromUnsignedLongLong(crossings); }

static PyObject *now(PyObject *self, PyObject *noargs) { return PyFloat_FromDouble(monotonic_now()); }

/* probe(context, func, raw, size, trap) -> (error address, trap address, raw[0] as i64): one raw
 * call of an export whose parameters Python wrote, as the caller makes it */
static PyObject *probe(PyObject *self, PyObject *args) {
    unsigned long long context, func, raw, size, trap;
    if (!PyArg_ParseTuple(args, "KKKKK", &context, &func, &raw, &size, &trap)) return NULL;
    if (!call_unchecked) { PyErr_SetString(PyExc_RuntimeError, "no wasmtime API"); return NULL; }
    void *error;
    Py_BEGIN_ALLOW_THREADS
    error = call_unchecked((void *)(uintptr_t)context, (void *)(uintptr_t)func, (void *)(uintptr_t)raw,
                           (size_t)size, (void **)(uintptr_t)trap);
    Py_END_ALLOW_THREADS
    void *pending = *(void **)(uintptr_t)trap;
    return Py_BuildValue("(KKL)", (unsigned long long)(uintptr_t)error, (unsigned long long)(uintptr_t)pending,
                         (long long)*(int64_t *)(uintptr_t)raw);
}

/* -- the caller ------------------------------------------------------------- */

typedef struct {
    char *raw;                   /* the ScalarCall's parameter block (the result lands in its first value) */
    Py_ssize_t at[MAX_ARGS];     /* byte offset of argument i's f64 */
    void *context, *func;        /* the store's context, the wasmtime_func_t of wren_call_scalar */
    size_t size;                 /* values in the block */
    void **trap;                 /* where a trap is written */
} Block;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    Block blocks[MAX_ARGS + 1];
    int primed[MAX_ARGS + 1];    /* blocks[n] set (by `prime`, once the Python caller made it) */
    int limited, lazy;           /* the instance has limits; a time limit without fuel (re-armed lazily) */
    double slack;                /* a deadline armed less than this ago is kept */
    PyObject *generic;           /* the Python caller: every call not taken here */
    PyObject *finish;            /* finish(n, error address or None, depth): the Python end of a call */
    PyObject *statedict, *vm;    /* the ScriptState's __dict__ and the VM the caller was made for */
    PyObject *instdict;          /* the WasmInstance's __dict__ (depth, dead, _armed_at, _close_pending) */
    PyObject *tracking;          /* kryon_core.threads.tracking: a debugger records gate entries */
    PyObject *rlock;             /* the gate's lock, taken through gate_api (checked), or NULL: */
    PyObject *acquire, *unlock;  /* the gate's uncontended acquire and release, called */
    PyObject *gate, *wake;       /* the gate (its _waiting) and threads.wake_waiters */
    PyObject *arm;               /* WasmInstance._arm_limits */
    PyObject *keep;              /* the ScalarCalls whose blocks are used here */
    Py_ssize_t calls;            /* calls that took this path (tests count them) */
} Caller;

static PyObject *s_pending, *s_vm, *s_dead, *s_depth, *s_armed_at, *s_close_pending, *s_release_queue, *s_partial_line,
    *s_waiting;

static PyObject *call_generic(Caller *c, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    return PyObject_Vectorcall(c->generic, args, nargsf, kwnames);
}

/* A list attribute of the state that is empty: 1; not empty or not a list: 0. */
static int empty_list(PyObject *dict, PyObject *name) {
    PyObject *v = PyDict_GetItemWithError(dict, name); /* borrowed */
    return v && PyList_CheckExact(v) && PyList_GET_SIZE(v) == 0;
}

/* An argument this path writes: a float, or an int within 2**53 (exact as a double), as calls.py's
 * numbers-only path takes them (bool is not one: `type(a) is int`). */
static int number_arg(PyObject *a, double *out) {
    PyTypeObject *t = Py_TYPE(a);
    if (t == &PyFloat_Type) { *out = PyFloat_AS_DOUBLE(a); return 1; }
    if (t == &PyLong_Type) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(a, &overflow);
        if (v == -1 && PyErr_Occurred()) { PyErr_Clear(); return 0; }
        if (overflow || v > MAX_SAFE || v < -MAX_SAFE) return 0;
        *out = (double)v;
        return 1;
    }
    return 0;
}

static int gate_release(Caller *c) {
    if (c->rlock) {
        gate_api->lock_leave(c->rlock);
    } else {
        PyObject *r = PyObject_CallNoArgs(c->unlock);
        if (!r) return -1;
        Py_DECREF(r);
    }
    PyObject *r, *w = PyObject_GetAttr(c->gate, s_waiting);
    if (!w) return -1;
    int waiting = PyObject_IsTrue(w);
    Py_DECREF(w);
    if (waiting > 0) {
        r = PyObject_CallNoArgs(c->wake);
        if (!r) return -1;
        Py_DECREF(r);
    }
    return waiting < 0 ? -1 : 0;
}

static PyObject *caller_call(Caller *c, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    if (kwnames || n > MAX_ARGS || !c->primed[n] || !call_unchecked) return call_generic(c, args, nargsf, kwnames);
    /* calls.py's `call`: a replaced VM or a dead instance, a debugger tracking gate entries, handles
     * to release: the Python caller */
    PyObject *v = PyDict_GetItemWithError(c->statedict, s_vm);
    if (v != c->vm || PyDict_GetItemWithError(c->instdict, s_dead) != Py_None || PyList_GET_SIZE(c->tracking)
        || !empty_list(c->statedict, s_release_queue)) {
        if (PyErr_Occurred()) return NULL;
        return call_generic(c, args, nargsf, kwnames);
    }
    double values[MAX_ARGS];
    for (Py_ssize_t i = 0; i < n; i++)
        if (!number_arg(args[i], &values[i])) return call_generic(c, args, nargsf, kwnames);

    int ok;
    if (c->rlock) {
        ok = gate_api->lock_enter(c->rlock);
    } else {
        PyObject *got = PyObject_CallOneArg(c->acquire, Py_False);
        if (!got) return NULL;
        ok = got == Py_True;
        Py_DECREF(got);
    }
    if (!ok) return call_generic(c, args, nargsf, kwnames); /* contended: the Python caller waits */

    /* in the gate from here: every exit releases it */
    PyObject *result = NULL;
    Block *b = &c->blocks[n];
    PyObject *depth = PyDict_GetItemWithError(c->instdict, s_depth); /* borrowed; kept alive below */
    if (!depth || !PyLong_CheckExact(depth)) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "the instance's depth is not an int");
        goto release;
    }
    Py_INCREF(depth);
    long d = PyLong_AsLong(depth);
    if (d == -1 && PyErr_Occurred()) { Py_DECREF(depth); goto release; }
    if (d == 0 && c->limited) { /* an outermost call arms the limits (lazily: one deadline per slack) */
        int due = 1;
        if (c->lazy) {
            PyObject *armed = PyDict_GetItemWithError(c->instdict, s_armed_at);
            if (!armed || !PyFloat_CheckExact(armed)) {
                if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "the instance's _armed_at is not a float");
                Py_DECREF(depth);
                goto release;
            }
            due = !(monotonic_now() - PyFloat_AS_DOUBLE(armed) < c->slack);
        }
        if (due) {
            PyObject *r = PyObject_CallNoArgs(c->arm);
            if (!r) { Py_DECREF(depth); goto release; }
            Py_DECREF(r);
        }
    }
    PyObject *deeper = PyLong_FromLong(d + 1);
    if (!deeper || PyDict_SetItem(c->instdict, s_depth, deeper) < 0) {
        Py_XDECREF(deeper); Py_DECREF(depth);
        goto release;
    }
    Py_DECREF(deeper);
    for (Py_ssize_t i = 0; i < n; i++) memcpy(b->raw + b->at[i], &values[i], sizeof(double));
    void *error;
    Py_BEGIN_ALLOW_THREADS
    error = call_unchecked(b->context, b->func, b->raw, b->size, b->trap);
    Py_END_ALLOW_THREADS
    c->calls++;
    crossings++;
    if (PyDict_SetItem(c->instdict, s_depth, depth) < 0) { Py_DECREF(depth); goto release; }
    int plain = !error && !*b->trap;
    if (plain) {
        PyObject *closing = PyDict_GetItemWithError(c->instdict, s_close_pending);
        plain = closing == Py_False && empty_list(c->statedict, s_partial_line);
        if (PyErr_Occurred()) { Py_DECREF(depth); goto release; }
    }
    if (plain) {
        int64_t r;
        memcpy(&r, b->raw, sizeof r);
        if (r >= -MAX_SAFE && r <= MAX_SAFE) { /* an int result comes as itself (wren_call_scalar) */
            result = PyLong_FromLongLong((long long)r);
        } else {
            double f;
            memcpy(&f, b->raw, sizeof f);
            if (f == f) {
                result = PyFloat_FromDouble(f);
            } else if ((uint64_t)r >> 48 == STATUS_HIGH && (r & 0xFFFF) >= SCALAR_NULL && (r & 0xFFFF) <= SCALAR_FALSE
                       && PyDict_GetItemWithError(c->statedict, s_vm) == c->vm) {
                /* null, true or false: as calls.py's `other` gives them (the pending host error dropped) */
                if (PyDict_SetItem(c->statedict, s_pending, Py_None) < 0) { Py_DECREF(depth); goto release; }
                int status = (int)(r & 0xFFFF);
                result = Py_NewRef(status == SCALAR_NULL ? Py_None : status == SCALAR_TRUE ? Py_True : Py_False);
            } else {
                plain = 0; /* any other status (a string, a value in slot 0, an error): finish reads it */
            }
        }
    }
    if (!plain) { /* a trap, an error, a closing instance, output to flush or a status: calls.py's finish */
        PyObject *count = PyLong_FromSsize_t(n);
        PyObject *err = error ? PyLong_FromVoidPtr(error) : Py_NewRef(Py_None);
        if (count && err) result = PyObject_CallFunctionObjArgs(c->finish, count, err, depth, NULL);
        Py_XDECREF(count); Py_XDECREF(err);
    }
    Py_DECREF(depth);
release:
    if (result) {
        if (gate_release(c) < 0) Py_CLEAR(result);
    } else {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        if (gate_release(c) < 0) { Py_XDECREF(type); Py_XDECREF(value); Py_XDECREF(tb); }
        else PyErr_Restore(type, value, tb);
    }
    return result;
}

/* prime(n, context, func, raw, size, trap, offsets, scalar_call): arity n's parameter block */
static PyObject *caller_prime(Caller *c, PyObject *args) {
    int n;
    unsigned long long context, func, raw, size, trap;
    PyObject *offsets, *keep;
    if (!PyArg_ParseTuple(args, "iKKKKKO!O", &n, &context, &func, &raw, &size, &trap, &PyTuple_Type, &offsets,
                          &keep))
        return NULL;
    if (n < 0 || n > MAX_ARGS || PyTuple_GET_SIZE(offsets) < n) {
        PyErr_SetString(PyExc_ValueError, "arity out of range");
        return NULL;
    }
    Block *b = &c->blocks[n];
    for (int i = 0; i < n; i++) {
        Py_ssize_t at = PyLong_AsSsize_t(PyTuple_GET_ITEM(offsets, i));
        if (at == -1 && PyErr_Occurred()) return NULL;
        if (at < 0 || (size_t)at + sizeof(double) > (size_t)size * 16) {
            PyErr_SetString(PyExc_ValueError, "offset outside the block");
            return NULL;
        }
        b->at[i] = at;
    }
    if (PyList_Append(c->keep, keep) < 0) return NULL;
    b->context = (void *)(uintptr_t)context; b->func = (void *)(uintptr_t)func; b->raw = (char *)(uintptr_t)raw;
    b->size = (size_t)size; b->trap = (void **)(uintptr_t)trap;
    c->primed[n] = 1;
    Py_RETURN_NONE;
}

static PyObject *caller_calls(Caller *c, void *closure) { return PyLong_FromSsize_t(c->calls); }

static PyGetSetDef caller_getset[] = {
    {"calls", (getter)caller_calls, NULL, "calls that took the compiled path", NULL},
    {NULL}
};

static PyMethodDef caller_methods[] = {
    {"prime", (PyCFunction)caller_prime, METH_VARARGS, "set one arity's parameter block"},
    {NULL}
};

static int caller_traverse(Caller *c, visitproc visit, void *arg) {
    Py_VISIT(c->generic); Py_VISIT(c->finish); Py_VISIT(c->statedict); Py_VISIT(c->vm); Py_VISIT(c->instdict);
    Py_VISIT(c->tracking); Py_VISIT(c->acquire); Py_VISIT(c->unlock); Py_VISIT(c->gate); Py_VISIT(c->wake);
    Py_VISIT(c->arm); Py_VISIT(c->keep);
    return 0;
}

static int caller_clear(Caller *c) {
    for (int i = 0; i <= MAX_ARGS; i++) c->primed[i] = 0; /* its blocks may go with `keep` */
    Py_CLEAR(c->generic); Py_CLEAR(c->finish); Py_CLEAR(c->statedict); Py_CLEAR(c->vm); Py_CLEAR(c->instdict);
    Py_CLEAR(c->tracking); Py_CLEAR(c->acquire); Py_CLEAR(c->unlock); Py_CLEAR(c->gate); Py_CLEAR(c->wake);
    Py_CLEAR(c->arm); Py_CLEAR(c->keep);
    return 0;
}

static void caller_dealloc(Caller *c) {
    PyObject_GC_UnTrack(c);
    caller_clear(c);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static PyObject *caller_vcall(PyObject *self, PyObject *args, PyObject *kwargs) { return PyVectorcall_Call(self, args, kwargs); }

static PyTypeObject CallerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kryon_wren._ccall.Caller",
    .tp_basicsize = sizeof(Caller),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "a compiled caller of one Wren function (made by kryon_wren.ccall)",
    .tp_traverse = (traverseproc)caller_traverse,
    .tp_clear = (inquiry)caller_clear,
    .tp_dealloc = (destructor)caller_dealloc,
    .tp_call = caller_vcall,
    .tp_vectorcall_offset = offsetof(Caller, vectorcall),
    .tp_getset = caller_getset,
    .tp_methods = caller_methods,
};

/* make_caller(generic, finish, statedict, vm, instdict, tracking, rlock or None, acquire, unlock, gate, wake, arm,
 *             limited, lazy, slack) */
static PyObject *make_caller(PyObject *self, PyObject *args) {
    PyObject *generic, *finish, *statedict, *vm, *instdict, *tracking, *rlock, *acquire, *unlock, *gate, *wake, *arm;
    int limited, lazy;
    double slack;
    if (!call_unchecked) { PyErr_SetString(PyExc_RuntimeError, "no wasmtime API"); return NULL; }
    if (!PyArg_ParseTuple(args, "OOO!OO!O!OOOOOOppd", &generic, &finish, &PyDict_Type, &statedict, &vm,
                          &PyDict_Type, &instdict, &PyList_Type, &tracking, &rlock, &acquire, &unlock, &gate, &wake, &arm, &limited, &lazy,
                          &slack))
        return NULL;
    if (rlock != Py_None && (!gate_api || strcmp(Py_TYPE(rlock)->tp_name, "_thread.RLock") != 0)) {
        PyErr_SetString(PyExc_TypeError, "not a _thread.RLock");
        return NULL;
    }
    Caller *c = PyObject_GC_New(Caller, &CallerType);
    if (!c) return NULL;
    c->vectorcall = (vectorcallfunc)caller_call;
    memset(c->blocks, 0, sizeof c->blocks);
    memset(c->primed, 0, sizeof c->primed);
    c->limited = limited; c->lazy = lazy; c->slack = slack; c->calls = 0;
    c->generic = Py_NewRef(generic); c->finish = Py_NewRef(finish); c->statedict = Py_NewRef(statedict);
    c->vm = Py_NewRef(vm); c->instdict = Py_NewRef(instdict); c->tracking = Py_NewRef(tracking);
    c->rlock = rlock == Py_None ? NULL : rlock;
    c->acquire = Py_NewRef(acquire); c->unlock = Py_NewRef(unlock); c->gate = Py_NewRef(gate);
    c->wake = Py_NewRef(wake); c->arm = Py_NewRef(arm);
    c->keep = PyList_New(0);
    if (!c->keep || (rlock != Py_None && PyList_Append(c->keep, rlock) < 0)) { Py_DECREF(c); return NULL; }
    PyObject_GC_Track(c);
    return (PyObject *)c;
}

static PyMethodDef methods[] = {
    {"resolve", resolve, METH_O, "find wasmtime_func_call_unchecked in the loaded libwasmtime"},
    {"use_api", use_api, METH_O, "call the function found (once checked)"},
    {"crossings", crossings_made, METH_NOARGS, "wasm calls compiled callers made"},
    {"has_gate_api", has_gate_api, METH_NOARGS, "whether kryon-core's gate capsule was found"},
    {"now", now, METH_NOARGS, "the monotonic clock the caller reads"},
    {"probe", probe, METH_VARARGS, "one raw call as the caller makes it"},
    {"make_caller", make_caller, METH_VARARGS, "a compiled caller"},
    {NULL}
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ccall", NULL, -1, methods};

PyMODINIT_FUNC PyInit__ccall(void) {
    if (PyType_Ready(&CallerType) < 0) return NULL;
#define INTERN(var, text) if (!(var = PyUnicode_InternFromString(text))) return NULL;
    INTERN(s_pending, "pending") INTERN(s_vm, "vm") INTERN(s_dead, "dead") INTERN(s_depth, "depth") INTERN(s_armed_at, "_armed_at")
    INTERN(s_close_pending, "_close_pending") INTERN(s_release_queue, "release_queue")
    INTERN(s_partial_line, "partial_line") INTERN(s_waiting, "_waiting")
#undef INTERN
    /* PyCapsule_Import reaches the module as an attribute of its package: import it first */
    PyObject *core = PyImport_ImportModule("kryon_core._speedups");
    Py_XDECREF(core);
    const KryonGateAPI *api = core ? PyCapsule_Import("kryon_core._speedups.gate_api", 0) : NULL;
    if (api && api->version == 1 && api->size >= sizeof(KryonGateAPI)) gate_api = api;
    else PyErr_Clear(); /* kryon-core without its compiled core: the lock's methods */
    return PyModule_Create(&module);
}
