/* kryon_js._ccall: a compiled caller for the fast cases of calls into
 * JavaScript (see kryon_js/ccall.py, which finds and verifies everything used
 * here and keeps the generated Python caller, calls.make_caller, for every
 * other case).
 *
 * It does what the generated caller does for a call with 0-4
 * int32/float/bool/None arguments, without a Python frame: the gate's
 * uncontended acquire (through kryon-core's gate capsule), the chain's deadline (read by the interrupt handler),
 * the cut-off check (cutoff.LOWERED) at the top level, a nested entry's share
 * of the stack (calls.make_caller's `stack_for`), then JS_Call of the
 * script's function itself, and its result: a number, boolean, undefined or
 * null straight from C, a plain string as the binding converts it; anything
 * else it returns or throws goes through the prelude's `settle` or
 * `boxError` (what the prelude's wrapper around the function does) and is
 * read by `unbox`, inside the gate and the deadline, as in the generated
 * caller.
 *
 * The QuickJS C API is not linked: the quickjs-ng binding (_quickjs) exports
 * it, ccall.py hands this module the binding's file and the functions are
 * resolved with dlopen(RTLD_NOLOAD)/dlsym. The prototypes below are declared
 * here from quickjs-ng's ABI; JSValue is the 16-byte {union, int64 tag} of
 * 64-bit builds, checked at set-up (the binding Object's size, and the tags
 * of values a probe function returns).
 *
 * Thread state. The binding releases the GIL while JavaScript runs and keeps
 * the saved PyThreadState in its Context object: a host function called from
 * JavaScript restores it from there (and saves it again after). This caller
 * does the same around JS_Call, so it must release the GIL too (holding it,
 * a host call from the script would find no saved state). Other Python
 * threads run meanwhile, as they do during the binding's own calls.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>  /* PyMemberDef: the offsets of __slots__ members */
#include <dlfcn.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* -- quickjs-ng ABI (64-bit, no NaN boxing) ------------------------------------- */

typedef struct JSContext JSContext;
typedef struct JSRuntime JSRuntime;
typedef union { int32_t int32; double float64; void *ptr; int64_t bits; } JSValueUnion;
typedef struct { JSValueUnion u; int64_t tag; } JSValue;

/* tags (verified against probe results in ccall.py) */
#define TAG_OBJECT (-1)
#define TAG_STRING (-7)
#define TAG_INT 0
#define TAG_BOOL 1
#define TAG_NULL 2
#define TAG_UNDEFINED 3
#define TAG_EXCEPTION 6
#define TAG_FLOAT64 8

static struct {
    JSValue (*call)(JSContext *, JSValue, JSValue, int, JSValue *);
    void (*free_value)(JSContext *, JSValue);
    void (*update_stack_top)(JSRuntime *);
    JSValue (*get_exception)(JSContext *);
    JSValue (*get_property_str)(JSContext *, JSValue, const char *);
    const char *(*to_cstring_len2)(JSContext *, size_t *, JSValue, int);
    void (*free_cstring)(JSContext *, const char *);
    int (*is_uncatchable)(JSContext *, JSValue);
    JSValue (*throw_value)(JSContext *, JSValue);
    void (*set_max_stack_size)(JSRuntime *, size_t);
} api;
static int api_ready = 0;

static inline JSValue mkval(int64_t tag, int32_t v) { JSValue r; r.u.bits = 0; r.u.int32 = v; r.tag = tag; return r; }
static inline JSValue mkfloat(double d) { JSValue r; r.u.float64 = d; r.tag = TAG_FLOAT64; return r; }

/* the binding's Context object: [header][JSRuntime *][JSContext *][int][clock_t][PyThreadState *]...
 * and Object: [header][Context *][JSValue] (offsets verified by capi.available) */
#define OFF_RUNTIME 16
#define OFF_CONTEXT 24
#define OFF_TSTATE 48
#define OFF_OBJ_VALUE 24

