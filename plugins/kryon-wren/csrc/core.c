/* core.c -- The core library's primitive methods and VM bootstrap.
 *
 * coreInitialize builds Object, Class and Object's metaclass by hand,
 * runs the Wren half of the core library (core.wren, embedded as
 * core_wren.inc by the build) in the core module, then binds the C
 * primitives below onto the classes it defined. A primitive receives
 * the receiver and arguments in args[0..argc-1] and leaves its result in
 * args[0]; validation failures set the fiber's error with Wren's wording.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "host.h"
#include "vm.h"

static const char coreSource[] =
#include "core_wren.inc"
    ;

#define PRIM(name) static PrimResult prim_##name(VM* vm, Value* args, int argc)
#define UNUSED_ARGS() \
  (void)vm;           \
  (void)argc
#define RETURN_VAL(v)   \
  do {                  \
    args[0] = (v);      \
    return PRIM_VALUE;  \
  } while (0)
#define RETURN_NUM(n) RETURN_VAL(NUM_VAL(n))
#define RETURN_BOOL(b) RETURN_VAL(BOOL_VAL(b))
#define RETURN_OBJ(o) RETURN_VAL(OBJ_VAL(o))
#define RETURN_ERROR(...)                                        \
  do {                                                           \
    vm->fiber->error = vmRuntimeErrorValue(vm, __VA_ARGS__);     \
    return PRIM_ERROR;                                           \
  } while (0)

/* ---- Validation ----------------------------------------------------- */

static bool fail(VM* vm, const char* message, const char* argName) {
  vm->fiber->error = vmRuntimeErrorValue(vm, message, argName);
  return false;
}

static bool validateNum(VM* vm, Value v, const char* argName) {
  if (IS_NUM(v)) return true;
  return fail(vm, "%s must be a number.", argName);
}

static bool validateInt(VM* vm, Value v, const char* argName) {
  if (!validateNum(vm, v, argName)) return false;
  double n = AS_NUM(v);
  if (trunc(n) != n || isinf(n)) return fail(vm, "%s must be an integer.", argName);
  return true;
}

static bool validateString(VM* vm, Value v, const char* argName) {
  if (IS_STRING(v)) return true;
  return fail(vm, "%s must be a string.", argName);
}

static bool validateFn(VM* vm, Value v, const char* argName) {
  if (IS_CLOSURE(v)) return true;
  return fail(vm, "%s must be a function.", argName);
}

static inline bool validateKey(VM* vm, Value v) {
  if (IS_NUM(v) || isValueType(v)) return true;
  vm->fiber->error = vmRuntimeErrorValue(vm, "Key must be a value type.");
  return false;
}

/* Returns a valid index in [0, count) or -1 after setting the error. */
static int validateIndexValue(VM* vm, double index, int count, const char* argName) {
  if (index < 0) index += count;
  if (index >= 0 && index < count) return (int)index;
  fail(vm, "%s out of bounds.", argName);
  return -1;
}

static int validateIndex(VM* vm, Value v, int count, const char* argName) {
  if (!validateInt(vm, v, argName)) return -1;
  return validateIndexValue(vm, AS_NUM(v), count, argName);
}

/* Turns a range into start/step/length over a sequence of `*length`
 * items; returns false after setting the error. */
static bool calculateRange(VM* vm, ObjRange* range, int* length, int* start, int* step) {
  *step = 0;
  if (range->from == *length && range->to == (range->isInclusive ? -1.0 : (double)*length)) {
    *start = 0;
    *length = 0;
    return true;
  }
  if (trunc(range->from) != range->from) return fail(vm, "%s must be an integer.", "Range start");
  int from = validateIndexValue(vm, range->from, *length, "Range start");
  if (from == -1) return false;
  if (trunc(range->to) != range->to) return fail(vm, "%s must be an integer.", "Range end");
  double value = range->to;
  if (value < 0) value += *length;
  if (!range->isInclusive) {
    if (value == from) {
      *start = from;
      *length = 0;
      return true;
    }
    value += value >= from ? -1 : 1;
  }
  if (value < 0 || value >= *length) return fail(vm, "%s out of bounds.", "Range end");
  int to = (int)value;
  *start = from;
  *step = from <= to ? 1 : -1;
  *length = abs(from - to) + 1;
  return true;
}

/* ---- Object and Class ----------------------------------------------- */

ObjString* valueToCString(VM* vm, Value v) {
  if (IS_NUM(v)) return stringFormatNum(vm, AS_NUM(v));
  if (v == NULL_VAL) return newString(vm, "null");
  if (v == TRUE_VAL) return newString(vm, "true");
  if (v == FALSE_VAL) return newString(vm, "false");
  if (IS_STRING(v)) return AS_STRING(v);
  if (IS_CLASS(v)) return AS_CLASS(v)->name;
  ObjClass* cls = getClass(vm, v);
  char buffer[300];
  snprintf(buffer, sizeof buffer, "instance of %s", cls ? cls->name->chars : "?");
  return newString(vm, buffer);
}

PRIM(object_not) { UNUSED_ARGS(); RETURN_VAL(FALSE_VAL); }
PRIM(object_eq) { UNUSED_ARGS(); RETURN_BOOL(valuesEqual(args[0], args[1])); }
PRIM(object_neq) { UNUSED_ARGS(); RETURN_BOOL(!valuesEqual(args[0], args[1])); }
/* Numbers by their bits (so 0 and -0 differ), strings and ranges by
 * value, everything else by identity. */
PRIM(object_same) {
  UNUSED_ARGS();
  RETURN_BOOL(args[1] == args[2] || (IS_OBJ(args[1]) && valuesEqual(args[1], args[2])));
}
PRIM(object_type) { UNUSED_ARGS(); RETURN_OBJ(getClass(vm, args[0])); }
PRIM(object_toString) { UNUSED_ARGS(); RETURN_OBJ(valueToCString(vm, args[0])); }

PRIM(object_is) {
  UNUSED_ARGS();
  if (!IS_CLASS(args[1])) RETURN_ERROR("Right operand must be a class.");
  ObjClass* target = AS_CLASS(args[1]);
  for (ObjClass* c = getClass(vm, args[0]); c != NULL; c = c->superclass) {
    if (c == target) RETURN_VAL(TRUE_VAL);
  }
  RETURN_VAL(FALSE_VAL);
}

PRIM(class_name) { UNUSED_ARGS(); RETURN_OBJ(AS_CLASS(args[0])->name); }
PRIM(class_supertype) {
  UNUSED_ARGS();
  ObjClass* super = AS_CLASS(args[0])->superclass;
  RETURN_VAL(super == NULL ? NULL_VAL : OBJ_VAL(super));
}
PRIM(class_attributes) { UNUSED_ARGS(); RETURN_VAL(AS_CLASS(args[0])->attributes); }

/* ---- Bool and Null -------------------------------------------------- */

PRIM(bool_not) { UNUSED_ARGS(); RETURN_BOOL(!AS_BOOL(args[0])); }
PRIM(bool_toString) {
  UNUSED_ARGS();
  RETURN_OBJ(newString(vm, AS_BOOL(args[0]) ? "true" : "false"));
}
PRIM(null_not) { UNUSED_ARGS(); RETURN_VAL(TRUE_VAL); }
PRIM(null_toString) { UNUSED_ARGS(); RETURN_OBJ(newString(vm, "null")); }

