/* core_text.c -- The text of built-in values, made without running Wren.
 *
 * Printing and joining are the hot paths of most scripts: System.print,
 * string interpolation (the compiler joins a list of parts) and the
 * toString of lists and maps. When every value involved spells itself
 * with one of the core's own toString methods -- numbers, strings, bools,
 * null, ranges, functions, fibers, classes and instances that do not
 * define toString, and lists and maps of those -- the text is built here
 * in one buffer. Otherwise the primitive answers null (or false) and the
 * Wren side in core.wren asks each value for its toString.
 */
#include <string.h>

#include "core_prims.h"

/* Lists and maps nested deeper than this are left to the Wren side,
 * which also turns a list that contains itself into a stack overflow
 * error instead of looping here. */
#define PLAIN_DEPTH_MAX 32

typedef struct {
  VM* vm;
  char* bytes;
  size_t length;
  size_t capacity;
} TextBuf;

static void textPut(TextBuf* t, const char* chars, size_t length) {
  if (length == 0) return;
  if (t->length + length > t->capacity) {
    size_t capacity = t->capacity < 64 ? 64 : t->capacity;
    while (capacity < t->length + length) capacity *= 2;
    t->bytes = (char*)reallocate(t->vm, t->bytes, t->capacity, capacity);
    t->capacity = capacity;
  }
  memcpy(t->bytes + t->length, chars, length);
  t->length += length;
}

static void textPutC(TextBuf* t, const char* chars) { textPut(t, chars, strlen(chars)); }

static void textPutNum(TextBuf* t, double n) {
  char digits[NUM_TEXT_MAX];
  textPut(t, digits, (size_t)formatNum(n, digits));
}

static void textFree(TextBuf* t) {
  if (t->bytes != NULL) reallocate(t->vm, t->bytes, t->capacity, 0);
  t->bytes = NULL;
  t->capacity = t->length = 0;
}

/* Whether cls answers toString with the method bound on `owner` (the
 * core's own) rather than one a script defined. */
static bool usesToStringOf(VM* vm, ObjClass* cls, ObjClass* owner) {
  int symbol = vm->symToString;
  if (symbol >= cls->methodCount || symbol >= owner->methodCount) return false;
  Method* mine = &cls->methods[symbol];
  Method* theirs = &owner->methods[symbol];
  return mine->type == METHOD_PRIMITIVE && theirs->type == METHOD_PRIMITIVE &&
         mine->as.primitive == theirs->as.primitive;
}

static bool textOf(TextBuf* t, Value v, int depth);

static bool textOfList(TextBuf* t, ObjList* list, int depth) {
  textPut(t, "[", 1);
  for (int i = 0; i < list->count; i++) {
    if (i > 0) textPut(t, ", ", 2);
    if (!textOf(t, list->items[i], depth + 1)) return false;
  }
  textPut(t, "]", 1);
  return true;
}

/* Entries in insertion order: the order map iteration visits them. */
static bool textOfMap(TextBuf* t, ObjMap* map, int depth) {
  textPut(t, "{", 1);
  bool first = true;
  for (uint32_t i = 0; i < map->used; i++) {
    MapEntry* entry = &map->entries[i];
    if (IS_UNDEFINED(entry->key)) continue;
    if (!first) textPut(t, ", ", 2);
    first = false;
    if (!textOf(t, entry->key, depth + 1)) return false;
    textPut(t, ": ", 2);
    if (!textOf(t, entry->value, depth + 1)) return false;
  }
  textPut(t, "}", 1);
  return true;
}

