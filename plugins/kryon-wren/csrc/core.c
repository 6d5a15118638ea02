/* core.c -- The core library's primitive methods and VM bootstrap.
 *
 * coreInitialize builds Object, Class and Object's metaclass by hand,
 * runs the Wren half of the core library (core.wren, embedded as
 * core_wren.inc by the build) in the core module, then binds the C
 * primitives below onto the classes it defined. A primitive receives
 * the receiver and arguments in args[0..argc-1] and leaves its result in
 * args[0]; validation failures set the fiber's error with Wren's wording.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core_prims.h"
#include "host.h"
#include "vm.h"

static const char coreSource[] =
#include "core_wren.inc"
    ;

#define PRIM(name) static PrimResult prim_##name(VM* vm, Value* args, int argc)
#define NO_UNUSED() \
  (void)vm;           \
  (void)argc
#define GIVE(v)   \
  do {                  \
    args[0] = (v);      \
    return PRIM_VALUE;  \
  } while (0)
#define GIVE_NUM(n) GIVE(NUM_VAL(n))
#define GIVE_BOOL(b) GIVE(BOOL_VAL(b))
#define GIVE_OBJ(o) GIVE(OBJ_VAL(o))
#define FAIL(...)                                        \
  do {                                                           \
    vm->fiber->error = vmRuntimeErrorValue(vm, __VA_ARGS__);     \
    return PRIM_ERROR;                                           \
  } while (0)

/* Views (MapKeys, MapValues, StringBytes, StringCodePoints) keep what
 * they view in their first field; their primitives put it in the
 * receiver's slot and run the viewed object's own primitive. */
#define OVER_VIEWED(name, inner)                       \
  PRIM(name) {                                         \
    args[0] = AS_INSTANCE(args[0])->fields[0];         \
    return prim_##inner(vm, args, argc);               \
  }

/* ---- Validation ----------------------------------------------------- */

static bool fail(VM* vm, const char* message, const char* argName) {
  vm->fiber->error = vmRuntimeErrorValue(vm, message, argName);
  return false;
}

static bool needNum(VM* vm, Value v, const char* argName) {
  if (IS_NUM(v)) return true;
  return fail(vm, "%s must be a number.", argName);
}

static bool needInt(VM* vm, Value v, const char* argName) {
  if (!needNum(vm, v, argName)) return false;
  double n = AS_NUM(v);
  if (trunc(n) != n || isinf(n)) return fail(vm, "%s must be an integer.", argName);
  return true;
}

static bool needString(VM* vm, Value v, const char* argName) {
  if (IS_STRING(v)) return true;
  return fail(vm, "%s must be a string.", argName);
}

static bool needFn(VM* vm, Value v, const char* argName) {
  if (IS_CLOSURE(v)) return true;
  return fail(vm, "%s must be a function.", argName);
}

static inline bool needKey(VM* vm, Value v) {
  if (IS_NUM(v) || isValueType(v)) return true;
  vm->fiber->error = vmRuntimeErrorValue(vm, "Key must be a value type.");
  return false;
}

/* Returns a valid index in [0, count) or -1 after setting the error. */
static int indexWithin(VM* vm, double index, int count, const char* argName) {
  if (index < 0) index += count;
  if (index >= 0 && index < count) return (int)index;
  fail(vm, "%s out of bounds.", argName);
  return -1;
}

static int needIndex(VM* vm, Value v, int count, const char* argName) {
  if (!needInt(vm, v, argName)) return -1;
  return indexWithin(vm, AS_NUM(v), count, argName);
}

/* Turns a range into start/step/length over a sequence of `*length`
 * items; returns false after setting the error. */
