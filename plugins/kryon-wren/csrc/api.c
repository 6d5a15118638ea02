/* api.c -- The embedding API exported from the wasm module.
 *
 * Thin wrappers that move values between the VM and its slots, create
 * VMs, run source, make handles and call methods. The declarations and
 * the conventions are in kryon_wren.h. wren_call_num is the fast path
 * for host calls with numeric arguments and result: one wasm call, no
 * slot traffic, the outcome left in *wren_status_pointer(vm).
 */
#include <stdio.h>
#include <stdlib.h>

#include <string.h>

#include "bytecode.h"
#include "kryon_wren.h"
#include "vm.h"

#ifdef __wasm__
#define EXPORT(name) __attribute__((export_name(#name), used))
#else
#define EXPORT(name) __attribute__((used))
#endif

#define CALL_HANDLE_TAG ((Value)(QNAN | 8))

/* ---- Memory and VM lifetime ----------------------------------------- */

EXPORT(wren_abi_version) int wren_abi_version(void) { return 1; }

EXPORT(wren_alloc) void* wren_alloc(int size) {
  void* p = malloc(size > 0 ? (size_t)size : 1);
  if (p == NULL) kwFatalOutOfMemory();
  return p;
}

EXPORT(wren_dealloc) void wren_dealloc(void* pointer) { free(pointer); }

EXPORT(wren_new_vm) WrenVM* wren_new_vm(int hostId) { return vmNew(hostId); }

EXPORT(wren_free_vm) void wren_free_vm(WrenVM* vm) { vmFree(vm); }

EXPORT(wren_interpret) int wren_interpret(WrenVM* vm, const char* module, const char* source) {
  return (int)vmInterpret(vm, module, source);
}

EXPORT(wren_error_message) const char* wren_error_message(WrenVM* vm) {
  return vm->errorMessage ? vm->errorMessage : "";
}

EXPORT(wren_error_module) const char* wren_error_module(WrenVM* vm) {
  return vm->errorModule ? vm->errorModule : "";
}

EXPORT(wren_error_line) int wren_error_line(WrenVM* vm) { return vm->errorLine; }

/* Where the fiber vm runs stands after a trap (vmFaultWhere). */
EXPORT(wren_fault_where) const char* wren_fault_where(WrenVM* vm) {
  static char where[320];
  vmFaultWhere(vm, where, (int)sizeof where);
  return where;
}

/* The column of the last error, counted in characters from 1; 0 when unknown. */
EXPORT(wren_error_column) int wren_error_column(WrenVM* vm) { return vm->errorColumn; }

EXPORT(wren_error_trace) const char* wren_error_trace(WrenVM* vm) {
  return vm->errorTrace ? vm->errorTrace : "";
}

EXPORT(wren_bytes_allocated) int wren_bytes_allocated(WrenVM* vm) {
  return (int)vm->bytesAllocated;
}

EXPORT(wren_gc_count) int wren_gc_count(WrenVM* vm) { return vm->gcCount; }

EXPORT(wren_collect_garbage) void wren_collect_garbage(WrenVM* vm) { gcCollect(vm); }

/* ---- Slots ---------------------------------------------------------- */

EXPORT(wren_ensure_slots) void wren_ensure_slots(WrenVM* vm, int count) {
  if (count > vm->slotCapacity) {
    vm->slots = (Value*)realloc(vm->slots, sizeof(Value) * (size_t)count);
    if (vm->slots == NULL) kwFatalOutOfMemory();
    vm->slotCapacity = count;
  }
  for (int i = vm->slotCount; i < count; i++) vm->slots[i] = NULL_VAL;
  if (count > vm->slotCount) vm->slotCount = count;
}

EXPORT(wren_slot_count) int wren_slot_count(WrenVM* vm) { return vm->slotCount; }

Value* vmSlotAt(WrenVM* vm, int slot) {
  if (slot < 0) __builtin_trap();
  if (slot >= vm->slotCount) wren_ensure_slots(vm, slot + 1);
  return &vm->slots[slot];
}