/* ---- Num ------------------------------------------------------------ */

#define NUM_BINARY(name, expr)                                        \
  PRIM(num_##name) {                                                  \
    UNUSED_ARGS();                                                    \
    if (!validateNum(vm, args[1], "Right operand")) return PRIM_ERROR; \
    double a = AS_NUM(args[0]);                                       \
    double b = AS_NUM(args[1]);                                       \
    RETURN_VAL(expr);                                                 \
  }

static uint32_t toU32(double d) {
  if (isnan(d) || isinf(d)) return 0;
  return (uint32_t)(int64_t)d;
}

NUM_BINARY(add, NUM_VAL(a + b))
NUM_BINARY(sub, NUM_VAL(a - b))
NUM_BINARY(mul, NUM_VAL(a * b))
NUM_BINARY(div, NUM_VAL(a / b))
NUM_BINARY(mod, NUM_VAL(fmod(a, b)))
NUM_BINARY(lt, BOOL_VAL(a < b))
NUM_BINARY(gt, BOOL_VAL(a > b))
NUM_BINARY(lte, BOOL_VAL(a <= b))
NUM_BINARY(gte, BOOL_VAL(a >= b))
NUM_BINARY(bitAnd, NUM_VAL((double)(toU32(a) & toU32(b))))
NUM_BINARY(bitOr, NUM_VAL((double)(toU32(a) | toU32(b))))
NUM_BINARY(bitXor, NUM_VAL((double)(toU32(a) ^ toU32(b))))
NUM_BINARY(shl, NUM_VAL((double)(uint32_t)(toU32(a) << (toU32(b) & 31))))
NUM_BINARY(shr, NUM_VAL((double)(toU32(a) >> (toU32(b) & 31))))
NUM_BINARY(atan2, NUM_VAL(atan2(a, b)))
NUM_BINARY(min, NUM_VAL(a < b ? a : b))
NUM_BINARY(max, NUM_VAL(a > b ? a : b))

PRIM(num_pow) {
  UNUSED_ARGS();
  if (!validateNum(vm, args[1], "Power value")) return PRIM_ERROR;
  RETURN_NUM(pow(AS_NUM(args[0]), AS_NUM(args[1])));
}

PRIM(num_eq) {
  UNUSED_ARGS();
  if (!IS_NUM(args[1])) RETURN_VAL(FALSE_VAL);
  RETURN_BOOL(AS_NUM(args[0]) == AS_NUM(args[1]));
}

PRIM(num_neq) {
  UNUSED_ARGS();
  if (!IS_NUM(args[1])) RETURN_VAL(TRUE_VAL);
  RETURN_BOOL(AS_NUM(args[0]) != AS_NUM(args[1]));
}

PRIM(num_clamp) {
  UNUSED_ARGS();
  if (!validateNum(vm, args[1], "Min value")) return PRIM_ERROR;
  if (!validateNum(vm, args[2], "Max value")) return PRIM_ERROR;
  double v = AS_NUM(args[0]), lo = AS_NUM(args[1]), hi = AS_NUM(args[2]);
  RETURN_NUM(v < lo ? lo : (v > hi ? hi : v));
}

PRIM(num_range) {
  UNUSED_ARGS();
  if (!validateNum(vm, args[1], "Right hand side of range")) return PRIM_ERROR;
  RETURN_OBJ(newRange(vm, AS_NUM(args[0]), AS_NUM(args[1]), true));
}

PRIM(num_rangeExclusive) {
  UNUSED_ARGS();
  if (!validateNum(vm, args[1], "Right hand side of range")) return PRIM_ERROR;
  RETURN_OBJ(newRange(vm, AS_NUM(args[0]), AS_NUM(args[1]), false));
}

#define NUM_UNARY(name, expr)      \
  PRIM(num_##name) {               \
    UNUSED_ARGS();                 \
    double n = AS_NUM(args[0]);    \
    RETURN_VAL(expr);              \
  }

NUM_UNARY(negate, NUM_VAL(-n))
NUM_UNARY(abs, NUM_VAL(fabs(n)))
NUM_UNARY(acos, NUM_VAL(acos(n)))
NUM_UNARY(asin, NUM_VAL(asin(n)))
NUM_UNARY(atan, NUM_VAL(atan(n)))
NUM_UNARY(cbrt, NUM_VAL(cbrt(n)))
NUM_UNARY(ceil, NUM_VAL(ceil(n)))
NUM_UNARY(cos, NUM_VAL(cos(n)))
NUM_UNARY(exp, NUM_VAL(exp(n)))
NUM_UNARY(floor, NUM_VAL(floor(n)))
NUM_UNARY(log, NUM_VAL(log(n)))
NUM_UNARY(log2, NUM_VAL(log2(n)))
NUM_UNARY(round, NUM_VAL(round(n)))
NUM_UNARY(sin, NUM_VAL(sin(n)))
NUM_UNARY(sqrt, NUM_VAL(sqrt(n)))
NUM_UNARY(tan, NUM_VAL(tan(n)))
NUM_UNARY(truncate, NUM_VAL(trunc(n)))
NUM_UNARY(fraction, NUM_VAL(n - trunc(n)))
NUM_UNARY(bitNot, NUM_VAL((double)(~toU32(n))))
NUM_UNARY(isInfinity, BOOL_VAL(isinf(n)))
NUM_UNARY(isNan, BOOL_VAL(isnan(n)))
NUM_UNARY(isInteger, BOOL_VAL(!isnan(n) && !isinf(n) && trunc(n) == n))
NUM_UNARY(sign, NUM_VAL(n > 0 ? 1 : (n < 0 ? -1 : 0)))
NUM_UNARY(toString, OBJ_VAL(stringFormatNum(vm, n)))

PRIM(num_infinity) { UNUSED_ARGS(); RETURN_NUM(INFINITY); }
PRIM(num_nan) { UNUSED_ARGS(); RETURN_NUM(NAN); }
PRIM(num_pi) { UNUSED_ARGS(); RETURN_NUM(3.14159265358979323846264338327950288); }
PRIM(num_tau) { UNUSED_ARGS(); RETURN_NUM(6.28318530717958647692528676655900577); }
PRIM(num_largest) { UNUSED_ARGS(); RETURN_NUM(DBL_MAX); }
PRIM(num_smallest) { UNUSED_ARGS(); RETURN_NUM(DBL_MIN); }
PRIM(num_epsilon) { UNUSED_ARGS(); RETURN_NUM(DBL_EPSILON); }
PRIM(num_maxSafeInteger) { UNUSED_ARGS(); RETURN_NUM(9007199254740991.0); }
PRIM(num_minSafeInteger) { UNUSED_ARGS(); RETURN_NUM(-9007199254740991.0); }

static bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

