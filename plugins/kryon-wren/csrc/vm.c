/* vm.c -- The bytecode interpreter: fibers, calls and method dispatch.
 *
 * Each fiber has its own value stack and call frames, so switching
 * fibers is just changing vm->fiber; the interpreter loop never recurses
 * in C for Wren-to-Wren calls. Methods are found by symbol in the
 * receiver's class method table (inherited methods are copied down when
 * a class is created). Arithmetic and comparison on numbers have their
 * own opcodes that skip dispatch. Runtime errors unwind through callers
 * until a fiber started with try() catches them, or the error reaches
 * the host.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "host.h"
#include "opcodes.h"
#include "vm.h"
#include "opt_modules.h"

#ifdef KW_DEBUG
void disassemble(VM* vm, ObjFn* fn);
#endif

/* ---- VM lifetime ---------------------------------------------------- */

VM* vmNew(int hostId) {
  VM* vm = (VM*)calloc(1, sizeof(VM));
  if (vm == NULL) kwFatalOutOfMemory();
  vm->hostId = hostId;
  vm->maxFrames = FIBER_MAX_FRAMES;
  vm->heapMinimum = 1024 * 1024;
  vm->nextGC = 4 * 1024 * 1024;
#ifdef KW_DEBUG
  if (getenv("KW_GC_STRESS")) vm->gcStress = true;
#endif
  symbolTableInit(&vm->methodNames);
  vm->modules = newMap(vm);
  coreInitialize(vm);
  return vm;
}

void vmFree(VM* vm) {
  while (vm->handles != NULL) {
    Handle* next = vm->handles->next;
    free(vm->handles);
    vm->handles = next;
  }
  gcFreeAll(vm);
  symbolTableFree(&vm->methodNames);
  free(vm->slots);
  free(vm->errorDetail);
  for (int i = 0; i < vm->breakpointCount; i++) free(vm->breakpoints[i].module);
  free(vm->breakpoints);
  free(vm->debugText);
  vmClearError(vm);
  free(vm);
}

void vmPushRoot(VM* vm, Obj* obj) {
  if (vm->tempRootCount >= MAX_TEMP_ROOTS) __builtin_trap();
  vm->tempRoots[vm->tempRootCount++] = obj;
}

void vmPopRoot(VM* vm) { vm->tempRootCount--; }

const char* methodName(VM* vm, int symbol) { return vm->methodNames.names[symbol]; }

/* ---- Output --------------------------------------------------------- */

void vmFlushOutput(VM* vm) {
  if (vm->outputLength == 0) return;
  int length = vm->outputLength;
  vm->outputLength = 0;
  host_write(vm->hostId, vm->output, length);
}

/* Buffers output; the host gets it before any other host call and when
 * control returns to it. */
void vmWrite(VM* vm, const char* text, int length) {
  if (vm->outputLength + length > OUTPUT_BUFFER_SIZE) vmFlushOutput(vm);
  if (length > OUTPUT_BUFFER_SIZE) {
    host_write(vm->hostId, text, length);
    return;
  }
  memcpy(vm->output + vm->outputLength, text, (size_t)length);
  vm->outputLength += length;
}

/* ---- Errors --------------------------------------------------------- */

static char* copyString(const char* s) {
  if (s == NULL) return NULL;
  size_t n = strlen(s);
  char* copy = (char*)malloc(n + 1);
  memcpy(copy, s, n + 1);
  return copy;
}

void vmClearError(VM* vm) {
  free(vm->errorMessage);
  free(vm->errorModule);
  free(vm->errorTrace);
  vm->errorMessage = NULL;
  vm->errorModule = NULL;
  vm->errorTrace = NULL;
  vm->errorLine = 0;
  vm->errorColumn = 0;
}

void vmSetError(VM* vm, const char* message, const char* module, int line) {
  vmClearError(vm);
  vm->errorMessage = copyString(message);
  vm->errorModule = copyString(module);
  vm->errorLine = line;
}

void vmSetErrorColumn(VM* vm, int column) { vm->errorColumn = column; }

Value vmRuntimeErrorValue(VM* vm, const char* format, ...) {
  char buffer[512];
  va_list args;
  va_start(args, format);
  int length = vsnprintf(buffer, sizeof buffer, format, args);
  va_end(args);
  if (length > (int)sizeof buffer - 1) length = (int)sizeof buffer - 1;
  return stringValue(vm, buffer, (size_t)length);
}

/* The source position of the instruction a frame is running. */
static int framePosition(CallFrame* frame) {
  ObjFn* fn = frame->closure->fn;
  int offset = (int)(frame->ip - fn->code) - 1;
  if (offset < 0) offset = 0;
  if (offset >= fn->codeCount) offset = fn->codeCount - 1;
  return fn->lines[offset];
}

static int frameLine(CallFrame* frame) { return POSITION_LINE(framePosition(frame)); }

static const char* moduleNameOf(ObjFn* fn) {
  return fn->module->name ? fn->module->name->chars : "core";
}

/* Whether a stack trace shows frames of fn. Left out: the core library,
 * frames the compiler left unnamed (a constructor's allocating wrapper)
 * and the host's glue: the "kryon" and "io" modules and the modules the
 * host makes for its own calls, whose names hold a '#'. An error is
 * reported at the first frame shown, so it names the script's line. */
static bool frameIsShown(ObjFn* fn) {
  if (fn->module->name == NULL) return false;
  if (fn->debugName == NULL || fn->debugName[0] == '\0') return false;
  const char* module = fn->module->name->chars;
  if (strcmp(module, "kryon") == 0 || strcmp(module, "io") == 0) return false;
  return strchr(module, '#') == NULL;
}

/* Records message, module, line and a stack trace of the failed fiber. */
static void reportRuntimeError(VM* vm, ObjFiber* fiber) {
  char message[600];
  Value error = fiber->error;
  if (IS_STRING(error)) {
    snprintf(message, sizeof message, "%s", AS_CSTRING(error));
  } else {
    ObjString* text = valueToCString(vm, error);
    snprintf(message, sizeof message, "%s", text ? text->chars : "[error object]");
  }
  /* With no frame shown, the error is the host call's own (a method the
   * receiver lacks, a wrong arity): no module or line, so the caller's
   * location stands. */
  const char* module = "";
  int line = 0;
  int column = 0;
  char trace[2048];
  int traceLength = 0;
  trace[0] = '\0';
  for (int i = fiber->frameCount - 1; i >= 0; i--) {
    CallFrame* frame = &fiber->frames[i];
    ObjFn* fn = frame->closure->fn;
    if (!frameIsShown(fn)) continue;
    int position = framePosition(frame);
    int frameLineNumber = POSITION_LINE(position);
    int frameColumn = POSITION_COLUMN(position);
    if (line == 0) {
      module = moduleNameOf(fn);
      line = frameLineNumber;
      column = frameColumn;
    }
    /* "[module line N] in name", or "[module line N:C] in name" with a column. */
    if (traceLength < (int)sizeof trace - 200) {
      char where[24] = "";
      if (frameColumn > 0) snprintf(where, sizeof where, ":%d", frameColumn);
      traceLength += snprintf(trace + traceLength, sizeof trace - traceLength,
                              "[%s line %d%s] in %s\n", moduleNameOf(fn),
                              frameLineNumber, where, fn->debugName);
    }
  }
  if (vm->errorDetail != NULL && traceLength < (int)sizeof trace - 2) {
    snprintf(trace + traceLength, sizeof trace - traceLength, "%s\n", vm->errorDetail);
  }
  free(vm->errorDetail);
  vm->errorDetail = NULL;
  vmSetError(vm, message, module, line);
  vm->errorColumn = column;
  vm->errorTrace = copyString(trace);
}

/* ---- Fiber stacks --------------------------------------------------- */

void fiberEnsureStack(VM* vm, ObjFiber* fiber, int needed) {
  if (needed <= fiber->stackCapacity) return;
  int capacity = fiber->stackCapacity;
  while (capacity < needed) capacity *= 2;
  Value* oldStack = fiber->stack;
  fiber->stack = (Value*)reallocate(vm, fiber->stack, sizeof(Value) * fiber->stackCapacity,
                                    sizeof(Value) * capacity);
  fiber->stackCapacity = capacity;
  if (fiber->stack == oldStack) return;
  /* Re-point everything that addressed the old stack. */
  fiber->stackTop = fiber->stack + (fiber->stackTop - oldStack);
  for (int i = 0; i < fiber->frameCount; i++) {
    CallFrame* f = &fiber->frames[i];
    f->stackStart = fiber->stack + (f->stackStart - oldStack);
  }
  for (ObjUpvalue* u = fiber->openUpvalues; u != NULL; u = u->next) {
    u->value = fiber->stack + (u->value - oldStack);
  }
}