EXPORT(wren_get_slot_type) int wren_get_slot_type(WrenVM* vm, int slot) {
  Value v = *vmSlotAt(vm, slot);
  if (IS_BOOL(v)) return KW_TYPE_BOOL;
  if (IS_NUM(v)) return KW_TYPE_NUM;
  if (IS_NULL(v)) return KW_TYPE_NULL;
  if (IS_LIST(v)) return KW_TYPE_LIST;
  if (IS_MAP(v)) return KW_TYPE_MAP;
  if (IS_STRING(v)) return KW_TYPE_STRING;
  return KW_TYPE_UNKNOWN;
}

EXPORT(wren_get_slot_bool) int wren_get_slot_bool(WrenVM* vm, int slot) {
  return *vmSlotAt(vm, slot) == TRUE_VAL;
}

EXPORT(wren_get_slot_double) double wren_get_slot_double(WrenVM* vm, int slot) {
  Value v = *vmSlotAt(vm, slot);
  return IS_NUM(v) ? AS_NUM(v) : 0;
}

EXPORT(wren_get_slot_bytes) const char* wren_get_slot_bytes(WrenVM* vm, int slot) {
  Value v = *vmSlotAt(vm, slot);
  return IS_STRING(v) ? AS_CSTRING(v) : NULL;
}

EXPORT(wren_get_slot_bytes_length) int wren_get_slot_bytes_length(WrenVM* vm, int slot) {
  Value v = *vmSlotAt(vm, slot);
  return IS_STRING(v) ? (int)AS_STRING(v)->length : -1;
}

/* A string slot as one word: length in the high 32 bits, pointer in the
 * low 32 bits; -1 when the slot does not hold a string. */
EXPORT(wren_get_slot_string) int64_t wren_get_slot_string(WrenVM* vm, int slot) {
  Value v = *vmSlotAt(vm, slot);
  if (!IS_STRING(v)) return -1;
  ObjString* s = AS_STRING(v);
  return ((int64_t)s->length << 32) | (int64_t)(uint32_t)(uintptr_t)s->chars;
}

EXPORT(wren_set_slot_null) void wren_set_slot_null(WrenVM* vm, int slot) {
  *vmSlotAt(vm, slot) = NULL_VAL;
}

EXPORT(wren_set_slot_bool) void wren_set_slot_bool(WrenVM* vm, int slot, int value) {
  *vmSlotAt(vm, slot) = BOOL_VAL(value);
}

EXPORT(wren_set_slot_double) void wren_set_slot_double(WrenVM* vm, int slot, double value) {
  *vmSlotAt(vm, slot) = NUM_VAL(value);
}

EXPORT(wren_set_slot_bytes)
void wren_set_slot_bytes(WrenVM* vm, int slot, const char* bytes, int length) {
  Value* target = vmSlotAt(vm, slot);
  *target = stringValue(vm, bytes, (size_t)length);
}

EXPORT(wren_set_slot_new_list) void wren_set_slot_new_list(WrenVM* vm, int slot) {
  Value* target = vmSlotAt(vm, slot);
  *target = OBJ_VAL(newList(vm, 0));
}

static ObjList* listAt(WrenVM* vm, int slot) {
  Value v = *vmSlotAt(vm, slot);
  if (!IS_LIST(v)) __builtin_trap();
  return AS_LIST(v);
}

static ObjMap* mapAt(WrenVM* vm, int slot) {
  Value v = *vmSlotAt(vm, slot);
  if (!IS_MAP(v)) __builtin_trap();
  return AS_MAP(v);
}

EXPORT(wren_get_list_count) int wren_get_list_count(WrenVM* vm, int slot) {
  return listAt(vm, slot)->count;
}

static int listIndex(ObjList* list, int index, int extra) {
  if (index < 0) index += list->count + extra;
  if (index < 0 || index >= list->count + extra) __builtin_trap();
  return index;
}