PRIM(num_fromString) {
  UNUSED_ARGS();
  if (!validateString(vm, args[1], "Argument")) return PRIM_ERROR;
  ObjString* s = AS_STRING(args[1]);
  const char* start = s->chars;
  const char* end = s->chars + s->length;
  while (start < end && isSpace(*start)) start++;
  while (end > start && isSpace(end[-1])) end--;
  if (start == end) RETURN_VAL(NULL_VAL);
  char* parsedEnd;
  double value = strtod(start, &parsedEnd);
  if (parsedEnd != end) RETURN_VAL(NULL_VAL);
  RETURN_NUM(value);
}

/* ---- String --------------------------------------------------------- */

static ObjString* codePointAt(VM* vm, ObjString* s, uint32_t index) {
  uint8_t first = (uint8_t)s->chars[index];
  uint32_t length = (uint32_t)utf8DecodeLength(first);
  if ((first & 0xc0) == 0x80 || index + length > s->length) length = 1;
  return newStringLength(vm, s->chars + index, length);
}

static uint32_t nextCodePointIndex(ObjString* s, uint32_t index) {
  index++;
  while (index < s->length && ((uint8_t)s->chars[index] & 0xc0) == 0x80) index++;
  return index;
}

static int64_t stringFind(ObjString* haystack, ObjString* needle, uint32_t start) {
  if (needle->length == 0) return start <= haystack->length ? (int64_t)start : -1;
  if (needle->length > haystack->length) return -1;
  for (uint32_t i = start; i + needle->length <= haystack->length; i++) {
    if (memcmp(haystack->chars + i, needle->chars, needle->length) == 0) return i;
  }
  return -1;
}

PRIM(string_fromCodePoint) {
  UNUSED_ARGS();
  if (!validateInt(vm, args[1], "Code point")) return PRIM_ERROR;
  int cp = (int)AS_NUM(args[1]);
  if (cp < 0) RETURN_ERROR("Code point cannot be negative.");
  if (cp > 0x10ffff) RETURN_ERROR("Code point cannot be greater than 0x10ffff.");
  uint8_t bytes[4];
  int n = utf8Encode(cp, bytes);
  RETURN_OBJ(newStringLength(vm, (const char*)bytes, (size_t)n));
}

PRIM(string_fromByte) {
  UNUSED_ARGS();
  if (!validateInt(vm, args[1], "Byte")) return PRIM_ERROR;
  int byte = (int)AS_NUM(args[1]);
  if (byte < 0) RETURN_ERROR("Byte cannot be negative.");
  if (byte > 0xff) RETURN_ERROR("Byte cannot be greater than 0xff.");
  char c = (char)byte;
  RETURN_OBJ(newStringLength(vm, &c, 1));
}

PRIM(string_plus) {
  UNUSED_ARGS();
  if (!validateString(vm, args[1], "Right operand")) return PRIM_ERROR;
  RETURN_OBJ(concatStrings(vm, AS_STRING(args[0]), AS_STRING(args[1])));
}

PRIM(string_times) {
  UNUSED_ARGS();
  ObjString* s = AS_STRING(args[0]);
  if (!IS_NUM(args[1]) || trunc(AS_NUM(args[1])) != AS_NUM(args[1]) || AS_NUM(args[1]) < 0) {
    RETURN_ERROR("Count must be a non-negative integer.");
  }
  double count = AS_NUM(args[1]);
  if (count * s->length > 1e9) RETURN_ERROR("String too large.");
  ObjString* result = newStringUninit(vm, (size_t)(s->length * count));
  for (uint32_t i = 0; i < (uint32_t)count; i++) {
    memcpy(result->chars + i * s->length, s->chars, s->length);
  }
  stringHash(result);
  RETURN_OBJ(result);
}

PRIM(string_subscript) {
  UNUSED_ARGS();
  ObjString* s = AS_STRING(args[0]);
  if (IS_NUM(args[1])) {
    int index = validateIndex(vm, args[1], (int)s->length, "Subscript");
    if (index == -1) return PRIM_ERROR;
    RETURN_OBJ(codePointAt(vm, s, (uint32_t)index));
  }
  if (!IS_RANGE(args[1])) RETURN_ERROR("Subscript must be a number or a range.");
  int length = (int)s->length, start, step;
  if (!calculateRange(vm, AS_RANGE(args[1]), &length, &start, &step)) return PRIM_ERROR;
  ObjString* result = newStringUninit(vm, (size_t)length);
  for (int i = 0; i < length; i++) result->chars[i] = s->chars[start + i * step];
  stringHash(result);
  RETURN_OBJ(result);
}

PRIM(string_byteAt) {
  UNUSED_ARGS();
  ObjString* s = AS_STRING(args[0]);
  int index = validateIndex(vm, args[1], (int)s->length, "Index");
  if (index == -1) return PRIM_ERROR;
  RETURN_NUM((uint8_t)s->chars[index]);
}

PRIM(string_byteCount) { UNUSED_ARGS(); RETURN_NUM(AS_STRING(args[0])->length); }

PRIM(string_codePointAt) {
  UNUSED_ARGS();
  ObjString* s = AS_STRING(args[0]);
  int index = validateIndex(vm, args[1], (int)s->length, "Index");
  if (index == -1) return PRIM_ERROR;
  const uint8_t* bytes = (const uint8_t*)s->chars + index;
  if ((*bytes & 0xc0) == 0x80) RETURN_NUM(-1);
  RETURN_NUM(utf8Decode(bytes, s->length - (uint32_t)index));
}

PRIM(string_count) {
  UNUSED_ARGS();
  ObjString* s = AS_STRING(args[0]);
  int count = 0;
  for (uint32_t i = 0; i < s->length; i++) {
    if (((uint8_t)s->chars[i] & 0xc0) != 0x80) count++;
  }
  RETURN_NUM(count);
}

PRIM(string_contains) {
  UNUSED_ARGS();
  if (!validateString(vm, args[1], "Argument")) return PRIM_ERROR;
  RETURN_BOOL(stringFind(AS_STRING(args[0]), AS_STRING(args[1]), 0) != -1);
}

PRIM(string_startsWith) {
  UNUSED_ARGS();
  if (!validateString(vm, args[1], "Argument")) return PRIM_ERROR;
  ObjString* s = AS_STRING(args[0]);
  ObjString* t = AS_STRING(args[1]);
  RETURN_BOOL(t->length <= s->length && memcmp(s->chars, t->chars, t->length) == 0);
}

PRIM(string_endsWith) {
  UNUSED_ARGS();
  if (!validateString(vm, args[1], "Argument")) return PRIM_ERROR;
  ObjString* s = AS_STRING(args[0]);
  ObjString* t = AS_STRING(args[1]);
  RETURN_BOOL(t->length <= s->length &&
              memcmp(s->chars + s->length - t->length, t->chars, t->length) == 0);
}

PRIM(string_indexOf) {
  UNUSED_ARGS();
  if (!validateString(vm, args[1], "Argument")) return PRIM_ERROR;
  uint32_t start = 0;
  if (argc > 2) {
    int index = validateIndex(vm, args[2], (int)AS_STRING(args[0])->length + 1, "Start");
    if (index == -1) return PRIM_ERROR;
    start = (uint32_t)index;
  }
  RETURN_NUM((double)stringFind(AS_STRING(args[0]), AS_STRING(args[1]), start));
}