/* -- the engine gate's lock, through kryon-core's capsule ------------------------
 * The gate is an RLock; its acquire(False)/release called from C cost about
 * 100 ns (method look-up and argument parsing). kryon-core's compiled core
 * takes and gives it back directly and exports that as a capsule
 * (kryon_core/_speedups_api.h; docs/plugins.md, "The gate from C"): the struct
 * as that header declares it, version 1, imported once at module set-up. A
 * lock is used through it only when kryon_core.threads.direct_lock accepted
 * it (ccall.py); without the capsule, or with a lock it refuses, no compiled
 * caller is made (the Python callers do every call). */
typedef struct {
    int version;
    size_t size;
    int (*lock_enter)(PyObject *lock);
    void (*lock_leave)(PyObject *lock);
    int (*gate_waiting)(PyObject *gate, Py_ssize_t offset);
} KryonGateAPI;

static const KryonGateAPI *gate_api;

static PyObject *has_gate_api(PyObject *self, PyObject *unused) {  /* whether kryon-core's gate capsule was found */
    return PyBool_FromLong(gate_api != NULL);
}

/* -- module set-up -------------------------------------------------------------- */

static PyObject *load_api(PyObject *self, PyObject *args) {
    const char *path;
    if (!PyArg_ParseTuple(args, "s", &path)) return NULL;
    void *h = dlopen(path, RTLD_NOLOAD | RTLD_LAZY);
    if (!h) { PyErr_Format(PyExc_OSError, "not loaded: %s", path); return NULL; }
#define RESOLVE(field, name) \
    if (!(*(void **)&api.field = dlsym(h, name))) { PyErr_Format(PyExc_OSError, "no symbol %s", name); return NULL; }
    RESOLVE(call, "JS_Call") RESOLVE(free_value, "JS_FreeValue") RESOLVE(update_stack_top, "JS_UpdateStackTop")
    RESOLVE(get_exception, "JS_GetException") RESOLVE(get_property_str, "JS_GetPropertyStr")
    RESOLVE(to_cstring_len2, "JS_ToCStringLen2") RESOLVE(free_cstring, "JS_FreeCString")
    RESOLVE(is_uncatchable, "JS_IsUncatchableError") RESOLVE(throw_value, "JS_Throw")
    RESOLVE(set_max_stack_size, "JS_SetMaxStackSize")
#undef RESOLVE
    api_ready = 1;
    Py_RETURN_NONE;
}

static void **word(PyObject *o, size_t offset) { return (void **)((char *)o + offset); }
static JSValue *object_value(PyObject *o) { return (JSValue *)((char *)o + OFF_OBJ_VALUE); }

/* -- one call ------------------------------------------------------------------- */

static PyObject *JSException, *StackOverflow;  /* the binding's exception classes (set at make_caller) */

/* An argument passed as the binding passes it: int within int32, float, bool, None. */
static int simple_arg(PyObject *a, JSValue *out) {
    PyTypeObject *t = Py_TYPE(a);
    if (a == Py_None) { *out = mkval(TAG_NULL, 0); return 1; }
    if (t == &PyBool_Type) { *out = mkval(TAG_BOOL, a == Py_True); return 1; }
    if (t == &PyFloat_Type) { *out = mkfloat(PyFloat_AS_DOUBLE(a)); return 1; }
    if (t == &PyLong_Type) {
        int overflow;
        long v = PyLong_AsLongAndOverflow(a, &overflow);
        if (overflow || v < INT32_MIN || v > INT32_MAX) return 0;
        *out = mkval(TAG_INT, (int32_t)v);
        return 1;
    }
    return 0;
}

/* JSON's rule for a JS number (values.number_from_js): integral within 2**53 is an int, except -0 */
static PyObject *number(double d) {
    if (d == floor(d) && fabs(d) <= 9007199254740992.0 && !(d == 0 && signbit(d)))
        return PyLong_FromDouble(d);
    return PyFloat_FromDouble(d);
}

