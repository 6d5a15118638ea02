/* debug_step.c -- What the debugger needs beyond breakpoints: stepping,
 * pausing, the lines that hold code, and a frame's and module's contents.
 *
 * Stepping is breakpoints on every line: "step all" patches the start of
 * every run of a line in every function (patchLine with line 0), also in
 * code compiled later, so each new line calls host_breakpoint and the host
 * decides from the frame depth whether a step ends there. Turned off, the
 * patches go and only the breakpoints stay: a run without a debugger
 * executes the code it always did.
 *
 * Pausing comes from another thread, which must not call into the VM: it
 * sets vm->debugPoll (a plain int in linear memory, wren_debug_poll_pointer)
 * and the interpreter looks at it where a loop jumps back and where a
 * fiber starts running. Seeing it, the VM calls host_breakpoint with line 0
 * ("poll"): on its own thread the host then applies its wishes (step all,
 * breakpoints), and a pause stops at the next line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "kryon_wren.h"
#include "vm.h"

#ifdef __wasm__
#define EXPORT(name) __attribute__((export_name(#name), used))
#else
#define EXPORT(name) __attribute__((used))
#endif

/* Modules the host never steps through: core, and the host's glue. */
static bool steppable(ObjFn* fn) {
  if (fn->module == NULL || fn->module->name == NULL) return false;
  const char* name = fn->module->name->chars;
  return strcmp(name, "kryon") != 0 && strcmp(name, "io") != 0 && strchr(name, '#') == NULL;
}

void vmDebugPatchNew(VM* vm, ObjFn* fn) {
  if (vm->stepAll && steppable(fn)) patchLine(fn, 0);
}

/* Turns "step all" on or off for every function the VM holds. */
static void setStepAll(VM* vm, bool on) {
  vm->stepAll = on;
  for (Obj* obj = vm->objects; obj != NULL; obj = obj->next) {
    if (obj->type != OBJ_FN) continue;
    ObjFn* fn = (ObjFn*)obj;
    if (on) {
      if (steppable(fn)) patchLine(fn, 0);
      continue;
    }
    if (fn->debug == NULL || fn->debug->patchCount == 0) continue;
    unpatchLine(fn, 0);
    if (fn->module == NULL || fn->module->name == NULL) continue;
    for (int i = 0; i < vm->breakpointCount; i++) {
      if (strcmp(vm->breakpoints[i].module, fn->module->name->chars) == 0) patchLine(fn, vm->breakpoints[i].line);
    }
  }
}

/* The interpreter saw vm->debugPoll: let the host act on its thread.
 * False when the host failed (fiber->error is set). Inside the host's own
 * handling of a stop nothing is reported; the request waits. */
bool vmDebugPoll(VM* vm, ObjFiber* fiber, CallFrame* frame) {
  if (vm->inBreakpoint) return true;
  vm->debugPoll = 0;
  ObjFn* fn = frame->closure->fn;
  const char* module = fn->module != NULL && fn->module->name != NULL ? fn->module->name->chars : "core";
  vmFlushOutput(vm);
  vm->slotCount = 0;
  vm->inBreakpoint = true;
  int failed = host_breakpoint(vm->hostId, module, (int)strlen(module), 0);
  vm->inBreakpoint = false;
  Value result = vm->slotCount > 0 ? vm->slots[0] : NULL_VAL;
  vm->slotCount = 0;
  if (failed) {
    fiber->error = IS_NULL(result) ? vmRuntimeErrorValue(vm, "Debugger poll failed.") : result;
    return false;
  }
  return true;
}

/* A runtime error was raised in `fiber`, whose frames are still there:
 * the host hears of it as host_breakpoint with line -1, the error value in
 * slot 0 (what it answers is ignored: the error goes on unwinding). */
void vmDebugError(VM* vm, ObjFiber* fiber) {
  if (vm->inBreakpoint || fiber == NULL || IS_NULL(fiber->error) || fiber->frameCount == 0) return;
  ObjFn* fn = fiber->frames[fiber->frameCount - 1].closure->fn;
  const char* module = fn->module != NULL && fn->module->name != NULL ? fn->module->name->chars : "core";
  vmFlushOutput(vm);
  vm->slotCount = 0;
  wren_ensure_slots(vm, 1);
  vm->slots[0] = fiber->error;
  vm->inBreakpoint = true;
  host_breakpoint(vm->hostId, module, (int)strlen(module), -1);
  vm->inBreakpoint = false;
  vm->slotCount = 0;
}

EXPORT(wren_debug_errors) void wren_debug_errors(WrenVM* vm, int on) { vm->debugErrors = on != 0; }

/* The compiler resolved `name` to upvalue `index` of fn: kept among the
 * named locals with slot -1 - index (wren_debug_local skips those), once. */
