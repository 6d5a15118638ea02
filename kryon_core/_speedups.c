/* kryon_core's optional compiled core (built when a C compiler is present; see
 * kryon_core/speedups.py for how it is found, checked and turned off).
 *
 * 1. The engine gate from C: CPython's C `_thread.RLock` read and written directly, exported
 *    to engine extensions through a capsule (kryon_core/_speedups_api.h). The layout is never
 *    assumed: kryon_core.threads checks it on a fresh lock and on each gate's own lock with
 *    the raw readers below (lock_fields, lock_try), and only a lock that passed is used here.
 * 2. The trusted in-process Python (and Lisp) caller: what kryon_core/pyhost/fastcall.py's
 *    template does, in C. Every case other than the common one (a plain call with the
 *    function's own number of positional arguments, no breakpoints, no entry tracking, the
 *    gate free or already ours) is handed to the Python caller it was made with, so those
 *    cases behave as they do without the extension by construction.
 * 3. The bound-handle type: a FunctionRef subclass whose instances vectorcall their `_call`. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <pythread.h>

#include "_speedups_api.h"

/* -- the gate's lock -------------------------------------------------------------------- */

/* CPython 3.11/3.12's C RLock (Modules/_threadmodule.c, rlockobject). Used only on locks
 * kryon_core.threads.direct_lock accepted: the basic size matches and the fields follow the
 * lock's own acquire and release. */
typedef struct {
    PyObject_HEAD
    PyThread_type_lock lock;  /* the plain lock under it: held while count > 0 */
    unsigned long owner;      /* the holder's thread ident (0: none) */
    unsigned long count;      /* re-entries of the holder */
    PyObject *weakrefs;
} RLockHead;

static int lock_enter(PyObject *obj) {
    RLockHead *g = (RLockHead *)obj;
    unsigned long me = PyThread_get_thread_ident();
    if (g->count > 0 && g->owner == me) {
        if (g->count + 1 == 0) return 0;  /* overflow: the Python path's RLock.acquire raises it */
        g->count++;
        return 1;
    }
    if (PyThread_acquire_lock(g->lock, NOWAIT_LOCK) != PY_LOCK_ACQUIRED) return 0;
    g->owner = me;
    g->count = 1;
    return 1;
}

static void lock_leave(PyObject *obj) {
    RLockHead *g = (RLockHead *)obj;
    if (--g->count == 0) {
        g->owner = 0;
        PyThread_release_lock(g->lock);
    }
}

static PyObject *zero;  /* the int 0: every `_waiting` of 0 is this object in CPython (a small int) */

static int gate_waiting(PyObject *gate, Py_ssize_t offset) {
    PyObject *w = *(PyObject **)((char *)gate + offset);
    if (w == zero) return 0;
    if (!w) { PyErr_SetString(PyExc_AttributeError, "_waiting"); return -1; }
    return PyObject_IsTrue(w);
}

static const KryonGateAPI gate_api = {
    KRYON_GATE_API_VERSION, sizeof(KryonGateAPI), lock_enter, lock_leave, gate_waiting,
};

/* -- raw readers for the Python-side checks (kryon_core/threads.py) ----------------------- */

static PyObject *lock_fields(PyObject *self, PyObject *arg) {  /* (plain lock address, owner, count) */
    RLockHead *g = (RLockHead *)arg;
    if (Py_TYPE(arg)->tp_basicsize != (Py_ssize_t)sizeof(RLockHead)) {
        PyErr_SetString(PyExc_TypeError, "not a lock of the known size");
        return NULL;
    }
    return Py_BuildValue("(Kkk)", (unsigned long long)(uintptr_t)g->lock, g->owner, g->count);
}

static PyObject *lock_try(PyObject *self, PyObject *arg) {  /* whether the plain lock was free (it is again after) */
    RLockHead *g = (RLockHead *)arg;
    if (Py_TYPE(arg)->tp_basicsize != (Py_ssize_t)sizeof(RLockHead)) {
        PyErr_SetString(PyExc_TypeError, "not a lock of the known size");
        return NULL;
    }
    if (!g->lock || PyThread_acquire_lock(g->lock, NOWAIT_LOCK) != PY_LOCK_ACQUIRED) Py_RETURN_FALSE;
    PyThread_release_lock(g->lock);
    Py_RETURN_TRUE;
}