/* The pending JavaScript exception as the Python exception the binding raises for it: its text,
 * a newline and its stack (StackOverflow when the text says so). Runs with the GIL held, as the
 * binding's own conversion does. */
static void raise_js_exception(JSContext *cx) {
    JSValue exc = api.get_exception(cx);
    const char *text = api.to_cstring_len2(cx, NULL, exc, 0);
    const char *stack = NULL;
    if (exc.tag != TAG_NULL && exc.tag != TAG_UNDEFINED) {
        JSValue s = api.get_property_str(cx, exc, "stack");
        if (s.tag != TAG_EXCEPTION) {
            stack = api.to_cstring_len2(cx, NULL, s, 0);
            api.free_value(cx, s);
        }
    }
    if (text) {
        int overflow = strstr(text, "stack overflow") || strstr(text, "call stack size exceeded");
        PyErr_Format(overflow ? StackOverflow : JSException, "%s\n%s", text, stack ? stack : "");
    } else {
        PyErr_Format(JSException, "(Failed obtaining QuickJS error string. Concurrency issue?)");
    }
    if (text) api.free_cstring(cx, text);
    if (stack) api.free_cstring(cx, stack);
    api.free_value(cx, exc);
}

/* -- slots of Python objects, read in place ------------------------------------
 * The chain's `deadline` (runtime.Chain) and the gate's `_waiting`
 * (EngineGate) are __slots__ members: their offsets come from the member
 * descriptors (slot_offset) and ccall.py checks each one against a write
 * and a read through Python before use. */
static PyObject *slot_offset(PyObject *self, PyObject *descr) {  /* (offset, member type) of a member descriptor */
    if (Py_TYPE(descr) != &PyMemberDescr_Type) { PyErr_SetString(PyExc_TypeError, "not a member descriptor"); return NULL; }
    PyMemberDef *m = ((PyMemberDescrObject *)descr)->d_member;
    return Py_BuildValue("(ni)", m->offset, m->type);
}

static PyObject **slot_at(PyObject *o, Py_ssize_t offset) { return (PyObject **)((char *)o + offset); }

static PyObject *slot_read(PyObject *self, PyObject *args) {  /* the object in a slot (check only) */
    PyObject *o; Py_ssize_t offset;
    if (!PyArg_ParseTuple(args, "On", &o, &offset)) return NULL;
    PyObject *v = *slot_at(o, offset);
    return Py_NewRef(v ? v : Py_None);
}

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *ctxobj;     /* the binding Context (its thread-state slot) */
    PyObject *target;     /* the binding Object of the script's function */
    PyObject *settle;     /* the prelude's settle(r): a result for the host to read (BOX) */
    PyObject *box_error;  /* the prelude's boxError(e): a thrown value for the host to read (BOX) */
    JSContext *cx;
    JSRuntime *rt;
    PyObject *lock;       /* the gate's RLock, taken through gate_api (checked by direct_lock) */
    int nparams;
    int timed;
    double time_limit;
    Py_ssize_t max_value; /* -1: none */
    Py_ssize_t deadline_slot, waiting_slot, nesting_slot;  /* Chain.deadline, EngineGate._waiting, Chain.nesting */
    PyObject *stack_for;  /* the stack a call nested `depth` deep through the host gets, by depth (a tuple) */
    PyTypeObject *chain_type;
    PyObject *gate, *wake, *host, *chains, *graced, *fresh_chain;
    PyObject *pending, *tracking, *lowered, *uncut, *state;
    PyObject *unbox, *too_big, *fail, *generic;
    Py_ssize_t calls;     /* calls that took this path (tests count them) */
} Caller;

static PyObject *s_nested, *s_chain, *s_a_result, *s_current_stack;

static PyObject *call_generic(Caller *c, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    return PyObject_Vectorcall(c->generic, args, nargsf, kwnames);
}