EXPORT(wren_get_list_element)
void wren_get_list_element(WrenVM* vm, int listSlot, int index, int elementSlot) {
  ObjList* list = listAt(vm, listSlot);
  Value v = list->items[listIndex(list, index, 0)];
  *vmSlotAt(vm, elementSlot) = v;
}

EXPORT(wren_set_list_element)
void wren_set_list_element(WrenVM* vm, int listSlot, int index, int elementSlot) {
  ObjList* list = listAt(vm, listSlot);
  list->items[listIndex(list, index, 0)] = *vmSlotAt(vm, elementSlot);
}

EXPORT(wren_insert_in_list)
void wren_insert_in_list(WrenVM* vm, int listSlot, int index, int elementSlot) {
  ObjList* list = listAt(vm, listSlot);
  Value v = *vmSlotAt(vm, elementSlot);
  listInsert(vm, list, v, listIndex(list, index, 1));
}

EXPORT(wren_set_slot_new_map) void wren_set_slot_new_map(WrenVM* vm, int slot) {
  Value* target = vmSlotAt(vm, slot);
  *target = OBJ_VAL(newMap(vm));
}

EXPORT(wren_get_map_count) int wren_get_map_count(WrenVM* vm, int slot) {
  return (int)mapAt(vm, slot)->count;
}

EXPORT(wren_get_map_contains_key)
int wren_get_map_contains_key(WrenVM* vm, int mapSlot, int keySlot) {
  Value ignored;
  return mapGet(mapAt(vm, mapSlot), *vmSlotAt(vm, keySlot), &ignored);
}

EXPORT(wren_get_map_value)
void wren_get_map_value(WrenVM* vm, int mapSlot, int keySlot, int valueSlot) {
  Value value = NULL_VAL;
  mapGet(mapAt(vm, mapSlot), *vmSlotAt(vm, keySlot), &value);
  *vmSlotAt(vm, valueSlot) = value;
}

EXPORT(wren_set_map_value)
void wren_set_map_value(WrenVM* vm, int mapSlot, int keySlot, int valueSlot) {
  Value key = *vmSlotAt(vm, keySlot);
  if (!isValueType(key)) __builtin_trap();
  mapSet(vm, mapAt(vm, mapSlot), key, *vmSlotAt(vm, valueSlot));
}

EXPORT(wren_remove_map_value)
void wren_remove_map_value(WrenVM* vm, int mapSlot, int keySlot, int removedSlot) {
  Value removed = mapRemove(vm, mapAt(vm, mapSlot), *vmSlotAt(vm, keySlot));
  if (removedSlot >= 0) *vmSlotAt(vm, removedSlot) = removed;
}

/* Index of the first entry at or after `index`, or -1 at the end. */
EXPORT(wren_map_next) int wren_map_next(WrenVM* vm, int mapSlot, int index) {
  ObjMap* map = mapAt(vm, mapSlot);
  for (uint32_t i = index < 0 ? 0 : (uint32_t)index; i < map->used; i++) {
    if (!IS_UNDEFINED(map->entries[i].key)) return (int)i;
  }
  return -1;
}

EXPORT(wren_get_map_entry)
void wren_get_map_entry(WrenVM* vm, int mapSlot, int index, int keySlot, int valueSlot) {
  ObjMap* map = mapAt(vm, mapSlot);
  if (index < 0 || (uint32_t)index >= map->used) __builtin_trap();
  MapEntry entry = map->entries[index];
  *vmSlotAt(vm, keySlot) = entry.key;
  *vmSlotAt(vm, valueSlot) = entry.value;
}

/* ---- Modules and variables ------------------------------------------ */

EXPORT(wren_has_module) int wren_has_module(WrenVM* vm, const char* module) {
  return vmGetModule(vm, module, (int)strlen(module)) != NULL;
}

static int findVariable(WrenVM* vm, const char* module, const char* name, ObjModule** out) {
  ObjModule* m = vmGetModule(vm, module, (int)strlen(module));
  if (m == NULL) return -1;
  *out = m;
  int index = moduleFindVariable(m, name, (int)strlen(name));
  if (index >= 0 && IS_UNDEFINED(m->variables[index])) return -1;
  return index;
}

