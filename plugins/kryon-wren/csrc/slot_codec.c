/* slot_codec.c -- A range of slots read out for the host in one call.
 *
 * A host function called from Wren used to read its arguments slot by
 * slot, with several exports per value (the type, then the value, then
 * each list element into a temporary slot): about ten wasm calls for
 * Kryon.call("x", [1]), each costing more than the work it does.
 * wren_encode_slots walks the values of slots first..first+count-1 and
 * writes them into one buffer in a small tagged format that the host
 * decodes in one pass (kryon_wren/slot_codec.py). A foreign call gets
 * its arguments encoded before the host is called (vm.c, callForeign),
 * so that it needs no call back into wasm to read them:
 *
 *   'n' null    'f' false    't' true
 *   'd' + 8-byte little-endian IEEE double
 *   's' + u32 byte length + the string's bytes
 *   'l' + u32 count + count values
 *   'm' + u32 count + count (key, value) pairs, in the map's entry order
 *   'h' + u32 handle address: any other object, pinned by a handle the
 *       host owns from then on (it releases it as for wren_get_slot_handle)
 *   'r' + u32 registry number: in a foreign method's arguments only, an
 *       instance of exactly the kryon module's HostRef or HostFn class
 *       (wren_set_host_classes) whose _id is an integral number in
 *       0..2**31-1: the host object the script holds, named without the
 *       handle and the kindOf call back into Wren an 'h' would cost (the
 *       DOM element of every Kryon.setProperty). Only the host makes
 *       such instances (wren_new_host_object), so the number is one the
 *       host handed to this VM.
 *
 * Nesting is bounded (KW_CODEC_MAX_DEPTH levels, which a cycle always
 * exceeds): past it the encoding is abandoned, every handle it made is
 * released, and the result is -1. The buffer belongs to the instance
 * and is reused; it is valid until the next call of wren_encode_slots.
 */
#include <stdlib.h>
#include <string.h>

#include "kryon_wren.h"
#include "value.h"
#include "vm.h"

#ifdef __wasm__
#define EXPORT(name) __attribute__((export_name(#name), used))
#else
#define EXPORT(name) __attribute__((used))
#endif

/* The host's own bound on nesting (kryon_wren/values.py MAX_DEPTH). */
#define KW_CODEC_MAX_DEPTH 200

/* Bytes the host may write as a foreign method's result (kryon_wren/vm.py). */
#define KW_FOREIGN_RESULT_CAPACITY 256

typedef struct {
  uint8_t* bytes;
  size_t length;
  size_t capacity;
  Handle** made;     /* handles made by the encoding in progress */
  int madeCount;
  int madeCapacity;
  bool hostIds;      /* the encoding in progress may use 'r' */
} CodecBuffer;

static CodecBuffer codec;

static void reserve(size_t extra) {
  if (codec.length + extra <= codec.capacity) return;
  size_t wanted = codec.capacity ? codec.capacity : 256;
  while (wanted < codec.length + extra) wanted *= 2;
  uint8_t* grown = (uint8_t*)realloc(codec.bytes, wanted);
  if (grown == NULL) kwFatalOutOfMemory();
  codec.bytes = grown;
  codec.capacity = wanted;
}

static void putByte(uint8_t byte) {
  reserve(1);
  codec.bytes[codec.length++] = byte;
}

static void putU32(uint32_t word) {
  reserve(4);
  for (int i = 0; i < 4; i++) codec.bytes[codec.length++] = (uint8_t)(word >> (8 * i));
}

static void putBytes(const void* data, size_t size) {
  reserve(size);
  memcpy(codec.bytes + codec.length, data, size);
  codec.length += size;
}

static void putHandle(WrenVM* vm, Value value) {
  if (codec.madeCount == codec.madeCapacity) {
    int wanted = codec.madeCapacity ? codec.madeCapacity * 2 : 8;
    Handle** grown = (Handle**)realloc(codec.made, sizeof(Handle*) * (size_t)wanted);
    if (grown == NULL) kwFatalOutOfMemory();
    codec.made = grown;
    codec.madeCapacity = wanted;
  }
  Handle* handle = vmNewHandle(vm, value);
  codec.made[codec.madeCount++] = handle;
  putByte('h');
  putU32((uint32_t)(uintptr_t)handle);
}

