/* core.c -- The core library's primitives and the VM's bootstrap.
 *
 * coreInitialize makes Object, Class and Object's metaclass by hand, runs
 * core.wren (embedded as core_wren.inc by the build) in the core module,
 * then binds the primitives listed in ROOT_METHODS and CORE_METHODS onto
 * the classes it declared. A primitive finds the receiver and arguments
 * in args[0..argc-1], leaves its result in args[0] (GIVE) or sets the
 * fiber's error (FAIL) with the message Wren users know. The plain-text
 * primitives (printing, joining, toString of lists and maps) live in
 * core_text.c.
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

#define PRIM(name) static PrimResult name(VM* vm, Value* args, int argc)
#define NO_UNUSED() \
  (void)vm;         \
  (void)argc
#define GIVE(v)        \
  do {                 \
    args[0] = (v);     \
    return PRIM_VALUE; \
  } while (0)
#define GIVE_NUM(n) GIVE(NUM_VAL(n))
#define GIVE_BOOL(b) GIVE(BOOL_VAL(b))
#define GIVE_OBJ(o) GIVE(OBJ_VAL(o))
#define FAIL(...)                                              \
  do {                                                         \
    vm->fiber->error = vmRuntimeErrorValue(vm, __VA_ARGS__);     \
    return PRIM_ERROR;                                           \
  } while (0)

/* Views (MapKeys, MapValues, StringBytes, StringCodePoints) keep what
 * they view in their first field; their primitives put it in the
 * receiver's slot and run the viewed object's own primitive. */