/* the gate's release written out, as EngineGate.uncontended_inline asks: wake waiters after */
static int gate_exit(Caller *c) {
    gate_api->lock_leave(c->lock);
    PyObject *w = *slot_at(c->gate, c->waiting_slot);
    int waiting = w ? PyObject_IsTrue(w) : 0;
    if (waiting > 0) {
        PyObject *r = PyObject_CallNoArgs(c->wake);
        if (!r) return -1;
        Py_DECREF(r);
    }
    return waiting < 0 ? -1 : 0;
}

static double monotonic_now(void) {  /* the clock of time.monotonic() on Linux */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* JS_Call under the binding's protocol: the GIL released, the thread state in the Context's slot
 * (a host function called from JavaScript restores it from there), the stack top of this thread */
static JSValue js_call(Caller *c, JSValue fn, int argc, JSValue *argv) {
    void **slot = word(c->ctxobj, OFF_TSTATE);
    *slot = PyEval_SaveThread();
    api.update_stack_top(c->rt);
    JSValue r = api.call(c->cx, fn, mkval(TAG_UNDEFINED, 0), argc, argv);
    PyEval_RestoreThread((PyThreadState *)*slot);
    *slot = NULL;
    return r;
}

/* A BOX the prelude returned (or an exception): unbox() reads what it stashed. */
static PyObject *boxed(Caller *c, JSValue r) {
    if (r.tag == TAG_EXCEPTION) { raise_js_exception(c->cx); return NULL; }
    api.free_value(c->cx, r);
    return PyObject_CallNoArgs(c->unbox);
}

/* The host value of what the function returned or threw, as the prelude's wrapper and the
 * generated caller make it (prelude.js `caller`, calls.invoke). Takes ownership of r. */
static PyObject *outcome(Caller *c, JSValue r) {
    JSContext *cx = c->cx;
    switch (r.tag) {
    case TAG_INT: return PyLong_FromLong(r.u.int32);
    case TAG_FLOAT64: return number(r.u.float64);
    case TAG_BOOL: return PyBool_FromLong(r.u.int32 != 0);
    case TAG_NULL: case TAG_UNDEFINED: return Py_NewRef(Py_None);
    case TAG_STRING: {  /* as it is when it has no NUL and is well-formed (strict UTF-8), else settled */
        size_t len = 0;
        const char *text = api.to_cstring_len2(cx, &len, r, 0);
        PyObject *result = NULL;
        if (text) {
            if (!memchr(text, 0, len)) {
                result = PyUnicode_DecodeUTF8(text, (Py_ssize_t)len, NULL);
                if (!result) PyErr_Clear();
            }
            api.free_cstring(cx, text);
        } else {  /* no room to convert: the pending error goes; settle meets the same */
            JSValue e = api.get_exception(cx);
            api.free_value(cx, e);
        }
        if (!result) {
            JSValue b = js_call(c, *object_value(c->settle), 1, &r);
            api.free_value(cx, r);
            return boxed(c, b);
        }
        api.free_value(cx, r);
        if (c->max_value >= 0 && PyUnicode_GET_LENGTH(result) > c->max_value) {
            Py_DECREF(result);
            PyObject *x = PyObject_CallOneArg(c->too_big, s_a_result);  /* raises */
            Py_XDECREF(x);
            return NULL;
        }
        return result;
    }
    case TAG_EXCEPTION: {
        JSValue e = api.get_exception(cx);
        if (api.is_uncatchable(cx, e)) {  /* the wrapper's catch would not see it either: it reaches the host */
            api.throw_value(cx, e);
            raise_js_exception(cx);
            return NULL;
        }
        JSValue b = js_call(c, *object_value(c->box_error), 1, &e);
        api.free_value(cx, e);
        return boxed(c, b);
    }
    default: {  /* an object, a BigInt, a symbol: settled by the prelude */
        JSValue b = js_call(c, *object_value(c->settle), 1, &r);
        api.free_value(cx, r);
        return boxed(c, b);
    }
    }
}

static PyObject *caller_call(Caller *c, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    JSValue argv[4];
    if (kwnames || n != c->nparams || PyList_GET_SIZE(c->tracking)) return call_generic(c, args, nargsf, kwnames);
    for (Py_ssize_t i = 0; i < n; i++)
        if (!simple_arg(args[i], &argv[i])) return call_generic(c, args, nargsf, kwnames);
    /* some thread runs a host callback (Host.nested): is it this one? Then this entry is nested */
    PyObject *nested = PyObject_GetAttr(c->host, s_nested);
    if (!nested) return NULL;
    int is_nested = PyObject_IsTrue(nested);
    Py_DECREF(nested);
    if (is_nested < 0) return NULL;
    PyObject *chain = NULL;
    Py_ssize_t depth = 0;
    if (c->timed || is_nested) {
        chain = PyObject_GetAttr(c->chains, s_chain);
        if (!chain) return NULL;
        PyObject *d = *slot_at(chain, c->deadline_slot), *k = *slot_at(chain, c->nesting_slot);
        if (Py_TYPE(chain) != c->chain_type || !d || !PyFloat_CheckExact(d) || !k || !PyLong_CheckExact(k)) {
            Py_DECREF(chain);
            return call_generic(c, args, nargsf, kwnames);
        }
        depth = is_nested ? PyLong_AsSsize_t(k) : 0;
        if (depth < 0 || depth >= PyTuple_GET_SIZE(c->stack_for)) {  /* (deeper than MAX_NESTING: `run` refuses it) */
            PyErr_Clear();
            Py_DECREF(chain);
            return call_generic(c, args, nargsf, kwnames);
        }
    }
    if (PyList_GET_SIZE(c->pending) || *word(c->ctxobj, OFF_TSTATE) != NULL || gate_api->lock_enter(c->lock) != 1) {
        Py_XDECREF(chain);
        return call_generic(c, args, nargsf, kwnames);  /* a release is due, or the gate is contended */
    }

    /* in the gate from here: every exit releases it */
    PyObject *result = NULL, *prev = NULL, *outer = NULL;
    if (!depth && PyDict_GET_SIZE(c->lowered)) {  /* left lowered by a race with the watchdog (cutoff.py) */
        PyObject *r = PyObject_CallOneArg(c->uncut, c->state);
        if (!r) goto release;
        Py_DECREF(r);
    }
    if (depth) {  /* every entry into QuickJS starts a fresh stack budget: a nested one gets its share */
        outer = PyObject_GetAttr(c->state, s_current_stack);
        if (!outer) goto release;
        PyObject *size = PyTuple_GET_ITEM(c->stack_for, depth);
        size_t bytes = PyLong_AsSize_t(size);
        if (!PyLong_CheckExact(outer) || (PyLong_AsSize_t(outer) == (size_t)-1 && PyErr_Occurred())
                || PyObject_SetAttr(c->state, s_current_stack, size) < 0) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "current_stack");
            Py_CLEAR(outer);
            goto release;
        }
        api.set_max_stack_size(c->rt, bytes);
    }
    if (c->timed) {  /* the chain's deadline, which the interrupt handler reads: the earlier one */
        PyObject **slot = slot_at(chain, c->deadline_slot);
        double before = PyFloat_AS_DOUBLE(*slot);
        double deadline = monotonic_now() + c->time_limit;
        prev = Py_NewRef(*slot);  /* put back after, whatever the interrupt handler wrote meanwhile */
        if (deadline < before) {
            PyObject *d = PyFloat_FromDouble(deadline);
            if (!d) goto restore;
            PyObject *old = *slot;
            *slot = d;
            Py_DECREF(old);
            if (isinf(before) && PySet_GET_SIZE(c->graced)) {  /* an outermost limited call: GRACE again */
                PyObject *r = PyObject_CallNoArgs(c->fresh_chain);
                if (!r) goto restore;
                Py_DECREF(r);
            }
        }
    }
    c->calls++;
    result = outcome(c, js_call(c, *object_value(c->target), (int)n, argv));
    if (!result && PyErr_ExceptionMatches(JSException)) {  /* the binding's error: the kryon error for it */
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        PyObject *x = PyObject_CallOneArg(c->fail, value);  /* raises */
        Py_XDECREF(x);
        Py_XDECREF(type); Py_XDECREF(value); Py_XDECREF(tb);
    }