static PyObject *slot_offset(PyObject *self, PyObject *arg) {  /* the offset of an object slot's member descriptor */
    if (Py_TYPE(arg) != &PyMemberDescr_Type) { PyErr_SetString(PyExc_TypeError, "not a slot"); return NULL; }
    PyMemberDef *d = ((PyMemberDescrObject *)arg)->d_member;
    if (d->type != T_OBJECT_EX) { PyErr_SetString(PyExc_TypeError, "not an object slot"); return NULL; }
    return PyLong_FromSsize_t(d->offset);
}

static int inside(PyObject *obj, Py_ssize_t offset) {
    return offset >= (Py_ssize_t)sizeof(PyObject) && offset + (Py_ssize_t)sizeof(PyObject *) <= Py_TYPE(obj)->tp_basicsize;
}

static PyObject *read_slot(PyObject *self, PyObject *args) {  /* what that slot holds (None: empty) */
    PyObject *obj; Py_ssize_t offset;
    if (!PyArg_ParseTuple(args, "On", &obj, &offset)) return NULL;
    if (!inside(obj, offset)) { PyErr_SetString(PyExc_ValueError, "outside the object"); return NULL; }
    PyObject *v = *(PyObject **)((char *)obj + offset);
    return Py_NewRef(v ? v : Py_None);
}

/* Through the capsule, as an engine would: for the tests that the exported functions work. */
static PyObject *api_enter(PyObject *self, PyObject *arg) { return PyBool_FromLong(lock_enter(arg)); }
static PyObject *api_leave(PyObject *self, PyObject *arg) { lock_leave(arg); Py_RETURN_NONE; }

/* -- bound handles ---------------------------------------------------------------------- */

/* The FunctionRef subclass of compiled callers' bound handles (ScriptManager._bind): called
 * through vectorcall, which hands the arguments straight to whatever the handle's `_call` slot
 * holds now (the caller; after a hot reload the new one; after a release the callable raising
 * the clear error), as FunctionRef.__call__ does, without its frame and argument tuple. */
static Py_ssize_t handle_call_slot, handle_vector_slot;
static PyObject *handle_type;

static PyObject *handle_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    PyObject *call = *(PyObject **)((char *)self + handle_call_slot);
    if (!call) { PyErr_SetString(PyExc_AttributeError, "_call"); return NULL; }
    Py_INCREF(call);  /* a call may retarget the handle meanwhile (a reload from inside) */
    PyObject *r = PyObject_Vectorcall(call, args, nargsf, kwnames);
    Py_DECREF(call);
    return r;
}

static PyObject *handle_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    PyObject *self = type->tp_alloc(type, 0);  /* FunctionRef.__init__ fills the slots */
    if (self) *(vectorcallfunc *)((char *)self + handle_vector_slot) = handle_vectorcall;
    return self;
}