int fnDebugUpvalue(ObjFn* fn, const char* name, int length, int index) {
  FnDebug* d = fn->debug;
  for (int i = 0; d != NULL && i < d->localCount; i++) {
    if (d->locals[i].slot == -1 - index) return index;
  }
  fnDebugLocalBegin(fn, name, length, 0);
  fn->debug->locals[fn->debug->localCount - 1].slot = -1 - index;
  return index;
}

/* Where the `index`th named local in scope at `frame` lives (NULL past
 * the last): the locals wren_debug_local lists, in its order. */
static DebugLocal* liveLocal(CallFrame* frame, int index, Value** where) {
  ObjFn* fn = frame->closure->fn;
  FnDebug* d = fn->debug;
  if (d == NULL) return NULL;
  int pc = (int)(frame->ip - fn->code) - 1;
  if (pc < 0) pc = 0;
  for (int i = 0; i < d->localCount; i++) {
    DebugLocal* local = &d->locals[i];
    if (local->slot < 0) continue; /* an upvalue's name (fnDebugUpvalue) */
    if (local->start > pc || (local->end != -1 && pc >= local->end)) continue;
    if (index-- > 0) continue;
    *where = &frame->stackStart[local->slot];
    return local;
  }
  return NULL;
}

/* Where the `index`th named upvalue of `frame` lives (NULL past the last). */
static DebugLocal* namedUpvalue(CallFrame* frame, int index, Value** where) {
  FnDebug* d = frame->closure->fn->debug;
  for (int i = 0; d != NULL && i < d->localCount; i++) {
    int upvalue = -1 - d->locals[i].slot;
    if (d->locals[i].slot >= 0 || upvalue >= frame->closure->fn->numUpvalues) continue;
    if (index-- > 0) continue;
    *where = frame->closure->upvalues[upvalue]->value;
    return &d->locals[i];
  }
  return NULL;
}

/* The named variable `index` of frame `frameIndex`: a local in scope, or
 * with `upvalue` a captured one; NULL when there is none (where: its cell). */
static DebugLocal* frameVariable(WrenVM* vm, int frameIndex, bool upvalue, int index, Value** where) {
  CallFrame* frame = vmDebugFrame(vm, frameIndex);
  if (frame == NULL) return NULL;
  return upvalue ? namedUpvalue(frame, index, where) : liveLocal(frame, index, where);
}

/* Reads variable `index` (as frameVariable finds it) into `slot`; its name, or NULL. */
static const char* readVariable(WrenVM* vm, int frameIndex, bool upvalue, int index, int slot) {
  Value* where = NULL;
  DebugLocal* variable = frameVariable(vm, frameIndex, upvalue, index, &where);
  if (variable == NULL) return NULL;
  *vmSlotAt(vm, slot) = *where;
  return variable->name;
}

/* The `localIndex`th named local in scope at frame `frameIndex` (as
 * wren_debug_stack numbers them): its value goes to `slot`, its name is
 * returned; NULL when there are no more. */
EXPORT(wren_debug_local)
const char* wren_debug_local(WrenVM* vm, int frameIndex, int localIndex, int slot) {
  return readVariable(vm, frameIndex, false, localIndex, slot);
}

/* The `index`th upvalue of frame `frameIndex` that has a name: its value
 * goes to `slot`, its name is returned; NULL past the last. */
EXPORT(wren_debug_upvalue)
const char* wren_debug_upvalue(WrenVM* vm, int frameIndex, int index, int slot) {
  return readVariable(vm, frameIndex, true, index, slot);
}

/* The receiver (`this`) of frame `frameIndex` goes to `slot` when the
 * frame runs a method: 1, else 0. A method's frame holds its receiver in
 * its first stack slot; a function's holds the function itself there
 * (a function inside a method reaches `this` as a named upvalue). */
EXPORT(wren_debug_receiver) int wren_debug_receiver(WrenVM* vm, int frameIndex, int slot) {
  CallFrame* frame = vmDebugFrame(vm, frameIndex);
  if (frame == NULL || frame->closure->fn->boundClass == NULL) return 0;
  Value receiver = frame->stackStart[0];
  if (IS_OBJ(receiver) && AS_OBJ(receiver) == (Obj*)frame->closure) return 0;
  wren_ensure_slots(vm, slot + 1);
  vm->slots[slot] = receiver;
  return 1;
}

/* Stores the value in `slot` into the `index`th named local (upvalue when
 * `upvalue` is non-zero) of frame `frameIndex`, numbered as the two
 * exports above number them: how an evaluation that assigns a variable
 * changes the paused frame. 1 done, 0 no such variable. */
EXPORT(wren_debug_assign)
int wren_debug_assign(WrenVM* vm, int frameIndex, int upvalue, int index, int slot) {
  Value* where = NULL;
  if (slot < 0 || slot >= vm->slotCount) return 0;
  if (frameVariable(vm, frameIndex, upvalue != 0, index, &where) == NULL) return 0;
  *where = vm->slots[slot];
  return 1;
}

EXPORT(wren_debug_poll_pointer) int* wren_debug_poll_pointer(WrenVM* vm) { return &vm->debugPoll; }