/* The recursion limit: vm->maxFrames bounds the call frames of each fiber
 * (per fiber, not summed over a chain of fibers calling fibers: a fiber
 * switch does not recurse in C, and every fiber's frames are bounded).
 * The interpreter's fast call paths only check frameCount against
 * frameCapacity, so a fiber's frame array never grows past the limit and
 * is shrunk to it when the limit is lowered or the fiber starts: the
 * limit costs nothing per call; a push beyond it reaches pushFrame. */
static void fiberClampFrames(VM* vm, ObjFiber* fiber) {
  int limit = vm->maxFrames;
  if (fiber->frameCapacity <= limit || fiber->frameCount > limit) return;
  int capacity = limit < 1 ? 1 : limit;
  if (capacity < fiber->frameCount) capacity = fiber->frameCount;
  fiber->frames = (CallFrame*)reallocate(vm, fiber->frames,
                                         sizeof(CallFrame) * fiber->frameCapacity,
                                         sizeof(CallFrame) * capacity);
  fiber->frameCapacity = capacity;
}

void vmSetMaxFrames(VM* vm, int maxFrames) {
  if (maxFrames <= 0 || maxFrames > FIBER_MAX_FRAMES) maxFrames = FIBER_MAX_FRAMES;
  vm->maxFrames = maxFrames;
  /* Running fibers keep their frame arrays (the interpreter points into
   * them); they are clamped when they next start. */
  if (vm->fiber != NULL) return;
  for (Obj* obj = vm->objects; obj != NULL; obj = obj->next) {
    if (obj->type == OBJ_FIBER) fiberClampFrames(vm, (ObjFiber*)obj);
  }
}

/* Pushes a frame for closure whose slot 0 and arguments (argc values
 * including the receiver) are already on the stack. */
static bool pushFrame(VM* vm, ObjFiber* fiber, ObjClosure* closure, int argc) {
  if (fiber->frameCount >= fiber->frameCapacity) {
    if (fiber->frameCount >= vm->maxFrames) {
      fiber->error = vmRuntimeErrorValue(vm, "Stack overflow.");
      return false;
    }
    int capacity = fiber->frameCapacity * 2;
    if (capacity > vm->maxFrames) capacity = vm->maxFrames;
    fiber->frames = (CallFrame*)reallocate(vm, fiber->frames,
                                           sizeof(CallFrame) * fiber->frameCapacity,
                                           sizeof(CallFrame) * capacity);
    fiber->frameCapacity = capacity;
  }
  int base = (int)(fiber->stackTop - fiber->stack) - argc;
  fiberEnsureStack(vm, fiber, base + closure->fn->maxSlots + 1);
  CallFrame* frame = &fiber->frames[fiber->frameCount++];
  frame->closure = closure;
  frame->ip = closure->fn->code;
  frame->stackStart = fiber->stack + base;
  return true;
}

static ObjUpvalue* captureUpvalue(VM* vm, ObjFiber* fiber, Value* local) {
  ObjUpvalue* prev = NULL;
  ObjUpvalue* u = fiber->openUpvalues;
  while (u != NULL && u->value > local) {
    prev = u;
    u = u->next;
  }
  if (u != NULL && u->value == local) return u;
  ObjUpvalue* created = newUpvalue(vm, local);
  created->fiber = fiber;
  created->next = u;
  if (prev == NULL) {
    fiber->openUpvalues = created;
  } else {
    prev->next = created;
  }
  return created;
}

static void closeUpvalues(ObjFiber* fiber, Value* last) {
  while (fiber->openUpvalues != NULL && fiber->openUpvalues->value >= last) {
    ObjUpvalue* u = fiber->openUpvalues;
    u->closed = *u->value;
    u->value = &u->closed;
    u->fiber = NULL;
    fiber->openUpvalues = u->next;
  }
}


/* ---- Debugging: locals, breakpoints, stack inspection ------------------ */

static FnDebug* fnDebugOf(ObjFn* fn) {
  if (fn->debug == NULL) {
    fn->debug = (FnDebug*)calloc(1, sizeof(FnDebug));
    if (fn->debug == NULL) kwFatalOutOfMemory();
  }
  return fn->debug;
}

/* The compiler declared a named local in `slot`, live from here on. */
void fnDebugLocalBegin(ObjFn* fn, const char* name, int length, int slot) {
  FnDebug* d = fnDebugOf(fn);
  if (d->localCount >= d->localCapacity) {
    d->localCapacity = d->localCapacity < 4 ? 4 : d->localCapacity * 2;
    d->locals = (DebugLocal*)realloc(d->locals, sizeof(DebugLocal) * (size_t)d->localCapacity);
    if (d->locals == NULL) kwFatalOutOfMemory();
  }
  DebugLocal* local = &d->locals[d->localCount++];
  local->name = (char*)malloc((size_t)length + 1);
  if (local->name == NULL) kwFatalOutOfMemory();
  memcpy(local->name, name, (size_t)length);
  local->name[length] = '\0';
  local->slot = slot;
  local->start = fn->codeCount;
  local->end = -1;
}

/* The locals in slots >= firstSlot went out of scope here. */
void fnDebugLocalsEnd(ObjFn* fn, int firstSlot) {
  FnDebug* d = fn->debug;
  if (d == NULL) return;
  for (int i = 0; i < d->localCount; i++) {
    if (d->locals[i].end == -1 && d->locals[i].slot >= firstSlot) d->locals[i].end = fn->codeCount;
  }
}

void fnDebugFree(ObjFn* fn) {
  FnDebug* d = fn->debug;
  if (d == NULL) return;
  for (int i = 0; i < d->localCount; i++) free(d->locals[i].name);
  free(d->locals);
  free(d->patches);
  free(d);
  fn->debug = NULL;
}

static const uint8_t opOperandBytes[] = {
#define X(name, effect, operands) operands,
    OPCODE_LIST(X)
#undef X
};

/* The opcode at offset as compiled (under a breakpoint's patch if any). */
uint8_t originalOp(ObjFn* fn, int offset) {
  uint8_t op = fn->code[offset];
  if (op != OP_BREAKPOINT || fn->debug == NULL) return op;
  FnDebug* d = fn->debug;
  for (int i = 0; i < d->patchCount; i++) {
    if (d->patches[i].offset == offset) return d->patches[i].op;
  }
  return op;
}

int instructionSize(ObjFn* fn, int offset, uint8_t op) {
  int size = 1 + opOperandBytes[op];
  if (op == OP_CLOSURE) {
    ObjFn* inner = AS_FN(fn->constants[(fn->code[offset + 1] << 8) | fn->code[offset + 2]]);
    size += inner->numUpvalues * 2;
  }
  return size;
}

/* Instructions a breakpoint may replace: OP_BREAKPOINT runs them itself
 * (they cannot fail, jump, call or allocate), so the interpreter loop
 * needs no second dispatch path (which slowed every instruction). */
bool isPatchable(uint8_t op) {
  switch (op) {
    case OP_CONSTANT: case OP_NULL: case OP_FALSE: case OP_TRUE:
    case OP_LOAD_LOCAL: case OP_STORE_LOCAL: case OP_LOAD_UPVALUE: case OP_STORE_UPVALUE:
    case OP_LOAD_MODULE_VAR: case OP_STORE_MODULE_VAR: case OP_LOAD_FIELD_THIS:
    case OP_STORE_FIELD_THIS: case OP_POP:
      return true;
    default:
      return false;
  }
}

/* Patches, in every run of instructions of `line` (every line when line
 * is 0) in fn, the first one OP_BREAKPOINT can stand in for (a statement
 * starts with one: a load or a constant); returns how many instructions
 * were patched. */
int patchLine(ObjFn* fn, int line) {
  int patched = 0;
  int previousLine = -1;
  bool runDone = false;
  for (int offset = 0; offset < fn->codeCount;) {
    uint8_t op = originalOp(fn, offset);
    int here = POSITION_LINE(fn->lines[offset]);
    if (here != previousLine) runDone = false;
    bool wanted = line == 0 || here == line;
    if (wanted && !runDone && fn->code[offset] == OP_BREAKPOINT) runDone = true;
    if (wanted && !runDone && isPatchable(op)) {
      runDone = true;
      FnDebug* d = fnDebugOf(fn);
      if (d->patchCount >= d->patchCapacity) {
        d->patchCapacity = d->patchCapacity < 4 ? 4 : d->patchCapacity * 2;
        d->patches = (DebugPatch*)realloc(d->patches, sizeof(DebugPatch) * (size_t)d->patchCapacity);
        if (d->patches == NULL) kwFatalOutOfMemory();
      }
      d->patches[d->patchCount].offset = offset;
      d->patches[d->patchCount].op = op;
      d->patchCount++;
      fn->code[offset] = OP_BREAKPOINT;
      patched++;
    }
    previousLine = here;
    offset += instructionSize(fn, offset, op);
  }
  return patched;
}

