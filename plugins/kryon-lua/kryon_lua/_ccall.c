/* kryon_lua._ccall: a compiled caller for the fast cases of calls into Lua 5.4
 * (see kryon_lua/ccall.py, which finds and verifies everything used here and
 * falls back to the generated Python caller when any check fails).
 *
 * It does what calls.py's generated limited caller does, without a Python
 * frame: the gate's uncontended acquire, the deadline and depth written where
 * the count hook reads them, the memory cap switched on around the call and
 * off after it, and a single nil/boolean/number result handed back. It does
 * what `K.fastcapped` (prelude.lua) does around the call, in C: clears
 * `K.state.where_source` and calls the function under lua_pcall with the
 * prelude's own message handler (fast_error, as xpcall does there). Every
 * other outcome (an error, a string or table result, several results) is
 * packed into a table by a small Lua function and finished in Python
 * (`finish` in ccall.py), so lupa converts it as it does for the generated
 * caller. Without limits (the trusted policy, no memory cap) it is the
 * generated unlimited caller's fast path instead: the gate, lupa's lock, and
 * the function called as lupa calls it (under `debug.traceback` as the
 * message handler when the state has one); a string error is decoded as lupa
 * decodes it (UTF-8), any other error is raised again through lupa (`rethrow`), so the
 * host's own exception comes back as lupa hands it back.
 *
 * The Lua C API is not linked: lupa's extension module exports it, and
 * ccall.py hands this module the module's file; the functions are resolved
 * with dlopen(RTLD_NOLOAD)/dlsym at set-up. The prototypes below are the
 * Lua 5.4 ABI (declared here, not taken from Lua's headers).
 *
 * Locking. lupa serialises every use of a state with a FastRLock in the
 * LuaRuntime object and releases the GIL while Lua runs. This caller takes
 * that same lock, the way lupa does (an owner/count pair changed under the
 * GIL; only its uncontended paths: owned by nobody with no waiter, or owned
 * by this thread), and otherwise leaves the call to the Python caller, which
 * goes through lupa and blocks properly. Holding lupa's lock, it can release
 * the GIL around lua_pcall exactly as lupa does: other threads run meanwhile,
 * and a lupa object freed on another thread finds the lock taken and defers
 * its registry unref (lupa's pending unrefs), as with lupa's own calls.
 * The lock's place in the LuaRuntime and its field layout are checked at
 * set-up against the lock's own acquire/release (ccall.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>
#include <structmember.h>
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

typedef struct lua_State lua_State;
typedef void *(*lua_Alloc)(void *ud, void *ptr, size_t osize, size_t nsize);

#define K_REGISTRYINDEX (-1000000 - 1000)  /* Lua 5.4: -LUAI_MAXSTACK - 1000 */
#define K_MULTRET (-1)
#define K_TNIL 0
#define K_TBOOLEAN 1
#define K_TNUMBER 3
#define K_TFUNCTION 6
#define K_TTABLE 5
#define K_TSTRING 4

static struct {
    int (*gettop)(lua_State *);
    void (*settop)(lua_State *, int);
    int (*checkstack)(lua_State *, int);
    int (*rawgeti)(lua_State *, int, long long);
    void (*pushnil)(lua_State *);
    void (*pushboolean)(lua_State *, int);
    void (*pushinteger)(lua_State *, long long);
    void (*pushnumber)(lua_State *, double);
    const char *(*pushlstring)(lua_State *, const char *, size_t);
    int (*pcallk)(lua_State *, int, int, int, intptr_t, void *);
    int (*type)(lua_State *, int);
    int (*toboolean)(lua_State *, int);
    long long (*tointegerx)(lua_State *, int, int *);
    double (*tonumberx)(lua_State *, int, int *);
    int (*isinteger)(lua_State *, int);
    lua_Alloc (*getallocf)(lua_State *, void **);
    const void *(*topointer)(lua_State *, int);
    int (*rotate)(lua_State *, int, int);
    void (*rawset)(lua_State *, int);
    int (*getglobal)(lua_State *, const char *);
    int (*getfield)(lua_State *, int, const char *);
    const char *(*tolstring)(lua_State *, int, size_t *);
    int (*ref)(lua_State *, int);
} api;
static int api_ready = 0;

/* lupa's allocator userdata (verified in ccall.py against get_memory_used
 * and set_max_memory): bytes in use, the use at start, the absolute limit
 * (0: none). */
