/* bytecode.c -- Writing and reading the serialized form of a compiled module.
 *
 * Layout (integers little-endian):
 *   header:  "KWBC", u16 format version, u16 zero, u32 VM build hash,
 *            u32 payload length, u32 FNV-1a hash of the payload
 *   payload: module variables: u32 count, each (str name, u8 kind: 0 must
 *            already exist (a core name), 1 starts null, 2 starts as the
 *            f64 that follows)
 *            method names:     u32 count, each str
 *            the function tree (fn record of the module body)
 *   fn:      u8 arity, u16 upvalues, u32 slots, str debug name,
 *            u32 constants, each (u8 tag: 0 f64, 1 str, 2 nested fn),
 *            u32 code length, code, positions (u32 run count, runs of
 *            equal positions as varint deltas; see putPositions),
 *            u32 named locals, each (str name, u32 slot, u32 start, i32 end)
 *   str:     u32 length, bytes
 * Code operands that name a method or a module variable hold the index
 * into the payload's own tables; the reader resolves the names in the
 * loading VM and rewrites the operands, so no symbol index of the writing
 * VM is ever used.
 *
 * The reader trusts nothing: every read is bounds-checked, every count is
 * checked against the bytes left before anything is allocated, and every
 * instruction is decoded and its operands checked (opcode known, constant
 * index and kind, local slot below the function's slot count, upvalue
 * index, jump targets on instruction starts inside the code, code ending
 * in OP_END) before the module is touched. */
#include "bytecode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opcodes.h"
#include "verify.h"

#ifndef KW_BUILD_HASH
#define KW_BUILD_HASH 0u
#endif

#define MAGIC "KWBC"
#define HEADER_SIZE 20
#define MAX_NESTING 64       /* nested functions (the compiler allows 48) */
#define MAX_SLOTS 65536      /* a function's stack slots */
#define MAX_NAME 65536       /* bytes of one name or string constant */

enum { VAR_EXISTING = 0, VAR_NULL = 1, VAR_NUM = 2 };
enum { CONST_NUM = 0, CONST_STRING = 1, CONST_FN = 2 };

static char errorText[160];

const char* bytecodeError(void) { return errorText; }
uint32_t bytecodeBuildHash(void) { return (uint32_t)KW_BUILD_HASH; }

static void setError(const char* message, int detail) {
  if (detail >= 0) {
    snprintf(errorText, sizeof errorText, "%s (%d)", message, detail);
  } else {
    snprintf(errorText, sizeof errorText, "%s", message);
  }
}

/* FNV-1a, 32 bits: a cheap check that catches torn and bit-flipped entries
 * before the structure is parsed. */
static uint32_t fnv1a(const uint8_t* data, size_t length) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < length; i++) {
    h ^= data[i];
    h *= 16777619u;
  }
  return h;
}

static int shortAt(const uint8_t* p) { return (p[0] << 8) | p[1]; }
static void putShortAt(uint8_t* p, int v) {
  p[0] = (uint8_t)((v >> 8) & 0xff);
  p[1] = (uint8_t)(v & 0xff);
}

/* Operand bytes of each opcode (CLOSURE adds two per upvalue of its fn). */
static const int operandBytes[] = {
#define X(name, effect, operands) operands,
    OPCODE_LIST(X)
#undef X
};
#define OPCODE_COUNT ((int)(sizeof operandBytes / sizeof operandBytes[0]))

/* Where a method-name operand (a short) sits after the opcode, or -1. */
static int symbolOperand(int op) {
  switch (op) {
    case OP_CALL: case OP_SUPER: return 1;
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_LT: case OP_GT: case OP_LTE:
    case OP_GTE: case OP_EQ: case OP_NEQ: case OP_ITERATE: case OP_ITERATOR_VALUE:
    case OP_METHOD_INSTANCE: case OP_METHOD_STATIC: case OP_FOREIGN_INSTANCE: case OP_FOREIGN_STATIC:
      return 0;
    default:
      return -1;
  }
}

static bool isModuleVarOp(int op) { return op == OP_LOAD_MODULE_VAR || op == OP_STORE_MODULE_VAR; }

/* Positions are written as runs: a function's code bytes share their
 * instruction's position, and from one instruction to the next the line
 * rarely changes and the column moves a little. Each run of equal
 * positions is a varint head ((count - 1) << 1 | line changed), then the
 * line's change from the previous run when it changed, then the column's
 * change, both zigzag-encoded; every number is an unsigned LEB128 varint.
 * About 2 bytes per instruction instead of 4 per code byte. */
