/* opt_random.c -- The optional "random" module: class Random.
 *
 * Numbers come from WELL512a (Panneton, L'Ecuyer and Matsumoto, 2006):
 * sixteen 32-bit words of state and a rotating index. An instance keeps
 * them in its first field as a list of 17 numbers (the words, then the
 * index), an ordinary Wren value the collector already understands.
 * Seeds are spread over the words with SplitMix64, so every seed (zero
 * too) gives a well-mixed state and a seed always gives the same numbers.
 */
#include <math.h>
#include <string.h>

#include "host.h"
#include "opt_modules.h"

const char optRandomSource[] =
#include "opt_random_wren.inc"
    ;

#define WORDS 16

/* SplitMix64 (Steele, Lea and Flood): one 64-bit output per call. */
static uint64_t splitMix(uint64_t* x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* The bits of a number, with 0 and -0 alike. */
static uint64_t seedBits(double n) {
  if (n == 0) n = 0;
  uint64_t bits;
  memcpy(&bits, &n, sizeof bits);
  return bits;
}

static PrimResult randomFail(VM* vm, const char* message) {
  vm->fiber->error = vmRuntimeErrorValue(vm, "%s", message);
  return PRIM_ERROR;
}

static PrimResult giveState(VM* vm, Value* args, const uint32_t words[WORDS]) {
  ObjList* state = newList(vm, WORDS + 1);
  for (int i = 0; i < WORDS; i++) state->items[i] = NUM_VAL((double)words[i]);
  state->items[WORDS] = NUM_VAL(0);
  args[0] = OBJ_VAL(state);
  return PRIM_VALUE;
}

static void fillFrom(uint64_t x, uint32_t words[WORDS]) {
  for (int i = 0; i < WORDS; i += 2) {
    uint64_t r = splitMix(&x);
    words[i] = (uint32_t)r;
    words[i + 1] = (uint32_t)(r >> 32);
  }
}

/* Random.new(): the clock, the VM's address and a counter, so that two
 * generators made in a row differ. */
static PrimResult random_stateFromClock(VM* vm, Value* args, int argc) {
  (void)argc;
  static uint64_t made = 0;
  uint32_t words[WORDS];
  fillFrom(seedBits(host_clock()) ^ (++made * 0xD1B54A32D192ED03ull) ^ (uint64_t)(uintptr_t)vm, words);
  return giveState(vm, args, words);
}

/* Random.new(seed): a number, or a list of up to 16 numbers (the Wren
 * side turns any other sequence into that list). */
static PrimResult random_stateFromSeed(VM* vm, Value* args, int argc) {
  (void)argc;
  uint32_t words[WORDS];
  Value seed = args[1];
  if (IS_NUM(seed)) {
    fillFrom(seedBits(AS_NUM(seed)), words);
    return giveState(vm, args, words);
  }
  if (!IS_LIST(seed)) return randomFail(vm, "Seed must be a number or a sequence of numbers.");
  ObjList* numbers = AS_LIST(seed);
  if (numbers->count == 0) return randomFail(vm, "Sequence cannot be empty.");
  for (int i = 0; i < numbers->count; i++) {
    if (!IS_NUM(numbers->items[i])) return randomFail(vm, "Sequence elements must all be numbers.");
  }
  /* Each word mixes one seed number (cycling through them) with its own
   * position, so [1, 2] and [2, 1] differ. */
  for (int i = 0; i < WORDS; i++) {
    uint64_t x = seedBits(AS_NUM(numbers->items[i % numbers->count])) ^ ((uint64_t)i << 56);
    words[i] = (uint32_t)(splitMix(&x) >> 32);
  }
  return giveState(vm, args, words);
}

static ObjList* stateOf(Value receiver) {
  Value field = AS_INSTANCE(receiver)->fields[0];
  if (!IS_LIST(field) || AS_LIST(field)->count != WORDS + 1) return NULL;
  return AS_LIST(field);
}

/* One WELL512a step: mixes three words of the rotating state, replaces
 * two of them and moves the index back by one (mod 16). */
static uint32_t wellStep(ObjList* state) {
  Value* v = state->items;
  uint32_t at = (uint32_t)AS_NUM(v[WORDS]);
#define WORD(k) ((uint32_t)AS_NUM(v[(k) & 15]))
  uint32_t first = WORD(at);
  uint32_t mixed = WORD(at + 13);
  uint32_t z1 = first ^ (first << 16) ^ mixed ^ (mixed << 15);
  uint32_t z2 = WORD(at + 9);
  z2 ^= z2 >> 11;
  uint32_t kept = z1 ^ z2;
  v[at & 15] = NUM_VAL((double)kept);
  uint32_t tempered = kept ^ ((kept << 5) & 0xDA442D24u);
  at = (at + 15) & 15;
  uint32_t last = WORD(at);
  uint32_t out = last ^ z1 ^ tempered ^ (last << 2) ^ (z1 << 18) ^ (z2 << 28);
#undef WORD
  v[at] = NUM_VAL((double)out);
  v[WORDS] = NUM_VAL((double)at);
  return out;
}

/* A double in [0, 1) from 53 random bits (27 of one step, 26 of the next). */
static double unitDouble(ObjList* state) {
  double high = (double)(wellStep(state) >> 5);
  double low = (double)(wellStep(state) >> 6);
  return (high * 67108864.0 + low) / 9007199254740992.0;
}

/* Reads the state and the numeric arguments args[1..count]; on failure
 * the fiber's error is set. */
static ObjList* prepare(VM* vm, Value* args, int count, const char* const names[]) {
  ObjList* state = stateOf(args[0]);
  if (state == NULL) {
    randomFail(vm, "Random is not seeded.");
    return NULL;
  }
  for (int i = 1; i <= count; i++) {
    if (!IS_NUM(args[i])) {
      vm->fiber->error = vmRuntimeErrorValue(vm, "%s must be a number.", names[i - 1]);
      return NULL;
    }
  }
  return state;
}

static const char* const END_ONLY[] = {"End"};
static const char* const START_END[] = {"Start", "End"};

static PrimResult random_float(VM* vm, Value* args, int argc) {
  /* float(), float(end) and float(start, end) share this. */
  double start = 0, end = 1;
  ObjList* state = prepare(vm, args, argc - 1, argc == 3 ? START_END : END_ONLY);
  if (state == NULL) return PRIM_ERROR;
  if (argc == 2) end = AS_NUM(args[1]);
  if (argc == 3) {
    start = AS_NUM(args[1]);
    end = AS_NUM(args[2]);
  }
  args[0] = NUM_VAL(start + unitDouble(state) * (end - start));
  return PRIM_VALUE;
}

static PrimResult random_int(VM* vm, Value* args, int argc) {
  double start = 0, end;
  ObjList* state = prepare(vm, args, argc - 1, argc == 3 ? START_END : END_ONLY);
  if (state == NULL) return PRIM_ERROR;
  if (argc == 2) {
    end = AS_NUM(args[1]);
  } else {
    start = AS_NUM(args[1]);
    end = AS_NUM(args[2]);
  }
  args[0] = NUM_VAL(floor(unitDouble(state) * (end - start)) + start);
  return PRIM_VALUE;
}

/* A uniform index in [from, to). */
static int indexIn(ObjList* state, int from, int to) {
  return from + (int)(unitDouble(state) * (double)(to - from));
}

static PrimResult random_sample(VM* vm, Value* args, int argc) {
  ObjList* state = prepare(vm, args, 0, NULL);
  if (state == NULL) return PRIM_ERROR;
  if (!IS_LIST(args[1])) return randomFail(vm, "List must be a list.");
  ObjList* list = AS_LIST(args[1]);
  if (argc == 2) {
    if (list->count == 0) return randomFail(vm, "Not enough elements to sample.");
    args[0] = list->items[indexIn(state, 0, list->count)];
    return PRIM_VALUE;
  }
  double wanted = IS_NUM(args[2]) ? AS_NUM(args[2]) : -1;
  if (!isfinite(wanted) || trunc(wanted) != wanted || wanted < 0) {
    return randomFail(vm, "Count must be a non-negative integer.");
  }
  if (wanted > list->count) return randomFail(vm, "Not enough elements to sample.");
  /* The first `wanted` steps of a Fisher-Yates shuffle, done on a copy:
   * every subset (and every order of it) is equally likely. */
  int count = (int)wanted;
  ObjList* pool = newList(vm, list->count);
  if (list->count > 0) memcpy(pool->items, list->items, sizeof(Value) * (size_t)list->count);
  vmPushRoot(vm, (Obj*)pool);
  ObjList* picked = newList(vm, count);
  vmPopRoot(vm);
  for (int i = 0; i < count; i++) {
    int j = indexIn(state, i, pool->count);
    Value chosen = pool->items[j];
    pool->items[j] = pool->items[i];
    pool->items[i] = chosen;
    picked->items[i] = chosen;
  }
  args[0] = OBJ_VAL(picked);
  return PRIM_VALUE;
}

/* Fisher-Yates (Durstenfeld's in-place form), front to back. */
static PrimResult random_shuffle(VM* vm, Value* args, int argc) {
  (void)argc;
  ObjList* state = prepare(vm, args, 0, NULL);
  if (state == NULL) return PRIM_ERROR;
  if (!IS_LIST(args[1])) return randomFail(vm, "List must be a list.");
  ObjList* list = AS_LIST(args[1]);
  for (int i = 0; i + 1 < list->count; i++) {
    int j = indexIn(state, i, list->count);
    Value held = list->items[i];
    list->items[i] = list->items[j];
    list->items[j] = held;
  }
  args[0] = NULL_VAL;
  return PRIM_VALUE;
}

Primitive optRandomForeign(const char* className, bool isStatic, const char* signature) {
  if (strcmp(className, "Random") != 0) return NULL;
  static const struct {
    bool isStatic;
    const char* signature;
    Primitive fn;
  } table[] = {
      {true, "stateFromClock_()", random_stateFromClock},
      {true, "stateFromSeed_(_)", random_stateFromSeed},
      {false, "float()", random_float},
      {false, "float(_)", random_float},
      {false, "float(_,_)", random_float},
      {false, "int(_)", random_int},
      {false, "int(_,_)", random_int},
      {false, "sample(_)", random_sample},
      {false, "sample(_,_)", random_sample},
      {false, "shuffle(_)", random_shuffle},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    if (table[i].isStatic == isStatic && strcmp(signature, table[i].signature) == 0) return table[i].fn;
  }
  return NULL;
}