restore:
    if (prev) {  /* the chain's own deadline back, whatever the outcome */
        PyObject **slot = slot_at(chain, c->deadline_slot);
        PyObject *mine = *slot;
        *slot = prev;
        Py_XDECREF(mine);
    }
    if (outer) {  /* and the outer entry's stack */
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        int bad = PyObject_SetAttr(c->state, s_current_stack, outer) < 0;
        api.set_max_stack_size(c->rt, PyLong_AsSize_t(outer));
        Py_DECREF(outer);
        if (bad) {
            Py_XDECREF(type); Py_XDECREF(value); Py_XDECREF(tb);
            Py_CLEAR(result);
        } else {
            PyErr_Restore(type, value, tb);
        }
    }
release:
    Py_XDECREF(chain);
    {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        int bad = 0;
        if (!depth && PyDict_GET_SIZE(c->lowered)) {
            PyObject *r = PyObject_CallOneArg(c->uncut, c->state);
            if (!r) bad = 1; else Py_DECREF(r);
        }
        if (bad) {
            gate_api->lock_leave(c->lock);
        } else if (gate_exit(c) < 0) {
            bad = 1;
        }
        if (bad) {  /* the new error replaces the outcome, as one raised in a `finally` does */
            Py_XDECREF(type); Py_XDECREF(value); Py_XDECREF(tb);
            Py_CLEAR(result);
        } else {
            PyErr_Restore(type, value, tb);
        }
    }
    return result;
}