static uint32_t zigzag(int32_t v) { return ((uint32_t)v << 1) ^ (uint32_t)(v >> 31); }
static int32_t unzigzag(uint32_t v) { return (int32_t)(v >> 1) ^ -(int32_t)(v & 1); }

/* ==== Writer ========================================================== */

typedef struct {
  uint8_t* data;
  size_t length;
  size_t capacity;
} Buffer;

static void put(Buffer* b, const void* bytes, size_t n) {
  if (b->length + n > b->capacity) {
    size_t capacity = b->capacity < 256 ? 256 : b->capacity;
    while (capacity < b->length + n) capacity *= 2;
    b->data = (uint8_t*)realloc(b->data, capacity);
    if (b->data == NULL) kwFatalOutOfMemory();
    b->capacity = capacity;
  }
  memcpy(b->data + b->length, bytes, n);
  b->length += n;
}

static void putU8(Buffer* b, uint32_t v) {
  uint8_t x = (uint8_t)v;
  put(b, &x, 1);
}
static void putU16(Buffer* b, uint32_t v) {
  uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
  put(b, x, 2);
}
static void putU32(Buffer* b, uint32_t v) {
  uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  put(b, x, 4);
}
static void putF64(Buffer* b, double d) {
  uint64_t bits;
  memcpy(&bits, &d, 8);
  putU32(b, (uint32_t)bits);
  putU32(b, (uint32_t)(bits >> 32));
}
static void putVarint(Buffer* b, uint32_t v) {
  while (v >= 0x80) {
    putU8(b, (v & 0x7f) | 0x80);
    v >>= 7;
  }
  putU8(b, v);
}

static void putPositions(Buffer* b, const int* lines, int count) {
  int runs = 0;
  for (int i = 0; i < count; i++)
    if (i == 0 || lines[i] != lines[i - 1]) runs++;
  putU32(b, (uint32_t)runs);
  int previousLine = 0, previousColumn = 0;
  for (int i = 0; i < count;) {
    int j = i + 1;
    while (j < count && lines[j] == lines[i]) j++;
    int line = POSITION_LINE(lines[i]), column = POSITION_COLUMN(lines[i]);
    putVarint(b, ((uint32_t)(j - i - 1) << 1) | (line != previousLine));
    if (line != previousLine) putVarint(b, zigzag(line - previousLine));
    putVarint(b, zigzag(column - previousColumn));
    previousLine = line;
    previousColumn = column;
    i = j;
  }
}

static void putStr(Buffer* b, const char* s, size_t n) {
  putU32(b, (uint32_t)n);
  put(b, s, n);
}

typedef struct {
  VM* vm;
  int* symbolIds;   /* VM symbol -> payload index, -1 when not yet used */
  int* symbols;     /* payload index -> VM symbol */
  int symbolCount;
} Writer;

static int localSymbol(Writer* w, int symbol) {
  if (w->symbolIds[symbol] == -1) {
    w->symbolIds[symbol] = w->symbolCount;
    w->symbols[w->symbolCount++] = symbol;
  }
  return w->symbolIds[symbol];
}

static int codeLength(ObjFn* fn, int ip) {
  int op = fn->code[ip];
  int length = 1 + operandBytes[op];
  if (op == OP_CLOSURE) length += 2 * AS_FN(fn->constants[shortAt(fn->code + ip + 1)])->numUpvalues;
  return length;
}

static bool hasForeign(ObjFn* fn) {
  for (int ip = 0; ip < fn->codeCount; ip += codeLength(fn, ip)) {
    int op = fn->code[ip];
    if (op == OP_FOREIGN_INSTANCE || op == OP_FOREIGN_STATIC) return true;
    if (op == OP_BREAKPOINT || op >= OPCODE_COUNT) return false; /* refused below */
  }
  return false;
}

/* A foreign method's id is the writing host's (host_bind_foreign): the
 * entry names it by the -1 of an extra constant instead, and the loading VM
 * asks its own host when the method is defined (vm.c defineForeign). */