static bool sliceBounds(VM* vm, ObjRange* range, int* length, int* start, int* step) {
  *step = 0;
  if (range->from == *length && range->to == (range->isInclusive ? -1.0 : (double)*length)) {
    *start = 0;
    *length = 0;
    return true;
  }
  if (trunc(range->from) != range->from) return fail(vm, "%s must be an integer.", "Range start");
  int from = indexWithin(vm, range->from, *length, "Range start");
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

PRIM(object_not) { NO_UNUSED(); GIVE(FALSE_VAL); }
PRIM(object_eq) { NO_UNUSED(); GIVE_BOOL(valuesEqual(args[0], args[1])); }
PRIM(object_neq) { NO_UNUSED(); GIVE_BOOL(!valuesEqual(args[0], args[1])); }
/* Numbers by their bits (so 0 and -0 differ), strings and ranges by
 * value, everything else by identity. */
PRIM(object_same) {
  NO_UNUSED();
  GIVE_BOOL(args[1] == args[2] || (IS_OBJ(args[1]) && valuesEqual(args[1], args[2])));
}
PRIM(object_type) { NO_UNUSED(); GIVE_OBJ(getClass(vm, args[0])); }
PRIM(object_toString) { NO_UNUSED(); GIVE_OBJ(valueToCString(vm, args[0])); }

PRIM(object_is) {
  NO_UNUSED();
  if (!IS_CLASS(args[1])) FAIL("Right operand must be a class.");
  ObjClass* target = AS_CLASS(args[1]);
  for (ObjClass* c = getClass(vm, args[0]); c != NULL; c = c->superclass) {
    if (c == target) GIVE(TRUE_VAL);
  }
  GIVE(FALSE_VAL);
}

PRIM(class_name) { NO_UNUSED(); GIVE_OBJ(AS_CLASS(args[0])->name); }
PRIM(class_supertype) {
  NO_UNUSED();
  ObjClass* super = AS_CLASS(args[0])->superclass;
  GIVE(super == NULL ? NULL_VAL : OBJ_VAL(super));
}
PRIM(class_attributes) { NO_UNUSED(); GIVE(AS_CLASS(args[0])->attributes); }

/* ---- Bool and Null -------------------------------------------------- */

PRIM(bool_not) { NO_UNUSED(); GIVE_BOOL(!AS_BOOL(args[0])); }
PRIM(bool_toString) {
  NO_UNUSED();
  GIVE_OBJ(newString(vm, AS_BOOL(args[0]) ? "true" : "false"));
}
PRIM(null_not) { NO_UNUSED(); GIVE(TRUE_VAL); }
PRIM(null_toString) { NO_UNUSED(); GIVE_OBJ(newString(vm, "null")); }

/* ---- Num ------------------------------------------------------------ */

#define NUM_BINARY(name, expr)                                        \
  PRIM(num_##name) {                                                  \
    NO_UNUSED();                                                    \
    if (!needNum(vm, args[1], "Right operand")) return PRIM_ERROR; \
    double a = AS_NUM(args[0]);                                       \
    double b = AS_NUM(args[1]);                                       \
    GIVE(expr);                                                 \
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
/* Methods whose argument is not "the right operand" name it their way. */
#define NUM_WITH(name, what, expr)                                 \
  PRIM(num_##name) {                                               \
    NO_UNUSED();                                                   \
    if (!needNum(vm, args[1], what)) return PRIM_ERROR;            \
    double a = AS_NUM(args[0]);                                    \
    double b = AS_NUM(args[1]);                                    \
    GIVE(expr);                                                    \
  }

NUM_WITH(atan2, "x value", NUM_VAL(atan2(a, b)))
NUM_WITH(min, "Other value", NUM_VAL(a < b ? a : b))
NUM_WITH(max, "Other value", NUM_VAL(a > b ? a : b))

PRIM(num_pow) {
  NO_UNUSED();
  if (!needNum(vm, args[1], "Power value")) return PRIM_ERROR;
  GIVE_NUM(pow(AS_NUM(args[0]), AS_NUM(args[1])));
}

PRIM(num_eq) {
  NO_UNUSED();
  if (!IS_NUM(args[1])) GIVE(FALSE_VAL);
  GIVE_BOOL(AS_NUM(args[0]) == AS_NUM(args[1]));
}

PRIM(num_neq) {
  NO_UNUSED();
  if (!IS_NUM(args[1])) GIVE(TRUE_VAL);
  GIVE_BOOL(AS_NUM(args[0]) != AS_NUM(args[1]));
}

PRIM(num_clamp) {
  NO_UNUSED();
  if (!needNum(vm, args[1], "Min value")) return PRIM_ERROR;
  if (!needNum(vm, args[2], "Max value")) return PRIM_ERROR;
  double v = AS_NUM(args[0]), lo = AS_NUM(args[1]), hi = AS_NUM(args[2]);
  GIVE_NUM(v < lo ? lo : (v > hi ? hi : v));
}

PRIM(num_range) {
  NO_UNUSED();
  if (!needNum(vm, args[1], "Right hand side of range")) return PRIM_ERROR;
  GIVE_OBJ(newRange(vm, AS_NUM(args[0]), AS_NUM(args[1]), true));
}

PRIM(num_rangeExclusive) {
  NO_UNUSED();
  if (!needNum(vm, args[1], "Right hand side of range")) return PRIM_ERROR;
  GIVE_OBJ(newRange(vm, AS_NUM(args[0]), AS_NUM(args[1]), false));
}

#define NUM_UNARY(name, expr)      \
  PRIM(num_##name) {               \
    NO_UNUSED();                 \
    double n = AS_NUM(args[0]);    \
    GIVE(expr);              \
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
/* modf keeps the sign: (-0).fraction and (-3).fraction are -0. */
PRIM(num_fraction) {
  NO_UNUSED();
  double whole;
  GIVE_NUM(modf(AS_NUM(args[0]), &whole));
}
NUM_UNARY(bitNot, NUM_VAL((double)(~toU32(n))))
NUM_UNARY(isInfinity, BOOL_VAL(isinf(n)))
NUM_UNARY(isNan, BOOL_VAL(isnan(n)))
NUM_UNARY(isInteger, BOOL_VAL(!isnan(n) && !isinf(n) && trunc(n) == n))
NUM_UNARY(sign, NUM_VAL(n > 0 ? 1 : (n < 0 ? -1 : 0)))
NUM_UNARY(toString, OBJ_VAL(stringFormatNum(vm, n)))

PRIM(num_infinity) { NO_UNUSED(); GIVE_NUM(INFINITY); }
PRIM(num_nan) { NO_UNUSED(); GIVE_NUM(NAN); }
PRIM(num_pi) { NO_UNUSED(); GIVE_NUM(3.14159265358979323846264338327950288); }
PRIM(num_tau) { NO_UNUSED(); GIVE_NUM(6.28318530717958647692528676655900577); }
PRIM(num_largest) { NO_UNUSED(); GIVE_NUM(DBL_MAX); }
PRIM(num_smallest) { NO_UNUSED(); GIVE_NUM(DBL_MIN); }
PRIM(num_epsilon) { NO_UNUSED(); GIVE_NUM(DBL_EPSILON); }
PRIM(num_maxSafeInteger) { NO_UNUSED(); GIVE_NUM(9007199254740991.0); }
PRIM(num_minSafeInteger) { NO_UNUSED(); GIVE_NUM(-9007199254740991.0); }

static bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

PRIM(num_fromString) {
  NO_UNUSED();
  if (!needString(vm, args[1], "Argument")) return PRIM_ERROR;
  ObjString* s = AS_STRING(args[1]);
  const char* start = s->chars;
  const char* end = s->chars + s->length;
  while (start < end && isSpace(*start)) start++;
  while (end > start && isSpace(end[-1])) end--;
  if (start == end) GIVE(NULL_VAL);
  char* parsedEnd;
  errno = 0;
  double value = strtod(start, &parsedEnd);
  if (parsedEnd != end) GIVE(NULL_VAL);
  /* Overflow (decimal or hex) is an error, as for a literal; underflow
   * to zero or a subnormal is not. An infinity spelled with digits is an
   * overflow even where the C library leaves errno alone (hex input). */
  if (isinf(value)) {
    bool hasDigit = false;
    for (const char* p = start; p < end && !hasDigit; p++) hasDigit = *p >= '0' && *p <= '9';
    if (errno == ERANGE || hasDigit) FAIL("Number literal is too large.");
  }
  GIVE_NUM(value);
}

/* ---- String --------------------------------------------------------- */

static ObjString* codePointAt(VM* vm, ObjString* s, uint32_t index) {
  uint8_t first = (uint8_t)s->chars[index];
  uint32_t length = (uint32_t)utf8DecodeLength(first);
  if ((first & 0xc0) == 0x80 || index + length > s->length) length = 1;
  return newStringLength(vm, s->chars + index, length);
}

/* Bytes of the character starting at byte `at`, 0 when none starts there. */
static int sliceCharLength(ObjString* s, uint32_t at) {
  uint8_t lead = (uint8_t)s->chars[at];
  if (lead < 0x80) return 1;
  if (utf8Decode((const uint8_t*)s->chars + at, s->length - at) == -1) return 0;
  return utf8DecodeLength(lead);
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
  NO_UNUSED();
  if (!needInt(vm, args[1], "Code point")) return PRIM_ERROR;
  int cp = (int)AS_NUM(args[1]);
  if (cp < 0) FAIL("Code point cannot be negative.");
  if (cp > 0x10ffff) FAIL("Code point cannot be greater than 0x10ffff.");
  uint8_t bytes[4];
  int n = utf8Encode(cp, bytes);
  GIVE_OBJ(newStringLength(vm, (const char*)bytes, (size_t)n));
}

PRIM(string_fromByte) {
  NO_UNUSED();
  if (!needInt(vm, args[1], "Byte")) return PRIM_ERROR;
  int byte = (int)AS_NUM(args[1]);
  if (byte < 0) FAIL("Byte cannot be negative.");
  if (byte > 0xff) FAIL("Byte cannot be greater than 0xff.");
  char c = (char)byte;
  GIVE_OBJ(newStringLength(vm, &c, 1));
}

PRIM(string_plus) {
  NO_UNUSED();
  if (!needString(vm, args[1], "Right operand")) return PRIM_ERROR;
  GIVE_OBJ(concatStrings(vm, AS_STRING(args[0]), AS_STRING(args[1])));
}

PRIM(string_times) {
  NO_UNUSED();
  ObjString* s = AS_STRING(args[0]);
  if (!IS_NUM(args[1]) || trunc(AS_NUM(args[1])) != AS_NUM(args[1]) || AS_NUM(args[1]) < 0) {
    FAIL("Count must be a non-negative integer.");
  }
  double count = AS_NUM(args[1]);
  if (count * s->length > 1e9) FAIL("String too large.");
  ObjString* result = newStringUninit(vm, (size_t)(s->length * count));
  for (uint32_t i = 0; i < (uint32_t)count; i++) {
    memcpy(result->chars + i * s->length, s->chars, s->length);
  }
  stringHash(result);
  GIVE_OBJ(result);
}

PRIM(string_subscript) {
  NO_UNUSED();
  ObjString* s = AS_STRING(args[0]);
  if (IS_NUM(args[1])) {
    int index = needIndex(vm, args[1], (int)s->length, "Subscript");
    if (index == -1) return PRIM_ERROR;
    GIVE_OBJ(codePointAt(vm, s, (uint32_t)index));
  }
  if (!IS_RANGE(args[1])) FAIL("Subscript must be a number or a range.");
  int length = (int)s->length, start, step;
  if (!sliceBounds(vm, AS_RANGE(args[1]), &length, &start, &step)) return PRIM_ERROR;
  /* The range counts bytes. A byte that starts a character brings the
   * whole character along; continuation bytes and bytes that start no
   * valid character add nothing. */
  size_t size = 0;
  for (int i = 0; i < length; i++) size += (size_t)sliceCharLength(s, (uint32_t)(start + i * step));
  ObjString* result = newStringUninit(vm, size);
  char* out = result->chars;
  for (int i = 0; i < length; i++) {
    uint32_t at = (uint32_t)(start + i * step);
    int n = sliceCharLength(s, at);
    memcpy(out, s->chars + at, (size_t)n);
    out += n;
  }
  stringHash(result);
  GIVE_OBJ(result);
}

PRIM(string_byteAt) {
  NO_UNUSED();
  ObjString* s = AS_STRING(args[0]);
  int index = needIndex(vm, args[1], (int)s->length, "Index");
  if (index == -1) return PRIM_ERROR;
  GIVE_NUM((uint8_t)s->chars[index]);
}

PRIM(string_byteCount) { NO_UNUSED(); GIVE_NUM(AS_STRING(args[0])->length); }

PRIM(string_codePointAt) {
  NO_UNUSED();
  ObjString* s = AS_STRING(args[0]);
  int index = needIndex(vm, args[1], (int)s->length, "Index");
  if (index == -1) return PRIM_ERROR;
  const uint8_t* bytes = (const uint8_t*)s->chars + index;
  if ((*bytes & 0xc0) == 0x80) GIVE_NUM(-1);
  GIVE_NUM(utf8Decode(bytes, s->length - (uint32_t)index));
}

PRIM(string_count) {
  NO_UNUSED();
  ObjString* s = AS_STRING(args[0]);
  int count = 0;
  for (uint32_t i = 0; i < s->length; i++) {
    if (((uint8_t)s->chars[i] & 0xc0) != 0x80) count++;
  }
  GIVE_NUM(count);
}

PRIM(string_contains) {
  NO_UNUSED();
  if (!needString(vm, args[1], "Argument")) return PRIM_ERROR;
  GIVE_BOOL(stringFind(AS_STRING(args[0]), AS_STRING(args[1]), 0) != -1);
}

PRIM(string_startsWith) {
  NO_UNUSED();
  if (!needString(vm, args[1], "Argument")) return PRIM_ERROR;
  ObjString* s = AS_STRING(args[0]);
  ObjString* t = AS_STRING(args[1]);
  GIVE_BOOL(t->length <= s->length && memcmp(s->chars, t->chars, t->length) == 0);
}

PRIM(string_endsWith) {
  NO_UNUSED();
  if (!needString(vm, args[1], "Argument")) return PRIM_ERROR;
  ObjString* s = AS_STRING(args[0]);
  ObjString* t = AS_STRING(args[1]);
  GIVE_BOOL(t->length <= s->length &&
              memcmp(s->chars + s->length - t->length, t->chars, t->length) == 0);
}

PRIM(string_indexOf) {
  NO_UNUSED();
  if (!needString(vm, args[1], "Argument")) return PRIM_ERROR;
  uint32_t start = 0;
  if (argc > 2) {
    int index = needIndex(vm, args[2], (int)AS_STRING(args[0])->length, "Start");
    if (index == -1) return PRIM_ERROR;
    start = (uint32_t)index;
  }
  GIVE_NUM((double)stringFind(AS_STRING(args[0]), AS_STRING(args[1]), start));
}

PRIM(string_iterate) {
  NO_UNUSED();
  ObjString* s = AS_STRING(args[0]);
  if (IS_NULL(args[1])) GIVE(s->length == 0 ? FALSE_VAL : NUM_VAL(0));
  if (!needInt(vm, args[1], "Iterator")) return PRIM_ERROR;
  double i = AS_NUM(args[1]);
  if (i < 0 || i >= s->length) GIVE(FALSE_VAL);
  uint32_t next = nextCodePointIndex(s, (uint32_t)i);
  GIVE(next >= s->length ? FALSE_VAL : NUM_VAL(next));
}

PRIM(string_iterateByte) {
  NO_UNUSED();
  ObjString* s = AS_STRING(args[0]);
  if (IS_NULL(args[1])) GIVE(s->length == 0 ? FALSE_VAL : NUM_VAL(0));
  if (!needInt(vm, args[1], "Iterator")) return PRIM_ERROR;
  double i = AS_NUM(args[1]);
  if (i < 0 || i + 1 >= s->length) GIVE(FALSE_VAL);
  GIVE_NUM(i + 1);
}

PRIM(string_iteratorValue) {
  NO_UNUSED();
  ObjString* s = AS_STRING(args[0]);
  int index = needIndex(vm, args[1], (int)s->length, "Iterator");
  if (index == -1) return PRIM_ERROR;
  GIVE_OBJ(codePointAt(vm, s, (uint32_t)index));
}

PRIM(string_toString) { NO_UNUSED(); return PRIM_VALUE; }

OVER_VIEWED(bytes_at, string_byteAt)
OVER_VIEWED(bytes_count, string_byteCount)
OVER_VIEWED(bytes_iterate, string_iterateByte)
OVER_VIEWED(codePoints_at, string_codePointAt)
OVER_VIEWED(codePoints_count, string_count)
OVER_VIEWED(codePoints_iterate, string_iterate)

PRIM(string_split) {
  NO_UNUSED();
  if (!IS_STRING(args[1]) || AS_STRING(args[1])->length == 0) {
    FAIL("Delimiter must be a non-empty string.");
  }
  ObjString* s = AS_STRING(args[0]);
  ObjString* delim = AS_STRING(args[1]);
  ObjList* list = newList(vm, 0);
  uint32_t start = 0;
  for (;;) {
    int64_t found = stringFind(s, delim, start);
    if (found == -1) break;
    listAppend(vm, list, stringValue(vm, s->chars + start, (size_t)(found - start)));
    start = (uint32_t)found + delim->length;
  }
  listAppend(vm, list, stringValue(vm, s->chars + start, s->length - start));
  GIVE_OBJ(list);
}

PRIM(string_replace) {
  NO_UNUSED();
  if (!IS_STRING(args[1]) || AS_STRING(args[1])->length == 0) {
    FAIL("From must be a non-empty string.");
  }
  if (!needString(vm, args[2], "To")) return PRIM_ERROR;
  ObjString* s = AS_STRING(args[0]);
  ObjString* from = AS_STRING(args[1]);
  ObjString* to = AS_STRING(args[2]);
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
  GIVE_OBJ(result);
}

static bool inChars(ObjString* chars, const char* p) {
  if (chars == NULL) return isSpace(*p);
  return memchr(chars->chars, *p, chars->length) != NULL;
}

static PrimResult trimString(VM* vm, Value* args, int argc, bool left, bool right) {
  ObjString* chars = NULL;
  if (argc > 1) {
    if (!needString(vm, args[1], "Characters")) return PRIM_ERROR;
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
  GIVE(stringValue(vm, start, (size_t)(end - start)));
}

PRIM(string_trim) { return trimString(vm, args, argc, true, true); }
PRIM(string_trimStart) { return trimString(vm, args, argc, true, false); }
PRIM(string_trimEnd) { return trimString(vm, args, argc, false, true); }

/* ---- List ----------------------------------------------------------- */

PRIM(list_new) { NO_UNUSED(); GIVE_OBJ(newList(vm, 0)); }

PRIM(list_filled) {
  NO_UNUSED();
  if (!needInt(vm, args[1], "Size")) return PRIM_ERROR;
  if (AS_NUM(args[1]) < 0) FAIL("Size cannot be negative.");
  ObjList* list = newList(vm, (int)AS_NUM(args[1]));
  for (int i = 0; i < list->count; i++) list->items[i] = args[2];
  GIVE_OBJ(list);
}

PRIM(list_subscript) {
  NO_UNUSED();
  ObjList* list = AS_LIST(args[0]);
  if (IS_NUM(args[1])) {
    int index = needIndex(vm, args[1], list->count, "Subscript");
    if (index == -1) return PRIM_ERROR;
    GIVE(list->items[index]);
  }
  if (!IS_RANGE(args[1])) FAIL("Subscript must be a number or a range.");
  int length = list->count, start, step;
  if (!sliceBounds(vm, AS_RANGE(args[1]), &length, &start, &step)) return PRIM_ERROR;
  ObjList* result = newList(vm, length);
  for (int i = 0; i < length; i++) result->items[i] = list->items[start + i * step];
  GIVE_OBJ(result);
}

PRIM(list_subscriptSetter) {
  NO_UNUSED();
  ObjList* list = AS_LIST(args[0]);
  int index = needIndex(vm, args[1], list->count, "Subscript");
  if (index == -1) return PRIM_ERROR;
  list->items[index] = args[2];
  GIVE(args[2]);
}

PRIM(list_add) {
  NO_UNUSED();
  listAppend(vm, AS_LIST(args[0]), args[1]);
  GIVE(args[1]);
}

PRIM(list_clear) {
  NO_UNUSED();
  ObjList* list = AS_LIST(args[0]);
  FREE_ARRAY(vm, Value, list->items, list->capacity);
  list->items = NULL;
  list->count = list->capacity = 0;
  GIVE(NULL_VAL);
}

PRIM(list_count) { NO_UNUSED(); GIVE_NUM(AS_LIST(args[0])->count); }

PRIM(list_insert) {
  NO_UNUSED();
  ObjList* list = AS_LIST(args[0]);
  int index = needIndex(vm, args[1], list->count + 1, "Index");
  if (index == -1) return PRIM_ERROR;
  listInsert(vm, list, args[2], index);
  GIVE(args[2]);
}

PRIM(list_iterate) {
  NO_UNUSED();
  ObjList* list = AS_LIST(args[0]);
  if (IS_NULL(args[1])) GIVE(list->count == 0 ? FALSE_VAL : NUM_VAL(0));
  if (!needInt(vm, args[1], "Iterator")) return PRIM_ERROR;
  double i = AS_NUM(args[1]);
  if (i < 0 || i >= list->count - 1) GIVE(FALSE_VAL);
  GIVE_NUM(i + 1);
}

PRIM(list_iteratorValue) {
  NO_UNUSED();
  ObjList* list = AS_LIST(args[0]);
  int index = needIndex(vm, args[1], list->count, "Iterator");
  if (index == -1) return PRIM_ERROR;
  GIVE(list->items[index]);
}

PRIM(list_removeAt) {
  NO_UNUSED();
  ObjList* list = AS_LIST(args[0]);
  int index = needIndex(vm, args[1], list->count, "Index");
  if (index == -1) return PRIM_ERROR;
  GIVE(listRemoveAt(vm, list, index));
}

PRIM(list_remove) {
  NO_UNUSED();
  ObjList* list = AS_LIST(args[0]);
  for (int i = 0; i < list->count; i++) {
    if (valuesEqual(list->items[i], args[1])) GIVE(listRemoveAt(vm, list, i));
  }
  GIVE(NULL_VAL);
}

PRIM(list_indexOf) {
  NO_UNUSED();
  ObjList* list = AS_LIST(args[0]);
  for (int i = 0; i < list->count; i++) {
    if (valuesEqual(list->items[i], args[1])) GIVE_NUM(i);
  }
  GIVE_NUM(-1);
}

PRIM(list_swap) {
  NO_UNUSED();
  ObjList* list = AS_LIST(args[0]);
  int a = needIndex(vm, args[1], list->count, "Index 0");
  if (a == -1) return PRIM_ERROR;
  int b = needIndex(vm, args[2], list->count, "Index 1");
  if (b == -1) return PRIM_ERROR;
  Value t = list->items[a];
  list->items[a] = list->items[b];
  list->items[b] = t;
  GIVE(NULL_VAL);
}

static int compareNums(const void* a, const void* b) {
  double x = AS_NUM(*(const Value*)a), y = AS_NUM(*(const Value*)b);
  return x < y ? -1 : (x > y ? 1 : 0);
}

/* Sorts a list of numbers in place; false (nothing done) otherwise. */
PRIM(list_sortPlain) {
  NO_UNUSED();
  ObjList* list = AS_LIST(args[0]);
  for (int i = 0; i < list->count; i++) {
    if (!IS_NUM(list->items[i])) GIVE(FALSE_VAL);
  }
  qsort(list->items, (size_t)list->count, sizeof(Value), compareNums);
  GIVE(TRUE_VAL);
}


/* Whether `needle == item` can be decided without running Wren: true
 * unless the needle is an instance whose class defines ==. */
static bool plainEquality(VM* vm, Value needle) {
  if (!IS_INSTANCE(needle)) return true;
  ObjClass* cls = getClass(vm, needle);
  int symbol = vm->symEquals;
  return symbol < cls->methodCount && symbol < vm->objectClass->methodCount &&
         cls->methods[symbol].type == METHOD_PRIMITIVE &&
         cls->methods[symbol].as.primitive == vm->objectClass->methods[symbol].as.primitive;
}

/* true or false, or null when the needle's own == must decide. */
PRIM(list_containsPlain) {
  NO_UNUSED();
  if (!plainEquality(vm, args[1])) GIVE(NULL_VAL);
  ObjList* list = AS_LIST(args[0]);
  for (int i = 0; i < list->count; i++) {
    if (valuesEqual(args[1], list->items[i])) GIVE(TRUE_VAL);
  }
  GIVE(FALSE_VAL);
}

PRIM(list_toList) {
  NO_UNUSED();
  ObjList* source = AS_LIST(args[0]);
  ObjList* copy = newList(vm, source->count);
  if (source->count > 0) memcpy(copy->items, source->items, sizeof(Value) * (size_t)source->count);
  GIVE_OBJ(copy);
}

PRIM(list_isEmpty) { NO_UNUSED(); GIVE_BOOL(AS_LIST(args[0])->count == 0); }

/* Appends another list's elements; false for any other sequence. */
PRIM(list_appendPlain) {
  NO_UNUSED();
  if (!IS_LIST(args[1])) GIVE(FALSE_VAL);
  ObjList* list = AS_LIST(args[0]);
  ObjList* other = AS_LIST(args[1]);
  int n = other->count; /* fixed first: the list may be appended to itself */
  for (int i = 0; i < n; i++) listAppend(vm, list, other->items[i]);
  GIVE(TRUE_VAL);
}

/* Lists and ranges are capped well below what a VM heap could hold, so
 * that the size arithmetic stays in int. */
#define LIST_MAX_ITEMS (1 << 27)

PRIM(list_times) {
  NO_UNUSED();
  double times = IS_NUM(args[1]) ? AS_NUM(args[1]) : -1;
  if (!isfinite(times) || trunc(times) != times || times < 0) {
    FAIL("Count must be a non-negative integer.");
  }
  ObjList* list = AS_LIST(args[0]);
  if (times * list->count > LIST_MAX_ITEMS) FAIL("List would be too large.");
  int n = list->count;
  ObjList* result = newList(vm, n * (int)times);
  for (int k = 0; k < (int)times; k++) {
    for (int i = 0; i < n; i++) result->items[k * n + i] = list->items[i];
  }
  GIVE_OBJ(result);
}

/* ---- Map ------------------------------------------------------------ */

PRIM(map_new) { NO_UNUSED(); GIVE_OBJ(newMap(vm)); }

PRIM(map_subscript) {
  NO_UNUSED();
  if (!needKey(vm, args[1])) return PRIM_ERROR;
  Value value;
  if (mapGet(AS_MAP(args[0]), args[1], &value)) GIVE(value);
  GIVE(NULL_VAL);
}

PRIM(map_subscriptSetter) {
  NO_UNUSED();
  if (!needKey(vm, args[1])) return PRIM_ERROR;
  mapSet(vm, AS_MAP(args[0]), args[1], args[2]);
  GIVE(args[2]);
}

PRIM(map_clear) {
  NO_UNUSED();
  mapClear(vm, AS_MAP(args[0]));
  GIVE(NULL_VAL);
}

PRIM(map_containsKey) {
  NO_UNUSED();
  if (!needKey(vm, args[1])) return PRIM_ERROR;
  Value value;
  GIVE_BOOL(mapGet(AS_MAP(args[0]), args[1], &value));
}

PRIM(map_count) { NO_UNUSED(); GIVE_NUM(AS_MAP(args[0])->count); }

PRIM(map_remove) {
  NO_UNUSED();
  if (!needKey(vm, args[1])) return PRIM_ERROR;
  GIVE(mapRemove(vm, AS_MAP(args[0]), args[1]));
}

PRIM(map_iterate) {
  NO_UNUSED();
  ObjMap* map = AS_MAP(args[0]);
  if (map->count == 0) GIVE(FALSE_VAL);
  uint32_t index = 0;
  if (!IS_NULL(args[1])) {
    if (!needInt(vm, args[1], "Iterator")) return PRIM_ERROR;
    if (AS_NUM(args[1]) < 0) GIVE(FALSE_VAL);
    index = (uint32_t)AS_NUM(args[1]) + 1;
  }
  for (; index < map->capacity; index++) {
    if (!IS_UNDEFINED(map->entries[index].key)) GIVE_NUM(index);
  }
  GIVE(FALSE_VAL);
}

static MapEntry* mapIteratorEntry(VM* vm, Value map, Value iterator) {
  ObjMap* m = AS_MAP(map);
  int index = needIndex(vm, iterator, (int)m->capacity, "Iterator");
  if (index == -1) return NULL;
  MapEntry* entry = &m->entries[index];
  if (IS_UNDEFINED(entry->key)) {
    fail(vm, "%s out of bounds.", "Iterator");
    return NULL;
  }
  return entry;
}

PRIM(map_keyAt) {
  NO_UNUSED();
  MapEntry* entry = mapIteratorEntry(vm, args[0], args[1]);
  if (entry == NULL) return PRIM_ERROR;
  GIVE(entry->key);
}

PRIM(map_valueAt) {
  NO_UNUSED();
  MapEntry* entry = mapIteratorEntry(vm, args[0], args[1]);
  if (entry == NULL) return PRIM_ERROR;
  GIVE(entry->value);
}

/* Map iteration yields MapEntry instances: key in the first field,
 * value in the second. */
PRIM(map_iteratorValue) {
  NO_UNUSED();
  MapEntry* entry = mapIteratorEntry(vm, args[0], args[1]);
  if (entry == NULL) return PRIM_ERROR;
  Value key = entry->key, value = entry->value;
  ObjInstance* pair = newInstance(vm, vm->mapEntryClass);
  pair->fields[0] = key;
  pair->fields[1] = value;
  GIVE_OBJ(pair);
}

PRIM(map_isEmpty) { NO_UNUSED(); GIVE_BOOL(AS_MAP(args[0])->count == 0); }

PRIM(mapEntry_key) { NO_UNUSED(); GIVE(AS_INSTANCE(args[0])->fields[0]); }
PRIM(mapEntry_value) { NO_UNUSED(); GIVE(AS_INSTANCE(args[0])->fields[1]); }

OVER_VIEWED(mapKeys_iterate, map_iterate)
OVER_VIEWED(mapKeys_iteratorValue, map_keyAt)
OVER_VIEWED(mapValues_iterate, map_iterate)
OVER_VIEWED(mapValues_iteratorValue, map_valueAt)
OVER_VIEWED(mapKeys_count, map_count)
OVER_VIEWED(mapValues_count, map_count)

/* ---- Range ---------------------------------------------------------- */

PRIM(range_from) { NO_UNUSED(); GIVE_NUM(AS_RANGE(args[0])->from); }
PRIM(range_to) { NO_UNUSED(); GIVE_NUM(AS_RANGE(args[0])->to); }
PRIM(range_min) {
  NO_UNUSED();
  ObjRange* r = AS_RANGE(args[0]);
  GIVE_NUM(r->from < r->to ? r->from : r->to);
}
PRIM(range_max) {
  NO_UNUSED();
  ObjRange* r = AS_RANGE(args[0]);
  GIVE_NUM(r->from > r->to ? r->from : r->to);
}
PRIM(range_isInclusive) { NO_UNUSED(); GIVE_BOOL(AS_RANGE(args[0])->isInclusive); }

PRIM(range_iterate) {
  NO_UNUSED();
  ObjRange* r = AS_RANGE(args[0]);
  if (r->from == r->to && !r->isInclusive) GIVE(FALSE_VAL);
  if (IS_NULL(args[1])) GIVE_NUM(r->from);
  if (!needNum(vm, args[1], "Iterator")) return PRIM_ERROR;
  double i = AS_NUM(args[1]);
  if (r->from < r->to) {
    i++;
    if (i > r->to || (!r->isInclusive && i == r->to)) GIVE(FALSE_VAL);
  } else {
    i--;
    if (i < r->to || (!r->isInclusive && i == r->to)) GIVE(FALSE_VAL);
  }
  GIVE_NUM(i);
}

PRIM(range_iteratorValue) { NO_UNUSED(); GIVE(args[1]); }

/* How many values iterating r visits: the start, then steps of one
 * towards the end, which is visited when inclusive and passed over
 * otherwise. */
static double rangeLength(ObjRange* r) {
  if (r->from == r->to) return r->isInclusive ? 1 : 0;
  double span = fabs(r->to - r->from);
  if (isnan(span)) return 1;
  return r->isInclusive ? 1 + floor(span) : ceil(span);
}

PRIM(range_count) { NO_UNUSED(); GIVE_NUM(rangeLength(AS_RANGE(args[0]))); }

PRIM(range_toList) {
  NO_UNUSED();
  ObjRange* r = AS_RANGE(args[0]);
  double length = rangeLength(r);
  if (length > LIST_MAX_ITEMS) FAIL("Range is too large to make a list.");
  ObjList* list = newList(vm, (int)length);
  double step = r->from < r->to ? 1 : -1;
  for (int i = 0; i < list->count; i++) list->items[i] = NUM_VAL(r->from + step * i);
  GIVE_OBJ(list);
}

PRIM(range_toString) {
  NO_UNUSED();
  ObjRange* r = AS_RANGE(args[0]);
  ObjString* from = stringFormatNum(vm, r->from);
  ObjString* to = stringFormatNum(vm, r->to);
  char buffer[100];
  int length = snprintf(buffer, sizeof buffer, "%s%s%s", from->chars,
                        r->isInclusive ? ".." : "...", to->chars);
  GIVE(stringValue(vm, buffer, (size_t)length));
}

/* ---- Fn ------------------------------------------------------------- */

PRIM(fn_new) {
  NO_UNUSED();
  if (!needFn(vm, args[1], "Argument")) return PRIM_ERROR;
  GIVE(args[1]);
}

PRIM(fn_arity) { NO_UNUSED(); GIVE_NUM(AS_CLOSURE(args[0])->fn->arity); }
PRIM(fn_toString) { NO_UNUSED(); GIVE_OBJ(newString(vm, "<fn>")); }

/* ---- Fiber ---------------------------------------------------------- */

static bool fiberIsDone(ObjFiber* f) { return f->frameCount == 0 || !IS_NULL(f->error); }

PRIM(fiber_new) {
  NO_UNUSED();
  if (!needFn(vm, args[1], "Argument")) return PRIM_ERROR;
  ObjClosure* closure = AS_CLOSURE(args[1]);
  if (closure->fn->arity > 1) FAIL("Function cannot take more than one parameter.");
  GIVE_OBJ(newFiber(vm, closure));
}

PRIM(fiber_abort) {
  NO_UNUSED();
  vm->fiber->error = args[1];
  if (IS_NULL(args[1])) GIVE(NULL_VAL);
  return PRIM_ERROR;
}

PRIM(fiber_current) { NO_UNUSED(); GIVE_OBJ(vm->fiber); }

PRIM(fiber_suspend) {
  NO_UNUSED();
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
  if (target->frameCount == 0) FAIL("Cannot %s a finished fiber.", verb);
  if (!IS_NULL(target->error)) FAIL("Cannot %s an aborted fiber.", verb);
  if (target->caller != NULL || target == vm->fiber) FAIL("Fiber has already been called.");
  if (target->state == FIBER_ROOT) FAIL("Cannot %s root fiber.", verb);
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
  if (target->frameCount == 0) FAIL("Cannot transfer to a finished fiber.");
  if (!IS_NULL(target->error)) FAIL("Cannot transfer to an aborted fiber.");
  if (target == vm->fiber) GIVE(argc > 1 ? args[1] : NULL_VAL);
  fiberResumeWith(vm, target, argc > 1 ? args[1] : NULL_VAL);
  vm->fiber = target;
  return PRIM_SWITCH;
}

PRIM(fiber_transferError) {
  NO_UNUSED();
  ObjFiber* target = AS_FIBER(args[0]);
  if (target->frameCount == 0) FAIL("Cannot transfer to a finished fiber.");
  if (!IS_NULL(target->error)) FAIL("Cannot transfer to an aborted fiber.");
  target->started = true;
  vm->fiber = target;
  target->error = args[1];
  return PRIM_ERROR;
}

PRIM(fiber_error) { NO_UNUSED(); GIVE(AS_FIBER(args[0])->error); }
PRIM(fiber_isDone) { NO_UNUSED(); GIVE_BOOL(fiberIsDone(AS_FIBER(args[0]))); }

/* ---- Sequence ------------------------------------------------------- */

/* Sequence.checkCount_(n), the argument check of skip and take. */
PRIM(sequence_checkCount) {
  NO_UNUSED();
  double n = IS_NUM(args[1]) ? AS_NUM(args[1]) : -1;
  if (!isfinite(n) || trunc(n) != n || n < 0) FAIL("Count must be a non-negative integer.");
  GIVE(NULL_VAL);
}

/* ---- System --------------------------------------------------------- */

PRIM(system_clock) { NO_UNUSED(); GIVE_NUM(host_clock()); }

PRIM(system_gc) {
  NO_UNUSED();
  gcCollect(vm);
  GIVE(NULL_VAL);
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
  BIND(c, "count", string_count);
  BIND(c, "contains(_)", string_contains);
  BIND(c, "startsWith(_)", string_startsWith);
  BIND(c, "endsWith(_)", string_endsWith);
  BIND(c, "indexOf(_)", string_indexOf);
  BIND(c, "indexOf(_,_)", string_indexOf);
  BIND(c, "iterate(_)", string_iterate);
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

  c = coreClass(vm, "StringBytes");
  BIND(c, "[_]", bytes_at);
  BIND(c, "count", bytes_count);
  BIND(c, "iterate(_)", bytes_iterate);
  BIND(c, "iteratorValue(_)", bytes_at);
  c = coreClass(vm, "StringCodePoints");
  BIND(c, "[_]", codePoints_at);
  BIND(c, "count", codePoints_count);
  BIND(c, "iterate(_)", codePoints_iterate);
  BIND(c, "iteratorValue(_)", codePoints_at);
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
  BIND(c, "sortPlain_()", list_sortPlain);
  BIND(c, "containsPlain_(_)", list_containsPlain);
  BIND(c, "toList", list_toList);
  BIND(c, "isEmpty", list_isEmpty);
  BIND(c, "appendPlain_(_)", list_appendPlain);
  BIND(c, "*(_)", list_times);
  bindPrimitive(vm, c, "joinPlain_(_)", coreListJoinPlain);
  bindPrimitive(vm, c, "plainText_", corePlainText);

  c = vm->mapClass;
  BIND_STATIC(c, "new()", map_new);
  BIND(c, "[_]", map_subscript);
  BIND(c, "[_]=(_)", map_subscriptSetter);
  BIND(c, "clear()", map_clear);
  BIND(c, "containsKey(_)", map_containsKey);
  BIND(c, "count", map_count);
  BIND(c, "remove(_)", map_remove);
  BIND(c, "iterate(_)", map_iterate);
  BIND(c, "iteratorValue(_)", map_iteratorValue);
  BIND(c, "isEmpty", map_isEmpty);
  bindPrimitive(vm, c, "plainText_", corePlainText);

  c = vm->mapEntryClass;
  BIND(c, "key", mapEntry_key);
  BIND(c, "value", mapEntry_value);
  c = coreClass(vm, "MapKeys");
  BIND(c, "iterate(_)", mapKeys_iterate);
  BIND(c, "iteratorValue(_)", mapKeys_iteratorValue);
  BIND(c, "count", mapKeys_count);
  c = coreClass(vm, "MapValues");
  BIND(c, "iterate(_)", mapValues_iterate);
  BIND(c, "iteratorValue(_)", mapValues_iteratorValue);
  BIND(c, "count", mapValues_count);

  c = vm->rangeClass;
  BIND(c, "from", range_from);
  BIND(c, "to", range_to);
  BIND(c, "min", range_min);
  BIND(c, "max", range_max);
  BIND(c, "isInclusive", range_isInclusive);
  BIND(c, "iterate(_)", range_iterate);
  BIND(c, "iteratorValue(_)", range_iteratorValue);
  BIND(c, "toString", range_toString);
  BIND(c, "count", range_count);
  BIND(c, "toList", range_toList);

  BIND_STATIC(coreClass(vm, "Sequence"), "checkCount_(_)", sequence_checkCount);
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
  bindPrimitive(vm, c->obj.classObj, "put_(_,_)", coreSystemPut);
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
  vm->mapEntryClass = coreClass(vm, "MapEntry");
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
  vm->symEquals = symbolTableEnsure(&vm->methodNames, "==(_)", 5);
}