typedef struct { size_t used; size_t base_usage; size_t limit; } MemStatus;

/* lupa's FastRLock object (verified in ccall.py). */
typedef struct {
    PyObject_HEAD
    PyThread_type_lock real_lock;
    unsigned long owner;
    unsigned int count;
    unsigned int pending;
    int is_locked;
} FastRLock;

/* lupa's LuaRuntime: [header][vtable][lua_State *_state][FastRLock _lock] */
typedef struct { PyObject_HEAD void *vtab; lua_State *state; PyObject *lock; } RuntimeHead;
/* lupa's _LuaObject: [header][vtable][runtime][lua_State *_state][int _ref] */
typedef struct { PyObject_HEAD void *vtab; PyObject *runtime; lua_State *state; int ref; } ObjectHead;

static int lock_take(FastRLock *lock) {
    unsigned long me = PyThread_get_thread_ident();
    if (lock->count) {
        if (lock->owner != me) return 0;
        lock->count++;
        return 1;
    }
    if (lock->pending) return 0;
    lock->owner = me;
    lock->count = 1;
    return 1;
}

static void lock_give(FastRLock *lock) {
    if (--lock->count == 0 && lock->is_locked) {  /* a waiter took the real lock for us: hand it over */
        PyThread_release_lock(lock->real_lock);
        lock->is_locked = 0;
    }
}

/* The engine gate's lock, taken and given back through kryon-core's compiled core (its capsule,
 * kryon_core/_speedups_api.h; docs/plugins.md, "The gate from C"): the struct as that header
 * declares it, version 1, imported once at module set-up. NULL (no compiled core, another
 * version): every caller calls the lock's methods. A lock is used through it only when
 * kryon_core.threads.direct_lock accepted it (ccall.py, _gate_lock). */
typedef struct {
    int version;
    size_t size;
    int (*lock_enter)(PyObject *lock);
    void (*lock_leave)(PyObject *lock);
    int (*gate_waiting)(PyObject *gate, Py_ssize_t offset);
} KryonGateAPI;

static const KryonGateAPI *gate_api;

