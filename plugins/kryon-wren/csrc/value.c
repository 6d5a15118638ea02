/* value.c -- Creating and manipulating values and heap objects.
 *
 * Object constructors register each new object with the VM (for the GC),
 * strings are hashed on creation, lists grow geometrically and maps use
 * open addressing with linear probing. Also home to equality, hashing,
 * symbol tables and small UTF-8 helpers.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "vm.h"

/* ---- Allocation of objects ------------------------------------------ */

static Obj* allocateObject(VM* vm, size_t size, ObjType type, ObjClass* cls) {
  Obj* obj = (Obj*)reallocate(vm, NULL, 0, size);
  obj->type = type;
  obj->isMarked = false;
  obj->classObj = cls;
  obj->next = vm->objects;
  vm->objects = obj;
  return obj;
}

#define ALLOCATE_OBJ(vm, type, objType, cls) \
  ((type*)allocateObject(vm, sizeof(type), objType, cls))

/* ---- Strings -------------------------------------------------------- */

/* 32-bit FNV-1a over the bytes. */
void stringHash(ObjString* s) {
  uint32_t hash = 2166136261u;
  for (uint32_t i = 0; i < s->length; i++) {
    hash ^= (uint8_t)s->chars[i];
    hash *= 16777619u;
  }
  s->hash = hash;
}

ObjString* newStringUninit(VM* vm, size_t length) {
  ObjString* s = (ObjString*)allocateObject(
      vm, sizeof(ObjString) + length + 1, OBJ_STRING, vm->stringClass);
  s->length = (uint32_t)length;
  s->hash = 0;
  s->chars[length] = '\0';
  return s;
}

ObjString* newStringLength(VM* vm, const char* chars, size_t length) {
  ObjString* s = newStringUninit(vm, length);
  if (length > 0) memcpy(s->chars, chars, length);
  stringHash(s);
  return s;
}

ObjString* newString(VM* vm, const char* chars) {
  return newStringLength(vm, chars, strlen(chars));
}

Value stringValue(VM* vm, const char* chars, size_t length) {
  return OBJ_VAL(newStringLength(vm, chars, length));
}

ObjString* concatStrings(VM* vm, ObjString* a, ObjString* b) {
  ObjString* s = newStringUninit(vm, a->length + b->length);
  memcpy(s->chars, a->chars, a->length);
  memcpy(s->chars + a->length, b->chars, b->length);
  stringHash(s);
  return s;
}

/* Writes Wren's spelling of n into out (at least NUM_TEXT_MAX bytes) and
 * returns its length: "nan", "infinity", "-0", integers below 1e14 digit
 * by digit, everything else with 14 significant digits. */
int formatNum(double n, char* out) {
  const char* word = NULL;
  if (isnan(n)) word = "nan";
  else if (isinf(n)) word = n > 0 ? "infinity" : "-infinity";
  else if (n == 0 && signbit(n)) word = "-0";
  if (word != NULL) {
    size_t length = strlen(word);
    memcpy(out, word, length);
    return (int)length;
  }
  if (n > -1e14 && n < 1e14 && n == (double)(int64_t)n) {
    char digits[24];
    int64_t whole = (int64_t)n;
    uint64_t rest = whole < 0 ? (uint64_t)(-whole) : (uint64_t)whole;
    int count = 0;
    do {
      digits[count++] = (char)('0' + rest % 10);
      rest /= 10;
    } while (rest != 0);
    int length = 0;
    if (whole < 0) out[length++] = '-';
    while (count > 0) out[length++] = digits[--count];
    return length;
  }
  return snprintf(out, NUM_TEXT_MAX, "%.14g", n);
}

ObjString* stringFormatNum(VM* vm, double n) {
  char text[NUM_TEXT_MAX];
  int length = formatNum(n, text);
  return newStringLength(vm, text, (size_t)length);
}

/* ---- Lists ---------------------------------------------------------- */

ObjList* newList(VM* vm, int count) {
  Value* items = NULL;
  if (count > 0) items = ALLOCATE(vm, Value, count);
  ObjList* list = ALLOCATE_OBJ(vm, ObjList, OBJ_LIST, vm->listClass);
  list->items = items;
  list->count = count;
  list->capacity = count;
  for (int i = 0; i < count; i++) items[i] = NULL_VAL;
  return list;
}