static bool writeFn(Writer* w, Buffer* b, ObjFn* fn) {
  bool foreign = hasForeign(fn);
  if (foreign && fn->constantCount >= 65536) {
    setError("too many constants for the foreign methods' binding", -1);
    return false;
  }
  putU8(b, (uint32_t)fn->arity);
  putU16(b, (uint32_t)fn->numUpvalues);
  putU32(b, (uint32_t)fn->maxSlots);
  const char* name = fn->debugName != NULL ? fn->debugName : "";
  putStr(b, name, strlen(name));
  putU32(b, (uint32_t)fn->constantCount + (foreign ? 1 : 0));
  for (int i = 0; i < fn->constantCount; i++) {
    Value c = fn->constants[i];
    if (IS_NUM(c)) {
      putU8(b, CONST_NUM);
      putF64(b, AS_NUM(c));
    } else if (IS_STRING(c)) {
      putU8(b, CONST_STRING);
      putStr(b, AS_CSTRING(c), AS_STRING(c)->length);
    } else if (IS_FN(c)) {
      putU8(b, CONST_FN);
      if (!writeFn(w, b, AS_FN(c))) return false;
    } else {
      setError("a constant of this kind cannot be written", -1);
      return false;
    }
  }
  if (foreign) {
    putU8(b, CONST_NUM);
    putF64(b, -1);
  }
  /* The code, with method symbols rewritten to payload indices. */
  uint8_t* code = (uint8_t*)malloc((size_t)fn->codeCount + 1);
  if (code == NULL) kwFatalOutOfMemory();
  memcpy(code, fn->code, (size_t)fn->codeCount);
  for (int ip = 0; ip < fn->codeCount;) {
    int op = code[ip];
    if (op == OP_FOREIGN_INSTANCE || op == OP_FOREIGN_STATIC) putShortAt(code + ip + 3, fn->constantCount);
    if (op == OP_BREAKPOINT || op >= OPCODE_COUNT) {
      free(code);
      setError("patched or unknown instruction", ip);
      return false;
    }
    int at = symbolOperand(op);
    if (at >= 0) putShortAt(code + ip + 1 + at, localSymbol(w, shortAt(code + ip + 1 + at)));
    int length = 1 + operandBytes[op];
    if (op == OP_CLOSURE) length += 2 * AS_FN(fn->constants[shortAt(code + ip + 1)])->numUpvalues;
    ip += length;
  }
  putU32(b, (uint32_t)fn->codeCount);
  put(b, code, (size_t)fn->codeCount);
  free(code);
  putPositions(b, fn->lines, fn->codeCount);
  FnDebug* d = fn->debug;
  int localCount = d == NULL ? 0 : d->localCount;
  putU32(b, (uint32_t)localCount);
  for (int i = 0; i < localCount; i++) {
    DebugLocal* l = &d->locals[i];
    putStr(b, l->name, strlen(l->name));
    putU32(b, (uint32_t)l->slot);
    putU32(b, (uint32_t)l->start);
    putU32(b, (uint32_t)l->end);
  }
  return true;
}

static bool serialize(VM* vm, ObjModule* module, int coreCount, ObjFn* fn, Buffer* out) {
  Writer w;
  w.vm = vm;
  int count = vm->methodNames.count;
  w.symbolIds = (int*)malloc(sizeof(int) * (size_t)(count + 1));
  w.symbols = (int*)malloc(sizeof(int) * (size_t)(count + 1));
  if (w.symbolIds == NULL || w.symbols == NULL) kwFatalOutOfMemory();
  for (int i = 0; i < count; i++) w.symbolIds[i] = -1;
  w.symbolCount = 0;
  Buffer tree = {NULL, 0, 0};
  bool ok = writeFn(&w, &tree, fn);
  if (ok) {
    Buffer payload = {NULL, 0, 0};
    putU32(&payload, (uint32_t)module->variableCount);
    for (int i = 0; i < module->variableCount; i++) {
      putStr(&payload, module->variableNames.names[i], (size_t)module->variableNames.lengths[i]);
      Value v = module->variables[i];
      if (i < coreCount) {
        putU8(&payload, VAR_EXISTING);
      } else if (IS_NUM(v)) {
        putU8(&payload, VAR_NUM);
        putF64(&payload, AS_NUM(v));
      } else {
        putU8(&payload, VAR_NULL);
      }
    }
    putU32(&payload, (uint32_t)w.symbolCount);
    for (int i = 0; i < w.symbolCount; i++) {
      int s = w.symbols[i];
      putStr(&payload, vm->methodNames.names[s], (size_t)vm->methodNames.lengths[s]);
    }
    put(&payload, tree.data, tree.length);
    put(out, MAGIC, 4);
    putU16(out, BYTECODE_FORMAT_VERSION);
    putU16(out, 0);
    putU32(out, bytecodeBuildHash());
    putU32(out, (uint32_t)payload.length);
    putU32(out, fnv1a(payload.data, payload.length));
    put(out, payload.data, payload.length);
    free(payload.data);
  }
  free(tree.data);
  free(w.symbolIds);
  free(w.symbols);
  return ok;
}