EXPORT(wren_debug_step_all) void wren_debug_step_all(WrenVM* vm, int on) { setStepAll(vm, on != 0); }

/* Column (from 1) of frame `index` as wren_debug_stack numbers frames. */
EXPORT(wren_debug_frame_column) int wren_debug_frame_column(WrenVM* vm, int index) {
  CallFrame* frame = vmDebugFrame(vm, index);
  return frame == NULL ? 0 : vmDebugFrameColumn(frame);
}

/* Appends to a growing text buffer. */
typedef struct {
  char* text;
  size_t length, capacity;
} Text;

static void textAppend(Text* t, const char* s, size_t n) {
  if (t->length + n + 1 > t->capacity) {
    while (t->length + n + 1 > t->capacity) t->capacity = t->capacity < 64 ? 64 : t->capacity * 2;
    t->text = (char*)realloc(t->text, t->capacity);
    if (t->text == NULL) kwFatalOutOfMemory();
  }
  memcpy(t->text + t->length, s, n);
  t->length += n;
  t->text[t->length] = '\0';
}

static void keepText(VM* vm, Text* t) {
  if (t->text == NULL) textAppend(t, "", 0);
  free(vm->debugText);
  vm->debugText = t->text;
}

/* Lines where a breakpoint can stop in fn and the functions inside it:
 * those with a run starting at an instruction OP_BREAKPOINT stands in for. */
static void collectLines(ObjFn* fn, Text* out) {
  int previous = -1;
  bool found = false;
  for (int offset = 0; offset < fn->codeCount;) {
    uint8_t op = originalOp(fn, offset);
    int line = POSITION_LINE(fn->lines[offset]);
    if (line != previous) found = false;
    if (!found && isPatchable(op)) {
      char number[16];
      textAppend(out, number, (size_t)snprintf(number, sizeof number, "%d\n", line));
      found = true;
    }
    previous = line;
    offset += instructionSize(fn, offset, op);
  }
  for (int i = 0; i < fn->constantCount; i++) {
    if (IS_FN(fn->constants[i])) collectLines(AS_FN(fn->constants[i]), out);
  }
}

/* Compiles `source` as a module of its own (nothing runs, nothing is kept)
 * and lists the lines a breakpoint can stop at, one a line; NULL when it
 * does not compile. */
EXPORT(wren_debug_code_lines) const char* wren_debug_code_lines(WrenVM* vm, const char* source) {
  ObjString* name = newString(vm, "kryon#lines");
  vmPushRoot(vm, (Obj*)name);
  ObjModule* module = newModule(vm, name);
  vmPopRoot(vm);
  vmPushRoot(vm, (Obj*)module);
  ObjModule* core = vm->coreModule;
  for (int i = 0; i < core->variableCount; i++) {
    moduleAddVariable(vm, module, core->variableNames.names[i], core->variableNames.lengths[i], core->variables[i]);
  }
  ObjFn* fn = compileModule(vm, module, source);
  Text out = {NULL, 0, 0};
  if (fn != NULL) {
    vmPushRoot(vm, (Obj*)fn);
    collectLines(fn, &out);
    vmPopRoot(vm);
  }
  vmPopRoot(vm);
  vmClearError(vm);
  if (fn == NULL) return NULL;
  keepText(vm, &out);
  return vm->debugText;
}

/* The `index`th variable a module defined itself (core's copies left out):
 * its value goes to `slot`, its name is returned; NULL past the last. */
EXPORT(wren_debug_module_variable)
const char* wren_debug_module_variable(WrenVM* vm, const char* moduleName, int index, int slot) {
  ObjModule* module = vmGetModule(vm, moduleName, (int)strlen(moduleName));
  if (module == NULL) return NULL;
  int first = vm->coreModule->variableCount;
  if (index < 0 || first + index >= module->variableCount) return NULL;
  wren_ensure_slots(vm, slot + 1);
  vm->slots[slot] = module->variables[first + index];
  return module->variableNames.names[first + index];
}

/* How many fields the instance in `slot` has (-1: not an instance); with
 * field >= 0 its value goes to `outSlot`. The class's name goes to the
 * debug text (wren_debug_class_name). */
EXPORT(wren_debug_instance_field)
int wren_debug_instance_field(WrenVM* vm, int slot, int field, int outSlot) {
  Value v = vm->slots[slot];
  if (!IS_INSTANCE(v)) return -1;
  ObjClass* cls = AS_OBJ(v)->classObj;
  if (field >= 0 && field < cls->numFields) {
    wren_ensure_slots(vm, outSlot + 1);
    vm->slots[outSlot] = AS_INSTANCE(v)->fields[field];
  }
  return cls->numFields;
}

/* The name of the class of the value in `slot`. */
EXPORT(wren_debug_class_name) const char* wren_debug_class_name(WrenVM* vm, int slot) {
  ObjClass* cls = getClass(vm, vm->slots[slot]);
  return cls != NULL && cls->name != NULL ? cls->name->chars : "?";
}
