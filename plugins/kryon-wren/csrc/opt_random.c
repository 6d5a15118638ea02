/* opt_random.c -- The optional "random" module: class Random.
 *
 * The generator is WELL512a (Panneton, L'Ecuyer and Matsumoto): sixteen
 * 32-bit words of state and an index. Its state lives in the instance's
 * first field as a list of 17 numbers (the words, then the index), so
 * the GC needs nothing special. Seeds go through splitmix64 so that any
 * seed, zero included, gives a well-mixed state; the same seed always
 * gives the same sequence.
 */
#include <math.h>
#include <string.h>

#include "host.h"
#include "opt_modules.h"

const char optRandomSource[] =
#include "opt_random_wren.inc"
    ;

#define STATE_WORDS 16

static uint64_t splitmix64(uint64_t* x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint64_t numBits(double n) {
  if (n == 0) n = 0; /* -0 and 0 seed alike */
  uint64_t bits;
  memcpy(&bits, &n, sizeof bits);
  return bits;
}

static ObjList* stateOf(Value receiver) {
  Value field = AS_INSTANCE(receiver)->fields[0];
  return IS_LIST(field) ? AS_LIST(field) : NULL;
}

static PrimResult random_seed(VM* vm, Value* args, int argc) {
  (void)argc;
  uint32_t words[STATE_WORDS];
  if (IS_LIST(args[1])) {
    ObjList* seeds = AS_LIST(args[1]);
    for (int i = 0; i < STATE_WORDS; i++) {
      uint64_t x = numBits(AS_NUM(seeds->items[i % seeds->count])) ^ ((uint64_t)i << 56);
      words[i] = (uint32_t)(splitmix64(&x) >> 32);
    }
  } else {
    uint64_t x;
    if (IS_NUM(args[1])) {
      x = numBits(AS_NUM(args[1]));
    } else {
      /* Random.new(): the clock and a counter, so two in a row differ. */
      static uint64_t counter = 0;
      x = numBits(host_clock()) ^ (++counter * 0xD1B54A32D192ED03ull) ^ (uint64_t)(uintptr_t)vm;
    }
    for (int i = 0; i < STATE_WORDS; i += 2) {
      uint64_t r = splitmix64(&x);
      words[i] = (uint32_t)r;
      words[i + 1] = (uint32_t)(r >> 32);
    }
  }
  ObjList* state = newList(vm, STATE_WORDS + 1);
  for (int i = 0; i < STATE_WORDS; i++) state->items[i] = NUM_VAL((double)words[i]);
  state->items[STATE_WORDS] = NUM_VAL(0);
  AS_INSTANCE(args[0])->fields[0] = OBJ_VAL(state);
  args[0] = NULL_VAL;
  return PRIM_VALUE;
}

/* One WELL512a step over the list-held state. */
static uint32_t wellNext(ObjList* list) {
  Value* s = list->items;
  uint32_t index = (uint32_t)AS_NUM(s[STATE_WORDS]);
#define W(i) ((uint32_t)AS_NUM(s[(i)&15]))
  uint32_t a = W(index);
  uint32_t c = W(index + 13);
  uint32_t b = a ^ c ^ (a << 16) ^ (c << 15);
  c = W(index + 9);
  c ^= c >> 11;
  a = b ^ c;
  s[index & 15] = NUM_VAL((double)a);
  uint32_t d = a ^ ((a << 5) & 0xDA442D24u);
  index = (index + 15) & 15;
  a = W(index);
  uint32_t result = a ^ b ^ d ^ (a << 2) ^ (b << 18) ^ (c << 28);
  s[index] = NUM_VAL((double)result);
  s[STATE_WORDS] = NUM_VAL((double)index);
#undef W
  return result;
}

static PrimResult random_float(VM* vm, Value* args, int argc) {
  (void)argc;
  ObjList* state = stateOf(args[0]);
  if (state == NULL || state->count != STATE_WORDS + 1) {
    vm->fiber->error = vmRuntimeErrorValue(vm, "Random is not seeded.");
    return PRIM_ERROR;
  }
  /* 53 random bits: 27 from one word and 26 from the next. */
  uint32_t high = wellNext(state) >> 5;
  uint32_t low = wellNext(state) >> 6;
  args[0] = NUM_VAL(((double)high * 67108864.0 + (double)low) / 9007199254740992.0);
  return PRIM_VALUE;
}

Primitive optRandomForeign(const char* className, bool isStatic, const char* signature) {
  if (strcmp(className, "Random") != 0 || isStatic) return NULL;
  if (strcmp(signature, "seed_(_)") == 0) return random_seed;
  if (strcmp(signature, "float()") == 0) return random_float;
  return NULL;
}
