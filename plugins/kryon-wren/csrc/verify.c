/* verify.c -- The run-time shape check of a loaded bytecode entry.
 *
 * bytecode.c proves an entry well formed instruction by instruction; this
 * proves what the interpreter assumes without checking when it runs the
 * code: that no instruction pops below its frame or pushes past the
 * function's declared slot count, that locals read or captured are below
 * the stack top, that OP_CLASS finds a name string, OP_METHOD_* a closure
 * above a class made here, OP_END_CLASS a class, OP_LIST_APPEND a list,
 * OP_MAP_INSERT a map, OP_CONSTRUCT a class receiver, and that field
 * operands stay below the fields of the class the method is bound to,
 * with `this` (slot 0 of an instance method, or an upvalue always holding
 * it) as the receiver.
 *
 * Algorithm: abstract interpretation with Kildall's worklist dataflow
 * analysis over basic blocks (the scheme of the JVM's type-inferring
 * bytecode verifier). A block's entry state is the stack depth and an
 * abstract type per slot; where paths join the depths must be equal and
 * the types meet (different types become "unknown"), so the lattice is
 * finite and the worklist ends. A function is checked after its parent,
 * which decides how its closures are used: bound as an instance method of
 * a class made here (slot 0 is `this`; fields below that class's own),
 * as a static method (slot 0 is the class; OP_CONSTRUCT allowed), or free
 * (called as a Fn: no field or constructor instructions, except through an
 * upvalue that holds `this` of an enclosing method).
 *
 * Captured locals: a nested closure may write a captured slot behind the
 * analysis' back, so a captured slot's type is unknown from the capture on,
 * and it may leave the stack only by OP_CLOSE_UPVALUE (or the frame's
 * return): an open upvalue must never alias a later temporary. A captured
 * `this` keeps its type; writes to it (through the local or an upvalue)
 * are refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opcodes.h"
#include "verify.h"

enum {
  T_UNKNOWN = 0,
  T_STRING = 1,
  T_LIST = 2,
  T_MAP = 3,
  T_THIS = 4,
  T_CLASS_RECEIVER = 5,
  T_CLASS = 0x100,     /* + own field count: a class made by OP_CLASS in this function */
  T_CLOSURE = 0x10000  /* + constant index: a closure made by OP_CLOSURE here */
};
#define CAPTURED 0x40000000
#define BASE(t) ((t) & ~CAPTURED)
#define IS_CLASS_T(t) ((t) >= T_CLASS && (t) < T_CLASS + 256)
#define IS_CLOSURE_T(t) ((t) >= T_CLOSURE && (t) < T_CLOSURE + 65536)
/* Bytes of block states one function may use (leaders x slots x 4). */
#define MAX_STATE_BYTES (16 << 20)

typedef enum { BIND_NONE = 0, BIND_FREE, BIND_INSTANCE, BIND_STATIC, BIND_MIXED } Bind;

typedef struct {
  Bind bind;
  int fields;       /* own fields of the class field operands index; -1: none */
  bool boundAbove;  /* a function enclosing it is bound as a method */
  uint8_t* thisUp;  /* per upvalue: 1 while every capture gives it `this` */
} Context;

typedef struct {
  const int* symbolArity;
  int symbolCount;
  char* error;
  size_t errorSize;
} Verifier;

typedef struct {
  ObjFn* fn;
  Context* ctx;
  Context* children; /* per constant */
  uint8_t* starts;   /* 1 at each instruction start */
  int* leader;       /* block index at a block's first instruction, else -1 */
  int32_t* states;   /* per block: depth, then maxSlots + 1 types */
  uint8_t* queued;
  int* work;
  int workCount;
  int stride;
} FnCheck;

static bool fail(Verifier* v, const char* what, int ip) {
  snprintf(v->error, v->errorSize, "%s (%d)", what, ip);
  return false;
}

static int shortAt(const uint8_t* p) { return (p[0] << 8) | p[1]; }

static const int operandBytes[] = {
#define X(name, effect, operands) operands,
    OPCODE_LIST(X)
#undef X
};

static int instructionLength(ObjFn* fn, int ip) {
  int op = fn->code[ip];
  int length = 1 + operandBytes[op];
  if (op == OP_CLOSURE) length += 2 * AS_FN(fn->constants[shortAt(fn->code + ip + 1)])->numUpvalues;
  return length;
}

static bool isBranch(int op) {
  return op == OP_JUMP || op == OP_LOOP || op == OP_JUMP_IF_FALSE || op == OP_AND || op == OP_OR;
}