static PyObject *caller_calls(Caller *c, void *closure) { return PyLong_FromSsize_t(c->calls); }

static PyGetSetDef caller_getset[] = {
    {"calls", (getter)caller_calls, NULL, "calls that took the compiled path", NULL},
    {NULL}
};

#define FIELDS(X) X(ctxobj) X(target) X(settle) X(box_error) X(gate) X(wake) X(host) X(chains) X(graced) X(fresh_chain) X(pending) \
    X(tracking) X(lowered) X(uncut) X(state) X(unbox) X(too_big) X(fail) X(generic) X(stack_for)

static int caller_traverse(Caller *c, visitproc visit, void *arg) {
#define V(f) Py_VISIT(c->f);
    FIELDS(V)
#undef V
    Py_VISIT(c->lock);
    Py_VISIT((PyObject *)c->chain_type);
    return 0;
}

static int caller_clear(Caller *c) {
#define C(f) Py_CLEAR(c->f);
    FIELDS(C)
#undef C
    return 0;
}

static void caller_dealloc(Caller *c) {
    PyObject_GC_UnTrack(c);
    caller_clear(c);
    Py_CLEAR(c->lock);
    Py_CLEAR(c->chain_type);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static PyTypeObject CallerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kryon_js._ccall.Caller",
    .tp_basicsize = sizeof(Caller),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "a compiled caller of one JavaScript function (made by kryon_js.ccall)",
    .tp_traverse = (traverseproc)caller_traverse,
    .tp_clear = (inquiry)caller_clear,
    .tp_dealloc = (destructor)caller_dealloc,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Caller, vectorcall),
    .tp_getset = caller_getset,
};

/* make_caller(ctx, target, settle, box_error, lock, nparams, time_limit, max_value, jsexception, stackoverflow,
 *             chain_type, deadline_slot, waiting_slot, nesting_slot, stack_for, gate, wake, host, chains, graced, fresh_chain, pending,
 *             tracking, lowered, uncut, state, unbox, too_big, fail, generic) */