static void listEnsure(VM* vm, ObjList* list, int needed) {
  if (needed <= list->capacity) return;
  int capacity = GROW_CAPACITY(list->capacity);
  while (capacity < needed) capacity *= 2;
  list->items = (Value*)reallocate(vm, list->items,
                                   sizeof(Value) * list->capacity,
                                   sizeof(Value) * capacity);
  list->capacity = capacity;
}

void listAppend(VM* vm, ObjList* list, Value v) {
  listEnsure(vm, list, list->count + 1);
  list->items[list->count++] = v;
}

void listInsert(VM* vm, ObjList* list, Value v, int index) {
  listEnsure(vm, list, list->count + 1);
  memmove(&list->items[index + 1], &list->items[index],
          sizeof(Value) * (list->count - index));
  list->items[index] = v;
  list->count++;
}

Value listRemoveAt(VM* vm, ObjList* list, int index) {
  (void)vm;
  Value removed = list->items[index];
  memmove(&list->items[index], &list->items[index + 1],
          sizeof(Value) * (list->count - index - 1));
  list->count--;
  return removed;
}

/* ---- Equality and hashing ------------------------------------------- */

bool valuesSame(Value a, Value b) {
  if (IS_NUM(a) && IS_NUM(b)) return AS_NUM(a) == AS_NUM(b);
  return a == b;
}

bool valuesEqual(Value a, Value b) {
  if (valuesSame(a, b)) return true;
  if (!IS_OBJ(a) || !IS_OBJ(b)) return false;
  Obj* x = AS_OBJ(a);
  Obj* y = AS_OBJ(b);
  if (x->type != y->type) return false;
  if (x->type == OBJ_STRING) {
    ObjString* s = (ObjString*)x;
    ObjString* t = (ObjString*)y;
    return s->length == t->length && s->hash == t->hash &&
           memcmp(s->chars, t->chars, s->length) == 0;
  }
  if (x->type == OBJ_RANGE) {
    ObjRange* r = (ObjRange*)x;
    ObjRange* q = (ObjRange*)y;
    return r->from == q->from && r->to == q->to &&
           r->isInclusive == q->isInclusive;
  }
  return false;
}

static uint32_t hashBits(uint64_t bits) {
  bits = (~bits) + (bits << 18);
  bits ^= bits >> 31;
  bits *= 21;
  bits ^= bits >> 11;
  bits += bits << 6;
  bits ^= bits >> 22;
  return (uint32_t)(bits & 0x3fffffff);
}

/* Integral numbers hash to their own value (folded to 32 bits), as
 * CPython's ints do: consecutive keys land in consecutive slots, which
 * keeps map loops over counters cache-friendly; the perturbed probe
 * sequence in mapFind breaks up strided keys that share low bits.
 * Other numbers mix their bits. -0 converts to the integer 0, so 0 and
 * -0 hash alike (they are the same key). */
static inline uint32_t hashNum(double n) {
  if (n > -9223372036854775808.0 && n < 9223372036854775808.0) {
    int64_t i = (int64_t)n;
    if ((double)i == n) {
      uint64_t u = (uint64_t)i;
      return (uint32_t)(u ^ (u >> 32));
    }
  }
  uint64_t bits;
  memcpy(&bits, &n, sizeof bits);
  return hashBits(bits);
}

bool isValueType(Value v) {
  if (!IS_OBJ(v)) return !IS_UNDEFINED(v);
  ObjType t = OBJ_TYPE(v);
  return t == OBJ_STRING || t == OBJ_RANGE || t == OBJ_CLASS;
}

uint32_t hashValue(Value v) {
  if (IS_NUM(v)) return hashNum(AS_NUM(v));
  if (!IS_OBJ(v)) return hashBits(v);
  Obj* obj = AS_OBJ(v);
  switch (obj->type) {
    case OBJ_STRING: return ((ObjString*)obj)->hash;
    case OBJ_RANGE: {
      ObjRange* r = (ObjRange*)obj;
      return hashNum(r->from) ^ (hashNum(r->to) * 31u) ^ r->isInclusive;
    }
    default: return hashBits((uint64_t)(uintptr_t)obj);
  }
}