static double monotonic_now(void) {  /* the clock of time.monotonic() on Linux */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* -- module set-up ---------------------------------------------------------- */

static PyObject *load_api(PyObject *self, PyObject *args) {
    const char *path;
    if (!PyArg_ParseTuple(args, "s", &path)) return NULL;
    void *h = dlopen(path, RTLD_NOLOAD | RTLD_LAZY);
    if (!h) { PyErr_Format(PyExc_OSError, "not loaded: %s", path); return NULL; }
#define RESOLVE(field, name) \
    if (!(*(void **)&api.field = dlsym(h, name))) { PyErr_Format(PyExc_OSError, "no symbol %s", name); return NULL; }
    RESOLVE(gettop, "lua_gettop") RESOLVE(settop, "lua_settop") RESOLVE(checkstack, "lua_checkstack")
    RESOLVE(rawgeti, "lua_rawgeti") RESOLVE(pushnil, "lua_pushnil") RESOLVE(pushboolean, "lua_pushboolean")
    RESOLVE(pushinteger, "lua_pushinteger") RESOLVE(pushnumber, "lua_pushnumber")
    RESOLVE(pushlstring, "lua_pushlstring") RESOLVE(pcallk, "lua_pcallk") RESOLVE(type, "lua_type")
    RESOLVE(toboolean, "lua_toboolean") RESOLVE(tointegerx, "lua_tointegerx") RESOLVE(tonumberx, "lua_tonumberx")
    RESOLVE(isinteger, "lua_isinteger") RESOLVE(getallocf, "lua_getallocf") RESOLVE(topointer, "lua_topointer")
    RESOLVE(rotate, "lua_rotate") RESOLVE(rawset, "lua_rawset")
    RESOLVE(getglobal, "lua_getglobal") RESOLVE(getfield, "lua_getfield")
    RESOLVE(tolstring, "lua_tolstring") RESOLVE(ref, "luaL_ref")
#undef RESOLVE
    api_ready = 1;
    Py_RETURN_NONE;
}

/* The raw facts ccall.py checks before trusting the layouts. */
/* The raw facts ccall.py checks before trusting the layouts (it checks each
 * object's basic size first, so these reads stay inside the object). */
static PyObject *runtime_words(PyObject *self, PyObject *arg) {  /* (state address, lock address) */
    RuntimeHead *r = (RuntimeHead *)arg;
    return Py_BuildValue("(KK)", (unsigned long long)(uintptr_t)r->state, (unsigned long long)(uintptr_t)r->lock);
}

static PyObject *lock_fields(PyObject *self, PyObject *arg) {  /* (owner, count, pending, is_locked) */
    FastRLock *l = (FastRLock *)arg;
    return Py_BuildValue("(kIIi)", l->owner, l->count, l->pending, l->is_locked);
}

static PyObject *has_gate_api(PyObject *self, PyObject *unused) {  /* whether kryon-core's gate capsule was found */
    return PyBool_FromLong(gate_api != NULL);
}

static PyObject *slot_offset(PyObject *self, PyObject *arg) {  /* the offset of an object slot's member descriptor */
    if (Py_TYPE(arg) != &PyMemberDescr_Type) { PyErr_SetString(PyExc_TypeError, "not a slot"); return NULL; }
    PyMemberDef *d = ((PyMemberDescrObject *)arg)->d_member;
    if (d->type != T_OBJECT_EX) { PyErr_SetString(PyExc_TypeError, "not an object slot"); return NULL; }
    return PyLong_FromSsize_t(d->offset);
}

static PyObject *read_slot(PyObject *self, PyObject *args) {  /* what that slot holds (None: empty) */
    PyObject *obj; Py_ssize_t offset;
    if (!PyArg_ParseTuple(args, "On", &obj, &offset)) return NULL;
    if (offset < (Py_ssize_t)sizeof(PyObject) || offset + (Py_ssize_t)sizeof(PyObject *) > Py_TYPE(obj)->tp_basicsize) {
        PyErr_SetString(PyExc_ValueError, "outside the object");
        return NULL;
    }
    PyObject *v = *(PyObject **)((char *)obj + offset);
    return Py_NewRef(v ? v : Py_None);
}

static PyObject *object_words(PyObject *self, PyObject *arg) {  /* (runtime address, state address, ref) */
    ObjectHead *o = (ObjectHead *)arg;
    return Py_BuildValue("(KKi)", (unsigned long long)(uintptr_t)o->runtime,
                         (unsigned long long)(uintptr_t)o->state, o->ref);
}

static PyObject *ref_pointer(PyObject *self, PyObject *args) {  /* (type, address) of registry[ref] */
    unsigned long long state; int ref;
    if (!api_ready) { PyErr_SetString(PyExc_RuntimeError, "no Lua API"); return NULL; }
    if (!PyArg_ParseTuple(args, "Ki", &state, &ref)) return NULL;
    lua_State *L = (lua_State *)(uintptr_t)state;
    int top = api.gettop(L);
    if (!api.checkstack(L, 2)) { PyErr_SetString(PyExc_RuntimeError, "no stack"); return NULL; }
    int t = api.rawgeti(L, K_REGISTRYINDEX, ref);
    const void *p = api.topointer(L, -1);
    api.settop(L, top);
    return Py_BuildValue("(iK)", t, (unsigned long long)(uintptr_t)p);
}

static PyObject *string_ref(PyObject *self, PyObject *args) {  /* a registry reference to a Lua string */
    unsigned long long state; const char *text; Py_ssize_t len;
    if (!api_ready) { PyErr_SetString(PyExc_RuntimeError, "no Lua API"); return NULL; }
    if (!PyArg_ParseTuple(args, "Ks#", &state, &text, &len)) return NULL;
    lua_State *L = (lua_State *)(uintptr_t)state;
    if (!api.checkstack(L, 1)) { PyErr_SetString(PyExc_RuntimeError, "no stack"); return NULL; }
    api.pushlstring(L, text, (size_t)len);
    return PyLong_FromLong(api.ref(L, K_REGISTRYINDEX));
}

static PyObject *memory_status(PyObject *self, PyObject *arg) {  /* (address, used, base, limit) */
    unsigned long long state = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred()) return NULL;
    if (!api_ready) { PyErr_SetString(PyExc_RuntimeError, "no Lua API"); return NULL; }
    void *ud = NULL;
    api.getallocf((lua_State *)(uintptr_t)state, &ud);
    if (!ud) return Py_BuildValue("(KKKK)", 0ULL, 0ULL, 0ULL, 0ULL);
    MemStatus *m = (MemStatus *)ud;
    return Py_BuildValue("(KKKK)", (unsigned long long)(uintptr_t)ud, (unsigned long long)m->used,
                         (unsigned long long)m->base_usage, (unsigned long long)m->limit);
}

