/* kryon_wren.h -- The embedding API of the Kryon Wren VM.
 *
 * These functions are exported from the wasm module under the same
 * names. Pointers are offsets into the module's linear memory; strings
 * passed in are NUL-terminated UTF-8 unless a length is given. The host
 * gives each VM an integer id that comes back in every host import (see
 * host.h). Slots are the VM's value registers for passing values across
 * the boundary: a call takes its receiver in slot 0 and arguments in
 * slots 1..n and leaves its result in slot 0; a foreign method finds its
 * receiver and arguments the same way and puts its result in slot 0.
 */
#ifndef KRYON_WREN_H
#define KRYON_WREN_H

#include <stddef.h>
#include <stdint.h>

typedef struct VM WrenVM;
typedef struct Handle WrenHandle;

/* Slot types, as in Wren's embedding API. */
enum {
  KW_TYPE_BOOL = 0,
  KW_TYPE_NUM = 1,
  KW_TYPE_FOREIGN = 2,
  KW_TYPE_LIST = 3,
  KW_TYPE_MAP = 4,
  KW_TYPE_NULL = 5,
  KW_TYPE_STRING = 6,
  KW_TYPE_UNKNOWN = 7
};

/* Results: 0 success, 1 compile error, 2 runtime error; the fast call
 * also uses 3 for "finished, but the result is not a number" (slot 0). */

int wren_abi_version(void);
void* wren_alloc(int size);
void wren_dealloc(void* pointer);

WrenVM* wren_new_vm(int hostId);
void wren_free_vm(WrenVM* vm);
int wren_interpret(WrenVM* vm, const char* module, const char* source);
const char* wren_error_message(WrenVM* vm);
const char* wren_error_module(WrenVM* vm);
int wren_error_line(WrenVM* vm);
const char* wren_error_trace(WrenVM* vm);

int wren_bytes_allocated(WrenVM* vm);
int wren_gc_count(WrenVM* vm);
void wren_collect_garbage(WrenVM* vm);

void wren_ensure_slots(WrenVM* vm, int count);
int wren_slot_count(WrenVM* vm);
int wren_get_slot_type(WrenVM* vm, int slot);
int wren_get_slot_bool(WrenVM* vm, int slot);
double wren_get_slot_double(WrenVM* vm, int slot);
const char* wren_get_slot_bytes(WrenVM* vm, int slot);
int wren_get_slot_bytes_length(WrenVM* vm, int slot);
int64_t wren_get_slot_string(WrenVM* vm, int slot);
void wren_set_slot_null(WrenVM* vm, int slot);
void wren_set_slot_bool(WrenVM* vm, int slot, int value);
void wren_set_slot_double(WrenVM* vm, int slot, double value);
void wren_set_slot_bytes(WrenVM* vm, int slot, const char* bytes, int length);
void wren_set_slot_new_list(WrenVM* vm, int slot);
int wren_get_list_count(WrenVM* vm, int slot);
void wren_get_list_element(WrenVM* vm, int listSlot, int index, int elementSlot);
void wren_set_list_element(WrenVM* vm, int listSlot, int index, int elementSlot);
void wren_insert_in_list(WrenVM* vm, int listSlot, int index, int elementSlot);
void wren_set_slot_new_map(WrenVM* vm, int slot);
int wren_get_map_count(WrenVM* vm, int slot);
int wren_get_map_contains_key(WrenVM* vm, int mapSlot, int keySlot);
void wren_get_map_value(WrenVM* vm, int mapSlot, int keySlot, int valueSlot);
void wren_set_map_value(WrenVM* vm, int mapSlot, int keySlot, int valueSlot);
void wren_remove_map_value(WrenVM* vm, int mapSlot, int keySlot, int removedSlot);
int wren_map_next(WrenVM* vm, int mapSlot, int index);
void wren_get_map_entry(WrenVM* vm, int mapSlot, int index, int keySlot, int valueSlot);

int wren_has_module(WrenVM* vm, const char* module);
int wren_has_variable(WrenVM* vm, const char* module, const char* name);
int wren_get_variable(WrenVM* vm, const char* module, const char* name, int slot);

WrenHandle* wren_get_slot_handle(WrenVM* vm, int slot);
void wren_set_slot_handle(WrenVM* vm, int slot, WrenHandle* handle);
WrenHandle* wren_make_call_handle(WrenVM* vm, const char* signature);
void wren_release_handle(WrenVM* vm, WrenHandle* handle);
int wren_handle_count(WrenVM* vm);

/* Slots first..first+count-1 encoded for the host in one buffer (slot_codec.c):
 * length << 32 | address, or -1 when a value nests too deeply or is cyclic. */