/* ---- Maps -----------------------------------------------------------
 *
 * Keys compare by value equality, the same test as `==` (wren.io
 * values/maps). In Wren `0 == -0` is true, so 0 and -0 are one key: they
 * hash alike and match each other. Assigning to a key that is already
 * present replaces the value and keeps the key as first stored, so
 * `m[0] = 1; m[-0] = 2` leaves the single entry `0: 2`. NaN is never
 * equal to anything, itself included, so a NaN key can be stored but
 * never looked up again (each assignment adds an entry). */

ObjMap* newMap(VM* vm) {
  ObjMap* map = ALLOCATE_OBJ(vm, ObjMap, OBJ_MAP, vm->mapClass);
  map->entries = NULL;
  map->index = NULL;
  map->indexSize = 0;
  map->used = 0;
  map->count = 0;
  return map;
}

/* Entries an index of `size` slots may name: 2/3 of its slots (CPython's
 * USABLE_FRACTION), which keeps probe chains short and guarantees the
 * index always has empty slots. */
static inline uint32_t mapUsable(uint32_t size) { return size / 3 * 2 + (size % 3) * 2 / 3; }

/* Bytes per index slot: the smallest width that holds usable + 1. */
static inline uint32_t indexWidth(uint32_t size) {
  return size <= 256 ? 1 : size <= 65536 ? 2 : 4;
}

static inline uint32_t indexGet(const ObjMap* map, uint32_t slot) {
  if (map->indexSize <= 256) return ((const uint8_t*)map->index)[slot];
  if (map->indexSize <= 65536) return ((const uint16_t*)map->index)[slot];
  return ((const uint32_t*)map->index)[slot];
}

static inline void indexPut(ObjMap* map, uint32_t slot, uint32_t value) {
  if (map->indexSize <= 256) ((uint8_t*)map->index)[slot] = (uint8_t)value;
  else if (map->indexSize <= 65536) ((uint16_t*)map->index)[slot] = (uint16_t)value;
  else ((uint32_t*)map->index)[slot] = value;
}

void mapFreeStorage(VM* vm, ObjMap* map) {
  if (map->indexSize != 0) {
    FREE_ARRAY(vm, MapEntry, map->entries, mapUsable(map->indexSize));
    reallocate(vm, map->index, (size_t)map->indexSize * indexWidth(map->indexSize), 0);
  }
  map->entries = NULL;
  map->index = NULL;
  map->indexSize = 0;
  map->used = 0;
  map->count = 0;
}

/* Open addressing over the power-of-two index with CPython's probe
 * sequence: start at hash & mask, then slot = slot * 5 + 1 + perturb
 * with perturb = hash shifted right 5 bits per step. The high hash bits
 * join in after a few probes, and once perturb reaches 0 the recurrence
 * visits every slot, so a lookup always ends at an empty slot (at most
 * 2/3 of the slots are ever in use). */
#define PROBE_NEXT(slot, perturb, mask) \
  do {                                  \
    (perturb) >>= 5;                    \
    (slot) = ((slot) * 5 + 1 + (perturb)) & (mask); \
  } while (0)

static inline bool objKeysEqual(Value a, Value b) {
  if (a == b) return true;
  if (!IS_OBJ(a) || !IS_OBJ(b)) return false;
  return valuesEqual(a, b);
}

/* The live entry holding key, or NULL, for an index of slot type T.
 * A removed entry has key UNDEFINED, which is neither a number nor equal
 * to any key. One copy per slot width keeps the width test out of the
 * probe loop. */
#define DEFINE_MAP_FIND(name, T)                                             \
  static MapEntry* name(const ObjMap* map, Value key) {                     \
    const T* index = (const T*)map->index;                                   \
    uint32_t mask = map->indexSize - 1;                                      \
    MapEntry* entries = map->entries;                                        \
    if (IS_NUM(key)) {                                                       \
      double d = AS_NUM(key);                                                \
      uint32_t hash = hashNum(d);                                            \
      uint32_t perturb = hash;                                               \
      uint32_t slot = hash & mask;                                           \
      for (;;) {                                                             \
        uint32_t ix = index[slot];                                           \
        if (ix == 0) return NULL;                                            \
        MapEntry* e = &entries[ix - 1];                                      \
        if (e->hash == hash && IS_NUM(e->key) && AS_NUM(e->key) == d) return e; \
        PROBE_NEXT(slot, perturb, mask);                                     \
      }                                                                      \
    }                                                                        \
    uint32_t hash = hashValue(key);                                          \
    uint32_t perturb = hash;                                                 \
    uint32_t slot = hash & mask;                                             \
    for (;;) {                                                               \
      uint32_t ix = index[slot];                                             \
      if (ix == 0) return NULL;                                              \
      MapEntry* e = &entries[ix - 1];                                        \
      Value k = e->key;                                                      \
      if (k == key) return e;                                                \
      if (e->hash == hash && IS_OBJ(k) && valuesEqual(k, key)) return e;     \
      PROBE_NEXT(slot, perturb, mask);                                       \
    }                                                                        \
  }