/* -- bound handles ------------------------------------------------------------ */

/* The FunctionRef subclass of compiled callers' bound handles (ScriptManager.function), made by
 * kryon-core's compiled core (kryon_core.speedups.handle_type: its instances vectorcall whatever
 * their `_call` slot holds, with no Python frame) and handed here once by ccall.py; NULL without
 * the core, and the handles are then plain FunctionRef.direct ones. */
static PyObject *handle_type;

static PyObject *set_handle_type(PyObject *self, PyObject *type) {
    if (!PyType_Check(type)) {
        PyErr_SetString(PyExc_TypeError, "a type is expected");
        return NULL;
    }
    Py_XSETREF(handle_type, Py_NewRef(type));
    Py_RETURN_NONE;
}

/* -- the caller ------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    lua_State *L;
    FastRLock *lock;
    MemStatus *ms;        /* NULL: no memory cap */
    size_t limit;         /* the cap, relative to base_usage */
    size_t margin;        /* headroom needed for the fast path */
    size_t pressure;      /* collect after a call above this */
    int fref, href, sref, pref;  /* the function, the message handler, K.state, the packer */
    int kref;             /* the string "where_source" (pushed from the registry: no hashing per call) */
    int nparams;
    int limited;          /* the limited caller (else the trusted one: no cap, deadline or depth) */
    int timed;            /* a time limit applies */
    double time_limit;
    PyObject *depth;      /* policy.max_recursion or 0, as an int */
    PyObject *keep;       /* lupa objects whose registry refs are used here */
    PyObject *rt;         /* the kryon Runtime */
    PyObject *rtdict;     /* its __dict__: capped, deadline, maxdepth (plain attributes, checked) */
    PyObject *acquire, *unlock, *gate, *wake, *tracking;
    PyObject *glock;      /* the gate's RLock, taken through gate_api (checked at set-up), or NULL: its methods */
    Py_ssize_t waiting;   /* the offset of the gate's `_waiting` slot, or 0: looked up by name */
    PyObject *generic;    /* generic(*args): every case not handled here */
    PyObject *finish;     /* finish(status): the packed outcome, inside the gate */
    PyObject *collect;    /* the state's collector (memory pressure) */
    PyObject *fail;       /* fail(exc): raises the kryon error for exc */
    Py_ssize_t calls;     /* calls that took this path (tests count them) */
} Caller;

static PyObject *s_capped, *s_deadline, *s_maxdepth, *s_waiting, *zero;

/* The gate's uncontended acquire (EngineGate.run's first step): 1 in, 0 contended, -1 error. */
static int gate_enter(Caller *c) {
    if (c->glock) return gate_api->lock_enter(c->glock);
    PyObject *got = PyObject_CallOneArg(c->acquire, Py_False);
    if (!got) return -1;
    int ok = got == Py_True;
    Py_DECREF(got);
    return ok;
}

/* The gate's release, then a wake-up for the threads polling it when there are any (EngineGate.run). */
static int gate_release(Caller *c) {
    if (c->glock) gate_api->lock_leave(c->glock);
    else {
        PyObject *r = PyObject_CallNoArgs(c->unlock);
        if (!r) return -1;
        Py_DECREF(r);
    }
    PyObject *w;
    if (c->waiting) {
        w = *(PyObject **)((char *)c->gate + c->waiting);  /* borrowed */
        if (w == zero) return 0;  /* the common case: nobody polls */
        if (!w) { PyErr_SetString(PyExc_AttributeError, "_waiting"); return -1; }
        Py_INCREF(w);
    } else if (!(w = PyObject_GetAttr(c->gate, s_waiting))) return -1;
    int waiting = PyObject_IsTrue(w);
    Py_DECREF(w);
    if (waiting > 0) {
        PyObject *r = PyObject_CallNoArgs(c->wake);
        if (!r) return -1;
        Py_DECREF(r);
    }
    return waiting < 0 ? -1 : 0;
}

/* An argument this path pushes itself: nil, booleans, int64 integers,
 * floats, ASCII str up to 4096 characters (the headroom margin covers it). */