PRIM(string_iterate) {
  UNUSED_ARGS();
  ObjString* s = AS_STRING(args[0]);
  if (IS_NULL(args[1])) RETURN_VAL(s->length == 0 ? FALSE_VAL : NUM_VAL(0));
  if (!validateInt(vm, args[1], "Iterator")) return PRIM_ERROR;
  double i = AS_NUM(args[1]);
  if (i < 0 || i >= s->length) RETURN_VAL(FALSE_VAL);
  uint32_t next = nextCodePointIndex(s, (uint32_t)i);
  RETURN_VAL(next >= s->length ? FALSE_VAL : NUM_VAL(next));
}

PRIM(string_iterateByte) {
  UNUSED_ARGS();
  ObjString* s = AS_STRING(args[0]);
  if (IS_NULL(args[1])) RETURN_VAL(s->length == 0 ? FALSE_VAL : NUM_VAL(0));
  if (!validateInt(vm, args[1], "Iterator")) return PRIM_ERROR;
  double i = AS_NUM(args[1]);
  if (i < 0 || i + 1 >= s->length) RETURN_VAL(FALSE_VAL);
  RETURN_NUM(i + 1);
}

PRIM(string_iteratorValue) {
  UNUSED_ARGS();
  ObjString* s = AS_STRING(args[0]);
  int index = validateIndex(vm, args[1], (int)s->length, "Iterator");
  if (index == -1) return PRIM_ERROR;
  RETURN_OBJ(codePointAt(vm, s, (uint32_t)index));
}

PRIM(string_toString) { UNUSED_ARGS(); return PRIM_VALUE; }

PRIM(string_split) {
  UNUSED_ARGS();
  if (!validateString(vm, args[1], "Delimiter")) return PRIM_ERROR;
  ObjString* s = AS_STRING(args[0]);
  ObjString* delim = AS_STRING(args[1]);
  if (delim->length == 0) RETURN_ERROR("Delimiter cannot be empty.");
  ObjList* list = newList(vm, 0);
  uint32_t start = 0;
  for (;;) {
    int64_t found = stringFind(s, delim, start);
    if (found == -1) break;
    listAppend(vm, list, stringValue(vm, s->chars + start, (size_t)(found - start)));
    start = (uint32_t)found + delim->length;
  }
  listAppend(vm, list, stringValue(vm, s->chars + start, s->length - start));
  RETURN_OBJ(list);
}

PRIM(string_replace) {
  UNUSED_ARGS();
  if (!validateString(vm, args[1], "From")) return PRIM_ERROR;
  if (!validateString(vm, args[2], "To")) return PRIM_ERROR;
  ObjString* s = AS_STRING(args[0]);
  ObjString* from = AS_STRING(args[1]);
  ObjString* to = AS_STRING(args[2]);
  if (from->length == 0) RETURN_ERROR("From must be a non-empty string.");
  size_t capacity = s->length + 16, length = 0;
  char* buffer = (char*)malloc(capacity);
  uint32_t start = 0;
  for (;;) {
    int64_t found = stringFind(s, from, start);
    uint32_t end = found == -1 ? s->length : (uint32_t)found;
    size_t needed = length + (end - start) + to->length;
    if (needed > capacity) {
      while (capacity < needed) capacity *= 2;
      buffer = (char*)realloc(buffer, capacity);
    }
    memcpy(buffer + length, s->chars + start, end - start);
    length += end - start;
    if (found == -1) break;
    memcpy(buffer + length, to->chars, to->length);
    length += to->length;
    start = end + from->length;
  }
  ObjString* result = newStringLength(vm, buffer, length);
  free(buffer);
  RETURN_OBJ(result);
}

static bool inChars(ObjString* chars, const char* p) {
  if (chars == NULL) return isSpace(*p);
  return memchr(chars->chars, *p, chars->length) != NULL;
}

static PrimResult trimString(VM* vm, Value* args, int argc, bool left, bool right) {
  ObjString* chars = NULL;
  if (argc > 1) {
    if (!validateString(vm, args[1], "Characters")) return PRIM_ERROR;
    chars = AS_STRING(args[1]);
  }
  ObjString* s = AS_STRING(args[0]);
  const char* start = s->chars;
  const char* end = s->chars + s->length;
  if (left) {
    while (start < end && inChars(chars, start)) start++;
  }
  if (right) {
    while (end > start && inChars(chars, end - 1)) end--;
  }
  RETURN_VAL(stringValue(vm, start, (size_t)(end - start)));
}

PRIM(string_trim) { return trimString(vm, args, argc, true, true); }
PRIM(string_trimStart) { return trimString(vm, args, argc, true, false); }
PRIM(string_trimEnd) { return trimString(vm, args, argc, false, true); }

/* ---- List ----------------------------------------------------------- */

PRIM(list_new) { UNUSED_ARGS(); RETURN_OBJ(newList(vm, 0)); }

PRIM(list_filled) {
  UNUSED_ARGS();
  if (!IS_NUM(args[1]) || trunc(AS_NUM(args[1])) != AS_NUM(args[1]) || AS_NUM(args[1]) < 0) {
    RETURN_ERROR("Size must be a non-negative integer.");
  }
  ObjList* list = newList(vm, (int)AS_NUM(args[1]));
  for (int i = 0; i < list->count; i++) list->items[i] = args[2];
  RETURN_OBJ(list);
}

PRIM(list_subscript) {
  UNUSED_ARGS();
  ObjList* list = AS_LIST(args[0]);
  if (IS_NUM(args[1])) {
    int index = validateIndex(vm, args[1], list->count, "Subscript");
    if (index == -1) return PRIM_ERROR;
    RETURN_VAL(list->items[index]);
  }
  if (!IS_RANGE(args[1])) RETURN_ERROR("Subscript must be a number or a range.");
  int length = list->count, start, step;
  if (!calculateRange(vm, AS_RANGE(args[1]), &length, &start, &step)) return PRIM_ERROR;
  ObjList* result = newList(vm, length);
  for (int i = 0; i < length; i++) result->items[i] = list->items[start + i * step];
  RETURN_OBJ(result);
}

PRIM(list_subscriptSetter) {
  UNUSED_ARGS();
  ObjList* list = AS_LIST(args[0]);
  int index = validateIndex(vm, args[1], list->count, "Subscript");
  if (index == -1) return PRIM_ERROR;
  list->items[index] = args[2];
  RETURN_VAL(args[2]);
}

PRIM(list_add) {
  UNUSED_ARGS();
  listAppend(vm, AS_LIST(args[0]), args[1]);
  RETURN_VAL(args[1]);
}

PRIM(list_clear) {
  UNUSED_ARGS();
  ObjList* list = AS_LIST(args[0]);
  FREE_ARRAY(vm, Value, list->items, list->capacity);
  list->items = NULL;
  list->count = list->capacity = 0;
  RETURN_VAL(NULL_VAL);
}

PRIM(list_count) { UNUSED_ARGS(); RETURN_NUM(AS_LIST(args[0])->count); }

PRIM(list_insert) {
  UNUSED_ARGS();
  ObjList* list = AS_LIST(args[0]);
  int index = validateIndex(vm, args[1], list->count + 1, "Index");
  if (index == -1) return PRIM_ERROR;
  listInsert(vm, list, args[2], index);
  RETURN_VAL(args[2]);
}