EXPORT(wren_has_variable)
int wren_has_variable(WrenVM* vm, const char* module, const char* name) {
  ObjModule* m;
  return findVariable(vm, module, name, &m) >= 0;
}

EXPORT(wren_get_variable)
int wren_get_variable(WrenVM* vm, const char* module, const char* name, int slot) {
  ObjModule* m;
  int index = findVariable(vm, module, name, &m);
  if (index < 0) return 0;
  *vmSlotAt(vm, slot) = m->variables[index];
  return 1;
}

/* ---- Handles and calls ---------------------------------------------- */

Handle* vmNewHandle(WrenVM* vm, Value value) {
  Handle* h = (Handle*)malloc(sizeof(Handle));
  if (h == NULL) kwFatalOutOfMemory();
  h->value = value;
  h->prev = NULL;
  h->next = vm->handles;
  if (vm->handles != NULL) vm->handles->prev = h;
  vm->handles = h;
  return h;
}

EXPORT(wren_get_slot_handle) WrenHandle* wren_get_slot_handle(WrenVM* vm, int slot) {
  return vmNewHandle(vm, *vmSlotAt(vm, slot));
}

EXPORT(wren_set_slot_handle) void wren_set_slot_handle(WrenVM* vm, int slot, WrenHandle* handle) {
  *vmSlotAt(vm, slot) = handle->value;
}

/* A call handle holds the method symbol and arity packed in a number. */
EXPORT(wren_make_call_handle)
WrenHandle* wren_make_call_handle(WrenVM* vm, const char* signature) {
  int length = (int)strlen(signature);
  int symbol = symbolTableEnsure(&vm->methodNames, signature, length);
  int arity = 0;
  for (int i = 0; i < length; i++) {
    if (signature[i] == '_') arity++;
  }
  return vmNewHandle(vm, NUM_VAL((double)symbol * 32 + arity));
}

EXPORT(wren_release_handle) void wren_release_handle(WrenVM* vm, WrenHandle* handle) {
  if (handle->prev != NULL) handle->prev->next = handle->next;
  if (handle->next != NULL) handle->next->prev = handle->prev;
  if (vm->handles == handle) vm->handles = handle->next;
  free(handle);
}

/* Live handles of a VM: tests count them to show a failing foreign call
 * leaves none of the handles made for its arguments pinned. */
EXPORT(wren_handle_count) int wren_handle_count(WrenVM* vm) {
  int count = 0;
  for (Handle* h = vm->handles; h != NULL; h = h->next) count++;
  return count;
}

static void decodeCallHandle(WrenHandle* method, int* symbol, int* arity) {
  int packed = (int)AS_NUM(method->value);
  *symbol = packed / 32;
  *arity = packed % 32;
}

EXPORT(wren_call) int wren_call(WrenVM* vm, WrenHandle* method) {
  int symbol, arity;
  decodeCallHandle(method, &symbol, &arity);
  wren_ensure_slots(vm, arity + 1);
  Value args[MAX_PARAMETERS + 1];
  memcpy(args, vm->slots, sizeof(Value) * (size_t)(arity + 1));
  Value result = NULL_VAL;
  InterpretResult r = vmCallMethod(vm, symbol, arity + 1, args, &result);
  /* A foreign method run during the call resets the slot count: make room
   * again before the result goes to slot 0 (as wren_call_num does). */
  wren_ensure_slots(vm, 1);
  vm->slots[0] = r == RESULT_SUCCESS ? result : NULL_VAL;
  return (int)r;
}

/* Status results travel as signalling-NaN bit patterns that a Wren
 * number (always a canonical NaN when not a number) can never have. */
#define STATUS_BITS(status) ((int64_t)(0x7ff4000000000000ULL | (uint64_t)(status)))

