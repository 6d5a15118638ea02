/* value.h -- Values and heap objects of the Kryon Wren VM.
 *
 * A Value is a NaN-boxed 64-bit word. Doubles are stored as themselves;
 * everything else lives inside the space of quiet NaNs:
 *   - singletons (null, false, true, undefined) use small tags,
 *   - heap objects set the sign bit and keep the pointer in the low bits.
 * Every heap object starts with an Obj header that links it into the
 * VM's list of all objects (for the sweep phase of the GC) and points to
 * its class (for method dispatch).
 */
#ifndef KW_VALUE_H
#define KW_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct VM VM;
typedef uint64_t Value;

typedef struct Obj Obj;
typedef struct ObjString ObjString;
typedef struct ObjList ObjList;
typedef struct ObjMap ObjMap;
typedef struct ObjRange ObjRange;
typedef struct ObjFn ObjFn;
typedef struct ObjClosure ObjClosure;
typedef struct ObjUpvalue ObjUpvalue;
typedef struct ObjClass ObjClass;
typedef struct ObjInstance ObjInstance;
typedef struct ObjFiber ObjFiber;
typedef struct ObjModule ObjModule;

/* ---- NaN boxing ------------------------------------------------------ */

#define SIGN_BIT ((uint64_t)1 << 63)
#define QNAN ((uint64_t)0x7ffc000000000000ULL)
#define CANONICAL_NAN ((uint64_t)0x7ff8000000000000ULL)

#define TAG_NULL 1
#define TAG_FALSE 2
#define TAG_TRUE 3
#define TAG_UNDEFINED 4

#define NULL_VAL ((Value)(QNAN | TAG_NULL))
#define FALSE_VAL ((Value)(QNAN | TAG_FALSE))
#define TRUE_VAL ((Value)(QNAN | TAG_TRUE))
#define UNDEFINED_VAL ((Value)(QNAN | TAG_UNDEFINED))

#define IS_NUM(v) (((v) & QNAN) != QNAN)
#define IS_OBJ(v) (((v) & (QNAN | SIGN_BIT)) == (QNAN | SIGN_BIT))
#define IS_NULL(v) ((v) == NULL_VAL)
#define IS_BOOL(v) ((v) == TRUE_VAL || (v) == FALSE_VAL)
#define IS_UNDEFINED(v) ((v) == UNDEFINED_VAL)

#define BOOL_VAL(b) ((b) ? TRUE_VAL : FALSE_VAL)
#define AS_BOOL(v) ((v) == TRUE_VAL)
#define AS_OBJ(v) ((Obj*)(uintptr_t)((v) & ~(SIGN_BIT | QNAN)))
#define OBJ_VAL(o) ((Value)(SIGN_BIT | QNAN | (uint64_t)(uintptr_t)(o)))

static inline Value numVal(double d) {
  Value v;
  if (d != d) return CANONICAL_NAN;
  memcpy(&v, &d, sizeof d);
  return v;
}

static inline bool isFalsy(Value v) { return v == FALSE_VAL || v == NULL_VAL; }
#define IS_FALSY(v) isFalsy(v)

static inline double asNum(Value v) {
  double d;
  memcpy(&d, &v, sizeof d);
  return d;
}

#define NUM_VAL(d) numVal(d)
#define AS_NUM(v) asNum(v)

/* ---- Objects --------------------------------------------------------- */

typedef enum {
  OBJ_STRING,
  OBJ_LIST,
  OBJ_MAP,
  OBJ_RANGE,
  OBJ_FN,
  OBJ_CLOSURE,
  OBJ_UPVALUE,
  OBJ_CLASS,
  OBJ_INSTANCE,
  OBJ_FIBER,
  OBJ_MODULE
} ObjType;

struct Obj {
  ObjType type;
  bool isMarked;
  ObjClass* classObj;
  Obj* next;
};

#define OBJ_TYPE(v) (AS_OBJ(v)->type)
#define IS_OBJ_TYPE(v, t) (IS_OBJ(v) && OBJ_TYPE(v) == (t))
#define IS_STRING(v) IS_OBJ_TYPE(v, OBJ_STRING)
#define IS_LIST(v) IS_OBJ_TYPE(v, OBJ_LIST)
#define IS_MAP(v) IS_OBJ_TYPE(v, OBJ_MAP)
#define IS_RANGE(v) IS_OBJ_TYPE(v, OBJ_RANGE)
#define IS_CLOSURE(v) IS_OBJ_TYPE(v, OBJ_CLOSURE)
#define IS_CLASS(v) IS_OBJ_TYPE(v, OBJ_CLASS)
#define IS_INSTANCE(v) IS_OBJ_TYPE(v, OBJ_INSTANCE)
#define IS_FIBER(v) IS_OBJ_TYPE(v, OBJ_FIBER)
#define IS_FN(v) IS_OBJ_TYPE(v, OBJ_FN)