/* The registry number of a host object the script holds (the 'r' tag),
 * or -1: value is not an instance of exactly HostRef or HostFn with an
 * integral _id (field 0, which hostId returns) in 0..2**31-1. */
static int64_t hostIdOf(VM* vm, Value value) {
  if (!IS_INSTANCE(value)) return -1;
  ObjClass* cls = AS_OBJ(value)->classObj;
  if (cls == NULL || (cls != vm->hostClasses[0] && cls != vm->hostClasses[1]) || cls->numFields < 1) return -1;
  Value id = AS_INSTANCE(value)->fields[0];
  if (!IS_NUM(id)) return -1;
  double number = AS_NUM(id);
  if (!(number >= 0 && number <= 2147483647.0) || number != (double)(int64_t)number) return -1;
  return (int64_t)number;
}

/* Appends one value; false when it nests too deeply to encode. */
static bool putValue(WrenVM* vm, Value value, int depth) {
  if (value == NULL_VAL) { putByte('n'); return true; }
  if (value == TRUE_VAL) { putByte('t'); return true; }
  if (value == FALSE_VAL) { putByte('f'); return true; }
  if (IS_NUM(value)) {
    double number = AS_NUM(value);
    putByte('d');
    putBytes(&number, sizeof number);  /* wasm is little-endian */
    return true;
  }
  if (IS_STRING(value)) {
    ObjString* text = AS_STRING(value);
    putByte('s');
    putU32((uint32_t)text->length);
    putBytes(text->chars, text->length);
    return true;
  }
  if (IS_LIST(value) || IS_MAP(value)) {
    if (depth >= KW_CODEC_MAX_DEPTH) return false;
    if (IS_LIST(value)) {
      ObjList* list = AS_LIST(value);
      putByte('l');
      putU32((uint32_t)list->count);
      for (int i = 0; i < list->count; i++) {
        if (!putValue(vm, list->items[i], depth + 1)) return false;
      }
      return true;
    }
    ObjMap* map = AS_MAP(value);
    putByte('m');
    putU32((uint32_t)map->count);
    for (uint32_t i = 0; i < map->used; i++) {
      MapEntry entry = map->entries[i];
      if (IS_UNDEFINED(entry.key)) continue;
      if (!putValue(vm, entry.key, depth + 1) || !putValue(vm, entry.value, depth + 1)) return false;
    }
    return true;
  }
  if (codec.hostIds && !vm->noHostIdTags) {
    int64_t id = hostIdOf(vm, value);
    if (id >= 0) {
      putByte('r');
      putU32((uint32_t)id);
      return true;
    }
  }
  putHandle(vm, value);
  return true;
}

/* The values of slots first..first+count-1 in the format above, as one
 * word: the byte length in the high 32 bits and the buffer's address in
 * the low 32 bits; -1 when a value nests too deeply (or is cyclic).
 * hostIds: host objects may go as 'r' (a foreign method's arguments). */
int64_t kwEncodeSlots(VM* vm, int first, int count, bool hostIds) {
  if (first < 0 || count < 0) __builtin_trap();
  if (first + count > vm->slotCount) wren_ensure_slots(vm, first + count);
  codec.length = 0;
  codec.madeCount = 0;
  codec.hostIds = hostIds;
  for (int slot = first; slot < first + count; slot++) {
    if (!putValue(vm, vm->slots[slot], 0)) {
      for (int i = 0; i < codec.madeCount; i++) wren_release_handle(vm, codec.made[i]);
      codec.madeCount = 0;
      return -1;
    }
  }
  reserve(1);  /* a buffer exists even for an empty range */
  return ((int64_t)codec.length << 32) | (int64_t)(uint32_t)(uintptr_t)codec.bytes;
}

EXPORT(wren_encode_slots) int64_t wren_encode_slots(WrenVM* vm, int first, int count) {
  return kwEncodeSlots(vm, first, count, false);
}

/* Names the kryon module's HostRef and HostFn classes (the classes in
 * slots refSlot and fnSlot; anything else there turns the 'r' tag off
 * for that kind) so foreign methods get those objects as 'r'. The classes
 * have no constructor, and are sealed here (no script class inherits from
 * them): their only instances are the host's (wren_new_host_object), so a
 * script cannot name a host object by a number it chose. */