static int branchTarget(ObjFn* fn, int ip) {
  int op = fn->code[ip];
  int offset = shortAt(fn->code + ip + 1);
  return op == OP_LOOP ? ip + 3 - offset : ip + 3 + offset;
}

static int meet(int a, int b) {
  if (a == b) return a;
  if (BASE(a) == T_THIS && BASE(b) == T_THIS) return T_THIS | ((a | b) & CAPTURED);
  if (BASE(a) == T_THIS && (a & CAPTURED)) return -1;
  if (BASE(b) == T_THIS && (b & CAPTURED)) return -1;
  if ((a | b) & CAPTURED) return T_UNKNOWN | CAPTURED;
  return T_UNKNOWN;
}

/* Merges `state` into block `b`'s entry state; queues it when it changed. */
static bool mergeInto(Verifier* v, FnCheck* f, int target, const int32_t* state) {
  int b = f->leader[target];
  int32_t* into = f->states + (size_t)b * (size_t)f->stride;
  if (into[0] < 0) {
    memcpy(into, state, sizeof(int32_t) * (size_t)(state[0] + 1));
  } else {
    if (into[0] != state[0]) return fail(v, "stack depth differs where paths join", target);
    bool changed = false;
    for (int i = 1; i <= state[0]; i++) {
      int m = meet(into[i], state[i]);
      if (m < 0) return fail(v, "a captured `this` meets another value", target);
      if (m != into[i]) {
        into[i] = m;
        changed = true;
      }
    }
    if (!changed) return true;
  }
  if (!f->queued[b]) {
    f->queued[b] = 1;
    f->work[f->workCount++] = target;
  }
  return true;
}

static void noteChild(FnCheck* f, int k, Bind bind, int fields, const uint8_t* upThis, int upCount) {
  Context* c = &f->children[k];
  if (c->bind == BIND_NONE) {
    c->bind = bind;
    c->fields = fields;
    for (int i = 0; i < upCount; i++) c->thisUp[i] = upThis[i];
  } else {
    if (c->bind != bind || c->fields != fields) {
      c->bind = BIND_MIXED;
      c->fields = -1;
    }
    for (int i = 0; i < upCount; i++) c->thisUp[i] &= upThis[i];
  }
}