PRIM(list_iterate) {
  UNUSED_ARGS();
  ObjList* list = AS_LIST(args[0]);
  if (IS_NULL(args[1])) RETURN_VAL(list->count == 0 ? FALSE_VAL : NUM_VAL(0));
  if (!validateInt(vm, args[1], "Iterator")) return PRIM_ERROR;
  double i = AS_NUM(args[1]);
  if (i < 0 || i >= list->count - 1) RETURN_VAL(FALSE_VAL);
  RETURN_NUM(i + 1);
}

PRIM(list_iteratorValue) {
  UNUSED_ARGS();
  ObjList* list = AS_LIST(args[0]);
  int index = validateIndex(vm, args[1], list->count, "Iterator");
  if (index == -1) return PRIM_ERROR;
  RETURN_VAL(list->items[index]);
}

PRIM(list_removeAt) {
  UNUSED_ARGS();
  ObjList* list = AS_LIST(args[0]);
  int index = validateIndex(vm, args[1], list->count, "Index");
  if (index == -1) return PRIM_ERROR;
  RETURN_VAL(listRemoveAt(vm, list, index));
}

PRIM(list_remove) {
  UNUSED_ARGS();
  ObjList* list = AS_LIST(args[0]);
  for (int i = 0; i < list->count; i++) {
    if (valuesEqual(list->items[i], args[1])) RETURN_VAL(listRemoveAt(vm, list, i));
  }
  RETURN_VAL(NULL_VAL);
}

PRIM(list_indexOf) {
  UNUSED_ARGS();
  ObjList* list = AS_LIST(args[0]);
  for (int i = 0; i < list->count; i++) {
    if (valuesEqual(list->items[i], args[1])) RETURN_NUM(i);
  }
  RETURN_NUM(-1);
}

PRIM(list_swap) {
  UNUSED_ARGS();
  ObjList* list = AS_LIST(args[0]);
  int a = validateIndex(vm, args[1], list->count, "Index 0");
  if (a == -1) return PRIM_ERROR;
  int b = validateIndex(vm, args[2], list->count, "Index 1");
  if (b == -1) return PRIM_ERROR;
  Value t = list->items[a];
  list->items[a] = list->items[b];
  list->items[b] = t;
  RETURN_VAL(NULL_VAL);
}

static int compareNums(const void* a, const void* b) {
  double x = AS_NUM(*(const Value*)a), y = AS_NUM(*(const Value*)b);
  return x < y ? -1 : (x > y ? 1 : 0);
}

/* Sorts all-number lists natively; returns false to use the comparer. */
PRIM(list_sortDefault) {
  UNUSED_ARGS();
  ObjList* list = AS_LIST(args[0]);
  for (int i = 0; i < list->count; i++) {
    if (!IS_NUM(list->items[i])) RETURN_VAL(FALSE_VAL);
  }
  qsort(list->items, (size_t)list->count, sizeof(Value), compareNums);
  RETURN_VAL(TRUE_VAL);
}

PRIM(list_joinStrings) {
  UNUSED_ARGS();
  ObjList* list = AS_LIST(args[0]);
  ObjString* sep = AS_STRING(args[1]);
  size_t length = 0;
  for (int i = 0; i < list->count; i++) {
    if (!IS_STRING(list->items[i])) RETURN_ERROR("List elements must be strings.");
    length += AS_STRING(list->items[i])->length;
    if (i > 0) length += sep->length;
  }
  ObjString* result = newStringUninit(vm, length);
  char* p = result->chars;
  for (int i = 0; i < list->count; i++) {
    if (i > 0) {
      memcpy(p, sep->chars, sep->length);
      p += sep->length;
    }
    ObjString* part = AS_STRING(list->items[i]);
    memcpy(p, part->chars, part->length);
    p += part->length;
  }
  stringHash(result);
  RETURN_OBJ(result);
}

/* ---- Map ------------------------------------------------------------ */

PRIM(map_new) { UNUSED_ARGS(); RETURN_OBJ(newMap(vm)); }

PRIM(map_subscript) {
  UNUSED_ARGS();
  if (!validateKey(vm, args[1])) return PRIM_ERROR;
  Value value;
  if (mapGet(AS_MAP(args[0]), args[1], &value)) RETURN_VAL(value);
  RETURN_VAL(NULL_VAL);
}

PRIM(map_subscriptSetter) {
  UNUSED_ARGS();
  if (!validateKey(vm, args[1])) return PRIM_ERROR;
  mapSet(vm, AS_MAP(args[0]), args[1], args[2]);
  RETURN_VAL(args[2]);
}

PRIM(map_clear) {
  UNUSED_ARGS();
  mapClear(vm, AS_MAP(args[0]));
  RETURN_VAL(NULL_VAL);
}

PRIM(map_containsKey) {
  UNUSED_ARGS();
  if (!validateKey(vm, args[1])) return PRIM_ERROR;
  Value value;
  RETURN_BOOL(mapGet(AS_MAP(args[0]), args[1], &value));
}

PRIM(map_count) { UNUSED_ARGS(); RETURN_NUM(AS_MAP(args[0])->count); }

PRIM(map_remove) {
  UNUSED_ARGS();
  if (!validateKey(vm, args[1])) return PRIM_ERROR;
  RETURN_VAL(mapRemove(vm, AS_MAP(args[0]), args[1]));
}

PRIM(map_iterate) {
  UNUSED_ARGS();
  ObjMap* map = AS_MAP(args[0]);
  if (map->count == 0) RETURN_VAL(FALSE_VAL);
  uint32_t index = 0;
  if (!IS_NULL(args[1])) {
    if (!validateInt(vm, args[1], "Iterator")) return PRIM_ERROR;
    if (AS_NUM(args[1]) < 0) RETURN_VAL(FALSE_VAL);
    index = (uint32_t)AS_NUM(args[1]) + 1;
  }
  for (; index < map->capacity; index++) {
    if (!IS_UNDEFINED(map->entries[index].key)) RETURN_NUM(index);
  }
  RETURN_VAL(FALSE_VAL);
}

static MapEntry* mapIteratorEntry(VM* vm, Value map, Value iterator) {
  ObjMap* m = AS_MAP(map);
  int index = validateIndex(vm, iterator, (int)m->capacity, "Iterator");
  if (index == -1) return NULL;
  MapEntry* entry = &m->entries[index];
  if (IS_UNDEFINED(entry->key)) {
    fail(vm, "%s out of bounds.", "Iterator");
    return NULL;
  }
  return entry;
}

PRIM(map_keyIteratorValue) {
  UNUSED_ARGS();
  MapEntry* entry = mapIteratorEntry(vm, args[0], args[1]);
  if (entry == NULL) return PRIM_ERROR;
  RETURN_VAL(entry->key);
}

PRIM(map_valueIteratorValue) {
  UNUSED_ARGS();
  MapEntry* entry = mapIteratorEntry(vm, args[0], args[1]);
  if (entry == NULL) return PRIM_ERROR;
  RETURN_VAL(entry->value);
}

/* ---- Range ---------------------------------------------------------- */