/* make_handle_type(FunctionRef, offset of its _call slot): the handle type (made once). */
static PyObject *make_handle_type(PyObject *self, PyObject *args) {
    PyTypeObject *base; Py_ssize_t call_slot;
    if (!PyArg_ParseTuple(args, "O!n", &PyType_Type, &base, &call_slot)) return NULL;
    if (handle_type) return Py_NewRef(handle_type);
    if (call_slot < (Py_ssize_t)sizeof(PyObject) || call_slot + (Py_ssize_t)sizeof(PyObject *) > base->tp_basicsize
        || base->tp_itemsize != 0 || base->tp_dictoffset != 0) {
        PyErr_SetString(PyExc_TypeError, "not a base this handle can extend");
        return NULL;
    }
    Py_ssize_t vector_slot = base->tp_basicsize;
    PyMemberDef members[] = {
        {"__vectorcalloffset__", T_PYSSIZET, vector_slot, READONLY, NULL},
        {NULL}
    };
    PyType_Slot slots[] = {
        {Py_tp_new, handle_new},
        {Py_tp_members, members},
        {Py_tp_doc, "a bound handle called straight through to its _call (kryon_core._speedups)"},
        {0, NULL}
    };
    PyType_Spec spec = {
        .name = "kryon_core._speedups.FunctionRef",
        .basicsize = (int)(vector_slot + (Py_ssize_t)sizeof(vectorcallfunc)),
        .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_IMMUTABLETYPE,
        .slots = slots,
    };
    PyObject *bases = PyTuple_Pack(1, (PyObject *)base);
    if (!bases) return NULL;
    PyObject *type = PyType_FromSpecWithBases(&spec, bases);
    Py_DECREF(bases);
    if (!type) return NULL;
    handle_call_slot = call_slot;
    handle_vector_slot = vector_slot;
    handle_type = type;
    return Py_NewRef(type);
}

/* -- the trusted Python caller ---------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *fn;          /* the script function */
    Py_ssize_t nparams;    /* its parameter count, or -1: any count (fastcall's `call(*args)`) */
    PyObject *python;      /* the Python caller: every case not handled here */
    PyObject *gate;        /* the EngineGate */
    PyObject *lock;        /* its RLock, checked by threads.direct_lock */
    Py_ssize_t waiting;    /* the offset of the gate's `_waiting` slot (threads.waiting_offset) */
    PyObject *wake;        /* threads.wake_waiters */
    PyObject *tracking;    /* threads.tracking: not empty while a debugger records entries */
    PyObject *bpdict;      /* the breakpoints' __dict__ (`active` is a plain attribute, checked) */
    PyObject *fail;        /* fail(exc) -> the kryon error to raise */
    PyObject *rest_of;     /* rest_of(result): a result that is not plain */
    PyObject *plain;       /* PLAIN: the result classes returned as they are */
    PyObject *passthrough; /* PASSTHROUGH: exceptions re-raised untranslated */
    PyObject *missing;     /* fastcall's MISSING: an argument equal to it goes to the Python caller */
    Py_ssize_t calls;      /* calls that took this path (tests count them) */
} Caller;

static PyObject *s_active;

/* The gate's release (EngineGate.run's finally): give the lock back, wake the pollers. */
static int release(Caller *c) {
    lock_leave(c->lock);
    int w = gate_waiting(c->gate, c->waiting);
    if (w <= 0) return w;
    PyObject *r = PyObject_CallNoArgs(c->wake);
    if (!r) return -1;
    Py_DECREF(r);
    return 0;
}

#if PY_VERSION_HEX < 0x030B0000  /* 3.10: the handled exception is the thread's exc_info */
static PyObject *get_handled(void) {
    PyObject *t, *v, *tb;
    PyErr_GetExcInfo(&t, &v, &tb);
    Py_XDECREF(t); Py_XDECREF(tb);
    return v;
}
static void set_handled(PyObject *v) {
    if (v && v != Py_None) PyErr_SetExcInfo(Py_NewRef((PyObject *)Py_TYPE(v)), Py_NewRef(v), PyException_GetTraceback(v));
    else PyErr_SetExcInfo(NULL, NULL, NULL);
}
#else
#define get_handled PyErr_GetHandledException
#define set_handled PyErr_SetHandledException
#endif

/* `except BaseException as exc: raise fail(exc) from None` for the exception set now. While
 * fail runs and the error is raised, exc is the exception being handled, so whatever is raised
 * gets it as its context, as in the except block. */