static int simple_arg(PyObject *a) {
    PyTypeObject *t = Py_TYPE(a);
    if (a == Py_None || t == &PyBool_Type || t == &PyFloat_Type) return 1;
    if (t == &PyLong_Type) {
        int overflow;
        PyLong_AsLongLongAndOverflow(a, &overflow);
        if (PyErr_Occurred()) { PyErr_Clear(); return 0; }
        return !overflow;
    }
    if (t == &PyUnicode_Type) return PyUnicode_IS_ASCII(a) && PyUnicode_GET_LENGTH(a) <= 4096;
    return 0;
}

static void push_arg(lua_State *L, PyObject *a) {
    PyTypeObject *t = Py_TYPE(a);
    if (a == Py_None) api.pushnil(L);
    else if (t == &PyBool_Type) api.pushboolean(L, a == Py_True);
    else if (t == &PyFloat_Type) api.pushnumber(L, PyFloat_AS_DOUBLE(a));
    else if (t == &PyLong_Type) api.pushinteger(L, PyLong_AsLongLong(a));
    else api.pushlstring(L, (const char *)PyUnicode_DATA(a), (size_t)PyUnicode_GET_LENGTH(a));
}

static PyObject *call_generic(Caller *c, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    return PyObject_Vectorcall(c->generic, args, nargsf, kwnames);
}

static int set_flag(PyObject *rtdict, PyObject *name, PyObject *value) {
    return PyDict_SetItem(rtdict, name, value);
}