PRIM(range_from) { UNUSED_ARGS(); RETURN_NUM(AS_RANGE(args[0])->from); }
PRIM(range_to) { UNUSED_ARGS(); RETURN_NUM(AS_RANGE(args[0])->to); }
PRIM(range_min) {
  UNUSED_ARGS();
  ObjRange* r = AS_RANGE(args[0]);
  RETURN_NUM(r->from < r->to ? r->from : r->to);
}
PRIM(range_max) {
  UNUSED_ARGS();
  ObjRange* r = AS_RANGE(args[0]);
  RETURN_NUM(r->from > r->to ? r->from : r->to);
}
PRIM(range_isInclusive) { UNUSED_ARGS(); RETURN_BOOL(AS_RANGE(args[0])->isInclusive); }

PRIM(range_iterate) {
  UNUSED_ARGS();
  ObjRange* r = AS_RANGE(args[0]);
  if (r->from == r->to && !r->isInclusive) RETURN_VAL(FALSE_VAL);
  if (IS_NULL(args[1])) RETURN_NUM(r->from);
  if (!validateNum(vm, args[1], "Iterator")) return PRIM_ERROR;
  double i = AS_NUM(args[1]);
  if (r->from < r->to) {
    i++;
    if (i > r->to || (!r->isInclusive && i == r->to)) RETURN_VAL(FALSE_VAL);
  } else {
    i--;
    if (i < r->to || (!r->isInclusive && i == r->to)) RETURN_VAL(FALSE_VAL);
  }
  RETURN_NUM(i);
}

PRIM(range_iteratorValue) { UNUSED_ARGS(); RETURN_VAL(args[1]); }

PRIM(range_toString) {
  UNUSED_ARGS();
  ObjRange* r = AS_RANGE(args[0]);
  ObjString* from = stringFormatNum(vm, r->from);
  ObjString* to = stringFormatNum(vm, r->to);
  char buffer[100];
  int length = snprintf(buffer, sizeof buffer, "%s%s%s", from->chars,
                        r->isInclusive ? ".." : "...", to->chars);
  RETURN_VAL(stringValue(vm, buffer, (size_t)length));
}

/* ---- Fn ------------------------------------------------------------- */

PRIM(fn_new) {
  UNUSED_ARGS();
  if (!validateFn(vm, args[1], "Argument")) return PRIM_ERROR;
  RETURN_VAL(args[1]);
}

PRIM(fn_arity) { UNUSED_ARGS(); RETURN_NUM(AS_CLOSURE(args[0])->fn->arity); }
PRIM(fn_toString) { UNUSED_ARGS(); RETURN_OBJ(newString(vm, "<fn>")); }

/* ---- Fiber ---------------------------------------------------------- */

static bool fiberIsDone(ObjFiber* f) { return f->frameCount == 0 || !IS_NULL(f->error); }

PRIM(fiber_new) {
  UNUSED_ARGS();
  if (!validateFn(vm, args[1], "Argument")) return PRIM_ERROR;
  ObjClosure* closure = AS_CLOSURE(args[1]);
  if (closure->fn->arity > 1) RETURN_ERROR("Function cannot take more than one parameter.");
  RETURN_OBJ(newFiber(vm, closure));
}

PRIM(fiber_abort) {
  UNUSED_ARGS();
  vm->fiber->error = args[1];
  if (IS_NULL(args[1])) RETURN_VAL(NULL_VAL);
  return PRIM_ERROR;
}

PRIM(fiber_current) { UNUSED_ARGS(); RETURN_OBJ(vm->fiber); }

PRIM(fiber_suspend) {
  UNUSED_ARGS();
  vm->fiber = NULL;
  return PRIM_SWITCH;
}

PRIM(fiber_yield) {
  ObjFiber* current = vm->fiber;
  ObjFiber* caller = current->caller;
  current->caller = NULL;
  current->state = FIBER_OTHER;
  vm->fiber = caller;
  if (caller != NULL) caller->stackTop[-1] = argc > 1 ? args[1] : NULL_VAL;
  return PRIM_SWITCH;
}

/* Shared by call() and try(). */
static PrimResult runFiber(VM* vm, Value* args, int argc, bool isTry, const char* verb) {
  ObjFiber* target = AS_FIBER(args[0]);
  if (target->frameCount == 0) RETURN_ERROR("Cannot %s a finished fiber.", verb);
  if (!IS_NULL(target->error)) RETURN_ERROR("Cannot %s an aborted fiber.", verb);
  if (target->caller != NULL || target == vm->fiber) RETURN_ERROR("Fiber has already been called.");
  if (target->state == FIBER_ROOT) RETURN_ERROR("Cannot %s root fiber.", verb);
  target->caller = vm->fiber;
  target->state = isTry ? FIBER_TRY : FIBER_OTHER;
  fiberResumeWith(vm, target, argc > 1 ? args[1] : NULL_VAL);
  vm->fiber = target;
  return PRIM_SWITCH;
}

PRIM(fiber_call) { return runFiber(vm, args, argc, false, "call"); }
PRIM(fiber_try) { return runFiber(vm, args, argc, true, "try"); }

PRIM(fiber_transfer) {
  ObjFiber* target = AS_FIBER(args[0]);
  if (target->frameCount == 0) RETURN_ERROR("Cannot transfer to a finished fiber.");
  if (!IS_NULL(target->error)) RETURN_ERROR("Cannot transfer to an aborted fiber.");
  if (target == vm->fiber) RETURN_VAL(argc > 1 ? args[1] : NULL_VAL);
  fiberResumeWith(vm, target, argc > 1 ? args[1] : NULL_VAL);
  vm->fiber = target;
  return PRIM_SWITCH;
}

PRIM(fiber_transferError) {
  UNUSED_ARGS();
  ObjFiber* target = AS_FIBER(args[0]);
  if (target->frameCount == 0) RETURN_ERROR("Cannot transfer to a finished fiber.");
  if (!IS_NULL(target->error)) RETURN_ERROR("Cannot transfer to an aborted fiber.");
  target->started = true;
  vm->fiber = target;
  target->error = args[1];
  return PRIM_ERROR;
}

PRIM(fiber_error) { UNUSED_ARGS(); RETURN_VAL(AS_FIBER(args[0])->error); }
PRIM(fiber_isDone) { UNUSED_ARGS(); RETURN_BOOL(fiberIsDone(AS_FIBER(args[0]))); }

/* ---- System --------------------------------------------------------- */

PRIM(system_clock) { UNUSED_ARGS(); RETURN_NUM(host_clock()); }

PRIM(system_gc) {
  UNUSED_ARGS();
  gcCollect(vm);
  RETURN_VAL(NULL_VAL);
}

PRIM(system_writeString) {
  UNUSED_ARGS();
  if (!validateString(vm, args[1], "Argument")) return PRIM_ERROR;
  ObjString* s = AS_STRING(args[1]);
  vmWrite(vm, s->chars, (int)s->length);
  RETURN_VAL(args[1]);
}

/* Writes strings, numbers, bools and null without calling toString. */
PRIM(system_writeDirect) {
  UNUSED_ARGS();
  Value v = args[1];
  if (IS_OBJ(v) && !IS_STRING(v)) RETURN_VAL(FALSE_VAL);
  ObjString* s = valueToCString(vm, v);
  vmWrite(vm, s->chars, (int)s->length);
  RETURN_VAL(TRUE_VAL);
}