static PyObject *make_caller(PyObject *self, PyObject *args) {
    PyObject *ctxobj, *target, *settle, *box_error, *lock, *jsexc, *overflow, *chain_type;
    int nparams;
    double time_limit;
    Py_ssize_t max_value, deadline_slot, waiting_slot, nesting_slot;
    PyObject *stack_for;
    PyObject *gate, *wake, *host, *chains, *graced, *fresh_chain, *pending, *tracking, *lowered, *uncut, *state;
    PyObject *unbox, *too_big, *fail, *generic;
    if (!api_ready) { PyErr_SetString(PyExc_RuntimeError, "no QuickJS API"); return NULL; }
    if (!PyArg_ParseTuple(args, "OOOOOidnOOO!nnnO!OOOOO!OO!O!O!OOOOOO", &ctxobj, &target, &settle, &box_error, &lock,
                          &nparams, &time_limit, &max_value, &jsexc, &overflow, &PyType_Type, &chain_type,
                          &deadline_slot, &waiting_slot, &nesting_slot, &PyTuple_Type, &stack_for, &gate, &wake, &host, &chains, &PySet_Type, &graced,
                          &fresh_chain, &PyList_Type, &pending, &PyList_Type, &tracking, &PyDict_Type, &lowered,
                          &uncut, &state, &unbox, &too_big, &fail, &generic))
        return NULL;
    if (nparams < 0 || nparams > 4) { PyErr_SetString(PyExc_ValueError, "0 to 4 parameters"); return NULL; }
    if (!gate_api || strcmp(Py_TYPE(lock)->tp_name, "_thread.RLock") != 0) {
        PyErr_SetString(PyExc_TypeError, "no gate capsule, or not a C RLock");
        return NULL;
    }
    if (!PyExceptionClass_Check(jsexc) || !PyExceptionClass_Check(overflow)) {
        PyErr_SetString(PyExc_TypeError, "the binding's exception classes");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(stack_for); i++)
        if (!PyLong_CheckExact(PyTuple_GET_ITEM(stack_for, i))) { PyErr_SetString(PyExc_TypeError, "stack sizes"); return NULL; }
    if (nesting_slot < (Py_ssize_t)sizeof(PyObject) || nesting_slot + (Py_ssize_t)sizeof(PyObject *) > ((PyTypeObject *)chain_type)->tp_basicsize
            || deadline_slot < (Py_ssize_t)sizeof(PyObject) || deadline_slot + (Py_ssize_t)sizeof(PyObject *) > ((PyTypeObject *)chain_type)->tp_basicsize
            || waiting_slot < (Py_ssize_t)sizeof(PyObject) || waiting_slot + (Py_ssize_t)sizeof(PyObject *) > Py_TYPE(gate)->tp_basicsize) {
        PyErr_SetString(PyExc_ValueError, "slot outside the object");
        return NULL;
    }
    Caller *c = PyObject_GC_New(Caller, &CallerType);
    if (!c) return NULL;
    c->vectorcall = (vectorcallfunc)caller_call;
    c->rt = (JSRuntime *)*word(ctxobj, OFF_RUNTIME);
    c->cx = (JSContext *)*word(ctxobj, OFF_CONTEXT);
    c->lock = Py_NewRef(lock);
    c->chain_type = (PyTypeObject *)Py_NewRef(chain_type);
    c->nparams = nparams;
    c->timed = time_limit > 0;
    c->time_limit = time_limit;
    c->max_value = max_value;
    c->deadline_slot = deadline_slot;
    c->waiting_slot = waiting_slot;
    c->nesting_slot = nesting_slot;
    c->calls = 0;
#define SET(f) c->f = Py_NewRef(f);
    SET(ctxobj) SET(target) SET(settle) SET(box_error) SET(gate) SET(wake) SET(host) SET(chains) SET(graced)
    SET(fresh_chain) SET(pending) SET(tracking) SET(lowered) SET(uncut) SET(state) SET(unbox) SET(too_big) SET(fail)
    SET(generic) SET(stack_for)
#undef SET
    if (!JSException) { JSException = Py_NewRef(jsexc); StackOverflow = Py_NewRef(overflow); }
    PyObject_GC_Track(c);
    return (PyObject *)c;
}