/* Runs one block from `start` over the state in `s` (modified). */
static bool runBlock(Verifier* v, FnCheck* f, int start, int32_t* s) {
  ObjFn* fn = f->fn;
  Context* ctx = f->ctx;
  int max = fn->maxSlots;
  int* t = s + 1; /* t[i]: type of slot i; s[0]: depth */
#define DEPTH (s[0])
#define NEED(n) \
  if (DEPTH < (n)) return fail(v, "stack underflow", ip)
#define PUSH_T(type)                                                    \
  do {                                                                  \
    if (DEPTH >= max) return fail(v, "stack deeper than the function's slots", ip); \
    t[DEPTH++] = (type);                                                \
  } while (0)
  /* Pops n slots; none of them may be captured (an open upvalue would
   * alias whatever is pushed there next). */
#define POP_N(n)                                                                       \
  do {                                                                                 \
    NEED(n);                                                                           \
    for (int p_ = 0; p_ < (n); p_++)                                                   \
      if (t[DEPTH - 1 - p_] & CAPTURED) return fail(v, "a captured local popped without closing", ip); \
    DEPTH -= (n);                                                                      \
  } while (0)
#define TOP(i) (BASE(t[DEPTH - 1 - (i)]))

  for (int ip = start;;) {
    if (ip != start && f->leader[ip] >= 0) return mergeInto(v, f, ip, s);
    int op = fn->code[ip];
    const uint8_t* arg = fn->code + ip + 1;
    int length = instructionLength(fn, ip);
    switch (op) {
      case OP_CONSTANT: {
        Value c = fn->constants[shortAt(arg)];
        PUSH_T(IS_STRING(c) ? T_STRING : T_UNKNOWN);
        break;
      }
      case OP_NULL: case OP_FALSE: case OP_TRUE:
      case OP_LOAD_MODULE_VAR: case OP_IMPORT_VARIABLE: case OP_END_MODULE: case OP_IMPORT_MODULE:
        PUSH_T(T_UNKNOWN);
        break;
      case OP_NEW_LIST: PUSH_T(T_LIST); break;
      case OP_NEW_MAP: PUSH_T(T_MAP); break;
      case OP_LOAD_LOCAL: {
        int k = arg[0];
        if (k >= DEPTH) return fail(v, "local read above the stack top", ip);
        int type = t[k];
        PUSH_T((type & CAPTURED) ? (BASE(type) == T_THIS ? T_THIS : T_UNKNOWN) : type);
        break;
      }
      case OP_STORE_LOCAL: {
        int k = arg[0];
        NEED(1);
        if (k >= DEPTH) return fail(v, "local written above the stack top", ip);
        if (t[k] & CAPTURED) {
          if (BASE(t[k]) == T_THIS && TOP(0) != T_THIS) return fail(v, "`this` overwritten", ip);
        } else {
          if (t[k] == T_THIS && k == 0 && TOP(0) != T_THIS) return fail(v, "`this` overwritten", ip);
          t[k] = TOP(0);
        }
        break;
      }
      case OP_LOAD_UPVALUE:
        PUSH_T(ctx->thisUp[arg[0]] ? T_THIS : T_UNKNOWN);
        break;
      case OP_STORE_UPVALUE:
        NEED(1);
        if (ctx->thisUp[arg[0]]) return fail(v, "`this` overwritten through an upvalue", ip);
        break;
      case OP_STORE_MODULE_VAR:
        NEED(1);
        break;
      case OP_LOAD_FIELD_THIS:
      case OP_STORE_FIELD_THIS:
        if (op == OP_STORE_FIELD_THIS) NEED(1);
        if (DEPTH < 1 || BASE(t[0]) != T_THIS || ctx->bind != BIND_INSTANCE)
          return fail(v, "field of `this` outside an instance method", ip);
        if (arg[0] >= ctx->fields) return fail(v, "field index past the class's fields", ip);
        if (op == OP_LOAD_FIELD_THIS) PUSH_T(T_UNKNOWN);
        break;
      case OP_LOAD_FIELD:
      case OP_STORE_FIELD:
        NEED(op == OP_STORE_FIELD ? 2 : 1);
        if (TOP(0) != T_THIS) return fail(v, "field of a value not known to be `this`", ip);
        if (arg[0] >= ctx->fields) return fail(v, "field index past the class's fields", ip);
        POP_N(1);
        if (op == OP_LOAD_FIELD) PUSH_T(T_UNKNOWN);
        break;
      case OP_POP:
        POP_N(1);
        break;
      case OP_CLOSE_UPVALUE:
        NEED(1);
        DEPTH -= 1;
        break;
      case OP_CALL:
      case OP_SUPER: {
        /* the callee takes as many arguments as its signature names */
        int symbol = shortAt(arg + 1);
        if (symbol >= v->symbolCount || v->symbolArity[symbol] != arg[0])
          return fail(v, "argument count differs from the signature", ip);
        NEED(arg[0] + 1);
        if (op == OP_SUPER && TOP(arg[0]) != T_THIS) return fail(v, "super call on a value not known to be `this`", ip);
        POP_N(arg[0] + 1);
        PUSH_T(T_UNKNOWN);
        break;
      }
      case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_LT: case OP_GT: case OP_LTE:
      case OP_GTE: case OP_EQ: case OP_NEQ: case OP_ITERATE: case OP_ITERATOR_VALUE: {
        int symbol = shortAt(arg);
        if (symbol >= v->symbolCount || v->symbolArity[symbol] != 1)
          return fail(v, "operator signature does not take one argument", ip);
        POP_N(2);
        PUSH_T(T_UNKNOWN);
        break;
      }
      case OP_JUMP:
      case OP_LOOP:
        return mergeInto(v, f, branchTarget(fn, ip), s);
      case OP_JUMP_IF_FALSE:
        POP_N(1);
        if (!mergeInto(v, f, branchTarget(fn, ip), s)) return false;
        break;
      case OP_AND:
      case OP_OR: {
        /* jumping keeps the value; falling through pops it */
        NEED(1);
        int kept = t[DEPTH - 1];
        t[DEPTH - 1] = (kept & CAPTURED) ? kept : T_UNKNOWN;
        if (!mergeInto(v, f, branchTarget(fn, ip), s)) return false;
        POP_N(1);
        break;
      }
      case OP_RETURN:
        NEED(1);
        return true;
      case OP_END:
        return true; /* a run-time error if reached */
      case OP_CLOSURE: {
        int k = shortAt(arg);
        ObjFn* inner = AS_FN(fn->constants[k]);
        uint8_t upThis[256];
        for (int i = 0; i < inner->numUpvalues; i++) {
          int isLocal = arg[2 + 2 * i], index = arg[3 + 2 * i];
          if (isLocal) {
            if (index >= DEPTH) return fail(v, "capture of a local above the stack top", ip);
            upThis[i] = BASE(t[index]) == T_THIS;
            t[index] = upThis[i] ? (T_THIS | CAPTURED) : (T_UNKNOWN | CAPTURED);
          } else {
            upThis[i] = ctx->thisUp[index];
          }
        }
        int next = ip + length;
        int nextOp = next < fn->codeCount ? fn->code[next] : -1;
        Bind bind = BIND_FREE;
        int fields = ctx->fields;
        if ((nextOp == OP_METHOD_INSTANCE || nextOp == OP_METHOD_STATIC) && f->leader[next] < 0 && DEPTH >= 1 &&
            IS_CLASS_T(TOP(0)) && !(t[DEPTH - 1] & CAPTURED)) {
          bind = nextOp == OP_METHOD_INSTANCE ? BIND_INSTANCE : BIND_STATIC;
          fields = bind == BIND_INSTANCE ? TOP(0) - T_CLASS : -1;
        }
        noteChild(f, k, bind, fields, upThis, inner->numUpvalues);
        PUSH_T(T_CLOSURE + k);
        break;
      }
      case OP_CONSTRUCT:
        if (DEPTH < 1 || BASE(t[0]) != T_CLASS_RECEIVER || ctx->bind != BIND_STATIC)
          return fail(v, "construct outside a static method", ip);
        t[0] = T_UNKNOWN;
        break;
      case OP_CLASS:
        NEED(2);
        if (TOP(1) != T_STRING) return fail(v, "class without a name string", ip);
        POP_N(2);
        PUSH_T(T_CLASS + arg[0]);
        break;
      case OP_METHOD_INSTANCE:
      case OP_METHOD_STATIC: {
        NEED(2);
        if (!IS_CLOSURE_T(TOP(0)) || !IS_CLASS_T(TOP(1))) return fail(v, "method bound without a class and closure", ip);
        int symbol = shortAt(arg);
        ObjFn* method = AS_FN(fn->constants[TOP(0) - T_CLOSURE]);
        if (symbol >= v->symbolCount || v->symbolArity[symbol] != method->arity)
          return fail(v, "method arity differs from its signature", ip);
        POP_N(1);
        break;
      }
      case OP_FOREIGN_INSTANCE:
      case OP_FOREIGN_STATIC:
        NEED(1);
        if (!IS_CLASS_T(TOP(0))) return fail(v, "foreign method bound without a class", ip);
        if (shortAt(arg) >= v->symbolCount) return fail(v, "foreign method name out of range", ip);
        break;
      case OP_LIST_APPEND:
        NEED(2);
        if (TOP(1) != T_LIST) return fail(v, "append to a value not known to be a list", ip);
        POP_N(1);
        break;
      case OP_MAP_INSERT:
        NEED(3);
        if (TOP(2) != T_MAP) return fail(v, "insert into a value not known to be a map", ip);
        POP_N(2);
        break;
      case OP_END_CLASS:
        NEED(2);
        if (!IS_CLASS_T(TOP(1))) return fail(v, "class attributes without a class", ip);
        POP_N(1);
        break;
      default:
        return fail(v, "instruction not allowed in an entry", ip);
    }
    ip += length;
    if (ip >= fn->codeCount) return fail(v, "code runs off its end", ip);
  }
#undef DEPTH
#undef NEED
#undef PUSH_T
#undef POP_N
#undef TOP
}