static PyObject *caller_call(Caller *c, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    if (kwnames || n != c->nparams || PyList_GET_SIZE(c->tracking)) return call_generic(c, args, nargsf, kwnames);
    for (Py_ssize_t i = 0; i < n; i++)
        if (!simple_arg(args[i])) return call_generic(c, args, nargsf, kwnames);

    int ok = gate_enter(c);
    if (ok < 0) return NULL;
    if (!ok) return call_generic(c, args, nargsf, kwnames);

    /* in the gate from here: every exit releases it */
    PyObject *result = NULL;
    int fast = 1;
    if (c->limited) {
        PyObject *v = PyDict_GetItemWithError(c->rtdict, s_capped);  /* borrowed */
        if (!v) { if (!PyErr_Occurred()) PyErr_SetString(PyExc_AttributeError, "capped"); goto release; }
        fast = v == Py_False;
    }
    if (fast && c->ms && (c->ms->used - c->ms->base_usage) + c->margin >= c->limit) fast = 0;
    if (fast && c->limited) {
        PyObject *v;
        v = PyDict_GetItemWithError(c->rtdict, s_maxdepth);
        if (!v) { if (!PyErr_Occurred()) PyErr_SetString(PyExc_AttributeError, "maxdepth"); goto release; }
        int same = PyObject_RichCompareBool(v, c->depth, Py_EQ);
        if (same < 0) goto release;
        fast = same;  /* a new depth is written by the Python path (a table write through lupa) */
    }
    if (fast && !lock_take(c->lock)) fast = 0;
    if (!fast) {
        result = call_generic(c, args, nargsf, kwnames);
        goto release;
    }

    /* lupa's lock is ours from here */
    PyObject *previous = NULL;
    if (c->limited) {
        previous = PyDict_GetItemWithError(c->rtdict, s_deadline);
        if (!previous) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_AttributeError, "deadline");
            lock_give(c->lock);
            goto release;
        }
        Py_INCREF(previous);
    }
    if (c->timed) {
        double prev = PyFloat_AsDouble(previous);
        double deadline = monotonic_now() + c->time_limit;
        if (prev == -1.0 && PyErr_Occurred()) { Py_DECREF(previous); lock_give(c->lock); goto release; }
        if (prev == 0.0 || deadline < prev) {
            PyObject *d = PyFloat_FromDouble(deadline);
            if (!d || set_flag(c->rtdict, s_deadline, d) < 0) {
                Py_XDECREF(d); Py_DECREF(previous); lock_give(c->lock); goto release;
            }
            Py_DECREF(d);
        }
    }
    lua_State *L = c->L;
    int top = api.gettop(L);
    int status = -1;
    int handler = 0;  /* the message handler's index, 0: none */
    if (api.checkstack(L, (int)n + 4)) {
        if (c->limited) {
            /* K.state.where_source = nil: the last position seen belongs to an earlier call */
            api.rawgeti(L, K_REGISTRYINDEX, c->sref);
            api.rawgeti(L, K_REGISTRYINDEX, c->kref);
            api.pushnil(L);
            api.rawset(L, -3);
            api.settop(L, top);
            api.rawgeti(L, K_REGISTRYINDEX, c->href);  /* K.fastcapped's handler */
            handler = top + 1;
        } else if (api.getglobal(L, "debug") == K_TTABLE && api.getfield(L, -1, "traceback") == K_TFUNCTION) {
            /* the handler lupa's own calls use, looked up as lupa looks it up */
            api.rotate(L, -2, 1);
            api.settop(L, -2);
            handler = top + 1;
        } else {
            api.settop(L, top);
        }
        api.rawgeti(L, K_REGISTRYINDEX, c->fref);
        for (Py_ssize_t i = 0; i < n; i++) push_arg(L, args[i]);
        if (c->ms) {
            c->ms->limit = c->ms->base_usage + c->limit;
            set_flag(c->rtdict, s_capped, Py_True);
        }
        Py_BEGIN_ALLOW_THREADS
        status = api.pcallk(L, (int)n, K_MULTRET, handler, 0, NULL);
        Py_END_ALLOW_THREADS
        if (c->ms) {
            c->ms->limit = 0;
            set_flag(c->rtdict, s_capped, Py_False);
        }
    }
    if (previous) {
        set_flag(c->rtdict, s_deadline, previous);
        Py_DECREF(previous);
    }
    if (status == -1) {  /* no stack room: nothing ran; the Python path says why */
        api.settop(L, top);
        lock_give(c->lock);
        result = call_generic(c, args, nargsf, kwnames);
        goto release;
    }
    int first = top + 1 + (handler != 0);  /* the results sit above the message handler */
    int nres = api.gettop(L) - first + 1;
    if (status == 0 && nres == 0) result = Py_NewRef(Py_None);
    if (status == 0 && nres == 1) {
        int t = api.type(L, -1);
        if (t == K_TNIL) result = Py_NewRef(Py_None);
        else if (t == K_TBOOLEAN) result = PyBool_FromLong(api.toboolean(L, -1));
        else if (t == K_TNUMBER) result = api.isinteger(L, -1) ? PyLong_FromLongLong(api.tointegerx(L, -1, NULL))
                                                              : PyFloat_FromDouble(api.tonumberx(L, -1, NULL));
    }
    PyObject *message = NULL;
    if (status != 0 && !c->limited && api.type(L, -1) == K_TSTRING) {
        /* the trusted caller's error message, decoded as lupa decodes it (UTF-8: a
         * UnicodeDecodeError otherwise, which `fail` turns into the kryon error) */
        size_t len = 0;
        const char *text = api.tolstring(L, -1, &len);
        message = PyUnicode_DecodeUTF8(text, (Py_ssize_t)len, NULL);
    }
    int packed = 0;
    if (!result && !message && !PyErr_Occurred()) {  /* pack the outcome for `finish`: packer(...) stores table.pack(...) */
        api.rawgeti(L, K_REGISTRYINDEX, c->pref);
        api.rotate(L, first, 1);  /* the packer below the values */
        packed = api.pcallk(L, nres, 0, 0, 0, NULL) == 0;
    }
    api.settop(L, top);
    lock_give(c->lock);
    c->calls++;
    if (PyErr_Occurred()) goto failed;
    if (!result) {  /* finish raises the kryon error itself */
        PyObject *code = packed || message ? PyLong_FromLong(status) : Py_NewRef(Py_None);
        if (code) {
            result = PyObject_CallFunctionObjArgs(c->finish, code, message ? message : Py_None, NULL);
            Py_DECREF(code);
        }
    }
    Py_XDECREF(message);
    /* past 90% of the cap: collect, whatever the outcome (the generated caller's `finally`). After
     * `finish` has read the holder: a finalizer that calls back into this state cannot overwrite it */
    if (c->ms && c->ms->used - c->ms->base_usage > c->pressure) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyObject *r = PyObject_CallNoArgs(c->collect);
        if (!r) {  /* the collector's error replaces the call's outcome, as an error in a `finally` does */
            Py_XDECREF(type); Py_XDECREF(value); Py_XDECREF(tb);
            Py_CLEAR(result);
            goto failed;
        }
        Py_DECREF(r);
        PyErr_Restore(type, value, tb);
    }
    goto release;
failed: {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        if (tb) PyException_SetTraceback(value, tb);
        PyObject *r = PyObject_CallOneArg(c->fail, value);  /* always raises */
        Py_XDECREF(r);
        Py_XDECREF(type); Py_XDECREF(value); Py_XDECREF(tb);
    }
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