/* Restores the instructions of `line` (every line when line is 0). */
void unpatchLine(ObjFn* fn, int line) {
  FnDebug* d = fn->debug;
  if (d == NULL) return;
  int kept = 0;
  for (int i = 0; i < d->patchCount; i++) {
    DebugPatch patch = d->patches[i];
    if (line == 0 || POSITION_LINE(fn->lines[patch.offset]) == line) {
      fn->code[patch.offset] = patch.op;
    } else {
      d->patches[kept++] = patch;
    }
  }
  d->patchCount = kept;
}

static bool fnInModule(ObjFn* fn, const char* module) {
  return fn->module != NULL && fn->module->name != NULL && strcmp(fn->module->name->chars, module) == 0;
}

int vmAddBreakpoint(VM* vm, const char* module, int line) {
  if (line <= 0) return 0;
  bool known = false;
  for (int i = 0; i < vm->breakpointCount; i++) {
    if (vm->breakpoints[i].line == line && strcmp(vm->breakpoints[i].module, module) == 0) known = true;
  }
  if (!known) {
    vm->breakpoints = (Breakpoint*)realloc(vm->breakpoints,
                                           sizeof(Breakpoint) * (size_t)(vm->breakpointCount + 1));
    if (vm->breakpoints == NULL) kwFatalOutOfMemory();
    vm->breakpoints[vm->breakpointCount].module = copyString(module);
    vm->breakpoints[vm->breakpointCount].line = line;
    vm->breakpointCount++;
  }
  int patched = 0;
  for (Obj* obj = vm->objects; obj != NULL; obj = obj->next) {
    if (obj->type == OBJ_FN && fnInModule((ObjFn*)obj, module)) patched += patchLine((ObjFn*)obj, line);
  }
  return patched;
}

int vmRemoveBreakpoint(VM* vm, const char* module, int line) {
  int found = 0;
  for (int i = 0; i < vm->breakpointCount; i++) {
    if (vm->breakpoints[i].line == line && strcmp(vm->breakpoints[i].module, module) == 0) {
      free(vm->breakpoints[i].module);
      vm->breakpoints[i] = vm->breakpoints[--vm->breakpointCount];
      found = 1;
      break;
    }
  }
  if (!found) return 0;
  for (Obj* obj = vm->objects; obj != NULL; obj = obj->next) {
    if (obj->type == OBJ_FN && fnInModule((ObjFn*)obj, module)) unpatchLine((ObjFn*)obj, line);
  }
  return 1;
}

/* Applies the breakpoints to a freshly compiled function and the
 * functions nested in it. */
static void patchCompiled(VM* vm, ObjFn* fn) {
  if (fn->module == NULL || fn->module->name == NULL) return;
  vmDebugPatchNew(vm, fn);
  for (int i = 0; i < vm->breakpointCount; i++) {
    if (strcmp(vm->breakpoints[i].module, fn->module->name->chars) == 0) {
      patchLine(fn, vm->breakpoints[i].line);
    }
  }
  for (int i = 0; i < fn->constantCount; i++) {
    if (IS_FN(fn->constants[i])) patchCompiled(vm, AS_FN(fn->constants[i]));
  }
}

/* Runs the host's breakpoint handler for the instruction at frame->ip - 1;
 * false when the handler failed (fiber->error is set). */
static bool hitBreakpoint(VM* vm, ObjFiber* fiber, CallFrame* frame) {
  if (vm->inBreakpoint) return true; /* no breakpoints inside the handler's own calls */
  ObjFn* fn = frame->closure->fn;
  const char* module = moduleNameOf(fn);
  vmFlushOutput(vm);
  vm->slotCount = 0;
  vm->inBreakpoint = true;
  int failed = host_breakpoint(vm->hostId, module, (int)strlen(module), frameLine(frame));
  vm->inBreakpoint = false;
  Value result = vm->slotCount > 0 ? vm->slots[0] : NULL_VAL;
  vm->slotCount = 0;
  if (failed) {
    fiber->error = IS_NULL(result) ? vmRuntimeErrorValue(vm, "Breakpoint handler failed.") : result;
    return false;
  }
  return true;
}

/* Frame `index` of the running Wren stack, innermost first: the current
 * fiber, the fibers that called it, then the same for every fiber a host
 * call (vmCallMethod) interrupted. NULL past the outermost frame. */
CallFrame* vmDebugFrame(VM* vm, int index) {
  ObjFiber* fiber = vm->fiber;
  HostCall* call = vm->hostCalls;
  if (index < 0) return NULL;
  for (;;) {
    for (ObjFiber* f = fiber; f != NULL; f = f->caller) {
      if (index < f->frameCount) return &f->frames[f->frameCount - 1 - index];
      index -= f->frameCount;
    }
    while (call != NULL && call->fiber == NULL) call = call->outer;
    if (call == NULL) return NULL;
    fiber = call->fiber;
    call = call->outer;
  }
}

int vmDebugFrameLine(CallFrame* frame) { return frameLine(frame); }

int vmDebugFrameColumn(CallFrame* frame) { return POSITION_COLUMN(framePosition(frame)); }

/* Writes "module<TAB>line<TAB>column" of the innermost frame a trace would
 * show of the fiber vm is running, or "" when it runs none. Used after a
 * trap (a time or memory limit), which leaves no error report: a frame
 * holds the position of its last call or loop back-edge. No allocation. */
void vmFaultWhere(VM* vm, char* out, int size) {
  out[0] = '\0';
  for (ObjFiber* fiber = vm->fiber; fiber != NULL; fiber = fiber->caller) {
    for (int i = fiber->frameCount - 1; i >= 0; i--) {
      CallFrame* frame = &fiber->frames[i];
      ObjFn* fn = frame->closure->fn;
      if (!frameIsShown(fn)) continue;
      int position = framePosition(frame);
      snprintf(out, (size_t)size, "%s\t%d\t%d", moduleNameOf(fn), POSITION_LINE(position),
               POSITION_COLUMN(position));
      return;
    }
  }
}

/* ---- Modules -------------------------------------------------------- */

ObjModule* vmGetModule(VM* vm, const char* name, int length) {
  Value key = name == NULL ? NULL_VAL : stringValue(vm, name, (size_t)length);
  Value module;
  if (mapGet(vm->modules, key, &module)) return AS_MODULE(module);
  return NULL;
}

/* Creates a module that sees every core variable. */
ObjModule* vmCreateModule(VM* vm, ObjString* name) {
  ObjModule* module = newModule(vm, name);
  vmPushRoot(vm, (Obj*)module);
  mapSet(vm, vm->modules, OBJ_VAL(name), OBJ_VAL(module));
  vmPopRoot(vm);
  ObjModule* core = vm->coreModule;
  for (int i = 0; i < core->variableCount; i++) {
    moduleAddVariable(vm, module, core->variableNames.names[i],
                      core->variableNames.lengths[i], core->variables[i]);
  }
  return module;
}

static ObjClosure* compileInModule(VM* vm, ObjModule* module, const char* source) {
  ObjFn* fn = compileModule(vm, module, source);
  if (fn == NULL) return NULL;
  if (vm->breakpointCount > 0 || vm->stepAll) patchCompiled(vm, fn);
  vmPushRoot(vm, (Obj*)fn);
  ObjClosure* closure = newClosure(vm, fn);
  vmPopRoot(vm);
  return closure;
}

/* The name a module is known by. An import starting with "./" or "../"
 * is relative to the importing module: a module itself imported that way
 * (its name starts with "./") has the folder of its name, any other module
 * (the script, a named module) the root folder. Such names are kept as
 * "./" followed by the path with "." and ".." segments folded, so one file
 * is one module however it is reached. Other names are used as written.
 * Not inlined: inside the dispatch loop's function it slowed every
 * instruction (for_loops ran ~25% slower, same instruction count). */