#define OVER_VIEWED(name, inner)                       \
  PRIM(name) {                                         \
    args[0] = AS_INSTANCE(args[0])->fields[0];         \
    return inner(vm, args, argc);                      \
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

PRIM(coreObjectNot) { NO_UNUSED(); GIVE(FALSE_VAL); }
PRIM(coreObjectEq) { NO_UNUSED(); GIVE_BOOL(valuesEqual(args[0], args[1])); }
PRIM(coreObjectNeq) { NO_UNUSED(); GIVE_BOOL(!valuesEqual(args[0], args[1])); }
/* Numbers by their bits (so 0 and -0 differ), strings and ranges by
 * value, everything else by identity. */
PRIM(coreObjectSame) {
  NO_UNUSED();
  GIVE_BOOL(args[1] == args[2] || (IS_OBJ(args[1]) && valuesEqual(args[1], args[2])));
}
PRIM(coreObjectType) { NO_UNUSED(); GIVE_OBJ(getClass(vm, args[0])); }
PRIM(coreObjectToString) { NO_UNUSED(); GIVE_OBJ(valueToCString(vm, args[0])); }

PRIM(coreObjectIs) {
  NO_UNUSED();
  if (!IS_CLASS(args[1])) FAIL("Right operand must be a class.");
  ObjClass* target = AS_CLASS(args[1]);
  for (ObjClass* c = getClass(vm, args[0]); c != NULL; c = c->superclass) {
    if (c == target) GIVE(TRUE_VAL);
  }
  GIVE(FALSE_VAL);
}

PRIM(coreClassName) { NO_UNUSED(); GIVE_OBJ(AS_CLASS(args[0])->name); }
PRIM(coreClassSupertype) {
  NO_UNUSED();
  ObjClass* super = AS_CLASS(args[0])->superclass;
  GIVE(super == NULL ? NULL_VAL : OBJ_VAL(super));
}
PRIM(coreClassAttributes) { NO_UNUSED(); GIVE(AS_CLASS(args[0])->attributes); }

/* ---- Bool and Null -------------------------------------------------- */

PRIM(coreBoolNot) { NO_UNUSED(); GIVE_BOOL(!AS_BOOL(args[0])); }
PRIM(coreBoolToString) {
  NO_UNUSED();
  GIVE_OBJ(newString(vm, AS_BOOL(args[0]) ? "true" : "false"));
}
PRIM(coreNullNot) { NO_UNUSED(); GIVE(TRUE_VAL); }
PRIM(coreNullToString) { NO_UNUSED(); GIVE_OBJ(newString(vm, "null")); }

/* ---- Num ------------------------------------------------------------ */

#define NUM_BINARY(name, expr)                                        \
  PRIM(name) {                                                  \
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

NUM_BINARY(coreNumAdd, NUM_VAL(a + b))
NUM_BINARY(coreNumSub, NUM_VAL(a - b))
NUM_BINARY(coreNumMul, NUM_VAL(a * b))
NUM_BINARY(coreNumDiv, NUM_VAL(a / b))
NUM_BINARY(coreNumMod, NUM_VAL(fmod(a, b)))
NUM_BINARY(coreNumLt, BOOL_VAL(a < b))
NUM_BINARY(coreNumGt, BOOL_VAL(a > b))
NUM_BINARY(coreNumLte, BOOL_VAL(a <= b))
NUM_BINARY(coreNumGte, BOOL_VAL(a >= b))
NUM_BINARY(coreNumBitAnd, NUM_VAL((double)(toU32(a) & toU32(b))))
NUM_BINARY(coreNumBitOr, NUM_VAL((double)(toU32(a) | toU32(b))))
NUM_BINARY(coreNumBitXor, NUM_VAL((double)(toU32(a) ^ toU32(b))))
NUM_BINARY(coreNumShl, NUM_VAL((double)(uint32_t)(toU32(a) << (toU32(b) & 31))))
NUM_BINARY(coreNumShr, NUM_VAL((double)(toU32(a) >> (toU32(b) & 31))))
/* Methods whose argument is not "the right operand" name it their way. */
#define NUM_WITH(name, what, expr)                                 \
  PRIM(name) {                                               \
    NO_UNUSED();                                                   \
    if (!needNum(vm, args[1], what)) return PRIM_ERROR;            \
    double a = AS_NUM(args[0]);                                    \
    double b = AS_NUM(args[1]);                                    \
    GIVE(expr);                                                    \
  }

NUM_WITH(coreNumAtan2, "x value", NUM_VAL(atan2(a, b)))
NUM_WITH(coreNumMin, "Other value", NUM_VAL(a < b ? a : b))
NUM_WITH(coreNumMax, "Other value", NUM_VAL(a > b ? a : b))

PRIM(coreNumPow) {
  NO_UNUSED();
  if (!needNum(vm, args[1], "Power value")) return PRIM_ERROR;
  GIVE_NUM(pow(AS_NUM(args[0]), AS_NUM(args[1])));
}

PRIM(coreNumEq) {
  NO_UNUSED();
  if (!IS_NUM(args[1])) GIVE(FALSE_VAL);
  GIVE_BOOL(AS_NUM(args[0]) == AS_NUM(args[1]));
}

PRIM(coreNumNeq) {
  NO_UNUSED();
  if (!IS_NUM(args[1])) GIVE(TRUE_VAL);
  GIVE_BOOL(AS_NUM(args[0]) != AS_NUM(args[1]));
}

PRIM(coreNumClamp) {
  NO_UNUSED();
  if (!needNum(vm, args[1], "Min value")) return PRIM_ERROR;
  if (!needNum(vm, args[2], "Max value")) return PRIM_ERROR;
  double v = AS_NUM(args[0]), lo = AS_NUM(args[1]), hi = AS_NUM(args[2]);
  GIVE_NUM(v < lo ? lo : (v > hi ? hi : v));
}

PRIM(coreNumRange) {
  NO_UNUSED();
  if (!needNum(vm, args[1], "Right hand side of range")) return PRIM_ERROR;
  GIVE_OBJ(newRange(vm, AS_NUM(args[0]), AS_NUM(args[1]), true));
}

PRIM(coreNumRangeExclusive) {
  NO_UNUSED();
  if (!needNum(vm, args[1], "Right hand side of range")) return PRIM_ERROR;
  GIVE_OBJ(newRange(vm, AS_NUM(args[0]), AS_NUM(args[1]), false));
}

#define NUM_UNARY(name, expr)      \
  PRIM(name) {               \
    NO_UNUSED();                 \
    double n = AS_NUM(args[0]);    \
    GIVE(expr);              \
  }

NUM_UNARY(coreNumNegate, NUM_VAL(-n))
NUM_UNARY(coreNumAbs, NUM_VAL(fabs(n)))
NUM_UNARY(coreNumAcos, NUM_VAL(acos(n)))
NUM_UNARY(coreNumAsin, NUM_VAL(asin(n)))
NUM_UNARY(coreNumAtan, NUM_VAL(atan(n)))
NUM_UNARY(coreNumCbrt, NUM_VAL(cbrt(n)))
NUM_UNARY(coreNumCeil, NUM_VAL(ceil(n)))
NUM_UNARY(coreNumCos, NUM_VAL(cos(n)))
NUM_UNARY(coreNumExp, NUM_VAL(exp(n)))
NUM_UNARY(coreNumFloor, NUM_VAL(floor(n)))
NUM_UNARY(coreNumLog, NUM_VAL(log(n)))
NUM_UNARY(coreNumLog2, NUM_VAL(log2(n)))
NUM_UNARY(coreNumRound, NUM_VAL(round(n)))
NUM_UNARY(coreNumSin, NUM_VAL(sin(n)))
NUM_UNARY(coreNumSqrt, NUM_VAL(sqrt(n)))
NUM_UNARY(coreNumTan, NUM_VAL(tan(n)))
NUM_UNARY(coreNumTruncate, NUM_VAL(trunc(n)))
/* modf keeps the sign: (-0).fraction and (-3).fraction are -0. */
PRIM(coreNumFraction) {
  NO_UNUSED();
  double whole;
  GIVE_NUM(modf(AS_NUM(args[0]), &whole));
}
NUM_UNARY(coreNumBitNot, NUM_VAL((double)(~toU32(n))))
NUM_UNARY(coreNumIsInfinity, BOOL_VAL(isinf(n)))
NUM_UNARY(coreNumIsNan, BOOL_VAL(isnan(n)))
NUM_UNARY(coreNumIsInteger, BOOL_VAL(!isnan(n) && !isinf(n) && trunc(n) == n))
NUM_UNARY(coreNumSign, NUM_VAL(n > 0 ? 1 : (n < 0 ? -1 : 0)))
NUM_UNARY(coreNumToString, OBJ_VAL(stringFormatNum(vm, n)))

PRIM(coreNumInfinity) { NO_UNUSED(); GIVE_NUM(INFINITY); }
PRIM(coreNumNan) { NO_UNUSED(); GIVE_NUM(NAN); }
PRIM(coreNumPi) { NO_UNUSED(); GIVE_NUM(3.14159265358979323846264338327950288); }
PRIM(coreNumTau) { NO_UNUSED(); GIVE_NUM(6.28318530717958647692528676655900577); }
PRIM(coreNumLargest) { NO_UNUSED(); GIVE_NUM(DBL_MAX); }
PRIM(coreNumSmallest) { NO_UNUSED(); GIVE_NUM(DBL_MIN); }
PRIM(coreNumEpsilon) { NO_UNUSED(); GIVE_NUM(DBL_EPSILON); }
PRIM(coreNumMaxSafeInteger) { NO_UNUSED(); GIVE_NUM(9007199254740991.0); }
PRIM(coreNumMinSafeInteger) { NO_UNUSED(); GIVE_NUM(-9007199254740991.0); }

static bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

PRIM(coreNumFromString) {
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

/* Lists and ranges are capped well below what a VM heap could hold, so
 * that the size arithmetic stays in int. */
#define LIST_MAX_ITEMS (1 << 27)

PRIM(coreStringFromCodePoint) {
  NO_UNUSED();
  if (!needInt(vm, args[1], "Code point")) return PRIM_ERROR;
  /* compared as a double first: a huge number cast to int is undefined */
  if (AS_NUM(args[1]) < 0) FAIL("Code point cannot be negative.");
  if (AS_NUM(args[1]) > 0x10ffff) FAIL("Code point cannot be greater than 0x10ffff.");
  int cp = (int)AS_NUM(args[1]);
  uint8_t bytes[4];
  int n = utf8Encode(cp, bytes);
  GIVE_OBJ(newStringLength(vm, (const char*)bytes, (size_t)n));
}

PRIM(coreStringFromByte) {
  NO_UNUSED();
  if (!needInt(vm, args[1], "Byte")) return PRIM_ERROR;
  if (AS_NUM(args[1]) < 0) FAIL("Byte cannot be negative.");
  if (AS_NUM(args[1]) > 0xff) FAIL("Byte cannot be greater than 0xff.");
  int byte = (int)AS_NUM(args[1]);
  char c = (char)byte;
  GIVE_OBJ(newStringLength(vm, &c, 1));
}

PRIM(coreStringPlus) {
  NO_UNUSED();
  if (!needString(vm, args[1], "Right operand")) return PRIM_ERROR;
  GIVE_OBJ(concatStrings(vm, AS_STRING(args[0]), AS_STRING(args[1])));
}

PRIM(coreStringTimes) {
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

PRIM(coreStringSubscript) {
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

PRIM(coreStringByteAt) {
  NO_UNUSED();
  ObjString* s = AS_STRING(args[0]);
  int index = needIndex(vm, args[1], (int)s->length, "Index");
  if (index == -1) return PRIM_ERROR;
  GIVE_NUM((uint8_t)s->chars[index]);
}

PRIM(coreStringByteCount) { NO_UNUSED(); GIVE_NUM(AS_STRING(args[0])->length); }

PRIM(coreStringCodePointAt) {
  NO_UNUSED();
  ObjString* s = AS_STRING(args[0]);
  int index = needIndex(vm, args[1], (int)s->length, "Index");
  if (index == -1) return PRIM_ERROR;
  const uint8_t* bytes = (const uint8_t*)s->chars + index;
  if ((*bytes & 0xc0) == 0x80) GIVE_NUM(-1);
  GIVE_NUM(utf8Decode(bytes, s->length - (uint32_t)index));
}

PRIM(coreStringCount) {
  NO_UNUSED();
  ObjString* s = AS_STRING(args[0]);
  int count = 0;
  for (uint32_t i = 0; i < s->length; i++) {
    if (((uint8_t)s->chars[i] & 0xc0) != 0x80) count++;
  }
  GIVE_NUM(count);
}

PRIM(coreStringContains) {
  NO_UNUSED();
  if (!needString(vm, args[1], "Argument")) return PRIM_ERROR;
  GIVE_BOOL(stringFind(AS_STRING(args[0]), AS_STRING(args[1]), 0) != -1);
}

PRIM(coreStringStartsWith) {
  NO_UNUSED();
  if (!needString(vm, args[1], "Argument")) return PRIM_ERROR;
  ObjString* s = AS_STRING(args[0]);
  ObjString* t = AS_STRING(args[1]);
  GIVE_BOOL(t->length <= s->length && memcmp(s->chars, t->chars, t->length) == 0);
}

PRIM(coreStringEndsWith) {
  NO_UNUSED();
  if (!needString(vm, args[1], "Argument")) return PRIM_ERROR;
  ObjString* s = AS_STRING(args[0]);
  ObjString* t = AS_STRING(args[1]);
  GIVE_BOOL(t->length <= s->length &&
              memcmp(s->chars + s->length - t->length, t->chars, t->length) == 0);
}

PRIM(coreStringIndexOf) {
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

PRIM(coreStringIterate) {
  NO_UNUSED();
  ObjString* s = AS_STRING(args[0]);
  if (IS_NULL(args[1])) GIVE(s->length == 0 ? FALSE_VAL : NUM_VAL(0));
  if (!needInt(vm, args[1], "Iterator")) return PRIM_ERROR;
  double i = AS_NUM(args[1]);
  if (i < 0 || i >= s->length) GIVE(FALSE_VAL);
  uint32_t next = nextCodePointIndex(s, (uint32_t)i);
  GIVE(next >= s->length ? FALSE_VAL : NUM_VAL(next));
}

PRIM(coreStringIterateByte) {
  NO_UNUSED();
  ObjString* s = AS_STRING(args[0]);
  if (IS_NULL(args[1])) GIVE(s->length == 0 ? FALSE_VAL : NUM_VAL(0));
  if (!needInt(vm, args[1], "Iterator")) return PRIM_ERROR;
  double i = AS_NUM(args[1]);
  if (i < 0 || i + 1 >= s->length) GIVE(FALSE_VAL);
  GIVE_NUM(i + 1);
}

PRIM(coreStringIteratorValue) {
  NO_UNUSED();
  ObjString* s = AS_STRING(args[0]);
  int index = needIndex(vm, args[1], (int)s->length, "Iterator");
  if (index == -1) return PRIM_ERROR;
  GIVE_OBJ(codePointAt(vm, s, (uint32_t)index));
}

PRIM(coreStringToString) { NO_UNUSED(); return PRIM_VALUE; }

OVER_VIEWED(coreBytesAt, coreStringByteAt)
OVER_VIEWED(coreBytesCount, coreStringByteCount)
OVER_VIEWED(coreBytesIterate, coreStringIterateByte)
OVER_VIEWED(coreCodePointsAt, coreStringCodePointAt)
OVER_VIEWED(coreCodePointsCount, coreStringCount)
OVER_VIEWED(coreCodePointsIterate, coreStringIterate)

PRIM(coreStringSplit) {
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

PRIM(coreStringReplace) {
  NO_UNUSED();
  if (!IS_STRING(args[1]) || AS_STRING(args[1])->length == 0) {
    FAIL("From must be a non-empty string.");
  }
  if (!needString(vm, args[2], "To")) return PRIM_ERROR;
  ObjString* s = AS_STRING(args[0]);
  ObjString* from = AS_STRING(args[1]);
  ObjString* to = AS_STRING(args[2]);
  /* Size the result first (a second search is cheaper than a buffer grown past
   * what wasm32's size_t holds: 10^6 matches times a 2,000-byte `to` wrapped it
   * and wrote out of bounds), bound it as `*` is, and allocate it through the
   * VM's accounting, so a large one meets the memory limit. */
  uint64_t matches = 0;
  for (int64_t at = stringFind(s, from, 0); at != -1; at = stringFind(s, from, (uint32_t)at + from->length)) {
    matches++;
  }
  uint64_t total = (uint64_t)s->length - matches * from->length + matches * to->length;
  if (total > (uint64_t)1e9) FAIL("String too large.");
  ObjString* result = newStringUninit(vm, (size_t)total);
  size_t length = 0;
  uint32_t start = 0;
  for (;;) {
    int64_t found = stringFind(s, from, start);
    uint32_t end = found == -1 ? s->length : (uint32_t)found;
    memcpy(result->chars + length, s->chars + start, end - start);
    length += end - start;
    if (found == -1) break;
    memcpy(result->chars + length, to->chars, to->length);
    length += to->length;
    start = end + from->length;
  }
  stringHash(result);
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

PRIM(coreStringTrim) { return trimString(vm, args, argc, true, true); }
PRIM(coreStringTrimStart) { return trimString(vm, args, argc, true, false); }
PRIM(coreStringTrimEnd) { return trimString(vm, args, argc, false, true); }

/* ---- List ----------------------------------------------------------- */

PRIM(coreListNew) { NO_UNUSED(); GIVE_OBJ(newList(vm, 0)); }

PRIM(coreListFilled) {
  NO_UNUSED();
  if (!needInt(vm, args[1], "Size")) return PRIM_ERROR;
  if (AS_NUM(args[1]) < 0) FAIL("Size cannot be negative.");
  if (AS_NUM(args[1]) > LIST_MAX_ITEMS) FAIL("List would be too large.");
  ObjList* list = newList(vm, (int)AS_NUM(args[1]));
  for (int i = 0; i < list->count; i++) list->items[i] = args[2];
  GIVE_OBJ(list);
}

PRIM(coreListSubscript) {
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

PRIM(coreListSubscriptSetter) {
  NO_UNUSED();
  ObjList* list = AS_LIST(args[0]);
  int index = needIndex(vm, args[1], list->count, "Subscript");
  if (index == -1) return PRIM_ERROR;
  list->items[index] = args[2];
  GIVE(args[2]);
}

PRIM(coreListAdd) {
  NO_UNUSED();
  listAppend(vm, AS_LIST(args[0]), args[1]);
  GIVE(args[1]);
}

PRIM(coreListClear) {
  NO_UNUSED();
  ObjList* list = AS_LIST(args[0]);
  FREE_ARRAY(vm, Value, list->items, list->capacity);
  list->items = NULL;
  list->count = list->capacity = 0;
  GIVE(NULL_VAL);
}

PRIM(coreListCount) { NO_UNUSED(); GIVE_NUM(AS_LIST(args[0])->count); }

PRIM(coreListInsert) {
  NO_UNUSED();
  ObjList* list = AS_LIST(args[0]);
  int index = needIndex(vm, args[1], list->count + 1, "Index");
  if (index == -1) return PRIM_ERROR;
  listInsert(vm, list, args[2], index);
  GIVE(args[2]);
}

PRIM(coreListIterate) {
  NO_UNUSED();
  ObjList* list = AS_LIST(args[0]);
  if (IS_NULL(args[1])) GIVE(list->count == 0 ? FALSE_VAL : NUM_VAL(0));
  if (!needInt(vm, args[1], "Iterator")) return PRIM_ERROR;
  double i = AS_NUM(args[1]);
  if (i < 0 || i >= list->count - 1) GIVE(FALSE_VAL);
  GIVE_NUM(i + 1);
}

PRIM(coreListIteratorValue) {
  NO_UNUSED();
  ObjList* list = AS_LIST(args[0]);
  int index = needIndex(vm, args[1], list->count, "Iterator");
  if (index == -1) return PRIM_ERROR;
  GIVE(list->items[index]);
}

PRIM(coreListRemoveAt) {
  NO_UNUSED();
  ObjList* list = AS_LIST(args[0]);
  int index = needIndex(vm, args[1], list->count, "Index");
  if (index == -1) return PRIM_ERROR;
  GIVE(listRemoveAt(vm, list, index));
}

PRIM(coreListRemove) {
  NO_UNUSED();
  ObjList* list = AS_LIST(args[0]);
  for (int i = 0; i < list->count; i++) {
    if (valuesEqual(list->items[i], args[1])) GIVE(listRemoveAt(vm, list, i));
  }
  GIVE(NULL_VAL);
}

PRIM(coreListIndexOf) {
  NO_UNUSED();
  ObjList* list = AS_LIST(args[0]);
  for (int i = 0; i < list->count; i++) {
    if (valuesEqual(list->items[i], args[1])) GIVE_NUM(i);
  }
  GIVE_NUM(-1);
}

PRIM(coreListSwap) {
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
PRIM(coreListSortPlain) {
  NO_UNUSED();
  ObjList* list = AS_LIST(args[0]);
  for (int i = 0; i < list->count; i++) {
    if (!IS_NUM(list->items[i])) GIVE(FALSE_VAL);
  }
  qsort(list->items, (size_t)list->count, sizeof(Value), compareNums);
  GIVE(TRUE_VAL);
}


/* Whether `needle == item` can be decided without running Wren: true
 * for numbers, strings, ranges, bools and null (sealed classes) and for
 * any other object whose class, or metaclass, keeps Object's ==. */
static bool plainEquality(VM* vm, Value needle) {
  if (!IS_OBJ(needle) || IS_STRING(needle) || IS_RANGE(needle)) return true;
  ObjClass* cls = getClass(vm, needle);
  int symbol = vm->symEquals;
  return symbol < cls->methodCount && symbol < vm->objectClass->methodCount &&
         cls->methods[symbol].type == METHOD_PRIMITIVE &&
         cls->methods[symbol].as.primitive == vm->objectClass->methods[symbol].as.primitive;
}

/* true or false, or null when the needle's own == must decide. */
PRIM(coreListContainsPlain) {
  NO_UNUSED();
  if (!plainEquality(vm, args[1])) GIVE(NULL_VAL);
  ObjList* list = AS_LIST(args[0]);
  for (int i = 0; i < list->count; i++) {
    if (valuesEqual(args[1], list->items[i])) GIVE(TRUE_VAL);
  }
  GIVE(FALSE_VAL);
}

PRIM(coreListToList) {
  NO_UNUSED();
  ObjList* source = AS_LIST(args[0]);
  ObjList* copy = newList(vm, source->count);
  if (source->count > 0) memcpy(copy->items, source->items, sizeof(Value) * (size_t)source->count);
  GIVE_OBJ(copy);
}

PRIM(coreListIsEmpty) { NO_UNUSED(); GIVE_BOOL(AS_LIST(args[0])->count == 0); }

/* Appends another list's elements; false for any other sequence. */
PRIM(coreListAppendPlain) {
  NO_UNUSED();
  if (!IS_LIST(args[1])) GIVE(FALSE_VAL);
  ObjList* list = AS_LIST(args[0]);
  ObjList* other = AS_LIST(args[1]);
  int n = other->count; /* fixed first: the list may be appended to itself */
  for (int i = 0; i < n; i++) listAppend(vm, list, other->items[i]);
  GIVE(TRUE_VAL);
}


PRIM(coreListTimes) {
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

PRIM(coreMapNew) { NO_UNUSED(); GIVE_OBJ(newMap(vm)); }

PRIM(coreMapSubscript) {
  NO_UNUSED();
  if (!needKey(vm, args[1])) return PRIM_ERROR;
  Value value;
  if (mapGet(AS_MAP(args[0]), args[1], &value)) GIVE(value);
  GIVE(NULL_VAL);
}

PRIM(coreMapSubscriptSetter) {
  NO_UNUSED();
  if (!needKey(vm, args[1])) return PRIM_ERROR;
  mapSet(vm, AS_MAP(args[0]), args[1], args[2]);
  GIVE(args[2]);
}

PRIM(coreMapClear) {
  NO_UNUSED();
  mapClear(vm, AS_MAP(args[0]));
  GIVE(NULL_VAL);
}

PRIM(coreMapContainsKey) {
  NO_UNUSED();
  if (!needKey(vm, args[1])) return PRIM_ERROR;
  Value value;
  GIVE_BOOL(mapGet(AS_MAP(args[0]), args[1], &value));
}

PRIM(coreMapCount) { NO_UNUSED(); GIVE_NUM(AS_MAP(args[0])->count); }

PRIM(coreMapRemove) {
  NO_UNUSED();
  if (!needKey(vm, args[1])) return PRIM_ERROR;
  GIVE(mapRemove(vm, AS_MAP(args[0]), args[1]));
}

PRIM(coreMapIterate) {
  NO_UNUSED();
  ObjMap* map = AS_MAP(args[0]);
  if (map->count == 0) GIVE(FALSE_VAL);
  uint32_t index = 0;
  if (!IS_NULL(args[1])) {
    if (!needInt(vm, args[1], "Iterator")) return PRIM_ERROR;
    if (AS_NUM(args[1]) < 0) GIVE(FALSE_VAL);
    index = (uint32_t)AS_NUM(args[1]) + 1;
  }
  for (; index < map->used; index++) {
    if (!IS_UNDEFINED(map->entries[index].key)) GIVE_NUM(index);
  }
  GIVE(FALSE_VAL);
}

static MapEntry* mapIteratorEntry(VM* vm, Value map, Value iterator) {
  ObjMap* m = AS_MAP(map);
  int index = needIndex(vm, iterator, (int)m->used, "Iterator");
  if (index == -1) return NULL;
  MapEntry* entry = &m->entries[index];
  if (IS_UNDEFINED(entry->key)) {
    fail(vm, "%s out of bounds.", "Iterator");
    return NULL;
  }
  return entry;
}

PRIM(coreMapKeyAt) {
  NO_UNUSED();
  MapEntry* entry = mapIteratorEntry(vm, args[0], args[1]);
  if (entry == NULL) return PRIM_ERROR;
  GIVE(entry->key);
}

PRIM(coreMapValueAt) {
  NO_UNUSED();
  MapEntry* entry = mapIteratorEntry(vm, args[0], args[1]);
  if (entry == NULL) return PRIM_ERROR;
  GIVE(entry->value);
}

/* Map iteration yields MapEntry instances: key in the first field,
 * value in the second. */
PRIM(coreMapIteratorValue) {
  NO_UNUSED();
  MapEntry* entry = mapIteratorEntry(vm, args[0], args[1]);
  if (entry == NULL) return PRIM_ERROR;
  Value key = entry->key, value = entry->value;
  ObjInstance* pair = newInstance(vm, vm->mapEntryClass);
  pair->fields[0] = key;
  pair->fields[1] = value;
  GIVE_OBJ(pair);
}

PRIM(coreMapIsEmpty) { NO_UNUSED(); GIVE_BOOL(AS_MAP(args[0])->count == 0); }

PRIM(coreMapEntryKey) { NO_UNUSED(); GIVE(AS_INSTANCE(args[0])->fields[0]); }
PRIM(coreMapEntryValue) { NO_UNUSED(); GIVE(AS_INSTANCE(args[0])->fields[1]); }

OVER_VIEWED(coreMapKeysIterate, coreMapIterate)
OVER_VIEWED(coreMapKeysIteratorValue, coreMapKeyAt)
OVER_VIEWED(coreMapValuesIterate, coreMapIterate)
OVER_VIEWED(coreMapValuesIteratorValue, coreMapValueAt)
OVER_VIEWED(coreMapKeysCount, coreMapCount)
OVER_VIEWED(coreMapValuesCount, coreMapCount)

/* ---- Range ---------------------------------------------------------- */

PRIM(coreRangeFrom) { NO_UNUSED(); GIVE_NUM(AS_RANGE(args[0])->from); }
PRIM(coreRangeTo) { NO_UNUSED(); GIVE_NUM(AS_RANGE(args[0])->to); }
PRIM(coreRangeMin) {
  NO_UNUSED();
  ObjRange* r = AS_RANGE(args[0]);
  GIVE_NUM(r->from < r->to ? r->from : r->to);
}
PRIM(coreRangeMax) {
  NO_UNUSED();
  ObjRange* r = AS_RANGE(args[0]);
  GIVE_NUM(r->from > r->to ? r->from : r->to);
}
PRIM(coreRangeIsInclusive) { NO_UNUSED(); GIVE_BOOL(AS_RANGE(args[0])->isInclusive); }

PRIM(coreRangeIterate) {
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

PRIM(coreRangeIteratorValue) { NO_UNUSED(); GIVE(args[1]); }

/* How many values iterating r visits: the start, then steps of one
 * towards the end, which is visited when inclusive and passed over
 * otherwise. */
static double rangeLength(ObjRange* r) {
  if (r->from == r->to) return r->isInclusive ? 1 : 0;
  double span = fabs(r->to - r->from);
  if (isnan(span)) return 1;
  return r->isInclusive ? 1 + floor(span) : ceil(span);
}

PRIM(coreRangeCount) { NO_UNUSED(); GIVE_NUM(rangeLength(AS_RANGE(args[0]))); }

PRIM(coreRangeToList) {
  NO_UNUSED();
  ObjRange* r = AS_RANGE(args[0]);
  double length = rangeLength(r);
  if (length > LIST_MAX_ITEMS) FAIL("Range is too large to make a list.");
  ObjList* list = newList(vm, (int)length);
  double step = r->from < r->to ? 1 : -1;
  for (int i = 0; i < list->count; i++) list->items[i] = NUM_VAL(r->from + step * i);
  GIVE_OBJ(list);
}

PRIM(coreRangeToString) {
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

PRIM(coreFnNew) {
  NO_UNUSED();
  if (!needFn(vm, args[1], "Argument")) return PRIM_ERROR;
  GIVE(args[1]);
}

PRIM(coreFnArity) { NO_UNUSED(); GIVE_NUM(AS_CLOSURE(args[0])->fn->arity); }
PRIM(coreFnToString) { NO_UNUSED(); GIVE_OBJ(newString(vm, "<fn>")); }

/* ---- Fiber ---------------------------------------------------------- */

static bool fiberIsDone(ObjFiber* f) { return f->frameCount == 0 || !IS_NULL(f->error); }

PRIM(coreFiberNew) {
  NO_UNUSED();
  if (!needFn(vm, args[1], "Argument")) return PRIM_ERROR;
  ObjClosure* closure = AS_CLOSURE(args[1]);
  if (closure->fn->arity > 1) FAIL("Function cannot take more than one parameter.");
  GIVE_OBJ(newFiber(vm, closure));
}

PRIM(coreFiberAbort) {
  NO_UNUSED();
  vm->fiber->error = args[1];
  if (IS_NULL(args[1])) GIVE(NULL_VAL);
  return PRIM_ERROR;
}

PRIM(coreFiberCurrent) {
  NO_UNUSED();
  vm->fiber->escaped = true;  /* a later host call must not run on a fiber a script holds */
  GIVE_OBJ(vm->fiber);
}

PRIM(coreFiberSuspend) {
  NO_UNUSED();
  vm->fiber = NULL;
  return PRIM_SWITCH;
}

PRIM(coreFiberYield) {
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
  /* the error first: a finished host-call fiber the script kept has no
   * frames left (acquireApiFiber), and still reads as aborted if it was */
  if (!IS_NULL(target->error)) FAIL("Cannot %s an aborted fiber.", verb);
  if (target->frameCount == 0) FAIL("Cannot %s a finished fiber.", verb);
  if (target->caller != NULL || target == vm->fiber) FAIL("Fiber has already been called.");
  if (target->state == FIBER_ROOT) FAIL("Cannot %s root fiber.", verb);
  target->caller = vm->fiber;
  target->state = isTry ? FIBER_TRY : FIBER_OTHER;
  fiberResumeWith(vm, target, argc > 1 ? args[1] : NULL_VAL);
  vm->fiber = target;
  return PRIM_SWITCH;
}

PRIM(coreFiberCall) { return runFiber(vm, args, argc, false, "call"); }
PRIM(coreFiberTry) { return runFiber(vm, args, argc, true, "try"); }

PRIM(coreFiberTransfer) {
  ObjFiber* target = AS_FIBER(args[0]);
  if (!IS_NULL(target->error)) FAIL("Cannot transfer to an aborted fiber.");
  if (target->frameCount == 0) FAIL("Cannot transfer to a finished fiber.");
  if (target == vm->fiber) GIVE(argc > 1 ? args[1] : NULL_VAL);
  fiberResumeWith(vm, target, argc > 1 ? args[1] : NULL_VAL);
  vm->fiber = target;
  return PRIM_SWITCH;
}

PRIM(coreFiberTransferError) {
  NO_UNUSED();
  ObjFiber* target = AS_FIBER(args[0]);
  if (!IS_NULL(target->error)) FAIL("Cannot transfer to an aborted fiber.");
  if (target->frameCount == 0) FAIL("Cannot transfer to a finished fiber.");
  target->started = true;
  vm->fiber = target;
  target->error = args[1];
  return PRIM_ERROR;
}

PRIM(coreFiberError) { NO_UNUSED(); GIVE(AS_FIBER(args[0])->error); }
PRIM(coreFiberIsDone) { NO_UNUSED(); GIVE_BOOL(fiberIsDone(AS_FIBER(args[0]))); }

/* ---- Sequence ------------------------------------------------------- */

/* SequenceView.iterate and iteratorValue. A view's fields: 0 its source,
 * 1 and 2 the advance and read functions, 3 and 4 whether those merely
 * stand in for the source's own iterate and iteratorValue. A stand-in
 * is skipped when the source's method is a primitive (it is called
 * directly, with the source as receiver); otherwise the function runs in
 * place of the method, with the cursor as its argument. Either way a
 * chain of views costs at most one call per view and step. */
static PrimResult viewStep(VM* vm, Value* args, int argc, int field, int symbol) {
  ObjInstance* view = AS_INSTANCE(args[0]);
  if (view->fields[field + 2] == TRUE_VAL) {
    Value source = view->fields[0];
    ObjClass* cls = getClass(vm, source);
    if (symbol < cls->methodCount && cls->methods[symbol].type == METHOD_PRIMITIVE) {
      args[0] = source;
      return cls->methods[symbol].as.primitive(vm, args, argc);
    }
  }
  Value step = view->fields[field];
  if (!IS_CLOSURE(step) || AS_CLOSURE(step)->fn->arity != 1) {
    FAIL("A sequence view needs functions of one argument.");
  }
  args[0] = step;
  return PRIM_CALL;
}

PRIM(coreViewIterate) { return viewStep(vm, args, argc, 1, vm->symIterate); }

PRIM(coreViewIteratorValue) { return viewStep(vm, args, argc, 2, vm->symIteratorValue); }

/* Sequence.checkCount_(n), the argument check of skip and take. */
PRIM(coreSequenceCheckCount) {
  NO_UNUSED();
  double n = IS_NUM(args[1]) ? AS_NUM(args[1]) : -1;
  if (!isfinite(n) || trunc(n) != n || n < 0) FAIL("Count must be a non-negative integer.");
  GIVE(NULL_VAL);
}

/* ---- System --------------------------------------------------------- */

PRIM(coreSystemClock) { NO_UNUSED(); GIVE_NUM(host_clock()); }

PRIM(coreSystemGc) {
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

static ObjClass* coreClass(VM* vm, const char* name) {
  int index = moduleFindVariable(vm->coreModule, name, (int)strlen(name));
  return AS_CLASS(vm->coreModule->variables[index]);
}

/* One primitive of a core class: the class (a core module variable),
 * whether the method is static (bound on its metaclass), its signature
 * and its C function. */
typedef struct {
  const char* owner;
  bool isStatic;
  const char* signature;
  Primitive fn;
} CoreMethod;

/* Object and Class are made by hand before core.wren runs, and their
 * methods bound at once: each class core.wren declares starts from a
 * copy of Object's methods. */
static const CoreMethod ROOT_METHODS[] = {
  {"Object", false, "!", coreObjectNot},
  {"Object", false, "==(_)", coreObjectEq},
  {"Object", false, "!=(_)", coreObjectNeq},
  {"Object", false, "is(_)", coreObjectIs},
  {"Object", false, "toString", coreObjectToString},
  {"Object", false, "type", coreObjectType},
  {"Class", false, "name", coreClassName},
  {"Class", false, "supertype", coreClassSupertype},
  {"Class", false, "toString", coreClassName},
  {"Class", false, "attributes", coreClassAttributes},
  {"Object", true, "same(_,_)", coreObjectSame},
};

/* Everything else, bound once core.wren has declared the classes; a
 * primitive replaces a Wren method of the same signature. */
static const CoreMethod CORE_METHODS[] = {
  {"Bool", false, "!", coreBoolNot},
  {"Bool", false, "toString", coreBoolToString},
  {"Null", false, "!", coreNullNot},
  {"Null", false, "toString", coreNullToString},
  {"Num", true, "fromString(_)", coreNumFromString},
  {"Num", true, "infinity", coreNumInfinity},
  {"Num", true, "nan", coreNumNan},
  {"Num", true, "pi", coreNumPi},
  {"Num", true, "tau", coreNumTau},
  {"Num", true, "largest", coreNumLargest},
  {"Num", true, "smallest", coreNumSmallest},
  {"Num", true, "epsilon", coreNumEpsilon},
  {"Num", true, "maxSafeInteger", coreNumMaxSafeInteger},
  {"Num", true, "minSafeInteger", coreNumMinSafeInteger},
  {"Num", false, "-", coreNumNegate},
  {"Num", false, "+(_)", coreNumAdd},
  {"Num", false, "-(_)", coreNumSub},
  {"Num", false, "*(_)", coreNumMul},
  {"Num", false, "/(_)", coreNumDiv},
  {"Num", false, "%(_)", coreNumMod},
  {"Num", false, "<(_)", coreNumLt},
  {"Num", false, ">(_)", coreNumGt},
  {"Num", false, "<=(_)", coreNumLte},
  {"Num", false, ">=(_)", coreNumGte},
  {"Num", false, "==(_)", coreNumEq},
  {"Num", false, "!=(_)", coreNumNeq},
  {"Num", false, "&(_)", coreNumBitAnd},
  {"Num", false, "|(_)", coreNumBitOr},
  {"Num", false, "^(_)", coreNumBitXor},
  {"Num", false, "<<(_)", coreNumShl},
  {"Num", false, ">>(_)", coreNumShr},
  {"Num", false, "~", coreNumBitNot},
  {"Num", false, "..(_)", coreNumRange},
  {"Num", false, "...(_)", coreNumRangeExclusive},
  {"Num", false, "abs", coreNumAbs},
  {"Num", false, "acos", coreNumAcos},
  {"Num", false, "asin", coreNumAsin},
  {"Num", false, "atan", coreNumAtan},
  {"Num", false, "atan(_)", coreNumAtan2},
  {"Num", false, "cbrt", coreNumCbrt},
  {"Num", false, "ceil", coreNumCeil},
  {"Num", false, "cos", coreNumCos},
  {"Num", false, "exp", coreNumExp},
  {"Num", false, "floor", coreNumFloor},
  {"Num", false, "fraction", coreNumFraction},
  {"Num", false, "isInfinity", coreNumIsInfinity},
  {"Num", false, "isInteger", coreNumIsInteger},
  {"Num", false, "isNan", coreNumIsNan},
  {"Num", false, "log", coreNumLog},
  {"Num", false, "log2", coreNumLog2},
  {"Num", false, "pow(_)", coreNumPow},
  {"Num", false, "round", coreNumRound},
  {"Num", false, "sign", coreNumSign},
  {"Num", false, "sin", coreNumSin},
  {"Num", false, "sqrt", coreNumSqrt},
  {"Num", false, "tan", coreNumTan},
  {"Num", false, "truncate", coreNumTruncate},
  {"Num", false, "min(_)", coreNumMin},
  {"Num", false, "max(_)", coreNumMax},
  {"Num", false, "clamp(_,_)", coreNumClamp},
  {"Num", false, "toString", coreNumToString},
  {"String", true, "fromCodePoint(_)", coreStringFromCodePoint},
  {"String", true, "fromByte(_)", coreStringFromByte},
  {"String", false, "+(_)", coreStringPlus},
  {"String", false, "*(_)", coreStringTimes},
  {"String", false, "[_]", coreStringSubscript},
  {"String", false, "count", coreStringCount},
  {"String", false, "contains(_)", coreStringContains},
  {"String", false, "startsWith(_)", coreStringStartsWith},
  {"String", false, "endsWith(_)", coreStringEndsWith},
  {"String", false, "indexOf(_)", coreStringIndexOf},
  {"String", false, "indexOf(_,_)", coreStringIndexOf},
  {"String", false, "iterate(_)", coreStringIterate},
  {"String", false, "iteratorValue(_)", coreStringIteratorValue},
  {"String", false, "toString", coreStringToString},
  {"String", false, "split(_)", coreStringSplit},
  {"String", false, "replace(_,_)", coreStringReplace},
  {"String", false, "trim()", coreStringTrim},
  {"String", false, "trim(_)", coreStringTrim},
  {"String", false, "trimStart()", coreStringTrimStart},
  {"String", false, "trimStart(_)", coreStringTrimStart},
  {"String", false, "trimEnd()", coreStringTrimEnd},
  {"String", false, "trimEnd(_)", coreStringTrimEnd},
  {"StringBytes", false, "[_]", coreBytesAt},
  {"StringBytes", false, "count", coreBytesCount},
  {"StringBytes", false, "iterate(_)", coreBytesIterate},
  {"StringBytes", false, "iteratorValue(_)", coreBytesAt},
  {"StringCodePoints", false, "[_]", coreCodePointsAt},
  {"StringCodePoints", false, "count", coreCodePointsCount},
  {"StringCodePoints", false, "iterate(_)", coreCodePointsIterate},
  {"StringCodePoints", false, "iteratorValue(_)", coreCodePointsAt},
  {"List", true, "new()", coreListNew},
  {"List", true, "filled(_,_)", coreListFilled},
  {"List", false, "[_]", coreListSubscript},
  {"List", false, "[_]=(_)", coreListSubscriptSetter},
  {"List", false, "add(_)", coreListAdd},
  {"List", false, "clear()", coreListClear},
  {"List", false, "count", coreListCount},
  {"List", false, "insert(_,_)", coreListInsert},
  {"List", false, "iterate(_)", coreListIterate},
  {"List", false, "iteratorValue(_)", coreListIteratorValue},
  {"List", false, "removeAt(_)", coreListRemoveAt},
  {"List", false, "remove(_)", coreListRemove},
  {"List", false, "indexOf(_)", coreListIndexOf},
  {"List", false, "swap(_,_)", coreListSwap},
  {"List", false, "sortPlain_()", coreListSortPlain},
  {"List", false, "containsPlain_(_)", coreListContainsPlain},
  {"List", false, "toList", coreListToList},
  {"List", false, "isEmpty", coreListIsEmpty},
  {"List", false, "appendPlain_(_)", coreListAppendPlain},
  {"List", false, "*(_)", coreListTimes},
  {"List", false, "joinPlain_(_)", coreListJoinPlain},
  {"List", false, "plainText_", corePlainText},
  {"Map", true, "new()", coreMapNew},
  {"Map", false, "[_]", coreMapSubscript},
  {"Map", false, "[_]=(_)", coreMapSubscriptSetter},
  {"Map", false, "clear()", coreMapClear},
  {"Map", false, "containsKey(_)", coreMapContainsKey},
  {"Map", false, "count", coreMapCount},
  {"Map", false, "remove(_)", coreMapRemove},
  {"Map", false, "iterate(_)", coreMapIterate},
  {"Map", false, "iteratorValue(_)", coreMapIteratorValue},
  {"Map", false, "isEmpty", coreMapIsEmpty},
  {"Map", false, "plainText_", corePlainText},
  {"MapEntry", false, "key", coreMapEntryKey},
  {"MapEntry", false, "value", coreMapEntryValue},
  {"MapKeys", false, "iterate(_)", coreMapKeysIterate},
  {"MapKeys", false, "iteratorValue(_)", coreMapKeysIteratorValue},
  {"MapKeys", false, "count", coreMapKeysCount},
  {"MapValues", false, "iterate(_)", coreMapValuesIterate},
  {"MapValues", false, "iteratorValue(_)", coreMapValuesIteratorValue},
  {"MapValues", false, "count", coreMapValuesCount},
  {"Range", false, "from", coreRangeFrom},
  {"Range", false, "to", coreRangeTo},
  {"Range", false, "min", coreRangeMin},
  {"Range", false, "max", coreRangeMax},
  {"Range", false, "isInclusive", coreRangeIsInclusive},
  {"Range", false, "iterate(_)", coreRangeIterate},
  {"Range", false, "iteratorValue(_)", coreRangeIteratorValue},
  {"Range", false, "toString", coreRangeToString},
  {"Range", false, "count", coreRangeCount},
  {"Range", false, "toList", coreRangeToList},
  {"Sequence", true, "checkCount_(_)", coreSequenceCheckCount},
  {"SequenceView", false, "iterate(_)", coreViewIterate},
  {"SequenceView", false, "iteratorValue(_)", coreViewIteratorValue},
  {"Fn", true, "new(_)", coreFnNew},
  {"Fn", false, "arity", coreFnArity},
  {"Fn", false, "toString", coreFnToString},
  {"Fiber", true, "new(_)", coreFiberNew},
  {"Fiber", true, "abort(_)", coreFiberAbort},
  {"Fiber", true, "current", coreFiberCurrent},
  {"Fiber", true, "suspend()", coreFiberSuspend},
  {"Fiber", true, "yield()", coreFiberYield},
  {"Fiber", true, "yield(_)", coreFiberYield},
  {"Fiber", false, "call()", coreFiberCall},
  {"Fiber", false, "call(_)", coreFiberCall},
  {"Fiber", false, "try()", coreFiberTry},
  {"Fiber", false, "try(_)", coreFiberTry},
  {"Fiber", false, "transfer()", coreFiberTransfer},
  {"Fiber", false, "transfer(_)", coreFiberTransfer},
  {"Fiber", false, "transferError(_)", coreFiberTransferError},
  {"Fiber", false, "error", coreFiberError},
  {"Fiber", false, "isDone", coreFiberIsDone},
  {"System", true, "clock", coreSystemClock},
  {"System", true, "gc()", coreSystemGc},
  {"System", true, "put_(_,_)", coreSystemPut},
};

static void bindTable(VM* vm, const CoreMethod* table, size_t count) {
  const char* lastOwner = NULL;
  ObjClass* cls = NULL;
  for (size_t i = 0; i < count; i++) {
    if (lastOwner == NULL || strcmp(lastOwner, table[i].owner) != 0) {
      lastOwner = table[i].owner;
      cls = coreClass(vm, lastOwner);
    }
    bindPrimitive(vm, table[i].isStatic ? cls->obj.classObj : cls, table[i].signature, table[i].fn);
  }
}

#define BIND_TABLE(vm, table) bindTable(vm, table, sizeof table / sizeof table[0])

/* Binds the entries of ROOT_METHODS for one class, static or not. */
static void bindRoot(VM* vm, ObjClass* cls, const char* owner, bool isStatic) {
  for (size_t i = 0; i < sizeof ROOT_METHODS / sizeof ROOT_METHODS[0]; i++) {
    const CoreMethod* m = &ROOT_METHODS[i];
    if (m->isStatic == isStatic && strcmp(m->owner, owner) == 0) {
      bindPrimitive(vm, cls, m->signature, m->fn);
    }
  }
}

/* Object, Class and Object's metaclass refer to one another, so they are
 * wired up by hand, each bound before the next copies its methods:
 * Class is an Object, Object's metaclass is a Class, and Class is its
 * own class. */
static void makeRootClasses(VM* vm) {
  ObjModule* core = vm->coreModule;
  vm->objectClass = newSingleClass(vm, 0, newString(vm, "Object"));
  moduleAddVariable(vm, core, "Object", 6, OBJ_VAL(vm->objectClass));
  bindRoot(vm, vm->objectClass, "Object", false);
  vm->classClass = newSingleClass(vm, 0, newString(vm, "Class"));
  bindSuperclass(vm, vm->classClass, vm->objectClass);
  moduleAddVariable(vm, core, "Class", 5, OBJ_VAL(vm->classClass));
  bindRoot(vm, vm->classClass, "Class", false);
  ObjClass* objectMeta = newSingleClass(vm, 0, newString(vm, "Object metaclass"));
  bindSuperclass(vm, objectMeta, vm->classClass);
  vm->objectClass->obj.classObj = objectMeta;
  objectMeta->obj.classObj = vm->classClass;
  vm->classClass->obj.classObj = vm->classClass;
  bindRoot(vm, objectMeta, "Object", true);
}

/* Fn.call with 0 to MAX_PARAMETERS arguments: "call()", "call(_)",
 * "call(_,_)"... all dispatched by the interpreter itself. */
static void bindFnCalls(VM* vm) {
  char signature[8 + 2 * MAX_PARAMETERS];
  for (int arity = 0; arity <= MAX_PARAMETERS; arity++) {
    int length = 0;
    memcpy(signature, "call(", 5);
    length = 5;
    for (int k = 0; k < arity; k++) {
      if (k > 0) signature[length++] = ',';
      signature[length++] = '_';
    }
    signature[length++] = ')';
    signature[length] = '\0';
    int symbol = symbolTableEnsure(&vm->methodNames, signature, length);
    vm->symCall[arity] = symbol;
    Method m;
    m.type = METHOD_FN_CALL;
    m.as.primitive = NULL;
    bindMethod(vm, vm->fnClass, symbol, m);
  }
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
  makeRootClasses(vm);

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

  BIND_TABLE(vm, CORE_METHODS);
  bindFnCalls(vm);
  fixUpClasses(vm);

  vm->symIterate = symbolTableEnsure(&vm->methodNames, "iterate(_)", 10);
  vm->symIteratorValue = symbolTableEnsure(&vm->methodNames, "iteratorValue(_)", 16);
  vm->symToString = symbolTableEnsure(&vm->methodNames, "toString", 8);
  vm->symEquals = symbolTableEnsure(&vm->methodNames, "==(_)", 5);
}