ObjModule* vmCreateModule(VM* vm, ObjString* name);

int bytecodeCompile(VM* vm, const char* moduleName, const char* source, uint8_t** out, int* outLength) {
  errorText[0] = '\0';
  *out = NULL;
  *outLength = 0;
  vmClearError(vm);
  ObjModule* module = vmCreateModule(vm, newString(vm, moduleName));
  int coreCount = module->variableCount;
  vmPushRoot(vm, (Obj*)module);
  ObjFn* fn = compileModule(vm, module, source);
  if (fn == NULL) {
    vmPopRoot(vm);
    return RESULT_COMPILE_ERROR;
  }
  vmPushRoot(vm, (Obj*)fn);
  Buffer buffer = {NULL, 0, 0};
  bool ok = serialize(vm, module, coreCount, fn, &buffer);
  vmPopRoot(vm);
  vmPopRoot(vm);
  if (!ok) {
    free(buffer.data);
    return BYTECODE_NOT_CACHEABLE;
  }
  *out = buffer.data;
  *outLength = (int)buffer.length;
  return RESULT_SUCCESS;
}

/* ==== Reader ========================================================== */

typedef struct {
  const uint8_t* p;
  const uint8_t* end;
  bool failed;
} Reader;

typedef struct {
  const char* name;
  uint32_t length;
} Name;

static bool need(Reader* r, size_t n, const char* what) {
  if (r->failed) return false;
  if ((size_t)(r->end - r->p) < n) {
    setError(what, -1);
    r->failed = true;
    return false;
  }
  return true;
}
static uint32_t getU8(Reader* r) {
  if (!need(r, 1, "truncated entry")) return 0;
  return *r->p++;
}
static uint32_t getU16(Reader* r) {
  if (!need(r, 2, "truncated entry")) return 0;
  uint32_t v = (uint32_t)r->p[0] | ((uint32_t)r->p[1] << 8);
  r->p += 2;
  return v;
}
static uint32_t getU32(Reader* r) {
  if (!need(r, 4, "truncated entry")) return 0;
  uint32_t v = (uint32_t)r->p[0] | ((uint32_t)r->p[1] << 8) | ((uint32_t)r->p[2] << 16) |
               ((uint32_t)r->p[3] << 24);
  r->p += 4;
  return v;
}
static uint32_t getCount(Reader* r, size_t itemSize, const char* what);

/* An unsigned LEB128 varint of at most 32 bits. */
static uint32_t getVarint(Reader* r) {
  uint32_t v = 0;
  for (int shift = 0; shift < 35; shift += 7) {
    uint32_t byte = getU8(r);
    if (r->failed) return 0;
    if (shift == 28 && byte > 0x0f) break;
    v |= (byte & 0x7f) << shift;
    if (!(byte & 0x80)) return v;
  }
  setError("bad varint", -1);
  r->failed = true;
  return 0;
}

/* Fills lines[0..count) from the position runs; the runs cover the code
 * exactly, lines and columns stay in range. */
static bool getPositions(Reader* r, int* lines, uint32_t count) {
  uint32_t runs = getCount(r, 2, "too many position runs");
  uint32_t at = 0;
  int64_t line = 0, column = 0;
  for (uint32_t i = 0; i < runs && !r->failed; i++) {
    uint32_t head = getVarint(r);
    if (head & 1) line += unzigzag(getVarint(r));
    column += unzigzag(getVarint(r));
    uint32_t n = (head >> 1) + 1;
    if (r->failed) break;
    if (n > count - at || line < 0 || line > MAX_SOURCE_LINE || column < 0 || column > MAX_SOURCE_COLUMN) {
      setError("bad position run", (int)i);
      r->failed = true;
      break;
    }
    for (uint32_t k = 0; k < n; k++) lines[at++] = POSITION((int)line, (int)column);
  }
  if (!r->failed && at != count) {
    setError("positions do not cover the code", (int)at);
    r->failed = true;
  }
  return !r->failed;
}