static PyObject *translate(Caller *c) {
    PyObject *type, *exc, *tb;
    PyErr_Fetch(&type, &exc, &tb);
    PyErr_NormalizeException(&type, &exc, &tb);
    if (tb) PyException_SetTraceback(exc, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    PyObject *outer = get_handled();
    set_handled(exc);
    PyObject *err = PyObject_CallOneArg(c->fail, exc);
    if (err && !PyExceptionInstance_Check(err)) {
        Py_CLEAR(err);
        PyErr_SetString(PyExc_TypeError, "exceptions must derive from BaseException");
    }
    set_handled(outer);
    Py_XDECREF(outer);
    if (!err) {
        Py_DECREF(exc);
        return NULL;
    }
    PyException_SetCause(err, NULL);  /* from None: no cause, the context suppressed */
    if (err != exc) PyException_SetContext(err, exc);  /* steals exc */
    else Py_DECREF(exc);
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(err)), err, PyException_GetTraceback(err));
    return NULL;
}

static PyObject *caller_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Caller *c = (Caller *)self;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (kwnames || (c->nparams >= 0 && nargs != c->nparams)) goto python;
    for (Py_ssize_t i = 0; i < nargs; i++)
        if (args[i] == c->missing) goto python;
    PyObject *active = PyDict_GetItemWithError(c->bpdict, s_active);  /* borrowed */
    if (active != Py_False) {
        if (!active) { if (PyErr_Occurred()) return NULL; goto python; }
        int on = PyObject_IsTrue(active);
        if (on < 0) return NULL;
        if (on) goto python;
    }
    if (PyList_GET_SIZE(c->tracking) || !lock_enter(c->lock)) goto python;
    c->calls++;
    PyObject *result = PyObject_Vectorcall(c->fn, args, nargs, NULL);
    if (!result) {
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        if (release(c) < 0) {  /* the release's own error wins, as in a finally block */
            Py_XDECREF(t); Py_XDECREF(v); Py_XDECREF(tb);
            return NULL;
        }
        PyErr_Restore(t, v, tb);
        if (PyErr_ExceptionMatches(c->passthrough)) return NULL;
        return translate(c);
    }
    if (release(c) < 0) { Py_DECREF(result); return NULL; }
    PyTypeObject *t = Py_TYPE(result);
    if (t == &PyLong_Type || t == &PyUnicode_Type || t == &PyFloat_Type || result == Py_None || t == &PyBool_Type)
        return result;  /* the common members of PLAIN, tested without the set look-up */
    /* result.__class__ in PLAIN, read as Python reads it (a class may override __class__) */
    PyObject *cls = PyObject_GetAttrString(result, "__class__");
    if (!cls) { Py_DECREF(result); return NULL; }
    int is_plain = PySequence_Contains(c->plain, cls);
    Py_DECREF(cls);
    if (is_plain < 0) { Py_DECREF(result); return NULL; }
    if (is_plain) return result;
    PyObject *rest = PyObject_CallOneArg(c->rest_of, result);
    Py_DECREF(result);
    return rest;
python:
    return PyObject_Vectorcall(c->python, args, nargsf, kwnames);
}

static int caller_traverse(Caller *c, visitproc visit, void *arg) {
    Py_VISIT(c->fn); Py_VISIT(c->python); Py_VISIT(c->gate); Py_VISIT(c->lock); Py_VISIT(c->wake);
    Py_VISIT(c->tracking); Py_VISIT(c->bpdict); Py_VISIT(c->fail); Py_VISIT(c->rest_of); Py_VISIT(c->plain);
    Py_VISIT(c->passthrough); Py_VISIT(c->missing);
    return 0;
}

static int caller_clear(Caller *c) {
    Py_CLEAR(c->fn); Py_CLEAR(c->python); Py_CLEAR(c->gate); Py_CLEAR(c->lock); Py_CLEAR(c->wake);
    Py_CLEAR(c->tracking); Py_CLEAR(c->bpdict); Py_CLEAR(c->fail); Py_CLEAR(c->rest_of); Py_CLEAR(c->plain);
    Py_CLEAR(c->passthrough); Py_CLEAR(c->missing);
    return 0;
}

static void caller_dealloc(Caller *c) {
    PyObject_GC_UnTrack(c);
    caller_clear(c);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static PyObject *caller_handle_type(Caller *c, void *closure) {
    return Py_NewRef(handle_type ? handle_type : Py_None);
}

static PyMemberDef caller_members[] = {
    {"calls", T_PYSSIZET, offsetof(Caller, calls), READONLY, "calls that took the compiled path"},
    {"python", T_OBJECT, offsetof(Caller, python), READONLY, "the Python caller taking every other case"},
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(Caller, vectorcall), READONLY, NULL},
    {NULL}
};