EXPORT(wren_call_num)
int64_t wren_call_num(WrenVM* vm, WrenHandle* receiver, WrenHandle* method, int argc,
                      double a0, double a1, double a2, double a3) {
  int symbol, arity;
  decodeCallHandle(method, &symbol, &arity);
  Value args[5];
  args[0] = receiver->value;
  args[1] = NUM_VAL(a0);
  args[2] = NUM_VAL(a1);
  args[3] = NUM_VAL(a2);
  args[4] = NUM_VAL(a3);
  (void)argc;
  Value result = NULL_VAL;
  InterpretResult r = vmCallMethod(vm, symbol, arity + 1, args, &result);
  vm->status = (int)r;
  if (r != RESULT_SUCCESS) return STATUS_BITS(r);
  if (IS_NUM(result)) return (int64_t)result;
  wren_ensure_slots(vm, 1);
  vm->slots[0] = result;
  vm->status = 3;
  return STATUS_BITS(3);
}

/* ---- One-crossing scalar calls ----------------------------------------
 *
 * wren_call_scalar runs a call with up to four scalar arguments and gives
 * a scalar result back without slot traffic: one wasm call from the host
 * where setting slots, calling and reading slot 0 would take three or
 * more. The first parameter is argument 0, because the host's raw call
 * writes the result over the first parameter: every other parameter (the
 * argument kinds, the VM, the receiver and the method) stays in the
 * caller's own parameter block from one call to the next.
 *
 * kinds holds 4 bits per argument (argument i at bits 4i..4i+3):
 *   0 a number (the double)    1 null    2 false    3 true
 *   4 a string whose byte length is the double, its bytes following the
 *     previous string arguments' in callText
 * The result: an integral number within 2^53 (not -0) as that integer,
 * so the host takes it as one without testing a double; any other
 * number as its bits (a NaN as the canonical quiet NaN), which read as a
 * signed integer lie outside [-2^53, 2^53] except for positive numbers
 * up to 2^-1021, which go to slot 0 instead (status 3); or
 * STATUS_BITS(status): 1/2 compile/runtime error (as for wren_call_num),
 * 3 the result waits in slot 0, 5 null, 6 true, 7 false, and
 * 8 | length << 16 a string result of that many bytes in callText. */
#define KW_CALL_TEXT_CAPACITY 1024
#define KW_MAX_SAFE 9007199254740992.0  /* 2^53: integers the host keeps as ints */

static char callText[KW_CALL_TEXT_CAPACITY];

EXPORT(wren_call_text_buffer) char* wren_call_text_buffer(void) { return callText; }

static double canonicalNumber(double number) {
  return number == number ? number : __builtin_nan("");
}