EXPORT(wren_set_host_classes) void wren_set_host_classes(WrenVM* vm, int refSlot, int fnSlot) {
  Value ref = *vmSlotAt(vm, refSlot);
  Value fn = *vmSlotAt(vm, fnSlot);
  vm->hostClasses[0] = IS_CLASS(ref) ? AS_CLASS(ref) : NULL;
  vm->hostClasses[1] = IS_CLASS(fn) ? AS_CLASS(fn) : NULL;
  for (int i = 0; i < 2; i++) {
    if (vm->hostClasses[i] != NULL) vm->hostClasses[i]->isSealed = true;
  }
}

/* A new instance of HostRef (kind 0) or HostFn (kind 1) standing for the
 * host object with registry number id, as a handle; NULL when that class
 * is not named or id is out of range. */
EXPORT(wren_new_host_object) WrenHandle* wren_new_host_object(WrenVM* vm, int kind, double id) {
  if (kind < 0 || kind > 1 || vm->hostClasses[kind] == NULL || vm->hostClasses[kind]->numFields < 1) return NULL;
  if (!(id >= 0 && id <= 2147483647.0) || id != (double)(int64_t)id) return NULL;
  ObjInstance* instance = newInstance(vm, vm->hostClasses[kind]);
  instance->fields[0] = NUM_VAL(id);
  return vmNewHandle(vm, OBJ_VAL(instance)); /* no collection between: it runs at safe points only */
}

/* What a handle holds, for the host's general path: the registry number of
 * the host object (an instance the host made, as for 'r'), -1 for a Fn, -2
 * for anything else. Decided here, not by Wren code: a script's class may
 * answer `is` and `hostId` as it likes. */
EXPORT(wren_kind_of_handle) int64_t wren_kind_of_handle(WrenVM* vm, WrenHandle* handle) {
  int64_t id = hostIdOf(vm, handle->value);
  if (id >= 0) return id;
  return IS_CLOSURE(handle->value) ? -1 : -2;
}

/* Whether foreign methods get host objects as 'r' (1, the default) or as
 * handles (0): tests compare both ways. */
EXPORT(wren_host_id_tags) void wren_host_id_tags(WrenVM* vm, int enabled) { vm->noHostIdTags = !enabled; }

/* A foreign method's string result, written by the host into this buffer
 * in the format above ('s', u32 length, the bytes) when it fits, instead of
 * setting slot 0 with one more wasm call per result. */
static uint8_t foreignResult[KW_FOREIGN_RESULT_CAPACITY];

EXPORT(wren_foreign_result_buffer) uint8_t* wren_foreign_result_buffer(void) { return foreignResult; }

/* host_foreign's reply: a number result's bits, or 0x7ff4000000000000 |
 * status (signalling-NaN bits the host never sends as a number, as for
 * wren_call_num): 0 the result is in slot 0, 1 slot 0 holds an error,
 * 2 a string result in foreignResult, 3 null, 4 true, 5 false. False when
 * the method failed (*result is then the error). A malformed reply traps:
 * only the host writes it. */
bool kwForeignReply(VM* vm, int64_t reply, Value* result) {
  if (((uint64_t)reply & 0xffffffffffff0000ULL) != 0x7ff4000000000000ULL) {
    double number;
    memcpy(&number, &reply, sizeof number);
    *result = NUM_VAL(number);
    return true;
  }
  Value inSlot = vm->slotCount > 0 ? vm->slots[0] : NULL_VAL;
  switch (reply & 0xffff) {
    case 0: *result = inSlot; return true;
    case 1: *result = inSlot; return false;
    case 2: {
      uint32_t length;
      memcpy(&length, foreignResult + 1, sizeof length);
      if (foreignResult[0] != 's' || length > KW_FOREIGN_RESULT_CAPACITY - 5) __builtin_trap();
      *result = stringValue(vm, (const char*)foreignResult + 5, length);
      return true;
    }
    case 3: *result = NULL_VAL; return true;
    case 4: *result = TRUE_VAL; return true;
    case 5: *result = FALSE_VAL; return true;
    default: __builtin_trap();
  }
}