static bool verifyFn(Verifier* v, ObjFn* fn, Context* ctx, int depth);

static bool checkOne(Verifier* v, FnCheck* f) {
  ObjFn* fn = f->fn;
  int n = fn->codeCount;
  int blocks = 0;
  for (int ip = 0; ip < n; ip += instructionLength(fn, ip)) {
    f->starts[ip] = 1;
    int op = fn->code[ip];
    int next = ip + instructionLength(fn, ip);
    if (isBranch(op)) {
      f->leader[branchTarget(fn, ip)] = 1;
      if (next < n) f->leader[next] = 1;
    } else if ((op == OP_RETURN || op == OP_END) && next < n) {
      f->leader[next] = 1;
    }
  }
  f->leader[0] = 1;
  for (int ip = 0; ip < n; ip++) {
    if (f->leader[ip] > 0) f->leader[ip] = blocks++;
    else f->leader[ip] = -1;
  }
  f->stride = fn->maxSlots + 2;
  if ((size_t)blocks * (size_t)f->stride * sizeof(int32_t) > MAX_STATE_BYTES)
    return fail(v, "function too large to verify", n);
  f->states = (int32_t*)malloc((size_t)blocks * (size_t)f->stride * sizeof(int32_t));
  f->queued = (uint8_t*)calloc((size_t)blocks, 1);
  f->work = (int*)malloc(sizeof(int) * (size_t)(blocks + 1));
  int32_t* state = (int32_t*)malloc(sizeof(int32_t) * (size_t)f->stride);
  if (f->states == NULL || f->queued == NULL || f->work == NULL || state == NULL) kwFatalOutOfMemory();
  for (int b = 0; b < blocks; b++) f->states[(size_t)b * (size_t)f->stride] = -1;

  /* The entry state: the receiver (or the closure) in slot 0, then the arguments. */
  if (fn->arity + 1 > fn->maxSlots) {
    free(state);
    return fail(v, "arguments exceed the function's slots", 0);
  }
  state[0] = fn->arity + 1;
  for (int i = 1; i <= fn->maxSlots + 1; i++) state[i] = T_UNKNOWN;
  if (f->ctx->bind == BIND_INSTANCE) state[1] = T_THIS;
  if (f->ctx->bind == BIND_STATIC) state[1] = T_CLASS_RECEIVER;
  bool ok = mergeInto(v, f, 0, state);
  while (ok && f->workCount > 0) {
    int start = f->work[--f->workCount];
    int b = f->leader[start];
    f->queued[b] = 0;
    memcpy(state, f->states + (size_t)b * (size_t)f->stride, sizeof(int32_t) * (size_t)f->stride);
    ok = runBlock(v, f, start, state);
  }
  free(state);
  return ok;
}