static double getF64(Reader* r) {
  uint64_t lo = getU32(r);
  uint64_t hi = getU32(r);
  uint64_t bits = lo | (hi << 32);
  double d;
  memcpy(&d, &bits, 8);
  return d;
}
static Name getStr(Reader* r) {
  Name n = {"", 0};
  uint32_t length = getU32(r);
  if (r->failed) return n;
  if (length > MAX_NAME) {
    setError("string too long", (int)length);
    r->failed = true;
    return n;
  }
  if (!need(r, length, "truncated string")) return n;
  n.name = (const char*)r->p;
  n.length = length;
  r->p += length;
  return n;
}
/* A count of items of at least `itemSize` bytes each must fit in what is left. */
static uint32_t getCount(Reader* r, size_t itemSize, const char* what) {
  uint32_t n = getU32(r);
  if (r->failed) return 0;
  if ((size_t)n > (size_t)(r->end - r->p) / itemSize) {
    setError(what, (int)(n > 0x7fffffff ? -1 : (int)n));
    r->failed = true;
    return 0;
  }
  return n;
}

static bool refuse(Reader* r, const char* what, int detail) {
  setError(what, detail);
  r->failed = true;
  return false;
}

typedef struct {
  VM* vm;
  ObjModule* module;
  uint32_t varCount;
  uint32_t symbolCount;
} LoadContext;

/* Decodes fn's code and checks every instruction and operand. */
static bool checkCode(Reader* r, LoadContext* ctx, ObjFn* fn) {
  int n = fn->codeCount;
  uint8_t* starts = (uint8_t*)calloc((size_t)n + 1, 1);
  if (starts == NULL) kwFatalOutOfMemory();
  bool ok = true;
  int last = -1;
  for (int ip = 0; ip < n && ok;) {
    int op = fn->code[ip];
    starts[ip] = 1;
    last = op;
    if (op >= OPCODE_COUNT || op == OP_BREAKPOINT) {
      ok = refuse(r, "instruction not allowed in an entry", ip);
      break;
    }
    int length = 1 + operandBytes[op];
    if (ip + length > n) {
      ok = refuse(r, "instruction runs past the code", ip);
      break;
    }
    const uint8_t* arg = fn->code + ip + 1;
    switch (op) {
      case OP_CONSTANT: {
        int k = shortAt(arg);
        if (k >= fn->constantCount || !(IS_NUM(fn->constants[k]) || IS_STRING(fn->constants[k])))
          ok = refuse(r, "bad constant operand", ip);
        break;
      }
      case OP_IMPORT_MODULE:
      case OP_IMPORT_VARIABLE: {
        int k = shortAt(arg);
        if (k >= fn->constantCount || !IS_STRING(fn->constants[k])) ok = refuse(r, "bad import operand", ip);
        break;
      }
      case OP_FOREIGN_INSTANCE:
      case OP_FOREIGN_STATIC: {
        /* never a host's id: -1, bound by name in the loading VM */
        int k = shortAt(arg + 2);
        if (k >= fn->constantCount || !IS_NUM(fn->constants[k]) || AS_NUM(fn->constants[k]) != -1)
          ok = refuse(r, "foreign method operand is not -1", ip);
        break;
      }
      case OP_LOAD_LOCAL:
      case OP_STORE_LOCAL:
        if (arg[0] >= fn->maxSlots) ok = refuse(r, "local slot out of range", ip);
        break;
      case OP_LOAD_UPVALUE:
      case OP_STORE_UPVALUE:
        if (arg[0] >= fn->numUpvalues) ok = refuse(r, "upvalue index out of range", ip);
        break;
      case OP_LOAD_MODULE_VAR:
      case OP_STORE_MODULE_VAR:
        if ((uint32_t)shortAt(arg) >= ctx->varCount) ok = refuse(r, "module variable out of range", ip);
        break;
      case OP_CALL:
      case OP_SUPER:
        if (arg[0] > MAX_PARAMETERS) ok = refuse(r, "too many arguments", ip);
        break;
      case OP_JUMP:
      case OP_JUMP_IF_FALSE:
      case OP_AND:
      case OP_OR:
        if (ip + length + shortAt(arg) >= n) ok = refuse(r, "jump past the code", ip);
        break;
      case OP_LOOP:
        if (ip + length - shortAt(arg) < 0) ok = refuse(r, "loop before the code", ip);
        break;
      case OP_CLOSURE: {
        int k = shortAt(arg);
        if (k >= fn->constantCount || !IS_FN(fn->constants[k])) {
          ok = refuse(r, "bad closure operand", ip);
          break;
        }
        ObjFn* inner = AS_FN(fn->constants[k]);
        length += 2 * inner->numUpvalues;
        if (ip + length > n) {
          ok = refuse(r, "closure runs past the code", ip);
          break;
        }
        for (int i = 0; i < inner->numUpvalues && ok; i++) {
          int isLocal = arg[2 + 2 * i], index = arg[3 + 2 * i];
          if (isLocal > 1 || (isLocal ? index >= fn->maxSlots : index >= fn->numUpvalues))
            ok = refuse(r, "bad upvalue capture", ip);
        }
        break;
      }
      default:
        break;
    }
    int at = symbolOperand(op);
    if (ok && at >= 0 && (uint32_t)shortAt(arg + at) >= ctx->symbolCount)
      ok = refuse(r, "method name out of range", ip);
    ip += length;
  }
  if (ok && last != OP_END) ok = refuse(r, "code does not end with OP_END", -1);
  /* Jump targets must be instruction starts (second pass: all starts known). */
  for (int ip = 0; ip < n && ok;) {
    int op = fn->code[ip];
    int length = 1 + operandBytes[op];
    if (op == OP_CLOSURE) length += 2 * AS_FN(fn->constants[shortAt(fn->code + ip + 1)])->numUpvalues;
    int target = -1;
    if (op == OP_JUMP || op == OP_JUMP_IF_FALSE || op == OP_AND || op == OP_OR) {
      target = ip + length + shortAt(fn->code + ip + 1);
    } else if (op == OP_LOOP) {
      target = ip + length - shortAt(fn->code + ip + 1);
    }
    if (target >= 0 && !starts[target]) ok = refuse(r, "jump into an instruction", ip);
    ip += length;
  }
  free(starts);
  return ok;
}