/* ---- Binding -------------------------------------------------------- */

static void bindPrimitive(VM* vm, ObjClass* cls, const char* signature, Primitive fn) {
  int symbol = symbolTableEnsure(&vm->methodNames, signature, (int)strlen(signature));
  Method m;
  m.type = METHOD_PRIMITIVE;
  m.as.primitive = fn;
  bindMethod(vm, cls, symbol, m);
}

#define BIND(cls, sig, name) bindPrimitive(vm, cls, sig, prim_##name)
#define BIND_STATIC(cls, sig, name) bindPrimitive(vm, (cls)->obj.classObj, sig, prim_##name)

static ObjClass* coreClass(VM* vm, const char* name) {
  int index = moduleFindVariable(vm->coreModule, name, (int)strlen(name));
  return AS_CLASS(vm->coreModule->variables[index]);
}

static void bindObjectAndClass(VM* vm) {
  ObjModule* core = vm->coreModule;
  vm->objectClass = newSingleClass(vm, 0, newString(vm, "Object"));
  moduleAddVariable(vm, core, "Object", 6, OBJ_VAL(vm->objectClass));
  BIND(vm->objectClass, "!", object_not);
  BIND(vm->objectClass, "==(_)", object_eq);
  BIND(vm->objectClass, "!=(_)", object_neq);
  BIND(vm->objectClass, "is(_)", object_is);
  BIND(vm->objectClass, "toString", object_toString);
  BIND(vm->objectClass, "type", object_type);

  vm->classClass = newSingleClass(vm, 0, newString(vm, "Class"));
  bindSuperclass(vm, vm->classClass, vm->objectClass);
  moduleAddVariable(vm, core, "Class", 5, OBJ_VAL(vm->classClass));
  BIND(vm->classClass, "name", class_name);
  BIND(vm->classClass, "supertype", class_supertype);
  BIND(vm->classClass, "toString", class_name);
  BIND(vm->classClass, "attributes", class_attributes);

  ObjClass* objectMeta = newSingleClass(vm, 0, newString(vm, "Object metaclass"));
  bindSuperclass(vm, objectMeta, vm->classClass);
  vm->objectClass->obj.classObj = objectMeta;
  objectMeta->obj.classObj = vm->classClass;
  vm->classClass->obj.classObj = vm->classClass;
  BIND(objectMeta, "same(_,_)", object_same);
}

static void bindNum(VM* vm) {
  ObjClass* c = vm->numClass;
  BIND_STATIC(c, "fromString(_)", num_fromString);
  BIND_STATIC(c, "infinity", num_infinity);
  BIND_STATIC(c, "nan", num_nan);
  BIND_STATIC(c, "pi", num_pi);
  BIND_STATIC(c, "tau", num_tau);
  BIND_STATIC(c, "largest", num_largest);
  BIND_STATIC(c, "smallest", num_smallest);
  BIND_STATIC(c, "epsilon", num_epsilon);
  BIND_STATIC(c, "maxSafeInteger", num_maxSafeInteger);
  BIND_STATIC(c, "minSafeInteger", num_minSafeInteger);
  BIND(c, "-", num_negate);
  BIND(c, "+(_)", num_add);
  BIND(c, "-(_)", num_sub);
  BIND(c, "*(_)", num_mul);
  BIND(c, "/(_)", num_div);
  BIND(c, "%(_)", num_mod);
  BIND(c, "<(_)", num_lt);
  BIND(c, ">(_)", num_gt);
  BIND(c, "<=(_)", num_lte);
  BIND(c, ">=(_)", num_gte);
  BIND(c, "==(_)", num_eq);
  BIND(c, "!=(_)", num_neq);
  BIND(c, "&(_)", num_bitAnd);
  BIND(c, "|(_)", num_bitOr);
  BIND(c, "^(_)", num_bitXor);
  BIND(c, "<<(_)", num_shl);
  BIND(c, ">>(_)", num_shr);
  BIND(c, "~", num_bitNot);
  BIND(c, "..(_)", num_range);
  BIND(c, "...(_)", num_rangeExclusive);
  BIND(c, "abs", num_abs);
  BIND(c, "acos", num_acos);
  BIND(c, "asin", num_asin);
  BIND(c, "atan", num_atan);
  BIND(c, "atan(_)", num_atan2);
  BIND(c, "cbrt", num_cbrt);
  BIND(c, "ceil", num_ceil);
  BIND(c, "cos", num_cos);
  BIND(c, "exp", num_exp);
  BIND(c, "floor", num_floor);
  BIND(c, "fraction", num_fraction);
  BIND(c, "isInfinity", num_isInfinity);
  BIND(c, "isInteger", num_isInteger);
  BIND(c, "isNan", num_isNan);
  BIND(c, "log", num_log);
  BIND(c, "log2", num_log2);
  BIND(c, "pow(_)", num_pow);
  BIND(c, "round", num_round);
  BIND(c, "sign", num_sign);
  BIND(c, "sin", num_sin);
  BIND(c, "sqrt", num_sqrt);
  BIND(c, "tan", num_tan);
  BIND(c, "truncate", num_truncate);
  BIND(c, "min(_)", num_min);
  BIND(c, "max(_)", num_max);
  BIND(c, "clamp(_,_)", num_clamp);
  BIND(c, "toString", num_toString);
}

static void bindString(VM* vm) {
  ObjClass* c = vm->stringClass;
  BIND_STATIC(c, "fromCodePoint(_)", string_fromCodePoint);
  BIND_STATIC(c, "fromByte(_)", string_fromByte);
  BIND(c, "+(_)", string_plus);
  BIND(c, "*(_)", string_times);
  BIND(c, "[_]", string_subscript);
  BIND(c, "byteAt_(_)", string_byteAt);
  BIND(c, "byteCount_", string_byteCount);
  BIND(c, "codePointAt_(_)", string_codePointAt);
  BIND(c, "count", string_count);
  BIND(c, "contains(_)", string_contains);
  BIND(c, "startsWith(_)", string_startsWith);
  BIND(c, "endsWith(_)", string_endsWith);
  BIND(c, "indexOf(_)", string_indexOf);
  BIND(c, "indexOf(_,_)", string_indexOf);
  BIND(c, "iterate(_)", string_iterate);
  BIND(c, "iterateByte_(_)", string_iterateByte);
  BIND(c, "iteratorValue(_)", string_iteratorValue);
  BIND(c, "toString", string_toString);
  BIND(c, "split(_)", string_split);
  BIND(c, "replace(_,_)", string_replace);
  BIND(c, "trim()", string_trim);
  BIND(c, "trim(_)", string_trim);
  BIND(c, "trimStart()", string_trimStart);
  BIND(c, "trimStart(_)", string_trimStart);
  BIND(c, "trimEnd()", string_trimEnd);
  BIND(c, "trimEnd(_)", string_trimEnd);
}