/* probe(ctx, fn, args): call binding Object fn as a Caller would (without gate or deadline) and
 * return (tag, int32 payload, float payload) of its raw result, for ccall.py to check the tags */
static PyObject *probe(PyObject *self, PyObject *args) {
    PyObject *ctxobj, *fn, *list;
    if (!api_ready) { PyErr_SetString(PyExc_RuntimeError, "no QuickJS API"); return NULL; }
    if (!PyArg_ParseTuple(args, "OOO!", &ctxobj, &fn, &PyTuple_Type, &list)) return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(list);
    JSValue argv[4];
    if (n > 4) { PyErr_SetString(PyExc_ValueError, "at most 4 arguments"); return NULL; }
    for (Py_ssize_t i = 0; i < n; i++)
        if (!simple_arg(PyTuple_GET_ITEM(list, i), &argv[i])) { PyErr_SetString(PyExc_TypeError, "not simple"); return NULL; }
    JSContext *cx = (JSContext *)*word(ctxobj, OFF_CONTEXT);
    void **slot = word(ctxobj, OFF_TSTATE);
    if (*slot) { PyErr_SetString(PyExc_RuntimeError, "the context is running"); return NULL; }
    *slot = PyEval_SaveThread();
    api.update_stack_top((JSRuntime *)*word(ctxobj, OFF_RUNTIME));
    JSValue r = api.call(cx, *object_value(fn), mkval(TAG_NULL, 0), (int)n, argv);
    PyEval_RestoreThread((PyThreadState *)*slot);
    *slot = NULL;
    PyObject *out = Py_BuildValue("(Lid)", (long long)r.tag, r.u.int32, r.u.float64);
    if (r.tag == TAG_EXCEPTION) {
        JSValue e = api.get_exception(cx);
        api.free_value(cx, e);
    } else {
        api.free_value(cx, r);
    }
    return out;
}

static PyObject *value_words(PyObject *self, PyObject *arg) {  /* (tag, payload) of a binding Object */
    JSValue *v = object_value(arg);
    return Py_BuildValue("(LL)", (long long)v->tag, (long long)v->u.bits);
}

static PyMethodDef methods[] = {
    {"load_api", load_api, METH_VARARGS, "resolve the QuickJS C API in the binding's loaded module file"},
    {"has_gate_api", has_gate_api, METH_NOARGS, "whether kryon-core's gate capsule was found"},
    {"value_words", value_words, METH_O, "(tag, payload) of a binding Object's JSValue"},
    {"slot_offset", slot_offset, METH_O, "(offset, member type) of a member descriptor"},
    {"slot_read", slot_read, METH_VARARGS, "the object in a slot of an object (set-up checks)"},
    {"probe", probe, METH_VARARGS, "the raw result of a call (set-up checks)"},
    {"make_caller", make_caller, METH_VARARGS, "a compiled caller"},
    {NULL}
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ccall", NULL, -1, methods};

PyMODINIT_FUNC PyInit__ccall(void) {
    if (PyType_Ready(&CallerType) < 0) return NULL;
    s_nested = PyUnicode_InternFromString("nested");
    s_chain = PyUnicode_InternFromString("chain");
    s_a_result = PyUnicode_InternFromString("a result");
    s_current_stack = PyUnicode_InternFromString("current_stack");
    if (!s_nested || !s_chain || !s_a_result || !s_current_stack) return NULL;
    /* PyCapsule_Import reaches the module as an attribute of its package: import it first */
    PyObject *core = PyImport_ImportModule("kryon_core._speedups");
    Py_XDECREF(core);
    const KryonGateAPI *found = core ? PyCapsule_Import("kryon_core._speedups.gate_api", 0) : NULL;
    if (found && found->version == 1 && found->size >= sizeof(KryonGateAPI)) gate_api = found;
    else PyErr_Clear();  /* kryon-core without its compiled core: no compiled caller (ccall.py) */
    return PyModule_Create(&module);
}