static PyGetSetDef caller_getset[] = {
    {"handle_type", (getter)caller_handle_type, NULL, "the FunctionRef subclass for bound handles (None: not made)", NULL},
    {NULL}
};

static PyTypeObject CallerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kryon_core._speedups.Caller",
    .tp_basicsize = sizeof(Caller),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "the compiled trusted caller of one in-process script function",
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Caller, vectorcall),
    .tp_traverse = (traverseproc)caller_traverse,
    .tp_clear = (inquiry)caller_clear,
    .tp_dealloc = (destructor)caller_dealloc,
    .tp_members = caller_members,
    .tp_getset = caller_getset,
};

/* make_caller(fn, nparams, python, gate, lock, waiting, wake, tracking, bpdict, fail, rest_of,
 *             plain, passthrough, missing) */
static PyObject *make_caller(PyObject *self, PyObject *args) {
    PyObject *fn, *python, *gate, *lock, *wake, *tracking, *bpdict, *fail, *rest_of, *plain, *passthrough, *missing;
    Py_ssize_t nparams, waiting;
    if (!PyArg_ParseTuple(args, "OnOOOnOO!O!OOO!O!O", &fn, &nparams, &python, &gate, &lock, &waiting, &wake,
                          &PyList_Type, &tracking, &PyDict_Type, &bpdict, &fail, &rest_of, &PyFrozenSet_Type, &plain,
                          &PyTuple_Type, &passthrough, &missing))
        return NULL;
    if (Py_TYPE(lock)->tp_basicsize != (Py_ssize_t)sizeof(RLockHead)) {
        PyErr_SetString(PyExc_TypeError, "not a lock of the known size");
        return NULL;
    }
    if (!inside(gate, waiting)) { PyErr_SetString(PyExc_ValueError, "the _waiting slot lies outside the gate"); return NULL; }
    if (nparams < -1) { PyErr_SetString(PyExc_ValueError, "nparams"); return NULL; }
    Caller *c = PyObject_GC_New(Caller, &CallerType);
    if (!c) return NULL;
    c->vectorcall = caller_vectorcall;
    c->fn = Py_NewRef(fn); c->nparams = nparams; c->python = Py_NewRef(python); c->gate = Py_NewRef(gate);
    c->lock = Py_NewRef(lock); c->waiting = waiting; c->wake = Py_NewRef(wake); c->tracking = Py_NewRef(tracking);
    c->bpdict = Py_NewRef(bpdict); c->fail = Py_NewRef(fail); c->rest_of = Py_NewRef(rest_of);
    c->plain = Py_NewRef(plain); c->passthrough = Py_NewRef(passthrough); c->missing = Py_NewRef(missing);
    c->calls = 0;
    PyObject_GC_Track(c);
    return (PyObject *)c;
}

/* -- ScriptManager.call_function ------------------------------------------------------- */

/* The manager's call_function (kryon_core/manager.py) for its common case: a known name of one
 * function whose bound callable is made, arguments in a list or tuple, no `caller` keyword. The
 * call is counted here and, below the stats' next_timed bound, made here; a call at or past the
 * bound goes to the manager's _timed_call, a failed one to its _call_failed, as the Python method
 * does. Everything else, before anything is counted, goes to the Python method itself. A method
 * descriptor (Py_TPFLAGS_METHOD_DESCRIPTOR): `m.call_function(...)` calls it with no bound method. */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *python;     /* the Python ScriptManager.call_function */
    PyTypeObject *manager, *location, *profiler, *stats;  /* the exact classes this path reads */
    Py_ssize_t loc_call, loc_stats, stats_calls, stats_next;  /* slot offsets (checked by manager.py) */
} ManagerCall;

static PyObject *s_lookup, *s_profiler, *s_enabled, *s_timed_call, *s_call_failed, *one;