static void bindCollections(VM* vm) {
  ObjClass* c = vm->listClass;
  BIND_STATIC(c, "new()", list_new);
  BIND_STATIC(c, "filled(_,_)", list_filled);
  BIND(c, "[_]", list_subscript);
  BIND(c, "[_]=(_)", list_subscriptSetter);
  BIND(c, "add(_)", list_add);
  BIND(c, "clear()", list_clear);
  BIND(c, "count", list_count);
  BIND(c, "insert(_,_)", list_insert);
  BIND(c, "iterate(_)", list_iterate);
  BIND(c, "iteratorValue(_)", list_iteratorValue);
  BIND(c, "removeAt(_)", list_removeAt);
  BIND(c, "remove(_)", list_remove);
  BIND(c, "indexOf(_)", list_indexOf);
  BIND(c, "swap(_,_)", list_swap);
  BIND(c, "sortDefault_()", list_sortDefault);
  BIND(c, "joinStrings_(_)", list_joinStrings);

  c = vm->mapClass;
  BIND_STATIC(c, "new()", map_new);
  BIND(c, "[_]", map_subscript);
  BIND(c, "[_]=(_)", map_subscriptSetter);
  BIND(c, "clear()", map_clear);
  BIND(c, "containsKey(_)", map_containsKey);
  BIND(c, "count", map_count);
  BIND(c, "remove(_)", map_remove);
  BIND(c, "iterate(_)", map_iterate);
  BIND(c, "keyIteratorValue_(_)", map_keyIteratorValue);
  BIND(c, "valueIteratorValue_(_)", map_valueIteratorValue);

  c = vm->rangeClass;
  BIND(c, "from", range_from);
  BIND(c, "to", range_to);
  BIND(c, "min", range_min);
  BIND(c, "max", range_max);
  BIND(c, "isInclusive", range_isInclusive);
  BIND(c, "iterate(_)", range_iterate);
  BIND(c, "iteratorValue(_)", range_iteratorValue);
  BIND(c, "toString", range_toString);
}

static void bindFnFiberSystem(VM* vm) {
  ObjClass* c = vm->fnClass;
  BIND_STATIC(c, "new(_)", fn_new);
  BIND(c, "arity", fn_arity);
  BIND(c, "toString", fn_toString);
  char signature[64];
  for (int i = 0; i <= MAX_PARAMETERS; i++) {
    int length = snprintf(signature, sizeof signature, "call");
    if (i > 0) {
      signature[length++] = '(';
      for (int j = 0; j < i; j++) {
        if (j > 0) signature[length++] = ',';
        signature[length++] = '_';
      }
      signature[length++] = ')';
    } else {
      length += snprintf(signature + length, sizeof signature - length, "()");
    }
    signature[length] = '\0';
    int symbol = symbolTableEnsure(&vm->methodNames, signature, length);
    vm->symCall[i] = symbol;
    Method m;
    m.type = METHOD_FN_CALL;
    m.as.primitive = NULL;
    bindMethod(vm, c, symbol, m);
  }

  c = vm->fiberClass;
  BIND_STATIC(c, "new(_)", fiber_new);
  BIND_STATIC(c, "abort(_)", fiber_abort);
  BIND_STATIC(c, "current", fiber_current);
  BIND_STATIC(c, "suspend()", fiber_suspend);
  BIND_STATIC(c, "yield()", fiber_yield);
  BIND_STATIC(c, "yield(_)", fiber_yield);
  BIND(c, "call()", fiber_call);
  BIND(c, "call(_)", fiber_call);
  BIND(c, "try()", fiber_try);
  BIND(c, "try(_)", fiber_try);
  BIND(c, "transfer()", fiber_transfer);
  BIND(c, "transfer(_)", fiber_transfer);
  BIND(c, "transferError(_)", fiber_transferError);
  BIND(c, "error", fiber_error);
  BIND(c, "isDone", fiber_isDone);

  c = coreClass(vm, "System");
  BIND_STATIC(c, "clock", system_clock);
  BIND_STATIC(c, "gc()", system_gc);
  BIND_STATIC(c, "writeString_(_)", system_writeString);
  BIND_STATIC(c, "writeDirect_(_)", system_writeDirect);
}

/* Objects made before their class existed get it now. */
static void fixUpClasses(VM* vm) {
  for (Obj* obj = vm->objects; obj != NULL; obj = obj->next) {
    if (obj->classObj != NULL) continue;
    switch (obj->type) {
      case OBJ_STRING: obj->classObj = vm->stringClass; break;
      case OBJ_LIST: obj->classObj = vm->listClass; break;
      case OBJ_MAP: obj->classObj = vm->mapClass; break;
      case OBJ_RANGE: obj->classObj = vm->rangeClass; break;
      case OBJ_FN:
      case OBJ_CLOSURE: obj->classObj = vm->fnClass; break;
      case OBJ_FIBER: obj->classObj = vm->fiberClass; break;
      default: break;
    }
  }
}

void coreInitialize(VM* vm) {
  vm->coreModule = newModule(vm, NULL);
  mapSet(vm, vm->modules, NULL_VAL, OBJ_VAL(vm->coreModule));
  bindObjectAndClass(vm);

  ObjFn* fn = compileModule(vm, vm->coreModule, coreSource);
  if (fn == NULL) __builtin_trap();
#ifdef KW_DEBUG
  {
    extern void disassemble(VM * vm, ObjFn * fn);
    const char* dump = getenv("KW_DUMP");
    if (dump && strcmp(dump, "core") == 0) disassemble(vm, fn);
  }
#endif
  ObjClosure* closure = newClosure(vm, fn);
  ObjFiber* fiber = newFiber(vm, closure);
  fiber->started = true;
  fiber->state = FIBER_ROOT;
  if (vmRunFiber(vm, fiber) != RESULT_SUCCESS) __builtin_trap();

  vm->boolClass = coreClass(vm, "Bool");
  vm->nullClass = coreClass(vm, "Null");
  vm->numClass = coreClass(vm, "Num");
  vm->stringClass = coreClass(vm, "String");
  vm->listClass = coreClass(vm, "List");
  vm->mapClass = coreClass(vm, "Map");
  vm->rangeClass = coreClass(vm, "Range");
  vm->fnClass = coreClass(vm, "Fn");
  vm->fiberClass = coreClass(vm, "Fiber");
  ObjClass* sealed[] = {vm->boolClass, vm->nullClass, vm->numClass, vm->stringClass,
                        vm->listClass, vm->mapClass, vm->rangeClass, vm->fnClass,
                        vm->fiberClass, vm->classClass};
  for (size_t i = 0; i < sizeof sealed / sizeof sealed[0]; i++) sealed[i]->isSealed = true;

  BIND(vm->boolClass, "!", bool_not);
  BIND(vm->boolClass, "toString", bool_toString);
  BIND(vm->nullClass, "!", null_not);
  BIND(vm->nullClass, "toString", null_toString);
  bindNum(vm);
  bindString(vm);
  bindCollections(vm);
  bindFnFiberSystem(vm);
  fixUpClasses(vm);

  vm->symIterate = symbolTableEnsure(&vm->methodNames, "iterate(_)", 10);
  vm->symIteratorValue = symbolTableEnsure(&vm->methodNames, "iteratorValue(_)", 16);
  vm->symToString = symbolTableEnsure(&vm->methodNames, "toString", 8);
}