EXPORT(wren_call_scalar)
int64_t wren_call_scalar(double a0, int kinds, WrenVM* vm, WrenHandle* receiver, WrenHandle* method,
                         double a1, double a2, double a3) {
  int symbol, arity;
  decodeCallHandle(method, &symbol, &arity);
  if (arity > 4) __builtin_trap();  /* the host never sends more: args[] holds four */
  double numbers[4] = {a0, a1, a2, a3};
  Value args[5];
  if (kinds == 0) {
    args[0] = receiver->value;
    for (int i = 0; i < arity; i++) args[i + 1] = NUM_VAL(canonicalNumber(numbers[i]));
  } else {
    /* Strings are made in the slots, which the collector sees, so one
     * string's allocation cannot free another made before it. */
    wren_ensure_slots(vm, arity + 1);
    vm->slots[0] = receiver->value;
    size_t offset = 0;
    for (int i = 0; i < arity; i++) {
      Value* slot = &vm->slots[i + 1];
      switch ((kinds >> (4 * i)) & 15) {
        case 0: *slot = NUM_VAL(canonicalNumber(numbers[i])); break;
        case 1: *slot = NULL_VAL; break;
        case 2: *slot = FALSE_VAL; break;
        case 3: *slot = TRUE_VAL; break;
        case 4: {
          double length = numbers[i];
          if (!(length >= 0 && length <= (double)(KW_CALL_TEXT_CAPACITY - offset))) __builtin_trap();
          *slot = stringValue(vm, callText + offset, (size_t)length);
          offset += (size_t)length;
          break;
        }
        default: __builtin_trap();  /* only the host writes kinds */
      }
    }
    memcpy(args, vm->slots, sizeof(Value) * (size_t)(arity + 1));
  }
  Value result = NULL_VAL;
  InterpretResult r = vmCallMethod(vm, symbol, arity + 1, args, &result);
  vm->status = (int)r;
  if (r != RESULT_SUCCESS) return STATUS_BITS(r);
  if (IS_NUM(result)) {
    double number = AS_NUM(result);
    if (number != number) return (int64_t)NUM_VAL(__builtin_nan(""));
    if (number >= -KW_MAX_SAFE && number <= KW_MAX_SAFE && number == (double)(int64_t)number &&
        (number != 0 || !__builtin_signbit(number))) {
      return (int64_t)number;
    }
    int64_t bits = (int64_t)result;
    if (bits < -(int64_t)KW_MAX_SAFE || bits > (int64_t)KW_MAX_SAFE) return bits;
  }
  if (result == NULL_VAL) return STATUS_BITS(5);
  if (result == TRUE_VAL) return STATUS_BITS(6);
  if (result == FALSE_VAL) return STATUS_BITS(7);
  if (IS_STRING(result) && AS_STRING(result)->length <= KW_CALL_TEXT_CAPACITY) {
    ObjString* text = AS_STRING(result);
    memcpy(callText, text->chars, text->length);
    return STATUS_BITS(8 | ((uint64_t)text->length << 16));
  }
  wren_ensure_slots(vm, 1);
  vm->slots[0] = result;
  vm->status = 3;
  return STATUS_BITS(3);
}

EXPORT(wren_status_pointer) int* wren_status_pointer(WrenVM* vm) { return &vm->status; }

EXPORT(wren_out_of_memory) int wren_out_of_memory(void) { return kwOutOfMemory; }

/* Where the unflushed output lives: an int length, then the bytes. The
 * host reads it after a trap so no printed text is lost. */
EXPORT(wren_pending_output) int* wren_pending_output(WrenVM* vm) { return &vm->outputLength; }

/* ---- Limits and debugging ------------------------------------------- */

/* Call frames one fiber may hold (the policy's recursion limit); 0 or
 * less restores the VM's own limit. */
EXPORT(wren_set_max_frames) void wren_set_max_frames(WrenVM* vm, int maxFrames) {
  vmSetMaxFrames(vm, maxFrames);
}

EXPORT(wren_max_frames) int wren_max_frames(WrenVM* vm) { return vm->maxFrames; }

EXPORT(wren_debug_add_breakpoint)
int wren_debug_add_breakpoint(WrenVM* vm, const char* module, int line) {
  return vmAddBreakpoint(vm, module, line);
}

EXPORT(wren_debug_remove_breakpoint)
int wren_debug_remove_breakpoint(WrenVM* vm, const char* module, int line) {
  return vmRemoveBreakpoint(vm, module, line);
}

/* The running Wren stack as text, innermost first, one frame a line:
 * "index<TAB>module<TAB>line<TAB>function"; core library frames are left
 * out (their indexes are skipped). Owned by the VM until the next call. */
EXPORT(wren_debug_stack) const char* wren_debug_stack(WrenVM* vm) {
  size_t capacity = 256, length = 0;
  char* text = (char*)malloc(capacity);
  if (text == NULL) kwFatalOutOfMemory();
  text[0] = '\0';
  CallFrame* frame;
  for (int index = 0; (frame = vmDebugFrame(vm, index)) != NULL; index++) {
    ObjFn* fn = frame->closure->fn;
    if (fn->module == NULL || fn->module->name == NULL) continue;
    if (fn->debugName != NULL && fn->debugName[0] == '\0') continue; /* a hidden frame */
    const char* name = fn->debugName ? fn->debugName : "?";
    size_t need = length + fn->module->name->length + strlen(name) + 40;
    if (need > capacity) {
      while (capacity < need) capacity *= 2;
      text = (char*)realloc(text, capacity);
      if (text == NULL) kwFatalOutOfMemory();
    }
    length += (size_t)snprintf(text + length, capacity - length, "%d\t%s\t%d\t%s\n", index,
                               fn->module->name->chars, vmDebugFrameLine(frame), name);
  }
  free(vm->debugText);
  vm->debugText = text;
  return text;
}