#define MAX_INLINE_ARGS 8
#define SLOT(obj, offset) (*(PyObject **)((char *)(obj) + (offset)))

/* call(*args), for a list or tuple of at most MAX_INLINE_ARGS: the items are held here, so a
 * callee changing the list cannot pull them from under the call (as `*args` copies them). */
static PyObject *call_with(PyObject *call, PyObject *seq) {
    PyObject *items[MAX_INLINE_ARGS] = {NULL};
    Py_ssize_t n = PyList_CheckExact(seq) ? PyList_GET_SIZE(seq) : PyTuple_GET_SIZE(seq);
    PyObject **src = PyList_CheckExact(seq) ? ((PyListObject *)seq)->ob_item : ((PyTupleObject *)seq)->ob_item;
    for (Py_ssize_t i = 0; i < n; i++) items[i] = Py_NewRef(src[i]);
    PyObject *r = PyObject_Vectorcall(call, items, (size_t)n, NULL);
    for (Py_ssize_t i = 0; i < n; i++) Py_DECREF(items[i]);
    return r;
}

/* An instance attribute read from the object's own __dict__ (its class defines no attribute of
 * that name: checked by manager.py), borrowed; NULL with no error when it is not there. */
static PyObject *own(PyObject *obj, PyObject *name) {
    PyObject *d = PyObject_GenericGetDict(obj, NULL);
    if (!d) { PyErr_Clear(); return NULL; }
    PyObject *v = PyDict_GetItemWithError(d, name);  /* borrowed: the object's dict holds it */
    Py_DECREF(d);
    if (!v) PyErr_Clear();
    return v;
}

static PyObject *mcall_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    ManagerCall *mc = (ManagerCall *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (kwnames || nargs < 2 || nargs > 3) goto python;
    PyObject *self = args[0], *name = args[1];
    PyObject *seq = nargs == 3 ? args[2] : NULL;
    if (seq && !((PyList_CheckExact(seq) && PyList_GET_SIZE(seq) <= MAX_INLINE_ARGS)
                 || (PyTuple_CheckExact(seq) && PyTuple_GET_SIZE(seq) <= MAX_INLINE_ARGS)))
        goto python;
    if (Py_TYPE(self) != mc->manager || !PyUnicode_CheckExact(name)) goto python;
    PyObject *lookup = own(self, s_lookup);  /* every object below is borrowed: the GIL is held */
    if (!lookup || !PyDict_CheckExact(lookup)) goto python;
    PyObject *loc = PyDict_GetItemWithError(lookup, name);
    if (!loc) { PyErr_Clear(); goto python; }
    if (Py_TYPE(loc) != mc->location) goto python;
    PyObject *call = SLOT(loc, mc->loc_call), *stats = SLOT(loc, mc->loc_stats);
    PyObject *profiler = own(self, s_profiler);
    if (!call || call == Py_None || !stats || !profiler || Py_TYPE(profiler) != mc->profiler) goto python;
    PyObject *enabled = own(profiler, s_enabled);
    PyObject *result = NULL;
    Py_INCREF(call);  /* the call may change the location (a reload) */
    if (enabled == Py_False) {  /* not profiling: the call alone */
        result = seq ? call_with(call, seq) : PyObject_CallNoArgs(call);
        Py_DECREF(call);
        return result;
    }
    PyObject *counted = SLOT(stats, mc->stats_calls), *bound = SLOT(stats, mc->stats_next);
    if (enabled != Py_True || Py_TYPE(stats) != mc->stats || !counted || !bound || !PyLong_CheckExact(counted)
        || !PyLong_CheckExact(bound)) {
        Py_DECREF(call);
        goto python;
    }
    /* counted now, the bound read before (the GIL is not given up in between: exact under threads) */
    PyObject *n = PyNumber_Add(counted, one);
    if (!n) { Py_DECREF(call); return NULL; }
    Py_INCREF(stats);
    Py_INCREF(bound);
    SLOT(stats, mc->stats_calls) = Py_NewRef(n);
    Py_DECREF(counted);
    int below = PyObject_RichCompareBool(n, bound, Py_LT);
    Py_DECREF(bound);
    if (below < 0) goto done;
    if (!below) {
        PyObject *targs[] = {self, stats, n, call, seq ? seq : Py_None, Py_None};
        if (!seq && !(targs[4] = PyTuple_New(0))) goto done;
        result = PyObject_VectorcallMethod(s_timed_call, targs, 6, NULL);
        if (!seq) Py_DECREF(targs[4]);
        goto done;
    }
    result = seq ? call_with(call, seq) : PyObject_CallNoArgs(call);
    if (!result) {  /* except BaseException: self._call_failed(stats, exc, caller); raise */
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        PyErr_NormalizeException(&t, &v, &tb);
        if (tb) PyException_SetTraceback(v, tb);
        PyObject *outer = get_handled();
        set_handled(v);
        PyObject *fargs[] = {self, stats, v, Py_None};
        PyObject *r = PyObject_VectorcallMethod(s_call_failed, fargs, 4, NULL);
        set_handled(outer);
        Py_XDECREF(outer);
        if (r) {
            Py_DECREF(r);
            PyErr_Restore(t, v, tb);
        } else {  /* its own error wins, as in the except block */
            Py_XDECREF(t); Py_XDECREF(v); Py_XDECREF(tb);
        }
    }
done:
    Py_DECREF(call);
    Py_DECREF(stats);
    Py_DECREF(n);
    return result;
python:
    return PyObject_Vectorcall(mc->python, args, nargsf, kwnames);
}