DEFINE_MAP_FIND(mapFind8, uint8_t)
DEFINE_MAP_FIND(mapFind16, uint16_t)
DEFINE_MAP_FIND(mapFind32, uint32_t)

static MapEntry* mapFind(const ObjMap* map, Value key) {
  if (map->count == 0) return NULL;
  if (map->indexSize <= 256) return mapFind8(map, key);
  if (map->indexSize <= 65536) return mapFind16(map, key);
  return mapFind32(map, key);
}

/* Names entry number `n` (0-based) from the first empty index slot on
 * hash's probe path; the index must hold no slot naming a removed entry
 * for hash that could match, which a fresh index guarantees. */
static void indexInsertFresh(ObjMap* map, uint32_t hash, uint32_t n) {
  uint32_t mask = map->indexSize - 1;
  uint32_t perturb = hash;
  uint32_t slot = hash & mask;
  while (indexGet(map, slot) != 0) PROBE_NEXT(slot, perturb, mask);
  indexPut(map, slot, n + 1);
}

/* Rebuilds the map with room for at least count + 1 entries: the live
 * entries move, in order, to the front of a fresh entry array (dropping
 * the removed ones) and a fresh index of at least 3 * count slots names
 * them. So a growing map's index doubles about every time it fills,
 * and a map emptied by removals shrinks. */
static void mapRebuild(VM* vm, ObjMap* map) {
  uint32_t size = 8;
  while (size < map->count * 3) size *= 2;
  uint32_t usable = mapUsable(size);
  MapEntry* entries = ALLOCATE(vm, MapEntry, usable);
  uint32_t n = 0;
  for (uint32_t i = 0; i < map->used; i++) {
    if (map->entries[i].key != UNDEFINED_VAL) entries[n++] = map->entries[i];
  }
  uint32_t count = map->count;
  mapFreeStorage(vm, map);
  size_t indexBytes = (size_t)size * indexWidth(size);
  map->index = reallocate(vm, NULL, 0, indexBytes);
  memset(map->index, 0, indexBytes);
  map->entries = entries;
  map->indexSize = size;
  map->used = n;
  map->count = count;
  for (uint32_t i = 0; i < n; i++) indexInsertFresh(map, entries[i].hash, i);
}

bool mapGet(ObjMap* map, Value key, Value* out) {
  MapEntry* entry = mapFind(map, key);
  if (entry == NULL) return false;
  *out = entry->value;
  return true;
}

/* mapSet's probe for an index of slot type T: the live entry holding
 * key, or NULL with *slotOut set to the slot a new entry should take
 * (the first slot on the path naming a removed entry, else the empty
 * slot that ended the path). One copy per slot width, as for mapFind. */
#define DEFINE_MAP_PROBE(name, T)                                             \
  static MapEntry* name(ObjMap* map, Value key, uint32_t hash, uint32_t* slotOut) { \
    const T* index = (const T*)map->index;                                    \
    bool isNum = IS_NUM(key);                                                 \
    uint32_t reuse = UINT32_MAX;                                              \
    uint32_t mask = map->indexSize - 1;                                       \
    uint32_t perturb = hash;                                                  \
    uint32_t slot = hash & mask;                                              \
    for (;;) {                                                                \
      uint32_t ix = index[slot];                                              \
      if (ix == 0) break;                                                     \
      MapEntry* e = &map->entries[ix - 1];                                    \
      Value k = e->key;                                                       \
      if (k == UNDEFINED_VAL) {                                               \
        if (reuse == UINT32_MAX) reuse = slot;                                \
      } else if (e->hash == hash &&                                           \
                 (isNum ? (IS_NUM(k) && AS_NUM(k) == AS_NUM(key)) : objKeysEqual(k, key))) { \
        return e;                                                             \
      }                                                                       \
      PROBE_NEXT(slot, perturb, mask);                                        \
    }                                                                         \
    *slotOut = reuse != UINT32_MAX ? reuse : slot;                            \
    return NULL;                                                              \
  }