__attribute__((noinline)) static ObjString* importName(VM* vm, ObjModule* importer, ObjString* name) {
  const char* text = name->chars;
  bool relative = strncmp(text, "./", 2) == 0 || strncmp(text, "../", 3) == 0;
  if (!relative) return name;
  size_t size = name->length + 3;
  const char* base = "";
  size_t baseLength = 0;
  if (importer->name != NULL && strncmp(importer->name->chars, "./", 2) == 0) {
    base = importer->name->chars;
    const char* slash = strrchr(base, '/');
    baseLength = (size_t)(slash - base);
    size += baseLength + 1;
  }
  char* joined = (char*)malloc(size);
  char* out = (char*)malloc(size + 2);
  if (joined == NULL || out == NULL) kwFatalOutOfMemory();
  snprintf(joined, size, "%.*s%s%s", (int)baseLength, base, baseLength ? "/" : "", text);
  /* Fold the segments: "." is dropped, ".." removes the previous kept
   * segment or, with none left, stays (a path above the root). */
  size_t length = 0;
  int kept = 0; /* segments in out that ".." may remove */
  const char* p = joined;
  while (*p != '\0') {
    const char* end = strchr(p, '/');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n == 0 || (n == 1 && p[0] == '.')) {
      /* nothing */
    } else if (n == 2 && p[0] == '.' && p[1] == '.' && kept > 0) {
      while (length > 0 && out[length - 1] != '/') length--;
      if (length > 0) length--;
      kept--;
    } else {
      if (length > 0) out[length++] = '/';
      memcpy(out + length, p, n);
      length += n;
      if (!(n == 2 && p[0] == '.' && p[1] == '.')) kept++;
    }
    p += n;
    if (*p == '/') p++;
  }
  free(joined);
  bool above = length >= 2 && out[0] == '.' && out[1] == '.';
  ObjString* result;
  if (above) {
    result = newStringLength(vm, out, length);
  } else {
    char* prefixed = (char*)malloc(length + 3);
    if (prefixed == NULL) kwFatalOutOfMemory();
    memcpy(prefixed, "./", 2);
    memcpy(prefixed + 2, out, length);
    result = newStringLength(vm, prefixed, length + 2);
    free(prefixed);
  }
  free(out);
  return result;
}

/* Loads a module's source from the host and compiles it. */
ObjModule* vmLoadModule(VM* vm, ObjString* name, ObjClosure** outClosure) {
  const char* builtin = optModuleSource(name->chars, (int)name->length);
  if (builtin != NULL) { /* "random", "meta": before the host is asked */
    ObjModule* module = vmCreateModule(vm, name);
    *outClosure = compileInModule(vm, module, builtin);
    return module;
  }
  vmFlushOutput(vm);
  int length = host_load_module(vm->hostId, name->chars, (int)name->length);
  if (length < 0) return NULL;
  char* source = (char*)malloc((size_t)length + 1);
  if (source == NULL) kwFatalOutOfMemory();
  host_read_module(vm->hostId, source);
  source[length] = '\0';
  ObjModule* module = vmCreateModule(vm, name);
  *outClosure = compileInModule(vm, module, source);
  free(source);
  return module;
}

/* ---- Calls from primitives and the host ------------------------------ */

static Value methodNotFound(VM* vm, ObjClass* cls, int symbol) {
  return vmRuntimeErrorValue(vm, "%s does not implement '%s'.", cls->name->chars,
                             methodName(vm, symbol));
}

/* Whether binding fn (or a function nested in it) at fieldBase would move
 * fields it was bound to before: its field operands are offset by one
 * base per function, shared by every class made from the same code (a
 * class declared in a function body runs again), so methods already bound
 * to a class with another superclass would reach past that class's
 * instances. */
static bool movesFields(ObjFn* fn, int fieldBase) {
  if (fn->boundClass != NULL && fn->fieldBase != fieldBase) return true;
  for (int i = 0; i < fn->constantCount; i++) {
    if (IS_FN(fn->constants[i]) && movesFields(AS_FN(fn->constants[i]), fieldBase)) return true;
  }
  return false;
}

static void bindNestedFns(ObjFn* fn, ObjClass* cls, int fieldBase) {
  fn->boundClass = cls;
  fn->fieldBase = fieldBase;
  for (int i = 0; i < fn->constantCount; i++) {
    if (IS_FN(fn->constants[i])) bindNestedFns(AS_FN(fn->constants[i]), cls, fieldBase);
  }
}

static bool defineClass(VM* vm, ObjFiber* fiber, int numFields) {
  Value name = fiber->stackTop[-2];
  Value super = fiber->stackTop[-1];
  const char* className = AS_CSTRING(name);
  if (!IS_CLASS(super)) {
    fiber->error = vmRuntimeErrorValue(vm, "Class '%s' cannot inherit from a non-class object.",
                                       className);
    return false;
  }
  ObjClass* superclass = AS_CLASS(super);
  if (superclass->isSealed) {
    fiber->error = vmRuntimeErrorValue(vm, "Class '%s' cannot inherit from built-in class '%s'.",
                                       className, superclass->name->chars);
    return false;
  }
  if (superclass->numFields + numFields > MAX_FIELDS) {
    fiber->error = vmRuntimeErrorValue(
        vm, "Class '%s' may not have more than 255 fields, including inherited ones.",
        className);
    return false;
  }
  ObjClass* cls = newClass(vm, superclass, numFields, AS_STRING(name));
  fiber->stackTop--;
  fiber->stackTop[-1] = OBJ_VAL(cls);
  return true;
}

/* Binds a foreign method the compiler already resolved: id is the host's
 * id for it, or -1 for a built-in method of "random" or "meta". */
static bool defineForeign(VM* vm, ObjFiber* fiber, int symbol, bool isStatic, ObjFn* fn, int id) {
  ObjClass* cls = AS_CLASS(fiber->stackTop[-1]);
  const char* module = fn->module->name ? fn->module->name->chars : "core";
  const char* signature = methodName(vm, symbol);
  Primitive builtin = id < 0 ? optModuleForeign(module, cls->name->chars, isStatic, signature) : NULL;
  if (id < 0 && builtin == NULL) {
    /* compiled elsewhere (a bytecode entry): this VM's host binds it now */
    vmFlushOutput(vm);
    id = host_bind_foreign(vm->hostId, module, (int)strlen(module), cls->name->chars, (int)cls->name->length,
                           isStatic, signature, (int)strlen(signature));
  }
  if (builtin != NULL) {
    Method m = {.type = METHOD_PRIMITIVE, .as.primitive = builtin};
    bindMethod(vm, isStatic ? cls->obj.classObj : cls, symbol, m);
    return true;
  }
  if (id < 0) {
    fiber->error = vmRuntimeErrorValue(
        vm, "Could not find foreign method '%s' for class %s in module '%s'.", signature,
        cls->name->chars, module);
    return false;
  }
  Method m;
  m.type = METHOD_FOREIGN;
  m.as.foreignId = id;
  bindMethod(vm, isStatic ? cls->obj.classObj : cls, symbol, m);
  return true;
}

static bool callForeign(VM* vm, ObjFiber* fiber, int id, Value* args, int argc) {
  if (vm->slotCapacity < argc) {
    vm->slots = (Value*)realloc(vm->slots, sizeof(Value) * argc);
    vm->slotCapacity = argc;
  }
  memcpy(vm->slots, args, sizeof(Value) * argc);
  vm->slotCount = argc;
  vmFlushOutput(vm);
  /* The arguments go to the host encoded and the host writes a scalar
   * result back into memory: one crossing per call (slot_codec.c). */
  int64_t encoded = argc > 1 ? kwEncodeSlots(vm, 1, argc - 1, true) : 0;
  const uint8_t* encodedArgs = encoded < 0 ? NULL : (const uint8_t*)(uintptr_t)(uint32_t)encoded;
  int encodedLength = encoded < 0 ? -1 : (int)(encoded >> 32);
  bool saved = vm->inForeign;
  vm->inForeign = true;
#ifdef __wasm__
  int pages = (int)__builtin_wasm_memory_size(0);
#else
  int pages = 0;
#endif
  int64_t reply = host_foreign(vm->hostId, id, encodedArgs, encodedLength, pages);
  vm->inForeign = saved;
  Value result;
  bool failed = !kwForeignReply(vm, reply, &result);
  vm->slotCount = 0;
  if (failed) {
    fiber->error = IS_NULL(result) ? vmRuntimeErrorValue(vm, "Foreign method failed.") : result;
    return false;
  }
  args[0] = result;
  return true;
}

/* How an instance method's body is called. A getter `{ _f }` compiles to
 * LOAD_FIELD_THIS f, RETURN and a setter `{ _f = v }` to LOAD_LOCAL 1,
 * STORE_FIELD_THIS f, RETURN: accessor inlining runs those in the caller's
 * dispatch without a frame (an accessor cannot fail, call or allocate). */