static PyObject *mcall_get(PyObject *self, PyObject *obj, PyObject *type) {  /* m.call_function: a bound method */
    if (!obj || obj == Py_None) return Py_NewRef(self);
    return PyMethod_New(self, obj);
}

static PyObject *mcall_getattro(PyObject *self, PyObject *name) {
    /* __doc__, __name__, __wrapped__, ... of the Python method it stands for (help(), inspect.signature) */
    static const char *own_names[] = {"__doc__", "__name__", "__qualname__", "__module__", "__annotations__", NULL};
    for (const char **n = own_names; *n; n++)
        if (PyUnicode_CompareWithASCIIString(name, *n) == 0) return PyObject_GetAttr(((ManagerCall *)self)->python, name);
    PyObject *r = PyObject_GenericGetAttr(self, name);
    if (r || !PyErr_ExceptionMatches(PyExc_AttributeError)) return r;
    PyErr_Clear();
    if (PyUnicode_CompareWithASCIIString(name, "__wrapped__") == 0) return Py_NewRef(((ManagerCall *)self)->python);
    return PyObject_GetAttr(((ManagerCall *)self)->python, name);
}

static int mcall_traverse(ManagerCall *c, visitproc visit, void *arg) {
    Py_VISIT(c->python); Py_VISIT(c->manager); Py_VISIT(c->location); Py_VISIT(c->profiler); Py_VISIT(c->stats);
    return 0;
}

static int mcall_clear(ManagerCall *c) {
    Py_CLEAR(c->python); Py_CLEAR(c->manager); Py_CLEAR(c->location); Py_CLEAR(c->profiler); Py_CLEAR(c->stats);
    return 0;
}

static void mcall_dealloc(ManagerCall *c) {
    PyObject_GC_UnTrack(c);
    mcall_clear(c);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static PyTypeObject ManagerCallType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kryon_core._speedups.ManagerCall",
    .tp_basicsize = sizeof(ManagerCall),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_doc = "ScriptManager.call_function's common case, compiled",
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(ManagerCall, vectorcall),
    .tp_descr_get = mcall_get,
    .tp_getattro = mcall_getattro,
    .tp_traverse = (traverseproc)mcall_traverse,
    .tp_clear = (inquiry)mcall_clear,
    .tp_dealloc = (destructor)mcall_dealloc,
};

/* manager_call(python call_function, ScriptManager, _Location, Profiler, CallStats, offsets of
 *              _Location.call, _Location.stats, CallStats.calls, CallStats.next_timed) */