DEFINE_MAP_PROBE(mapProbe8, uint8_t)
DEFINE_MAP_PROBE(mapProbe16, uint16_t)
DEFINE_MAP_PROBE(mapProbe32, uint32_t)

void mapSet(VM* vm, ObjMap* map, Value key, Value value) {
  uint32_t hash = hashValue(key);
  uint32_t slot = 0;
  if (map->indexSize != 0) {
    MapEntry* e = map->indexSize <= 256     ? mapProbe8(map, key, hash, &slot)
                  : map->indexSize <= 65536 ? mapProbe16(map, key, hash, &slot)
                                            : mapProbe32(map, key, hash, &slot);
    if (e != NULL) {
      /* An existing key stays as first stored; only the value changes. */
      e->value = value;
      return;
    }
  }
  if (map->indexSize == 0 || map->used == mapUsable(map->indexSize)) {
    mapRebuild(vm, map);
    map->entries[map->used] = (MapEntry){key, value, hash};
    indexInsertFresh(map, hash, map->used);
  } else {
    /* Appending keeps insertion order; an index slot naming a removed
     * entry on the key's probe path is taken over, as a tombstone. */
    map->entries[map->used] = (MapEntry){key, value, hash};
    indexPut(map, slot, map->used + 1);
  }
  map->used++;
  map->count++;
}

Value mapRemove(VM* vm, ObjMap* map, Value key) {
  (void)vm;
  MapEntry* entry = mapFind(map, key);
  if (entry == NULL) return NULL_VAL;
  Value value = entry->value;
  entry->key = UNDEFINED_VAL;
  entry->value = NULL_VAL;
  map->count--;
  return value;
}

void mapClear(VM* vm, ObjMap* map) { mapFreeStorage(vm, map); }

/* ---- Other objects -------------------------------------------------- */

ObjRange* newRange(VM* vm, double from, double to, bool inclusive) {
  ObjRange* r = ALLOCATE_OBJ(vm, ObjRange, OBJ_RANGE, vm->rangeClass);
  r->from = from;
  r->to = to;
  r->isInclusive = inclusive;
  return r;
}

ObjFn* newFn(VM* vm, ObjModule* module, int maxSlots) {
  ObjFn* fn = ALLOCATE_OBJ(vm, ObjFn, OBJ_FN, vm->fnClass);
  fn->code = NULL;
  fn->codeCount = fn->codeCapacity = 0;
  fn->lines = NULL;
  fn->constants = NULL;
  fn->constantCount = fn->constantCapacity = 0;
  fn->arity = 0;
  fn->numUpvalues = 0;
  fn->maxSlots = maxSlots;
  fn->module = module;
  fn->boundClass = NULL;
  fn->fieldBase = 0;
  fn->debugName = NULL;
  fn->debug = NULL;
  return fn;
}

int fnEmitByte(VM* vm, ObjFn* fn, uint8_t byte, int line) {
  if (fn->codeCount >= fn->codeCapacity) {
    int capacity = GROW_CAPACITY(fn->codeCapacity);
    fn->code = (uint8_t*)reallocate(vm, fn->code, fn->codeCapacity, capacity);
    fn->lines = (int*)reallocate(vm, fn->lines, sizeof(int) * fn->codeCapacity,
                                 sizeof(int) * capacity);
    fn->codeCapacity = capacity;
  }
  fn->code[fn->codeCount] = byte;
  fn->lines[fn->codeCount] = line;
  return fn->codeCount++;
}

int fnAddConstant(VM* vm, ObjFn* fn, Value value) {
  for (int i = 0; i < fn->constantCount && i < 256; i++) {
    Value c = fn->constants[i];
    if (IS_NUM(value) != IS_NUM(c)) continue;
    if (IS_NUM(value) ? (c == value) : (IS_STRING(value) && valuesEqual(c, value))) {
      return i;
    }
  }
  if (fn->constantCount >= fn->constantCapacity) {
    int capacity = GROW_CAPACITY(fn->constantCapacity);
    fn->constants = (Value*)reallocate(vm, fn->constants,
                                       sizeof(Value) * fn->constantCapacity,
                                       sizeof(Value) * capacity);
    fn->constantCapacity = capacity;
  }
  fn->constants[fn->constantCount] = value;
  return fn->constantCount++;
}