static MethodType accessorKind(ObjFn* fn) {
  const uint8_t* code = fn->code;
  /* Each byte tested exists because the one before it matched: every
   * instruction is followed by at least OP_END. */
  if (fn->arity == 0 && code[0] == OP_LOAD_FIELD_THIS && code[2] == OP_RETURN) return METHOD_GETTER;
  if (fn->arity == 1 && code[0] == OP_LOAD_LOCAL && code[1] == 1 && code[2] == OP_STORE_FIELD_THIS &&
      code[4] == OP_RETURN) {
    return METHOD_SETTER;
  }
  return METHOD_BLOCK;
}

/* ---- Fiber switching on completion and error ------------------------- */

/* Delivers a value to a fiber that is about to run (see core.c). */
void fiberResumeWith(VM* vm, ObjFiber* fiber, Value value) {
  if (!fiber->started) {
    fiber->started = true;
    fiberClampFrames(vm, fiber);
    if (fiber->frameCount > 0 && fiber->frames[0].closure->fn->arity == 1) {
      fiberEnsureStack(vm, fiber, (int)(fiber->stackTop - fiber->stack) + 2);
      *fiber->stackTop++ = value;
    }
    return;
  }
  if (fiber->stackTop > fiber->stack) fiber->stackTop[-1] = value;
}

/* Handles fiber->error: returns false when no fiber catches it. */
static bool unwindError(VM* vm) {
  ObjFiber* failed = vm->fiber;
  Value error = failed->error;
  ObjFiber* current = failed;
  while (current != NULL) {
    current->error = error;
    ObjFiber* caller = current->caller;
    current->caller = NULL;
    if (current->state == FIBER_TRY && caller != NULL) {
      current->state = FIBER_OTHER;
      vm->fiber = caller;
      caller->stackTop[-1] = error;
      return true;
    }
    current = caller;
  }
  reportRuntimeError(vm, failed);
  vm->fiber = NULL;
  return false;
}

/* ---- The interpreter loop ------------------------------------------- */

static inline uint16_t readShortAt(uint8_t* ip) { return (uint16_t)((ip[0] << 8) | ip[1]); }