static PyObject *manager_call(PyObject *self, PyObject *args) {
    PyObject *python;
    PyTypeObject *manager, *location, *profiler, *stats;
    Py_ssize_t loc_call, loc_stats, stats_calls, stats_next;
    if (!PyArg_ParseTuple(args, "OO!O!O!O!nnnn", &python, &PyType_Type, &manager, &PyType_Type, &location,
                          &PyType_Type, &profiler, &PyType_Type, &stats, &loc_call, &loc_stats, &stats_calls, &stats_next))
        return NULL;
    Py_ssize_t lo = (Py_ssize_t)sizeof(PyObject), w = (Py_ssize_t)sizeof(PyObject *);
    if (loc_call < lo || loc_stats < lo || loc_call + w > location->tp_basicsize || loc_stats + w > location->tp_basicsize
        || stats_calls < lo || stats_next < lo || stats_calls + w > stats->tp_basicsize || stats_next + w > stats->tp_basicsize) {
        PyErr_SetString(PyExc_ValueError, "a slot lies outside its object");
        return NULL;
    }
    ManagerCall *c = PyObject_GC_New(ManagerCall, &ManagerCallType);
    if (!c) return NULL;
    c->vectorcall = mcall_vectorcall;
    c->python = Py_NewRef(python);
    c->manager = (PyTypeObject *)Py_NewRef(manager);
    c->location = (PyTypeObject *)Py_NewRef(location);
    c->profiler = (PyTypeObject *)Py_NewRef(profiler);
    c->stats = (PyTypeObject *)Py_NewRef(stats);
    c->loc_call = loc_call; c->loc_stats = loc_stats; c->stats_calls = stats_calls; c->stats_next = stats_next;
    PyObject_GC_Track(c);
    return (PyObject *)c;
}

/* -- the module ------------------------------------------------------------------------- */

static PyMethodDef methods[] = {
    {"lock_fields", lock_fields, METH_O, "(plain lock address, owner, count) as read from a C RLock"},
    {"lock_try", lock_try, METH_O, "whether the plain lock under a C RLock is free"},
    {"slot_offset", slot_offset, METH_O, "the offset of an object slot, from its member descriptor"},
    {"read_slot", read_slot, METH_VARARGS, "the object in a slot, read at an offset"},
    {"api_enter", api_enter, METH_O, "the capsule's lock_enter (for tests)"},
    {"api_leave", api_leave, METH_O, "the capsule's lock_leave (for tests)"},
    {"make_handle_type", make_handle_type, METH_VARARGS, "the FunctionRef subclass for compiled callers' bound handles"},
    {"make_caller", make_caller, METH_VARARGS, "the compiled trusted caller of an in-process script function"},
    {"manager_call", manager_call, METH_VARARGS, "ScriptManager.call_function's common case, compiled"},
    {NULL}
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "kryon_core._speedups", NULL, -1, methods};

PyMODINIT_FUNC PyInit__speedups(void) {
    s_active = PyUnicode_InternFromString("active");
    zero = PyLong_FromLong(0);
    one = PyLong_FromLong(1);
    s_lookup = PyUnicode_InternFromString("_lookup");
    s_profiler = PyUnicode_InternFromString("profiler");
    s_enabled = PyUnicode_InternFromString("enabled");
    s_timed_call = PyUnicode_InternFromString("_timed_call");
    s_call_failed = PyUnicode_InternFromString("_call_failed");
    if (!s_active || !zero || !one || !s_lookup || !s_profiler || !s_enabled || !s_timed_call || !s_call_failed || PyType_Ready(&CallerType) < 0 || PyType_Ready(&ManagerCallType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    PyObject *capsule = PyCapsule_New((void *)&gate_api, KRYON_GATE_CAPSULE, NULL);
    if (!capsule || PyModule_AddObject(m, "gate_api", capsule) < 0) {
        Py_XDECREF(capsule);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "API_VERSION", KRYON_GATE_API_VERSION) < 0) { Py_DECREF(m); return NULL; }
    return m;
}