ObjClosure* newClosure(VM* vm, ObjFn* fn) {
  ObjClosure* c = (ObjClosure*)allocateObject(
      vm, sizeof(ObjClosure) + sizeof(ObjUpvalue*) * fn->numUpvalues,
      OBJ_CLOSURE, vm->fnClass);
  c->fn = fn;
  c->upvalueCount = fn->numUpvalues;
  for (int i = 0; i < fn->numUpvalues; i++) c->upvalues[i] = NULL;
  return c;
}

ObjUpvalue* newUpvalue(VM* vm, Value* slot) {
  ObjUpvalue* u = ALLOCATE_OBJ(vm, ObjUpvalue, OBJ_UPVALUE, NULL);
  u->value = slot;
  u->closed = NULL_VAL;
  u->next = NULL;
  u->fiber = NULL;
  return u;
}

ObjClass* newSingleClass(VM* vm, int numFields, ObjString* name) {
  ObjClass* c = ALLOCATE_OBJ(vm, ObjClass, OBJ_CLASS, NULL);
  c->superclass = NULL;
  c->numFields = numFields;
  c->methods = NULL;
  c->methodCount = 0;
  c->name = name;
  c->attributes = NULL_VAL;
  c->isSealed = false;
  return c;
}

void bindMethod(VM* vm, ObjClass* cls, int symbol, Method method) {
  if (symbol >= cls->methodCount) {
    int count = symbol + 1 < 16 ? 16 : symbol + 1;
    if (count < cls->methodCount * 2) count = cls->methodCount * 2;
    cls->methods = (Method*)reallocate(vm, cls->methods,
                                       sizeof(Method) * cls->methodCount,
                                       sizeof(Method) * count);
    for (int i = cls->methodCount; i < count; i++) {
      cls->methods[i].type = METHOD_NONE;
    }
    cls->methodCount = count;
  }
  cls->methods[symbol] = method;
}

/* A subclass starts with a copy of every method of its superclass. */
void bindSuperclass(VM* vm, ObjClass* subclass, ObjClass* superclass) {
  subclass->superclass = superclass;
  if (subclass->numFields != -1) subclass->numFields += superclass->numFields;
  for (int i = 0; i < superclass->methodCount; i++) {
    if (superclass->methods[i].type != METHOD_NONE) {
      bindMethod(vm, subclass, i, superclass->methods[i]);
    }
  }
}

/* Creates a class and its metaclass ("Foo metaclass"). */
ObjClass* newClass(VM* vm, ObjClass* superclass, int numFields, ObjString* name) {
  vmPushRoot(vm, (Obj*)name);
  char buffer[300];
  int length = snprintf(buffer, sizeof buffer, "%.256s metaclass", name->chars);
  ObjString* metaName = newStringLength(vm, buffer, (size_t)length);
  vmPushRoot(vm, (Obj*)metaName);
  ObjClass* metaclass = newSingleClass(vm, 0, metaName);
  metaclass->obj.classObj = vm->classClass;
  vmPushRoot(vm, (Obj*)metaclass);
  bindSuperclass(vm, metaclass, vm->classClass);
  ObjClass* cls = newSingleClass(vm, numFields, name);
  cls->obj.classObj = metaclass;
  if (superclass) bindSuperclass(vm, cls, superclass);
  vmPopRoot(vm);
  vmPopRoot(vm);
  vmPopRoot(vm);
  return cls;
}

ObjInstance* newInstance(VM* vm, ObjClass* cls) {
  ObjInstance* inst = (ObjInstance*)allocateObject(
      vm, sizeof(ObjInstance) + sizeof(Value) * cls->numFields, OBJ_INSTANCE, cls);
  for (int i = 0; i < cls->numFields; i++) inst->fields[i] = NULL_VAL;
  return inst;
}