InterpretResult vmRunFiber(VM* vm, ObjFiber* start) {
  vm->fiber = start;
  vmPushRoot(vm, (Obj*)start);
  register ObjFiber* fiber;
  register CallFrame* frame;
  register uint8_t* ip;
  register Value* slots;
  register Value* sp;
  ObjFn* fn;
  int argc;
  int symbol;
  ObjClass* cls;
  Value* args;
  ObjClosure* pushed;   /* the closure a call pushes (see pushClosure) */
  int pushedSlots;      /* its argument slots, the receiver included */
  InterpretResult result = RESULT_SUCCESS;

#define READ_BYTE() (*ip++)
#define READ_SHORT() (ip += 2, readShortAt(ip - 2))
#define PUSH(v) (*sp++ = (v))
#define POP() (*--sp)
#define PEEK(n) (sp[-1 - (n)])
#define STORE_FRAME()      \
  do {                     \
    frame->ip = ip;        \
    fiber->stackTop = sp;  \
  } while (0)
#define LOAD_FRAME()                                  \
  do {                                                \
    fiber = vm->fiber;                                \
    frame = &fiber->frames[fiber->frameCount - 1];    \
    ip = frame->ip;                                   \
    slots = frame->stackStart;                        \
    sp = fiber->stackTop;                             \
    fn = frame->closure->fn;                          \
  } while (0)
#define RUNTIME_ERROR()       \
  do {                        \
    goto handleError;         \
  } while (0)
#define ERROR_MSG(...)                                           \
  do {                                                           \
    STORE_FRAME();                                               \
    fiber->error = vmRuntimeErrorValue(vm, __VA_ARGS__);         \
    goto handleError;                                            \
  } while (0)
#define SAFEPOINT()                             \
  do {                                          \
    if (vm->bytesAllocated > vm->nextGC) {      \
      STORE_FRAME();                            \
      gcCollect(vm);                            \
    }                                           \
  } while (0)

/* The instructions a breakpoint may replace (see isPatchable): written once,
 * expanded in the interpreter's switch and in OP_BREAKPOINT's. */
#define SIMPLE_INSTRUCTIONS                                                     \
  case OP_CONSTANT: PUSH(fn->constants[READ_SHORT()]); break;                   \
  case OP_NULL: PUSH(NULL_VAL); break;                                          \
  case OP_FALSE: PUSH(FALSE_VAL); break;                                        \
  case OP_TRUE: PUSH(TRUE_VAL); break;                                          \
  case OP_LOAD_LOCAL: PUSH(slots[READ_BYTE()]); break;                          \
  case OP_STORE_LOCAL: slots[READ_BYTE()] = PEEK(0); break;                     \
  case OP_LOAD_UPVALUE: PUSH(*frame->closure->upvalues[READ_BYTE()]->value); break; \
  case OP_STORE_UPVALUE: *frame->closure->upvalues[READ_BYTE()]->value = PEEK(0); break; \
  case OP_LOAD_MODULE_VAR: PUSH(fn->module->variables[READ_SHORT()]); break;    \
  case OP_STORE_MODULE_VAR: fn->module->variables[READ_SHORT()] = PEEK(0); break; \
  case OP_LOAD_FIELD_THIS:                                                      \
    PUSH(((ObjInstance*)AS_OBJ(slots[0]))->fields[READ_BYTE() + fn->fieldBase]); \
    break;                                                                      \
  case OP_STORE_FIELD_THIS:                                                     \
    ((ObjInstance*)AS_OBJ(slots[0]))->fields[READ_BYTE() + fn->fieldBase] = PEEK(0); \
    break;                                                                      \
  case OP_POP: sp--; break;

  LOAD_FRAME();
  if (vm->debugPoll) {
    if (!vmDebugPoll(vm, fiber, frame)) goto handleError;
    LOAD_FRAME();
  }
#ifdef KW_DEBUG
  static int trace = -1;
  if (trace == -1) trace = getenv("KW_TRACE") != NULL;
#endif
  for (;;) {
#ifdef KW_DEBUG
    if (trace) {
      fprintf(stderr, "[%s @%d depth %d] op %d\n", fn->debugName, (int)(ip - fn->code),
              (int)(sp - slots), *ip);
    }
#endif
    uint8_t instruction = READ_BYTE();
    switch (instruction) {
      SIMPLE_INSTRUCTIONS
      case OP_LOAD_FIELD: {
        int index = READ_BYTE() + fn->fieldBase;
        Value receiver = POP();
        PUSH(((ObjInstance*)AS_OBJ(receiver))->fields[index]);
        break;
      }
      case OP_STORE_FIELD: {
        int index = READ_BYTE() + fn->fieldBase;
        Value receiver = POP();
        ((ObjInstance*)AS_OBJ(receiver))->fields[index] = PEEK(0);
        break;
      }

#define BINARY_FAST(op, expr)                               \
  case op: {                                                \
    Value b = sp[-1];                                       \
    Value a = sp[-2];                                       \
    if (IS_NUM(a) && IS_NUM(b)) {                           \
      double x = AS_NUM(a), y = AS_NUM(b);                  \
      sp--;                                                 \
      sp[-1] = (expr);                                      \
      ip += 2;                                              \
      break;                                                \
    }                                                       \
    argc = 1;                                               \
    symbol = READ_SHORT();                                  \
    goto invoke;                                            \
  }
      BINARY_FAST(OP_ADD, NUM_VAL(x + y))
      BINARY_FAST(OP_SUB, NUM_VAL(x - y))
      BINARY_FAST(OP_MUL, NUM_VAL(x * y))
      BINARY_FAST(OP_DIV, NUM_VAL(x / y))
#undef BINARY_FAST

/* A comparison followed by JUMP_IF_FALSE (an `if` or `while` test) takes
 * the branch itself instead of pushing a Bool for the next dispatch to pop
 * (instruction fusion; a breakpoint cannot patch a JUMP_IF_FALSE). ip is
 * past the comparison's operands. */
#define BRANCH_ON(truth)                                   \
  if (ip[0] == OP_JUMP_IF_FALSE) {                         \
    sp--;                                                  \
    ip += (truth) ? 3 : 3 + readShortAt(ip + 1);           \
    break;                                                 \
  }                                                        \
  sp[-1] = BOOL_VAL(truth);                                \
  break;

#define COMPARE_FAST(op, expr)                              \
  case op: {                                                \
    Value b = sp[-1];                                       \
    Value a = sp[-2];                                       \
    if (IS_NUM(a) && IS_NUM(b)) {                           \
      double x = AS_NUM(a), y = AS_NUM(b);                  \
      bool truth = (expr);                                  \
      sp--;                                                 \
      ip += 2;                                              \
      BRANCH_ON(truth)                                      \
    }                                                       \
    argc = 1;                                               \
    symbol = READ_SHORT();                                  \
    goto invoke;                                            \
  }
      COMPARE_FAST(OP_LT, x < y)
      COMPARE_FAST(OP_GT, x > y)
      COMPARE_FAST(OP_LTE, x <= y)
      COMPARE_FAST(OP_GTE, x >= y)
#undef COMPARE_FAST

/* == and != answer here, without dispatch, for receivers whose classes
 * are sealed and keep the built-in equality: numbers (Num's own), and
 * strings, null and booleans (Object's: valuesEqual). Other receivers may
 * define their own ==, so they are called. */
#define EQUALITY_FAST(op, negate)                                  \
  case op: {                                                       \
    Value b = sp[-1];                                              \
    Value a = sp[-2];                                              \
    bool equal;                                                    \
    if (IS_NUM(a)) {                                               \
      equal = IS_NUM(b) && AS_NUM(a) == AS_NUM(b);                 \
    } else if (!IS_OBJ(a) || OBJ_TYPE(a) == OBJ_STRING) {          \
      equal = valuesEqual(a, b);                                   \
    } else {                                                       \
      argc = 1;                                                    \
      symbol = READ_SHORT();                                       \
      goto invoke;                                                 \
    }                                                              \
    sp--;                                                          \
    ip += 2;                                                       \
    BRANCH_ON(equal != (negate))                                   \
  }
      EQUALITY_FAST(OP_EQ, false)
      EQUALITY_FAST(OP_NEQ, true)
#undef EQUALITY_FAST
#undef BRANCH_ON

      /* for-in over lists and ranges without dispatch; those classes are
       * sealed, so their iterate methods cannot be replaced. */
      case OP_ITERATE:
      iterate: {
        Value seq = sp[-2];
        Value iter = sp[-1];
        Value next;
        if (IS_LIST(seq) && (IS_NULL(iter) || IS_NUM(iter))) {
          ObjList* list = AS_LIST(seq);
          double i = IS_NULL(iter) ? -1 : AS_NUM(iter);
          if (i != trunc(i)) goto iterateCall;
          next = (i >= -1 && i + 1 < list->count) ? NUM_VAL(i + 1) : FALSE_VAL;
        } else if (IS_RANGE(seq) && (IS_NULL(iter) || IS_NUM(iter))) {
          ObjRange* r = AS_RANGE(seq);
          if (r->from == r->to && !r->isInclusive) {
            next = FALSE_VAL;
          } else if (IS_NULL(iter)) {
            next = NUM_VAL(r->from);
          } else {
            double i = AS_NUM(iter);
            if (r->from < r->to) {
              i++;
              next = (i > r->to || (!r->isInclusive && i == r->to)) ? FALSE_VAL : NUM_VAL(i);
            } else {
              i--;
              next = (i < r->to || (!r->isInclusive && i == r->to)) ? FALSE_VAL : NUM_VAL(i);
            }
          }
        } else {
          goto iterateCall;
        }
        sp--;
        sp[-1] = next;
        ip += 2;
        /* Superinstruction by pattern (instruction fusion at dispatch): a
         * for-in loop compiles to ITERATE, STORE_LOCAL it, JUMP_IF_FALSE
         * exit, LOAD_LOCAL seq, LOAD_LOCAL it, ITERATOR_VALUE. When those
         * exact bytes follow and the loaded sequence is the one just
         * iterated, the five run here as one: the loop pays one dispatch
         * per step instead of six. A breakpoint patching any of them
         * breaks the pattern, and each byte tested is known to exist from
         * the one before (an instruction is followed by at least OP_END). */
        if (ip[0] == OP_STORE_LOCAL && ip[2] == OP_JUMP_IF_FALSE && ip[5] == OP_LOAD_LOCAL &&
            ip[7] == OP_LOAD_LOCAL && ip[8] == ip[1] && ip[9] == OP_ITERATOR_VALUE) {
          if (next == FALSE_VAL) {
            slots[ip[1]] = next;
            sp--;
            ip += 5 + readShortAt(ip + 3);
            break;
          }
          if (slots[ip[6]] == seq) {
            slots[ip[1]] = next;
            sp[-1] = IS_RANGE(seq) ? next : AS_LIST(seq)->items[(int)AS_NUM(next)];
            ip += 12;
          }
        }
        break;
      iterateCall:
        argc = 1;
        symbol = READ_SHORT();
        goto invoke;
      }
      case OP_ITERATOR_VALUE: {
        Value seq = sp[-2];
        Value iter = sp[-1];
        if (IS_LIST(seq) && IS_NUM(iter)) {
          ObjList* list = AS_LIST(seq);
          double i = AS_NUM(iter);
          if (i >= 0 && i < list->count && i == trunc(i)) {
            sp--;
            sp[-1] = list->items[(int)i];
            ip += 2;
            break;
          }
        } else if (IS_RANGE(seq) && IS_NUM(iter)) {
          sp--;
          sp[-1] = iter;
          ip += 2;
          break;
        }
        argc = 1;
        symbol = READ_SHORT();
        goto invoke;
      }

      case OP_CALL: {
        argc = READ_BYTE();
        symbol = READ_SHORT();
        goto invoke;
      case OP_SUPER:
        argc = READ_BYTE();
        symbol = READ_SHORT();
        args = sp - argc - 1;
        cls = fn->boundClass ? fn->boundClass->superclass : NULL;
        if (cls == NULL) ERROR_MSG("No superclass.");
        goto dispatch;
      invoke:
        args = sp - argc - 1;
        cls = getClass(vm, args[0]);
      dispatch:
        if (symbol >= cls->methodCount || cls->methods[symbol].type == METHOD_NONE) {
          STORE_FRAME();
          fiber->error = methodNotFound(vm, cls, symbol);
          RUNTIME_ERROR();
        }
        Method* method = &cls->methods[symbol];
        switch (method->type) {
          case METHOD_PRIMITIVE: {
            STORE_FRAME();
            PrimResult r = method->as.primitive(vm, args, argc + 1);
            if (r == PRIM_VALUE) {
              sp = args + 1;
              break;
            }
            if (r == PRIM_ERROR) {
              if (vm->fiber != fiber) fiber->stackTop = args + 1;
              goto handleError;
            }
            if (r == PRIM_SWITCH) {
              fiber->stackTop = args + 1;
              if (vm->fiber == NULL || vm->fiber->frameCount == 0) goto finished;
              LOAD_FRAME();
              break;
            }
            /* PRIM_CALL: args[0] is a closure to run in place of the
             * method (a sequence view's step), pushed like Fn.call's. */
            goto callFn;
          }
          case METHOD_FN_CALL:
          callFn: {
            /* Fn.call: the closure is the receiver; extra arguments are
             * dropped, too few is an error. */
            pushed = AS_CLOSURE(args[0]);
            int arity = pushed->fn->arity;
            if (argc < arity) ERROR_MSG("Function expects more arguments.");
            sp = args + arity + 1;
            pushedSlots = arity + 1;
            goto pushClosure;
          }
          case METHOD_GETTER: {
            /* Accessor inlining (see accessorKind): the getter's two
             * instructions run here without a frame. A breakpoint patches
             * the first one, which sends the call down the normal path. */
            ObjFn* callee = method->as.closure->fn;
            if (callee->code[0] == OP_LOAD_FIELD_THIS) {
              args[0] = ((ObjInstance*)AS_OBJ(args[0]))->fields[callee->code[1] + callee->fieldBase];
              sp = args + 1;
              break;
            }
            goto callBlock;
          }
          case METHOD_SETTER: {
            ObjFn* callee = method->as.closure->fn;
            if (callee->code[0] == OP_LOAD_LOCAL && callee->code[2] == OP_STORE_FIELD_THIS) {
              ((ObjInstance*)AS_OBJ(args[0]))->fields[callee->code[3] + callee->fieldBase] = args[1];
              args[0] = args[1];
              sp = args + 1;
              break;
            }
            goto callBlock;
          }
          case METHOD_BLOCK:
          callBlock:
            pushed = method->as.closure;
            pushedSlots = argc + 1;
          pushClosure: {
            /* Every closure call (a method, Fn.call, a sequence view's
             * step) pushes its frame here: `pushed` with `pushedSlots`
             * arguments, the receiver included, starting at args. */
            ObjFn* callee = pushed->fn;
            /* Fast path: room for the frame and its stack already. */
            if (fiber->frameCount < fiber->frameCapacity &&
                args + callee->maxSlots + 1 <= fiber->stack + fiber->stackCapacity) {
              frame->ip = ip;
              frame = &fiber->frames[fiber->frameCount++];
              frame->closure = pushed;
              frame->stackStart = args;
              ip = callee->code;
              slots = args;
              fn = callee;
              break;
            }
            STORE_FRAME();
            if (!pushFrame(vm, fiber, pushed, pushedSlots)) goto handleError;
            LOAD_FRAME();
            break;
          }
          case METHOD_FOREIGN:
            STORE_FRAME();
            if (!callForeign(vm, fiber, method->as.foreignId, args, argc + 1)) goto handleError;
            sp = args + 1;
            break;
          case METHOD_NONE:
            break;
        }
        break;
      }

      case OP_JUMP: {
        int offset = READ_SHORT();
        ip += offset;
        break;
      }
      case OP_LOOP: {
        int offset = READ_SHORT();
        /* The frame keeps this instruction's end, placed at the loop's
         * keyword, so a time limit firing in a loop with no calls still
         * finds its line (vmFaultWhere). */
        frame->ip = ip;
        ip -= offset;
        SAFEPOINT();
        if (vm->debugPoll) { /* the debugger asks (debug_step.c) */
          STORE_FRAME();
          if (!vmDebugPoll(vm, fiber, frame)) goto handleError;
          LOAD_FRAME();
        }
        /* A for-in loop jumps back to LOAD_LOCAL seq, LOAD_LOCAL it,
         * ITERATE: those run from here without two dispatches (the same
         * instruction fusion as in ITERATE; a patched byte breaks the
         * pattern). */
        if (ip[0] == OP_LOAD_LOCAL && ip[2] == OP_LOAD_LOCAL && ip[4] == OP_ITERATE) {
          sp[0] = slots[ip[1]];
          sp[1] = slots[ip[3]];
          sp += 2;
          ip += 5;
          goto iterate;
        }
        break;
      }
      case OP_JUMP_IF_FALSE: {
        int offset = READ_SHORT();
        if (IS_FALSY(POP())) ip += offset;
        break;
      }
      case OP_AND: {
        int offset = READ_SHORT();
        if (IS_FALSY(PEEK(0))) {
          ip += offset;
        } else {
          sp--;
        }
        break;
      }
      case OP_OR: {
        int offset = READ_SHORT();
        if (IS_FALSY(PEEK(0))) {
          sp--;
        } else {
          ip += offset;
        }
        break;
      }
      case OP_CLOSE_UPVALUE:
        closeUpvalues(fiber, sp - 1);
        sp--;
        break;
      case OP_RETURN: {
        Value value = POP();
        if (fiber->openUpvalues != NULL) closeUpvalues(fiber, slots);
        fiber->frameCount--;
        if (fiber->frameCount == 0) {
          fiber->stackTop = fiber->stack;
          *fiber->stackTop++ = value;
          ObjFiber* caller = fiber->caller;
          if (caller == NULL) {
            vm->fiber = NULL;
            goto finished;
          }
          fiber->caller = NULL;
          fiber->stackTop = fiber->stack;
          vm->fiber = caller;
          caller->stackTop[-1] = value;
          if (caller->frameCount == 0) goto finished;
          LOAD_FRAME();
          SAFEPOINT();
          break;
        }
        sp = slots;
        PUSH(value);
        frame = &fiber->frames[fiber->frameCount - 1];
        ip = frame->ip;
        slots = frame->stackStart;
        fn = frame->closure->fn;
        SAFEPOINT();
        break;
      }
      case OP_CLOSURE: {
        ObjFn* inner = AS_FN(fn->constants[READ_SHORT()]);
        STORE_FRAME();
        ObjClosure* closure = newClosure(vm, inner);
        PUSH(OBJ_VAL(closure));
        for (int i = 0; i < inner->numUpvalues; i++) {
          uint8_t isLocal = READ_BYTE();
          uint8_t index = READ_BYTE();
          closure->upvalues[i] = isLocal ? captureUpvalue(vm, fiber, slots + index)
                                         : frame->closure->upvalues[index];
        }
        SAFEPOINT();
        break;
      }
      case OP_CONSTRUCT: {
        STORE_FRAME();
        slots[0] = OBJ_VAL(newInstance(vm, AS_CLASS(slots[0])));
        break;
      }
      case OP_CLASS: {
        int numFields = READ_BYTE();
        STORE_FRAME();
        if (!defineClass(vm, fiber, numFields)) goto handleError;
        sp = fiber->stackTop;
        break;
      }
      case OP_METHOD_INSTANCE:
      case OP_METHOD_STATIC: {
        int symbol = READ_SHORT();
        ObjClass* cls = AS_CLASS(PEEK(1));
        ObjClosure* closure = AS_CLOSURE(PEEK(0));
        if (instruction == OP_METHOD_STATIC) {
          cls = cls->obj.classObj;
          bindNestedFns(closure->fn, cls, 0);
        } else {
          int base = cls->superclass ? cls->superclass->numFields : 0;
          if (movesFields(closure->fn, base)) {
            ERROR_MSG("Class '%s' inherits %d fields, but its methods were bound to a class made from "
                      "the same code with another number.", cls->name->chars, base);
          }
          bindNestedFns(closure->fn, cls, base);
        }
        Method m;
        m.type = instruction == OP_METHOD_INSTANCE ? accessorKind(closure->fn) : METHOD_BLOCK;
        m.as.closure = closure;
        STORE_FRAME();
        bindMethod(vm, cls, symbol, m);
        sp--;
        break;
      }
      case OP_FOREIGN_INSTANCE:
      case OP_FOREIGN_STATIC: {
        int symbol = READ_SHORT();
        int id = (int)AS_NUM(fn->constants[READ_SHORT()]);
        STORE_FRAME();
        if (!defineForeign(vm, fiber, symbol, instruction == OP_FOREIGN_STATIC, fn, id)) {
          goto handleError;
        }
        break;
      }
      case OP_NEW_LIST:
        STORE_FRAME();
        PUSH(OBJ_VAL(newList(vm, 0)));
        break;
      case OP_LIST_APPEND: {
        Value v = POP();
        STORE_FRAME();
        listAppend(vm, AS_LIST(PEEK(0)), v);
        break;
      }
      case OP_END_CLASS: {
        Value attributes = POP();
        AS_CLASS(PEEK(0))->attributes = attributes;
        break;
      }
      case OP_NEW_MAP:
        STORE_FRAME();
        PUSH(OBJ_VAL(newMap(vm)));
        break;
      case OP_MAP_INSERT: {
        Value value = POP();
        Value key = POP();
        if (!isValueType(key)) ERROR_MSG("Key must be a value type.");
        STORE_FRAME();
        mapSet(vm, AS_MAP(PEEK(0)), key, value);
        break;
      }
      case OP_END_MODULE:
        vm->lastModule = fn->module;
        PUSH(NULL_VAL);
        break;
      case OP_IMPORT_MODULE: {
        Value name = fn->constants[READ_SHORT()];
        STORE_FRAME();
        name = OBJ_VAL(importName(vm, fn->module, AS_STRING(name)));
        Value existing;
        if (mapGet(vm->modules, name, &existing)) {
          vm->lastModule = AS_MODULE(existing);
          PUSH(NULL_VAL);
          break;
        }
        ObjClosure* closure = NULL;
        vmPushRoot(vm, AS_OBJ(name));
        ObjModule* module = vmLoadModule(vm, AS_STRING(name), &closure);
        vmPopRoot(vm);
        if (module == NULL) ERROR_MSG("Could not load module '%s'.", AS_CSTRING(name));
        if (closure == NULL) {
          /* Keep the compile error for the trace of the runtime error. */
          free(vm->errorDetail);
          vm->errorDetail = copyString(vm->errorMessage);
          ERROR_MSG("Could not compile module '%s'.", AS_CSTRING(name));
        }
        PUSH(OBJ_VAL(closure));
        STORE_FRAME();
        if (!pushFrame(vm, fiber, closure, 1)) goto handleError;
        LOAD_FRAME();
        break;
      }
      case OP_IMPORT_VARIABLE: {
        Value name = fn->constants[READ_SHORT()];
        ObjModule* module = vm->lastModule;
        int index = moduleFindVariable(module, AS_CSTRING(name), (int)AS_STRING(name)->length);
        if (index == -1) {
          ERROR_MSG("Could not find a variable named '%s' in module '%s'.", AS_CSTRING(name),
                    module->name ? module->name->chars : "core");
        }
        PUSH(module->variables[index]);
        break;
      }
      case OP_BREAKPOINT: {
        /* A patched instruction: tell the host, then run the original
         * here (patchLine only patches these kinds). */
        STORE_FRAME();
        if (!hitBreakpoint(vm, fiber, frame)) goto handleError;
        LOAD_FRAME();
        switch (originalOp(fn, (int)(ip - fn->code) - 1)) {
          SIMPLE_INSTRUCTIONS
          default: ERROR_MSG("Invalid instruction under a breakpoint.");
        }
        break;
      }
      case OP_END:
      default:
        ERROR_MSG("Invalid instruction.");
    }
    continue;

  handleError:
    if (vm->debugErrors) vmDebugError(vm, vm->fiber); /* before the frames unwind */
    if (!unwindError(vm)) {
      result = RESULT_RUNTIME_ERROR;
      goto finished;
    }
    if (vm->fiber->frameCount == 0) goto finished;
    LOAD_FRAME();
  }

finished:
  vmPopRoot(vm);
  return result;
#undef READ_BYTE
#undef READ_SHORT
#undef PUSH
#undef POP
#undef PEEK
#undef SIMPLE_INSTRUCTIONS
}