static PyObject *caller_calls(Caller *c, void *closure) { return PyLong_FromSsize_t(c->calls); }

static PyObject *caller_direct_gate(Caller *c, void *closure) { return PyBool_FromLong(c->glock != NULL); }

static PyObject *caller_handle_type(Caller *c, void *closure) {
    return Py_NewRef(handle_type ? handle_type : Py_None);
}

static PyGetSetDef caller_getset[] = {
    {"handle_type", (getter)caller_handle_type, NULL,
     "the FunctionRef subclass for bound handles of this caller (called straight through), or None", NULL},
    {"calls", (getter)caller_calls, NULL, "calls that took the compiled path", NULL},
    {"direct_gate", (getter)caller_direct_gate, NULL, "whether the gate's lock is read directly (else its methods are called)", NULL},
    {NULL}
};

static int caller_traverse(Caller *c, visitproc visit, void *arg) {
    Py_VISIT(c->depth); Py_VISIT(c->keep); Py_VISIT(c->rt); Py_VISIT(c->rtdict); Py_VISIT(c->acquire); Py_VISIT(c->unlock);
    Py_VISIT(c->gate); Py_VISIT(c->wake); Py_VISIT(c->tracking); Py_VISIT(c->generic); Py_VISIT(c->finish);
    Py_VISIT(c->collect); Py_VISIT(c->fail); Py_VISIT(c->glock);
    return 0;
}

static int caller_clear(Caller *c) {
    Py_CLEAR(c->depth); Py_CLEAR(c->keep); Py_CLEAR(c->rt); Py_CLEAR(c->rtdict); Py_CLEAR(c->acquire); Py_CLEAR(c->unlock);
    Py_CLEAR(c->gate); Py_CLEAR(c->wake); Py_CLEAR(c->tracking); Py_CLEAR(c->generic); Py_CLEAR(c->finish);
    Py_CLEAR(c->collect); Py_CLEAR(c->fail); Py_CLEAR(c->glock);
    return 0;
}

static void caller_dealloc(Caller *c) {
    PyObject_GC_UnTrack(c);
    caller_clear(c);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static PyTypeObject CallerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kryon_lua._ccall.Caller",
    .tp_basicsize = sizeof(Caller),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "a compiled caller of one Lua function (made by kryon_lua.ccall)",
    .tp_traverse = (traverseproc)caller_traverse,
    .tp_clear = (inquiry)caller_clear,
    .tp_dealloc = (destructor)caller_dealloc,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Caller, vectorcall),
    .tp_getset = caller_getset,
};

/* make_caller(state, lock, memstatus, limit, margin, pressure, fref, href, sref, pref, nparams, limited, time_limit,
 *             depth, keep, rt, rtdict, acquire, unlock, gate, wake, tracking, generic, finish, collect, fail,
 *             gate_lock, waiting, kref) */