ObjFiber* newFiber(VM* vm, ObjClosure* closure) {
  /* Room for the first function's slots: a module or block body with
   * many locals needs more than the default. */
  int stackCapacity = 64;
  while (closure != NULL && stackCapacity < closure->fn->maxSlots + 1) stackCapacity *= 2;
  Value* stack = ALLOCATE(vm, Value, stackCapacity);
  CallFrame* frames = ALLOCATE(vm, CallFrame, 8);
  ObjFiber* f = ALLOCATE_OBJ(vm, ObjFiber, OBJ_FIBER, vm->fiberClass);
  f->stack = stack;
  f->stackTop = stack;
  f->stackCapacity = stackCapacity;
  f->frames = frames;
  f->frameCount = 0;
  f->frameCapacity = 8;
  f->openUpvalues = NULL;
  f->caller = NULL;
  f->error = NULL_VAL;
  f->state = FIBER_OTHER;
  f->started = false;
  f->escaped = false;
  if (closure != NULL) {
    *f->stackTop++ = OBJ_VAL(closure);
    f->frames[0].closure = closure;
    f->frames[0].ip = closure->fn->code;
    f->frames[0].stackStart = f->stack;
    f->frameCount = 1;
  }
  return f;
}

ObjFiber* newFiberFrom(VM* vm, ObjFiber* done) {
  ObjFiber* f = ALLOCATE_OBJ(vm, ObjFiber, OBJ_FIBER, vm->fiberClass);
  f->stack = done->stack;
  f->stackTop = done->stack;
  f->stackCapacity = done->stackCapacity;
  f->frames = done->frames;
  f->frameCount = 0;
  f->frameCapacity = done->frameCapacity;
  f->openUpvalues = NULL;
  f->caller = NULL;
  f->error = NULL_VAL;
  f->state = FIBER_OTHER;
  f->started = false;
  f->escaped = false;
  done->stack = done->stackTop = NULL;
  done->stackCapacity = 0;
  done->frames = NULL;
  done->frameCount = done->frameCapacity = 0;
  return f;
}

ObjModule* newModule(VM* vm, ObjString* name) {
  ObjModule* m = ALLOCATE_OBJ(vm, ObjModule, OBJ_MODULE, NULL);
  m->name = name;
  m->variables = NULL;
  m->variableCount = 0;
  m->variableCapacity = 0;
  symbolTableInit(&m->variableNames);
  return m;
}

/* ---- Symbol tables -------------------------------------------------- */

void symbolTableInit(SymbolTable* t) {
  t->names = NULL;
  t->lengths = NULL;
  t->count = t->capacity = 0;
  t->buckets = NULL;
  t->bucketCount = 0;
}

void symbolTableFree(SymbolTable* t) {
  for (int i = 0; i < t->count; i++) free(t->names[i]);
  free(t->names);
  free(t->lengths);
  free(t->buckets);
  symbolTableInit(t);
}

/* Method and variable names: FNV-1a hashes into a power-of-two bucket
 * array, collisions resolved by linear probing. */
static uint32_t hashName(const char* name, int length) {
  uint32_t hash = 2166136261u;
  for (int i = 0; i < length; i++) {
    hash ^= (uint8_t)name[i];
    hash *= 16777619u;
  }
  return hash;
}

static void symbolTableIndex(SymbolTable* t, int symbol) {
  uint32_t mask = (uint32_t)t->bucketCount - 1;
  uint32_t index = hashName(t->names[symbol], t->lengths[symbol]) & mask;
  while (t->buckets[index] != -1) index = (index + 1) & mask;
  t->buckets[index] = symbol;
}

static void symbolTableRehash(SymbolTable* t) {
  int count = t->bucketCount == 0 ? 64 : t->bucketCount * 2;
  free(t->buckets);
  t->buckets = (int*)malloc(sizeof(int) * count);
  if (t->buckets == NULL) kwFatalOutOfMemory();
  for (int i = 0; i < count; i++) t->buckets[i] = -1;
  t->bucketCount = count;
  for (int i = 0; i < t->count; i++) symbolTableIndex(t, i);
}

int symbolTableFind(const SymbolTable* t, const char* name, int length) {
  if (t->bucketCount == 0) return -1;
  uint32_t mask = (uint32_t)t->bucketCount - 1;
  uint32_t index = hashName(name, length) & mask;
  for (;;) {
    int symbol = t->buckets[index];
    if (symbol == -1) return -1;
    if (t->lengths[symbol] == length && memcmp(t->names[symbol], name, length) == 0) {
      return symbol;
    }
    index = (index + 1) & mask;
  }
}