/* ---- Entry points --------------------------------------------------- */

static InterpretResult runModuleClosure(VM* vm, ObjClosure* closure);

InterpretResult vmInterpret(VM* vm, const char* moduleName, const char* source) {
  vmClearError(vm);
  ObjModule* module = vmGetModule(vm, moduleName, (int)strlen(moduleName));
  if (module == NULL) module = vmCreateModule(vm, newString(vm, moduleName));
  vmPushRoot(vm, (Obj*)module);
  ObjClosure* closure = compileInModule(vm, module, source);
  vmPopRoot(vm);
  if (closure == NULL) return RESULT_COMPILE_ERROR;
  return runModuleClosure(vm, closure);
}

/* Runs a module body read from its serialized form (bytecode.c). */
InterpretResult vmRunModuleFn(VM* vm, ObjFn* fn) {
  if (vm->breakpointCount > 0 || vm->stepAll) patchCompiled(vm, fn);
  vmPushRoot(vm, (Obj*)fn);
  ObjClosure* closure = newClosure(vm, fn);
  vmPopRoot(vm);
  return runModuleClosure(vm, closure);
}

static InterpretResult runModuleClosure(VM* vm, ObjClosure* closure) {
#ifdef KW_DEBUG
  if (getenv("KW_DUMP")) disassemble(vm, closure->fn);
#endif
  vmPushRoot(vm, (Obj*)closure);
  ObjFiber* fiber = newFiber(vm, closure);
  vmPopRoot(vm);
  fiber->state = FIBER_ROOT;
  fiber->started = true;
  fiberClampFrames(vm, fiber);
  /* Source run by the host while Wren code is paused under it (a debugger
   * evaluating at a breakpoint) leaves the paused fiber as it was. */
  ObjFiber* saved = vm->fiber;
  HostCall hostCall = {saved, vm->hostCalls};
  vm->hostCalls = &hostCall;
  InterpretResult result = vmRunFiber(vm, fiber);
  vm->hostCalls = hostCall.outer;
  vm->fiber = saved;
  vmFlushOutput(vm);
  return result;
}