/* Appends v's text; false when only a Wren toString can tell it. */
static bool textOf(TextBuf* t, Value v, int depth) {
  if (IS_NUM(v)) {
    textPutNum(t, AS_NUM(v));
    return true;
  }
  if (v == NULL_VAL) {
    textPut(t, "null", 4);
    return true;
  }
  if (v == TRUE_VAL || v == FALSE_VAL) {
    textPutC(t, v == TRUE_VAL ? "true" : "false");
    return true;
  }
  if (!IS_OBJ(v)) return false;
  VM* vm = t->vm;
  switch (OBJ_TYPE(v)) {
    case OBJ_STRING:
      textPut(t, AS_STRING(v)->chars, AS_STRING(v)->length);
      return true;
    case OBJ_RANGE: {
      ObjRange* range = AS_RANGE(v);
      textPutNum(t, range->from);
      textPutC(t, range->isInclusive ? ".." : "...");
      textPutNum(t, range->to);
      return true;
    }
    case OBJ_LIST:
      return depth < PLAIN_DEPTH_MAX && textOfList(t, AS_LIST(v), depth);
    case OBJ_MAP:
      return depth < PLAIN_DEPTH_MAX && textOfMap(t, AS_MAP(v), depth);
    case OBJ_CLOSURE:
      textPut(t, "<fn>", 4);
      return true;
    case OBJ_CLASS: {
      /* A class's text is its name unless its metaclass has a static
       * toString of its own. */
      ObjClass* cls = AS_CLASS(v);
      if (!usesToStringOf(vm, getClass(vm, v), vm->classClass)) return false;
      textPut(t, cls->name->chars, cls->name->length);
      return true;
    }
    case OBJ_INSTANCE:
    case OBJ_FIBER: {
      ObjClass* cls = getClass(vm, v);
      if (!usesToStringOf(vm, cls, vm->objectClass)) return false;
      textPutC(t, "instance of ");
      textPut(t, cls->name->chars, cls->name->length);
      return true;
    }
    default:
      return false;
  }
}

/* The text of v as a new string, or NULL when it needs Wren. */
static ObjString* plainString(VM* vm, Value v) {
  TextBuf t = {vm, NULL, 0, 0};
  ObjString* result = NULL;
  if (textOf(&t, v, 0)) result = newStringLength(vm, t.bytes == NULL ? "" : t.bytes, t.length);
  textFree(&t);
  return result;
}

/* List.joinPlain_(separator): the elements' text with separator between
 * them, or null when some element needs its Wren toString. */
PrimResult coreListJoinPlain(VM* vm, Value* args, int argc) {
  (void)argc;
  if (!IS_STRING(args[1])) {
    vm->fiber->error = vmRuntimeErrorValue(vm, "Separator must be a string.");
    return PRIM_ERROR;
  }
  ObjList* list = AS_LIST(args[0]);
  ObjString* separator = AS_STRING(args[1]);
  /* The common case, a list of strings, needs no scratch buffer. */
  size_t total = 0;
  bool allStrings = true;
  for (int i = 0; i < list->count && allStrings; i++) {
    if (!IS_STRING(list->items[i])) allStrings = false;
    else total += AS_STRING(list->items[i])->length + (i > 0 ? separator->length : 0);
  }
  if (allStrings) {
    ObjString* result = newStringUninit(vm, total);
    char* out = result->chars;
    for (int i = 0; i < list->count; i++) {
      if (i > 0) {
        memcpy(out, separator->chars, separator->length);
        out += separator->length;
      }
      ObjString* part = AS_STRING(list->items[i]);
      memcpy(out, part->chars, part->length);
      out += part->length;
    }
    stringHash(result);
    args[0] = OBJ_VAL(result);
    return PRIM_VALUE;
  }
  TextBuf t = {vm, NULL, 0, 0};
  bool plain = true;
  for (int i = 0; i < list->count && plain; i++) {
    if (i > 0) textPut(&t, separator->chars, separator->length);
    plain = textOf(&t, list->items[i], 1);
  }
  args[0] = plain ? OBJ_VAL(newStringLength(vm, t.bytes == NULL ? "" : t.bytes, t.length)) : NULL_VAL;
  textFree(&t);
  return PRIM_VALUE;
}

/* List.plainText_ and Map.plainText_: toString without Wren, or null. */
PrimResult corePlainText(VM* vm, Value* args, int argc) {
  (void)argc;
  ObjString* text = plainString(vm, args[0]);
  args[0] = text == NULL ? NULL_VAL : OBJ_VAL(text);
  return PRIM_VALUE;
}

/* System.put_(value, ending): writes value's text and then ending (a
 * string) to the output; false, writing nothing, when the value needs its
 * Wren toString. */
PrimResult coreSystemPut(VM* vm, Value* args, int argc) {
  (void)argc;
  Value v = args[1];
  ObjString* ending = AS_STRING(args[2]);
  if (IS_STRING(v)) {
    vmWrite(vm, AS_STRING(v)->chars, (int)AS_STRING(v)->length);
  } else {
    TextBuf t = {vm, NULL, 0, 0};
    bool plain = textOf(&t, v, 0);
    if (plain && t.length > 0) vmWrite(vm, t.bytes, (int)t.length);
    textFree(&t);
    if (!plain) {
      args[0] = FALSE_VAL;
      return PRIM_VALUE;
    }
  }
  vmWrite(vm, ending->chars, (int)ending->length);
  args[0] = TRUE_VAL;
  return PRIM_VALUE;
}