static ObjFn* readFn(Reader* r, LoadContext* ctx, int depth, bool isModule, ObjFn* parent, int constantIndex) {
  if (depth > MAX_NESTING) {
    refuse(r, "functions nested too deeply", depth);
    return NULL;
  }
  VM* vm = ctx->vm;
  uint32_t arity = getU8(r);
  uint32_t numUpvalues = getU16(r);
  uint32_t maxSlots = getU32(r);
  Name name = getStr(r);
  if (r->failed) return NULL;
  if (arity > MAX_PARAMETERS || numUpvalues > 256 || maxSlots > MAX_SLOTS || maxSlots < arity + 1 ||
      (isModule && (arity != 0 || numUpvalues != 0))) {
    refuse(r, "bad function header", -1);
    return NULL;
  }
  ObjFn* fn = newFn(vm, ctx->module, (int)maxSlots);
  /* Keep it reachable: the parent's constant slot, or a root for the top. */
  if (parent != NULL) {
    parent->constants[constantIndex] = OBJ_VAL(fn);
  } else {
    vmPushRoot(vm, (Obj*)fn);
  }
  fn->arity = (int)arity;
  fn->numUpvalues = (int)numUpvalues;
  if (name.length > 0) {
    fn->debugName = (char*)malloc(name.length + 1);
    if (fn->debugName == NULL) kwFatalOutOfMemory();
    memcpy(fn->debugName, name.name, name.length);
    fn->debugName[name.length] = '\0';
  }
  uint32_t constantCount = getCount(r, 1, "too many constants");
  if (!r->failed && constantCount > 65536) refuse(r, "too many constants", (int)constantCount);
  if (!r->failed && constantCount > 0) {
    fn->constants = ALLOCATE(vm, Value, constantCount);
    for (uint32_t i = 0; i < constantCount; i++) fn->constants[i] = NULL_VAL;
    fn->constantCapacity = fn->constantCount = (int)constantCount;
  }
  for (uint32_t i = 0; i < constantCount && !r->failed; i++) {
    uint32_t tag = getU8(r);
    if (tag == CONST_NUM) {
      fn->constants[i] = NUM_VAL(getF64(r));
    } else if (tag == CONST_STRING) {
      Name s = getStr(r);
      if (!r->failed) fn->constants[i] = OBJ_VAL(newStringLength(vm, s.name, s.length));
    } else if (tag == CONST_FN) {
      readFn(r, ctx, depth + 1, false, fn, (int)i);
    } else if (!r->failed) {
      refuse(r, "unknown constant tag", (int)tag);
    }
  }
  uint32_t codeCount = getCount(r, 1, "code longer than the entry");
  if (!r->failed && codeCount == 0) refuse(r, "empty code", -1);
  if (!r->failed) {
    fn->code = (uint8_t*)reallocate(vm, NULL, 0, codeCount);
    fn->lines = (int*)reallocate(vm, NULL, 0, sizeof(int) * codeCount);
    fn->codeCapacity = fn->codeCount = (int)codeCount;
    memcpy(fn->code, r->p, codeCount);
    r->p += codeCount;
    getPositions(r, fn->lines, codeCount);
  }
  uint32_t localCount = getCount(r, 16, "too many locals");
  for (uint32_t i = 0; i < localCount && !r->failed; i++) {
    Name local = getStr(r);
    uint32_t slot = getU32(r), start = getU32(r);
    int32_t end = (int32_t)getU32(r);
    if (r->failed) break;
    /* A negative slot names a captured variable for the debugger: upvalue
     * -1 - slot, from its capture to the end of the function (end -1). */
    int32_t captured = -1 - (int32_t)slot;
    bool upvalueName = (int32_t)slot < 0 && captured < fn->numUpvalues && start <= codeCount && end == -1;
    if (!upvalueName &&
        (slot >= maxSlots || start > codeCount || end < (int32_t)start || end > (int32_t)codeCount)) {
      refuse(r, "bad local variable record", (int)i);
      break;
    }
    fnDebugLocalBegin(fn, local.name, (int)local.length, (int)slot);
    fn->debug->locals[fn->debug->localCount - 1].start = (int)start;
    fn->debug->locals[fn->debug->localCount - 1].end = end;
  }
  if (!r->failed) checkCode(r, ctx, fn);
  if (parent == NULL) vmPopRoot(vm);
  return r->failed ? NULL : fn;
}