static PyObject *make_caller(PyObject *self, PyObject *args) {
    unsigned long long state, ms;
    unsigned long long limit, margin, pressure;
    int fref, href, sref, pref, kref, nparams, limited;
    double time_limit;
    PyObject *lock, *depth, *keep, *rt, *rtdict, *acquire, *unlock, *gate, *wake, *tracking, *generic, *finish, *collect, *fail;
    PyObject *glock;
    Py_ssize_t waiting;
    if (!api_ready) { PyErr_SetString(PyExc_RuntimeError, "no Lua API"); return NULL; }
    if (!PyArg_ParseTuple(args, "KOKKKKiiiiipdOOOO!OOOOO!OOOOOni", &state, &lock, &ms, &limit, &margin, &pressure,
                          &fref, &href, &sref, &pref, &nparams, &limited, &time_limit, &depth, &keep, &rt, &PyDict_Type,
                          &rtdict, &acquire, &unlock,
                          &gate, &wake, &PyList_Type, &tracking, &generic, &finish, &collect, &fail, &glock, &waiting, &kref))
        return NULL;
    if (glock != Py_None && (!gate_api || strcmp(Py_TYPE(glock)->tp_name, "_thread.RLock") != 0)) {
        PyErr_SetString(PyExc_TypeError, "no gate capsule, or not a C RLock");
        return NULL;
    }
    if (waiting != 0 && (waiting < (Py_ssize_t)sizeof(PyObject)
                         || waiting + (Py_ssize_t)sizeof(PyObject *) > Py_TYPE(gate)->tp_basicsize)) {
        PyErr_SetString(PyExc_ValueError, "the _waiting slot lies outside the gate");
        return NULL;
    }
    const char *tname = strrchr(Py_TYPE(lock)->tp_name, '.');
    if (strcmp(tname ? tname + 1 : Py_TYPE(lock)->tp_name, "FastRLock") != 0) {
        PyErr_SetString(PyExc_TypeError, "not lupa's lock");
        return NULL;
    }
    Caller *c = PyObject_GC_New(Caller, &CallerType);
    if (!c) return NULL;
    c->vectorcall = (vectorcallfunc)caller_call;
    c->L = (lua_State *)(uintptr_t)state;
    c->lock = (FastRLock *)lock;
    c->ms = (MemStatus *)(uintptr_t)ms;
    c->limit = (size_t)limit; c->margin = (size_t)margin; c->pressure = (size_t)pressure;
    c->fref = fref; c->href = href; c->kref = kref; c->sref = sref; c->pref = pref; c->nparams = nparams;
    c->limited = limited;
    c->timed = limited && time_limit > 0; c->time_limit = time_limit;
    c->calls = 0;
    c->depth = Py_NewRef(depth); c->keep = Py_NewRef(keep); c->rt = Py_NewRef(rt); c->rtdict = Py_NewRef(rtdict);
    c->acquire = Py_NewRef(acquire); c->unlock = Py_NewRef(unlock); c->gate = Py_NewRef(gate);
    c->wake = Py_NewRef(wake); c->tracking = Py_NewRef(tracking); c->generic = Py_NewRef(generic);
    c->finish = Py_NewRef(finish); c->collect = Py_NewRef(collect); c->fail = Py_NewRef(fail);
    c->glock = glock == Py_None ? NULL : Py_NewRef(glock);
    c->waiting = waiting;
    PyObject_GC_Track(c);
    return (PyObject *)c;
}

static PyMethodDef methods[] = {
    {"load_api", load_api, METH_VARARGS, "resolve the Lua C API in lupa's loaded module file"},
    {"runtime_words", runtime_words, METH_O, "(state, lock) as read from a LuaRuntime"},
    {"lock_fields", lock_fields, METH_O, "(owner, count, pending, is_locked) of a FastRLock"},
    {"object_words", object_words, METH_O, "(runtime, state, ref) as read from a lupa object"},
    {"ref_pointer", ref_pointer, METH_VARARGS, "(type, pointer) of a registry entry"},
    {"string_ref", string_ref, METH_VARARGS, "a registry reference to a new Lua string"},
    {"memory_status", memory_status, METH_O, "(address, used, base, limit) of the allocator's userdata"},
    {"has_gate_api", has_gate_api, METH_NOARGS, "whether kryon-core's gate capsule was found"},
    {"slot_offset", slot_offset, METH_O, "the offset of an object slot, from its member descriptor"},
    {"read_slot", read_slot, METH_VARARGS, "the object in a slot, read at an offset"},
    {"set_handle_type", set_handle_type, METH_O, "the FunctionRef subclass compiled callers name for their bound handles"},
    {"make_caller", make_caller, METH_VARARGS, "a compiled caller"},
    {NULL}
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ccall", NULL, -1, methods};

PyMODINIT_FUNC PyInit__ccall(void) {
    if (PyType_Ready(&CallerType) < 0) return NULL;
    s_capped = PyUnicode_InternFromString("capped");
    s_deadline = PyUnicode_InternFromString("deadline");
    s_maxdepth = PyUnicode_InternFromString("maxdepth");
    s_waiting = PyUnicode_InternFromString("_waiting");
    zero = PyLong_FromLong(0);  /* a small int: every 0 of `_waiting` is this object in CPython */
    if (!s_capped || !s_deadline || !s_maxdepth || !s_waiting || !zero) return NULL;
    /* PyCapsule_Import reaches the module as an attribute of its package: import it first */
    PyObject *core = PyImport_ImportModule("kryon_core._speedups");
    Py_XDECREF(core);
    const KryonGateAPI *api = core ? PyCapsule_Import("kryon_core._speedups.gate_api", 0) : NULL;
    if (api && api->version == 1 && api->size >= sizeof(KryonGateAPI)) gate_api = api;
    else PyErr_Clear();  /* kryon-core without its compiled core: the lock's methods */
    return PyModule_Create(&module);
}