int64_t wren_encode_slots(WrenVM* vm, int first, int count);
/* The classes in slots refSlot and fnSlot are the kryon module's HostRef and
 * HostFn: foreign methods get their instances as registry numbers (slot_codec.c). */
void wren_set_host_classes(WrenVM* vm, int refSlot, int fnSlot);
/* A new HostRef (kind 0) or HostFn (kind 1) carrying registry number id, as a
 * handle (NULL when the class is not named or id is not in 0..2**31-1); the
 * only way such an instance is made. */
WrenHandle* wren_new_host_object(WrenVM* vm, int kind, double id);
/* The registry number a handle's HostRef / HostFn carries, -1 for a Fn,
 * -2 for anything else. */
int64_t wren_kind_of_handle(WrenVM* vm, WrenHandle* handle);
/* 0: foreign methods get host objects as handles instead of 'r' (tests). */
void wren_host_id_tags(WrenVM* vm, int enabled);
/* The buffer a foreign method's host code writes a scalar result into
 * (slot_codec.c): its address; its capacity is KW_FOREIGN_RESULT_CAPACITY. */
uint8_t* wren_foreign_result_buffer(void);
int wren_call(WrenVM* vm, WrenHandle* method);
int64_t wren_call_num(WrenVM* vm, WrenHandle* receiver, WrenHandle* method, int argc,
                      double a0, double a1, double a2, double a3);
int wren_out_of_memory(void);
int* wren_pending_output(WrenVM* vm);
int* wren_status_pointer(WrenVM* vm);

/* Limits and debugging. wren_set_max_frames bounds the call frames of each
 * fiber (0: the VM's own limit, 100000); a deeper call is the runtime
 * error "Stack overflow.". Breakpoints are (module, line) pairs: when
 * execution reaches the first load, store, constant or pop of a run of
 * instructions of that line (where a statement starts) the VM
 * calls the host import host_breakpoint (host.h); there the host reads
 * the stack with wren_debug_stack and the locals in scope of a frame with
 * wren_debug_local. Costs nothing while no breakpoint is set. */
void wren_set_max_frames(WrenVM* vm, int maxFrames);
int wren_max_frames(WrenVM* vm);
int wren_debug_add_breakpoint(WrenVM* vm, const char* module, int line);
int wren_debug_remove_breakpoint(WrenVM* vm, const char* module, int line);
const char* wren_debug_stack(WrenVM* vm);
/* The line of a held fiber's innermost frame in `module` (0: none). */
int wren_fiber_line(WrenVM* vm, const char* module, WrenHandle* handle);
const char* wren_debug_local(WrenVM* vm, int frameIndex, int localIndex, int slot);

/* The debugger's part (debug_step.c). wren_debug_step_all patches every
 * line of every script function (stepping); *wren_debug_poll_pointer(vm),
 * set by the host from any thread, makes the VM call host_breakpoint with
 * line 0 at its next loop back-edge or fiber start; wren_debug_errors makes
 * it call host_breakpoint with line -1 (error in slot 0) where a runtime
 * error is raised. wren_debug_code_lines lists the lines of source that can
 * take a breakpoint (compiled, not run); wren_debug_module_variable,
 * wren_debug_instance_field and wren_debug_class_name read what a
 * debugger shows; wren_debug_frame_column the column of a frame. */
void wren_debug_step_all(WrenVM* vm, int on);
int* wren_debug_poll_pointer(WrenVM* vm);
void wren_debug_errors(WrenVM* vm, int on);
int wren_debug_frame_column(WrenVM* vm, int index);
const char* wren_debug_code_lines(WrenVM* vm, const char* source);
const char* wren_debug_module_variable(WrenVM* vm, const char* module, int index, int slot);
int wren_debug_instance_field(WrenVM* vm, int slot, int field, int outSlot);
const char* wren_debug_class_name(WrenVM* vm, int slot);
const char* wren_debug_upvalue(WrenVM* vm, int frameIndex, int index, int slot);

/* Hot reload (reload.c): the host copies a module's state into a new VM.
 * wren_object_type gives the ObjType of an object (-1: not an object),
 * wren_object_id a number naming it while it lives, wren_class_of the class
 * of a value; wren_new_instance makes an instance of a plain class without
 * running a constructor (its field count, -1: not such a class) and
 * wren_set_instance_field sets one of its fields; wren_set_variable sets a
 * module variable the module defined itself (static fields: "Class.__f"). */
int wren_object_type(WrenVM* vm, int slot);
int wren_object_id(WrenVM* vm, int slot);
void wren_class_of(WrenVM* vm, int slot, int outSlot);
int wren_new_instance(WrenVM* vm, int classSlot, int outSlot);
int wren_set_instance_field(WrenVM* vm, int slot, int field, int valueSlot);
int wren_set_variable(WrenVM* vm, const char* module, const char* name, int slot);

#endif