static bool verifyFn(Verifier* v, ObjFn* fn, Context* ctx, int depth) {
  if ((ctx->bind == BIND_INSTANCE || ctx->bind == BIND_STATIC) && ctx->boundAbove)
    return fail(v, "a method bound inside another method", depth);
  int n = fn->codeCount;
  FnCheck f;
  memset(&f, 0, sizeof f);
  f.fn = fn;
  f.ctx = ctx;
  f.starts = (uint8_t*)calloc((size_t)n + 1, 1);
  f.leader = (int*)calloc((size_t)n + 1, sizeof(int));
  f.children = (Context*)calloc((size_t)fn->constantCount + 1, sizeof(Context));
  if (f.starts == NULL || f.leader == NULL || f.children == NULL) kwFatalOutOfMemory();
  bool ok = true;
  for (int i = 0; i < fn->constantCount; i++) {
    if (!IS_FN(fn->constants[i])) continue;
    f.children[i].thisUp = (uint8_t*)calloc((size_t)AS_FN(fn->constants[i])->numUpvalues + 1, 1);
    if (f.children[i].thisUp == NULL) kwFatalOutOfMemory();
  }
  ok = checkOne(v, &f);
  for (int i = 0; i < fn->constantCount && ok; i++) {
    if (!IS_FN(fn->constants[i])) continue;
    Context* c = &f.children[i];
    if (c->bind == BIND_NONE || c->bind == BIND_MIXED) {
      /* never made into a closure, or made in several ways: free, no `this` */
      c->bind = BIND_FREE;
      c->fields = -1;
      memset(c->thisUp, 0, (size_t)AS_FN(fn->constants[i])->numUpvalues);
    }
    c->boundAbove = ctx->boundAbove || ctx->bind == BIND_INSTANCE || ctx->bind == BIND_STATIC;
    if (c->bind == BIND_FREE && !c->boundAbove) c->fields = -1;
    ok = verifyFn(v, AS_FN(fn->constants[i]), c, depth + 1);
  }
  for (int i = 0; i < fn->constantCount; i++) free(f.children[i].thisUp);
  free(f.children);
  free(f.starts);
  free(f.leader);
  free(f.states);
  free(f.queued);
  free(f.work);
  return ok;
}

bool bytecodeVerify(ObjFn* module, const int* symbolArity, int symbolCount, char* error, size_t errorSize) {
  Verifier v = {symbolArity, symbolCount, error, errorSize};
  uint8_t none[1] = {0};
  Context top = {BIND_FREE, -1, false, none};
  return verifyFn(&v, module, &top, 0);
}

int signatureArity(const char* name, int length) {
  int arity = 0;
  for (int i = 1; i < length; i++) {
    char before = name[i - 1];
    if (name[i] == '_' && (before == '(' || before == ',' || before == '[')) arity++;
  }
  return arity;
}