#define AS_STRING(v) ((ObjString*)AS_OBJ(v))
#define AS_CSTRING(v) (AS_STRING(v)->chars)
#define AS_LIST(v) ((ObjList*)AS_OBJ(v))
#define AS_MAP(v) ((ObjMap*)AS_OBJ(v))
#define AS_RANGE(v) ((ObjRange*)AS_OBJ(v))
#define AS_FN(v) ((ObjFn*)AS_OBJ(v))
#define AS_CLOSURE(v) ((ObjClosure*)AS_OBJ(v))
#define AS_CLASS(v) ((ObjClass*)AS_OBJ(v))
#define AS_INSTANCE(v) ((ObjInstance*)AS_OBJ(v))
#define AS_FIBER(v) ((ObjFiber*)AS_OBJ(v))
#define AS_MODULE(v) ((ObjModule*)AS_OBJ(v))

/* Immutable byte string (UTF-8 by convention), always NUL-terminated. */
struct ObjString {
  Obj obj;
  uint32_t length;
  uint32_t hash;
  char chars[];
};

struct ObjList {
  Obj obj;
  Value* items;
  int count;
  int capacity;
};

/* A compact hash table laid out as CPython's dict is since 3.6: a dense
 * array of entries in insertion order, plus a sparse open-addressing
 * index whose slots hold small integers (1, 2 or 4 bytes each, by table
 * size) naming an entry. Lookups in insertion order walk the entries in
 * order, and the part read at random (the index) is a few bytes a key.
 * Each entry keeps its key's hash: a probe that passes other keys
 * compares hashes without reading the key objects, and rebuilding the
 * index never rehashes a key. A removed entry keeps its place with key
 * UNDEFINED (a tombstone) until the next rebuild compacts the array. */
typedef struct {
  Value key;
  Value value;
  uint32_t hash;
} MapEntry;

struct ObjMap {
  Obj obj;
  MapEntry* entries;  /* entries[0..used), in insertion order */
  void* index;        /* indexSize slots: 0 empty, else entry number + 1 */
  uint32_t indexSize; /* 0 or a power of two */
  uint32_t used;      /* entries filled, live or removed */
  uint32_t count;     /* live entries */
};

struct ObjRange {
  Obj obj;
  double from;
  double to;
  bool isInclusive;
};

/* A compiled function: bytecode, constants and debug info. */
struct ObjFn {
  Obj obj;
  uint8_t* code;
  int codeCount;
  int codeCapacity;
  int* lines;
  Value* constants;
  int constantCount;
  int constantCapacity;
  int arity;
  int numUpvalues;
  int maxSlots;
  ObjModule* module;
  ObjClass* boundClass; /* class the enclosing method is bound to */
  int fieldBase;        /* number of fields inherited by boundClass */
  char* debugName;
  struct FnDebug* debug; /* named locals, breakpoint patches (vm.h); NULL when none */
};

struct ObjUpvalue {
  Obj obj;
  Value* value;
  Value closed;
  ObjUpvalue* next;
  /* While open: the fiber whose stack `value` points into, kept alive by
   * the upvalue (a closure may outlive a suspended fiber nothing else
   * holds). NULL once closed. */
  ObjFiber* fiber;
};

struct ObjClosure {
  Obj obj;
  ObjFn* fn;
  int upvalueCount;
  ObjUpvalue* upvalues[];
};

typedef enum {
  PRIM_VALUE,  /* result stored in args[0] */
  PRIM_ERROR,  /* vm->fiber->error holds the error */
  PRIM_CALL,   /* args[0] is a closure to invoke with the arguments */
  PRIM_SWITCH  /* vm->fiber was changed; resume the new fiber */
} PrimResult;

typedef PrimResult (*Primitive)(VM* vm, Value* args, int argc);

typedef enum {
  METHOD_NONE,
  METHOD_PRIMITIVE,
  METHOD_FN_CALL,
  METHOD_BLOCK,
  METHOD_GETTER, /* a block whose body only returns one field (vm.c accessorKind) */
  METHOD_SETTER, /* a block whose body only stores its argument in one field */
  METHOD_FOREIGN
} MethodType;

typedef struct {
  MethodType type;
  union {
    Primitive primitive;
    ObjClosure* closure;
    int foreignId;
  } as;
} Method;

struct ObjClass {
  Obj obj;
  ObjClass* superclass;
  int numFields;
  Method* methods;
  int methodCount;
  ObjString* name;
  Value attributes;
  bool isSealed; /* built-in classes that may not be subclassed */
};

struct ObjInstance {
  Obj obj;
  Value fields[];
};

typedef struct {
  uint8_t* ip;
  ObjClosure* closure;
  Value* stackStart;
} CallFrame;