/* Rewrites payload indices in the code to this VM's method symbols and
 * the module's variable indices. */
static void relink(ObjFn* fn, const int* symbols, const int* vars) {
  for (int ip = 0; ip < fn->codeCount;) {
    int op = fn->code[ip];
    int at = symbolOperand(op);
    if (at >= 0) putShortAt(fn->code + ip + 1 + at, symbols[shortAt(fn->code + ip + 1 + at)]);
    if (isModuleVarOp(op)) putShortAt(fn->code + ip + 1, vars[shortAt(fn->code + ip + 1)]);
    int length = 1 + operandBytes[op];
    if (op == OP_CLOSURE) length += 2 * AS_FN(fn->constants[shortAt(fn->code + ip + 1)])->numUpvalues;
    ip += length;
  }
  for (int i = 0; i < fn->constantCount; i++) {
    if (IS_FN(fn->constants[i])) relink(AS_FN(fn->constants[i]), symbols, vars);
  }
}

ObjFn* bytecodeLoad(VM* vm, ObjModule* module, const uint8_t* data, int length) {
  errorText[0] = '\0';
  if (data == NULL || length < HEADER_SIZE) {
    setError("entry shorter than its header", length);
    return NULL;
  }
  Reader header = {data, data + HEADER_SIZE, false};
  if (memcmp(data, MAGIC, 4) != 0) {
    setError("not a Kryon Wren bytecode entry", -1);
    return NULL;
  }
  header.p += 4;
  uint32_t version = getU16(&header);
  uint32_t zero = getU16(&header);
  uint32_t build = getU32(&header);
  uint32_t payloadLength = getU32(&header);
  uint32_t checksum = getU32(&header);
  if (version != BYTECODE_FORMAT_VERSION || zero != 0) {
    setError("format version not supported", (int)version);
    return NULL;
  }
  if (build != bytecodeBuildHash()) {
    setError("written by another VM build", -1);
    return NULL;
  }
  if ((uint32_t)(length - HEADER_SIZE) != payloadLength) {
    setError("payload length does not match", (int)payloadLength);
    return NULL;
  }
  const uint8_t* payload = data + HEADER_SIZE;
  if (fnv1a(payload, payloadLength) != checksum) {
    setError("payload checksum does not match", -1);
    return NULL;
  }

  Reader r = {payload, payload + payloadLength, false};
  LoadContext ctx = {vm, module, 0, 0};
  ctx.varCount = getCount(&r, 5, "too many module variables");
  if (!r.failed && ctx.varCount > 65536) refuse(&r, "too many module variables", (int)ctx.varCount);
  Name* varNames = (Name*)calloc(ctx.varCount + 1, sizeof(Name));
  uint8_t* varKinds = (uint8_t*)calloc(ctx.varCount + 1, 1);
  double* varNums = (double*)calloc(ctx.varCount + 1, sizeof(double));
  if (varNames == NULL || varKinds == NULL || varNums == NULL) kwFatalOutOfMemory();
  for (uint32_t i = 0; i < ctx.varCount && !r.failed; i++) {
    varNames[i] = getStr(&r);
    varKinds[i] = (uint8_t)getU8(&r);
    if (varKinds[i] == VAR_NUM) {
      varNums[i] = getF64(&r);
    } else if (varKinds[i] != VAR_NULL && varKinds[i] != VAR_EXISTING && !r.failed) {
      refuse(&r, "unknown variable kind", (int)i);
    }
    if (!r.failed && varNames[i].length == 0) refuse(&r, "empty variable name", (int)i);
  }
  ctx.symbolCount = getCount(&r, 4, "too many method names");
  if (!r.failed && ctx.symbolCount > 65536) refuse(&r, "too many method names", (int)ctx.symbolCount);
  Name* symbolNames = (Name*)calloc(ctx.symbolCount + 1, sizeof(Name));
  if (symbolNames == NULL) kwFatalOutOfMemory();
  for (uint32_t i = 0; i < ctx.symbolCount && !r.failed; i++) {
    symbolNames[i] = getStr(&r);
    if (!r.failed && symbolNames[i].length == 0) refuse(&r, "empty method name", (int)i);
  }
  ObjFn* fn = r.failed ? NULL : readFn(&r, &ctx, 0, true, NULL, 0);
  if (fn != NULL && r.p != r.end) {
    refuse(&r, "bytes after the function tree", (int)(r.end - r.p));
    fn = NULL;
  }
  if (fn != NULL) {
    /* What the interpreter takes on trust at run time (verify.c). */
    int* arity = (int*)malloc(sizeof(int) * (ctx.symbolCount + 1));
    if (arity == NULL) kwFatalOutOfMemory();
    for (uint32_t i = 0; i < ctx.symbolCount; i++) {
      arity[i] = signatureArity(symbolNames[i].name, (int)symbolNames[i].length);
    }
    vmPushRoot(vm, (Obj*)fn);
    if (!bytecodeVerify(fn, arity, (int)ctx.symbolCount, errorText, sizeof errorText)) fn = NULL;
    vmPopRoot(vm);
    free(arity);
  }
  /* Names resolve before anything changes: a core name must exist and the
   * module's and VM's tables must stay addressable by a short operand. */
  int* vars = NULL;
  int* symbols = NULL;
  if (fn != NULL) {
    uint32_t added = 0;
    for (uint32_t i = 0; i < ctx.varCount && fn != NULL; i++) {
      int index = moduleFindVariable(module, varNames[i].name, (int)varNames[i].length);
      if (index == -1 && varKinds[i] == VAR_EXISTING) {
        refuse(&r, "a core variable is missing", (int)i);
        fn = NULL;
      }
      if (index == -1) added++;
    }
    if (fn != NULL && (uint32_t)module->variableCount + added > 65536) {
      refuse(&r, "too many module variables", -1);
      fn = NULL;
    }
    if (fn != NULL && (uint32_t)vm->methodNames.count + ctx.symbolCount > 65536) {
      refuse(&r, "too many method names", -1);
      fn = NULL;
    }
  }
  if (fn != NULL) {
    vmPushRoot(vm, (Obj*)fn);
    vars = (int*)malloc(sizeof(int) * (ctx.varCount + 1));
    symbols = (int*)malloc(sizeof(int) * (ctx.symbolCount + 1));
    if (vars == NULL || symbols == NULL) kwFatalOutOfMemory();
    for (uint32_t i = 0; i < ctx.varCount; i++) {
      int index = moduleFindVariable(module, varNames[i].name, (int)varNames[i].length);
      if (index == -1) {
        Value initial = varKinds[i] == VAR_NUM ? NUM_VAL(varNums[i]) : NULL_VAL;
        index = moduleAddVariable(vm, module, varNames[i].name, (int)varNames[i].length, initial);
      }
      vars[i] = index;
    }
    for (uint32_t i = 0; i < ctx.symbolCount; i++) {
      symbols[i] = symbolTableEnsure(&vm->methodNames, symbolNames[i].name, (int)symbolNames[i].length);
    }
    relink(fn, symbols, vars);
    vmPopRoot(vm);
  }
  free(vars);
  free(symbols);
  free(varNames);
  free(varKinds);
  free(varNums);
  free(symbolNames);
  return fn;
}