int symbolTableAdd(SymbolTable* t, const char* name, int length) {
  if (t->count >= t->capacity) {
    t->capacity = GROW_CAPACITY(t->capacity);
    t->names = (char**)realloc(t->names, sizeof(char*) * t->capacity);
    t->lengths = (int*)realloc(t->lengths, sizeof(int) * t->capacity);
    if (t->names == NULL || t->lengths == NULL) kwFatalOutOfMemory();
  }
  char* copy = (char*)malloc((size_t)length + 1);
  if (copy == NULL) kwFatalOutOfMemory();
  memcpy(copy, name, length);
  copy[length] = '\0';
  t->names[t->count] = copy;
  t->lengths[t->count] = length;
  int symbol = t->count++;
  if (t->count * 2 > t->bucketCount) {
    symbolTableRehash(t);
  } else {
    symbolTableIndex(t, symbol);
  }
  return symbol;
}

int symbolTableEnsure(SymbolTable* t, const char* name, int length) {
  int existing = symbolTableFind(t, name, length);
  if (existing != -1) return existing;
  return symbolTableAdd(t, name, length);
}

int moduleFindVariable(ObjModule* m, const char* name, int length) {
  return symbolTableFind(&m->variableNames, name, length);
}

int moduleAddVariable(VM* vm, ObjModule* m, const char* name, int length, Value value) {
  if (m->variableCount >= m->variableCapacity) {
    int capacity = GROW_CAPACITY(m->variableCapacity);
    m->variables = (Value*)reallocate(vm, m->variables,
                                      sizeof(Value) * m->variableCapacity,
                                      sizeof(Value) * capacity);
    m->variableCapacity = capacity;
  }
  symbolTableAdd(&m->variableNames, name, length);
  m->variables[m->variableCount] = value;
  return m->variableCount++;
}

/* Forgets the variables declared after the first `count` (their names
 * too): what a failed compile declared, implicitly or not, goes with it. */
void moduleTruncateVariables(ObjModule* m, int count) {
  if (count >= m->variableCount) return;
  SymbolTable* names = &m->variableNames;
  for (int i = count; i < names->count; i++) free(names->names[i]);
  names->count = count;
  m->variableCount = count;
  if (names->bucketCount > 0) {
    for (int i = 0; i < names->bucketCount; i++) names->buckets[i] = -1;
    for (int i = 0; i < names->count; i++) symbolTableIndex(names, i);
  }
}

/* ---- UTF-8 (RFC 3629) ------------------------------------------------
 *
 * A code point takes one to four bytes. The lead byte's top bits give
 * the length (0xxxxxxx, 110xxxxx, 1110xxxx, 11110xxx); each byte after it
 * is 10xxxxxx and carries six more bits, most significant first. */

int utf8EncodeLength(int cp) {
  if (cp < 0 || cp > 0x10ffff) return 0;
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/* Callers pass valid code points; anything above 0xffff takes 4 bytes. */
int utf8Encode(int cp, uint8_t* out) {
  static const uint8_t leadBits[5] = {0, 0x00, 0xc0, 0xe0, 0xf0};
  int length = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  for (int i = length - 1; i > 0; i--) {
    out[i] = (uint8_t)(0x80 | (cp & 0x3f));
    cp >>= 6;
  }
  out[0] = (uint8_t)(leadBits[length] | cp);
  return length;
}

/* The length a lead byte announces; 1 for a byte that leads nothing. */
int utf8DecodeLength(uint8_t lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x06) return 2;
  if ((lead >> 4) == 0x0e) return 3;
  if ((lead >> 3) == 0x1e) return 4;
  return 1;
}

/* The code point at bytes; -1 when they do not start a whole character. */
int utf8Decode(const uint8_t* bytes, uint32_t length) {
  if (length == 0) return -1;
  uint8_t lead = bytes[0];
  if (lead < 0x80) return lead;
  int size = utf8DecodeLength(lead);
  if (size == 1 || (uint32_t)size > length) return -1;
  int cp = lead & (0x7f >> size);
  for (int i = 1; i < size; i++) {
    if ((bytes[i] & 0xc0) != 0x80) return -1;
    cp = (cp << 6) | (bytes[i] & 0x3f);
  }
  return cp;
}