/* A fresh root fiber for a host call; the cached one when it is idle. */
static ObjFiber* acquireApiFiber(VM* vm) {
  ObjFiber* fiber;
  if (vm->apiDepth < API_FIBERS) {
    /* A fiber the script got hold of (Fiber.current) is left to it: a
     * reference kept from an earlier call must find that call's fiber
     * (finished, or suspended where it stopped), not a later call's. A
     * finished one keeps only its identity and error: its stack and
     * frames go to the level's next fiber, so a script taking
     * Fiber.current in every call costs one fiber header per call (the
     * collector frees those it drops), not a stack and frames. */
    fiber = vm->apiFibers[vm->apiDepth];
    if (fiber != NULL && fiber->escaped) {
      ObjFiber* kept = fiber;
      bool finished = kept->frameCount == 0 || !IS_NULL(kept->error);
      if (finished) closeUpvalues(kept, kept->stack);
      fiber = vm->apiFibers[vm->apiDepth] = finished ? newFiberFrom(vm, kept) : newFiber(vm, NULL);
    } else if (fiber == NULL) {
      fiber = vm->apiFibers[vm->apiDepth] = newFiber(vm, NULL);
    }
  } else {
    fiber = newFiber(vm, NULL);  /* deeper than the kept levels: a fresh one */
  }
  vm->apiDepth++;
  /* Closures made by the last call on this fiber (one that failed or
   * suspended leaves its upvalues open) keep their values, not the slots
   * of the call that reuses the stack. */
  closeUpvalues(fiber, fiber->stack);
  fiber->stackTop = fiber->stack;
  fiber->frameCount = 0;
  fiber->caller = NULL;
  fiber->error = NULL_VAL;
  fiber->state = FIBER_ROOT;
  fiber->started = true;
  fiberClampFrames(vm, fiber);
  return fiber;
}

/* Calls method `symbol` on args[0] with argc-1 arguments from the host. */
InterpretResult vmCallMethod(VM* vm, int symbol, int argc, Value* args, Value* result) {
  vmClearError(vm);
  ObjClass* cls = getClass(vm, args[0]);
  if (symbol >= cls->methodCount || cls->methods[symbol].type == METHOD_NONE) {
    ObjFiber* f = newFiber(vm, NULL);
    f->error = methodNotFound(vm, cls, symbol);
    reportRuntimeError(vm, f);
    return RESULT_RUNTIME_ERROR;
  }
  Method* method = &cls->methods[symbol];
  ObjFiber* fiber = acquireApiFiber(vm);
  fiberEnsureStack(vm, fiber, argc + 1);
  for (int i = 0; i < argc; i++) *fiber->stackTop++ = args[i];
  ObjFiber* saved = vm->fiber;
  HostCall hostCall = {saved, vm->hostCalls};
  vm->hostCalls = &hostCall;
  vm->fiber = fiber;
  /* A safe point (the receiver and arguments are on the rooted fiber): a
   * call that neither loops nor returns into a caller frame reaches none
   * in the interpreter, so garbage made by host calls alone would never
   * be collected and memory grew until the instance's cap. */
  gcMaybeCollect(vm);
  InterpretResult r = RESULT_SUCCESS;
  switch (method->type) {
    case METHOD_PRIMITIVE: {
      PrimResult p = method->as.primitive(vm, fiber->stack, argc);
      if (p == PRIM_VALUE) {
        *result = fiber->stack[0];
        break;
      }
      if (p == PRIM_ERROR) {
        if (vm->fiber != fiber) fiber->stackTop = fiber->stack + 1;
        if (!unwindError(vm)) {
          r = RESULT_RUNTIME_ERROR;
          break;
        }
      } else if (p == PRIM_CALL) {
        ObjClosure* closure = AS_CLOSURE(fiber->stack[0]);
        if (argc - 1 < closure->fn->arity) {
          fiber->error = vmRuntimeErrorValue(vm, "Function expects more arguments.");
          reportRuntimeError(vm, fiber);
          r = RESULT_RUNTIME_ERROR;
          break;
        }
        fiber->stackTop = fiber->stack + closure->fn->arity + 1;
        pushFrame(vm, fiber, closure, closure->fn->arity + 1);
      } else {
        fiber->stackTop = fiber->stack + 1;
      }
      if (vm->fiber != NULL && vm->fiber->frameCount > 0) r = vmRunFiber(vm, vm->fiber);
      *result = fiber->stackTop > fiber->stack ? fiber->stack[0] : NULL_VAL;
      break;
    }
    case METHOD_FN_CALL: {
      ObjClosure* closure = AS_CLOSURE(args[0]);
      if (argc - 1 < closure->fn->arity) {
        fiber->error = vmRuntimeErrorValue(vm, "Function expects more arguments.");
        reportRuntimeError(vm, fiber);
        r = RESULT_RUNTIME_ERROR;
        break;
      }
      fiber->stackTop = fiber->stack + closure->fn->arity + 1;
      pushFrame(vm, fiber, closure, closure->fn->arity + 1);
      r = vmRunFiber(vm, fiber);
      *result = fiber->stack[0];
      break;
    }
    case METHOD_BLOCK:
    case METHOD_GETTER:
    case METHOD_SETTER:
      pushFrame(vm, fiber, method->as.closure, argc);
      r = vmRunFiber(vm, fiber);
      *result = fiber->stack[0];
      break;
    case METHOD_FOREIGN:
      if (!callForeign(vm, fiber, method->as.foreignId, fiber->stack, argc)) {
        reportRuntimeError(vm, fiber);
        r = RESULT_RUNTIME_ERROR;
      }
      *result = fiber->stack[0];
      break;
    case METHOD_NONE:
      break;
  }
  vm->fiber = saved;
  vm->hostCalls = hostCall.outer;
  vm->apiDepth--;
  vmFlushOutput(vm);
  return r;
}