/* The line where a fiber the host holds (`handle`) stands in module
 * `module`: its innermost frame of that module's code, 0 if it has none
 * (not a fiber, finished, or only core frames). For an awaited call that
 * timed out while suspended: the fiber is not running, so its frames are
 * read directly rather than through vmDebugFrame. */
EXPORT(wren_fiber_line) int wren_fiber_line(WrenVM* vm, const char* module, WrenHandle* handle) {
  (void)vm;
  if (handle == NULL || !IS_FIBER(handle->value)) return 0;
  ObjFiber* fiber = AS_FIBER(handle->value);
  for (int i = fiber->frameCount - 1; i >= 0; i--) {
    ObjFn* fn = fiber->frames[i].closure->fn;
    if (fn->module == NULL || fn->module->name == NULL) continue;
    if (strcmp(fn->module->name->chars, module) != 0) continue;
    return vmDebugFrameLine(&fiber->frames[i]);
  }
  return 0;
}

/* ---- Serialized modules (bytecode.c) -------------------------------- */

static uint8_t* bytecodeOut = NULL;
static int bytecodeOutLength = 0;

/* Compiles `source` as a new module `module` without running it and keeps
 * its serialized form for wren_bytecode_data/length. 0 ok, 1 compile
 * error (the error report says where), 3 the module cannot be cached
 * (wren_bytecode_error says why). */
EXPORT(wren_compile_bytecode) int wren_compile_bytecode(WrenVM* vm, const char* module, const char* source) {
  free(bytecodeOut);
  bytecodeOut = NULL;
  bytecodeOutLength = 0;
  return bytecodeCompile(vm, module, source, &bytecodeOut, &bytecodeOutLength);
}

EXPORT(wren_bytecode_data) const uint8_t* wren_bytecode_data(void) { return bytecodeOut; }
EXPORT(wren_bytecode_length) int wren_bytecode_length(void) { return bytecodeOutLength; }
EXPORT(wren_bytecode_error) const char* wren_bytecode_error(void) { return bytecodeError(); }
EXPORT(wren_bytecode_build_hash) int wren_bytecode_build_hash(void) { return (int)bytecodeBuildHash(); }

/* Runs a serialized module as module `module`: like wren_interpret (0 ok,
 * 2 runtime error), or 4 when the entry is refused (nothing ran; the
 * caller compiles the source instead). */
EXPORT(wren_interpret_bytecode) int wren_interpret_bytecode(WrenVM* vm, const char* module, const uint8_t* data,
                                                            int length) {
  vmClearError(vm);
  ObjModule* target = vmGetModule(vm, module, (int)strlen(module));
  if (target == NULL) target = vmCreateModule(vm, newString(vm, module));
  vmPushRoot(vm, (Obj*)target);
  ObjFn* fn = bytecodeLoad(vm, target, data, length);
  vmPopRoot(vm);
  if (fn == NULL) return 4;
  return (int)vmRunModuleFn(vm, fn);
}

/* How many modules this instance compiled from source (tests use it to
 * show that a cached load skips the compiler). */
EXPORT(wren_compiler_runs) int wren_compiler_runs(void) { return kwCompilerRuns; }
/* An instance started from an image of another's set-up (kryon_wren/snapshot.py) compiled nothing itself. */
EXPORT(wren_compiler_runs_reset) void wren_compiler_runs_reset(void) { kwCompilerRuns = 0; }