typedef enum {
  FIBER_OTHER, /* resumed by call/transfer */
  FIBER_TRY,   /* resumed by try(): errors return to the caller */
  FIBER_ROOT   /* started by the host */
} FiberState;

struct ObjFiber {
  Obj obj;
  Value* stack;
  Value* stackTop;
  int stackCapacity;
  CallFrame* frames;
  int frameCount;
  int frameCapacity;
  ObjUpvalue* openUpvalues;
  ObjFiber* caller;
  Value error;
  FiberState state;
  bool started;
  bool escaped;  /* Fiber.current gave it to the script: a host call never reuses it */
};

/* A symbol table maps names to dense integer ids (method signatures,
 * module variable names). Names are plain malloc'd C strings. */
typedef struct {
  char** names;
  int* lengths;
  int count;
  int capacity;
  int* buckets; /* hash index, -1 when empty */
  int bucketCount;
} SymbolTable;

struct ObjModule {
  Obj obj;
  ObjString* name;
  Value* variables;
  int variableCount;
  int variableCapacity;
  SymbolTable variableNames;
};

/* ---- Constructors and helpers (value.c) ------------------------------ */

void* reallocate(VM* vm, void* ptr, size_t oldSize, size_t newSize);
#define ALLOCATE(vm, type, n) ((type*)reallocate(vm, NULL, 0, sizeof(type) * (n)))
#define FREE_ARRAY(vm, type, p, n) reallocate(vm, p, sizeof(type) * (n), 0)
#define GROW_CAPACITY(c) ((c) < 8 ? 8 : (c) * 2)

ObjString* newStringLength(VM* vm, const char* chars, size_t length);
ObjString* newStringUninit(VM* vm, size_t length);
ObjString* newString(VM* vm, const char* chars);
#define NUM_TEXT_MAX 32
int formatNum(double n, char* out);
ObjString* stringFormatNum(VM* vm, double n);
void stringHash(ObjString* s);
Value stringValue(VM* vm, const char* chars, size_t length);
ObjString* concatStrings(VM* vm, ObjString* a, ObjString* b);

ObjList* newList(VM* vm, int count);
void listAppend(VM* vm, ObjList* list, Value v);
void listInsert(VM* vm, ObjList* list, Value v, int index);
Value listRemoveAt(VM* vm, ObjList* list, int index);

ObjMap* newMap(VM* vm);
bool mapGet(ObjMap* map, Value key, Value* out);
void mapSet(VM* vm, ObjMap* map, Value key, Value value);
Value mapRemove(VM* vm, ObjMap* map, Value key);
void mapClear(VM* vm, ObjMap* map);
/* Frees a map's entry array and index, leaving it empty. */
void mapFreeStorage(VM* vm, ObjMap* map);

ObjRange* newRange(VM* vm, double from, double to, bool inclusive);
ObjFn* newFn(VM* vm, ObjModule* module, int maxSlots);
ObjClosure* newClosure(VM* vm, ObjFn* fn);
ObjUpvalue* newUpvalue(VM* vm, Value* slot);
ObjClass* newSingleClass(VM* vm, int numFields, ObjString* name);
ObjClass* newClass(VM* vm, ObjClass* superclass, int numFields, ObjString* name);
void bindSuperclass(VM* vm, ObjClass* subclass, ObjClass* superclass);
void bindMethod(VM* vm, ObjClass* cls, int symbol, Method method);
ObjInstance* newInstance(VM* vm, ObjClass* cls);
ObjFiber* newFiber(VM* vm, ObjClosure* closure);
/* A new idle fiber taking over the stack and frames of `done`, a finished
 * fiber with no open upvalues, which keeps its identity and error but no
 * longer any buffer. */
ObjFiber* newFiberFrom(VM* vm, ObjFiber* done);
ObjModule* newModule(VM* vm, ObjString* name);

int fnEmitByte(VM* vm, ObjFn* fn, uint8_t byte, int line);
int fnAddConstant(VM* vm, ObjFn* fn, Value value);

bool valuesSame(Value a, Value b);
bool valuesEqual(Value a, Value b);
uint32_t hashValue(Value v);
bool isValueType(Value v);

void symbolTableInit(SymbolTable* t);
void symbolTableFree(SymbolTable* t);
int symbolTableFind(const SymbolTable* t, const char* name, int length);
int symbolTableAdd(SymbolTable* t, const char* name, int length);
int symbolTableEnsure(SymbolTable* t, const char* name, int length);

int moduleFindVariable(ObjModule* m, const char* name, int length);
int moduleAddVariable(VM* vm, ObjModule* m, const char* name, int length, Value value);
void moduleTruncateVariables(ObjModule* m, int count);

/* UTF-8 helpers. */
int utf8EncodeLength(int codePoint);
int utf8Encode(int codePoint, uint8_t* out);
int utf8DecodeLength(uint8_t first);
int utf8Decode(const uint8_t* bytes, uint32_t length);

#endif
