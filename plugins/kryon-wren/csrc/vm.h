/* vm.h -- The VM state shared by every stage of the Kryon Wren VM.
 *
 * One VM owns its heap (all objects, GC bookkeeping), its loaded modules,
 * the global table of method signatures, the currently running fiber,
 * the embedding API's slots and handles and the last error report.
 */
#ifndef KW_VM_H
#define KW_VM_H

#include "value.h"

/* ObjFn.lines holds each code byte's source position: the line in the low
 * POSITION_LINE_BITS bits and the column above them (0 when the column is
 * past MAX_SOURCE_COLUMN: it is then left unknown). Longer scripts than
 * MAX_SOURCE_LINE lines are a compile error. */
#define POSITION_LINE_BITS 21
#define MAX_SOURCE_LINE ((1 << POSITION_LINE_BITS) - 1)
#define MAX_SOURCE_COLUMN 1023
#define POSITION(line, column) \
  ((line) | (((column) > MAX_SOURCE_COLUMN ? 0 : (column)) << POSITION_LINE_BITS))
#define POSITION_LINE(p) ((p) & MAX_SOURCE_LINE)
#define POSITION_COLUMN(p) ((int)((unsigned)(p) >> POSITION_LINE_BITS))

#define MAX_PARAMETERS 16
#define MAX_FIELDS 255
#define MAX_TEMP_ROOTS 64
#define FIBER_MAX_FRAMES 100000
#define OUTPUT_BUFFER_SIZE 4096
/* Nesting levels of host calls whose fibers a VM keeps for reuse. */
#define API_FIBERS 8

typedef enum {
  RESULT_SUCCESS = 0,
  RESULT_COMPILE_ERROR = 1,
  RESULT_RUNTIME_ERROR = 2
} InterpretResult;

/* A handle pins a value for the host until it is released. */
typedef struct Handle {
  Value value;
  struct Handle* prev;
  struct Handle* next;
} Handle;

/* A new handle pinning value, linked into vm's list (api.c). */
Handle* vmNewHandle(VM* vm, Value value);

/* Slot `slot` of vm, the slots grown to hold it (a negative slot traps) (api.c). */
Value* vmSlotAt(VM* vm, int slot);

/* Debug information of one function (ObjFn.debug), made by the compiler
 * only for functions that declare named locals and by the breakpoint code
 * for patched functions: named locals with their slot and the code range
 * [start, end) where the slot holds them, and the opcodes a breakpoint
 * replaced with OP_BREAKPOINT. */
typedef struct {
  char* name;
  int slot;
  int start;
  int end; /* -1 while the compiler still has the local in scope */
} DebugLocal;

typedef struct {
  int offset;
  uint8_t op;
} DebugPatch;

typedef struct FnDebug {
  DebugLocal* locals;
  int localCount;
  int localCapacity;
  DebugPatch* patches;
  int patchCount;
  int patchCapacity;
} FnDebug;

/* A breakpoint: a line of a module (its name). */
typedef struct {
  char* module;
  int line;
} Breakpoint;

/* The fiber a host call interrupted (vmCallMethod), so stack inspection
 * sees the Wren frames below a host function that called back into Wren. */
typedef struct HostCall {
  ObjFiber* fiber;
  struct HostCall* outer;
} HostCall;

struct VM {
  /* Core classes. */
  ObjClass* objectClass;
  ObjClass* classClass;
  ObjClass* boolClass;
  ObjClass* nullClass;
  ObjClass* numClass;
  ObjClass* stringClass;
  ObjClass* listClass;
  ObjClass* mapClass;
  ObjClass* rangeClass;
  ObjClass* fnClass;
  ObjClass* fiberClass;
  ObjClass* mapEntryClass; /* what map iteration yields */

  /* Heap. */
  Obj* objects;
  size_t bytesAllocated;
  size_t nextGC;
  size_t heapMinimum;
  Obj** grayStack;
  int grayCount;
  int grayCapacity;
  Obj* tempRoots[MAX_TEMP_ROOTS];
  int tempRootCount;
  int gcCount;
  bool gcStress; /* collect at every safe point (debug builds) */

  /* Modules and symbols. */
  ObjMap* modules;
  ObjModule* coreModule;
  ObjModule* lastModule;
  SymbolTable methodNames;

  /* Execution. */
  ObjFiber* fiber;
  int hostId;          /* passed to every host import */
  bool inForeign;      /* a foreign method is running */
  int maxFrames;       /* call frames one fiber may hold (policy or FIBER_MAX_FRAMES) */
  HostCall* hostCalls; /* innermost host call running Wren code */
  /* The kryon module's HostRef and HostFn classes once the host named them
   * (wren_set_host_classes): a foreign method's argument of exactly one of
   * these classes goes to the host as its registry number (slot_codec.c).
   * Only the host makes their instances (wren_new_host_object), so such an
   * instance's number is one the host handed to this VM. */
  ObjClass* hostClasses[2];
  bool noHostIdTags;   /* a test turned the 'r' tag off (wren_host_id_tags) */

  /* Debugging: breakpoints (module, line), applied by patching code. */
  Breakpoint* breakpoints;
  int breakpointCount;
  bool inBreakpoint;   /* the host is handling a breakpoint */
  bool stepAll;        /* every line is patched (debug_step.c) */
  int debugPoll;       /* set by the host from any thread: call it back soon */
  bool debugErrors;    /* tell the host of each runtime error where it is raised */
  char* debugText;     /* last wren_debug_stack text */

  /* Embedding API. */
  /* Fibers host calls run on, one per nesting level of host calls into
   * this VM (a Kryon.call back into its own script is the second level),
   * reused: a nested call would otherwise allocate a fiber every time. */
  ObjFiber* apiFibers[API_FIBERS];
  int apiDepth;        /* host calls into this VM running now */
  int status;          /* result of the last fast-path call */
  Value* slots;
  int slotCount;
  int slotCapacity;
  Handle* handles;

  /* Output of System.print/write, handed to the host in batches; the
   * length comes first so the host can read both after a trap. */
  int outputLength;
  char output[OUTPUT_BUFFER_SIZE];

  /* Last error (owned C strings). */
  char* errorMessage;
  char* errorModule;
  int errorLine;
  int errorColumn; /* 0 when unknown */
  char* errorTrace;
  char* errorDetail; /* extra text for the next runtime error's trace */

  /* Well-known method symbols. */
  int symIterate;
  int symIteratorValue;
  int symToString;
  int symEquals;
  int symCall[MAX_PARAMETERS + 1];
};

/* The class of any value; inline because every dynamic call asks it. */
static inline ObjClass* getClass(VM* vm, Value v) {
  if (IS_NUM(v)) return vm->numClass;
  if (IS_OBJ(v)) return AS_OBJ(v)->classObj;
  if (v == NULL_VAL) return vm->nullClass;
  return vm->boolClass;
}

/* vm.c */
VM* vmNew(int hostId);
void vmFree(VM* vm);
InterpretResult vmInterpret(VM* vm, const char* moduleName, const char* source);
InterpretResult vmRunFiber(VM* vm, ObjFiber* fiber);
InterpretResult vmRunModuleFn(VM* vm, ObjFn* fn);
ObjModule* vmCreateModule(VM* vm, ObjString* name);
InterpretResult vmCallMethod(VM* vm, int symbol, int argc, Value* args, Value* result);
ObjModule* vmGetModule(VM* vm, const char* name, int length);
ObjModule* vmLoadModule(VM* vm, ObjString* name, ObjClosure** outClosure);
void vmSetError(VM* vm, const char* message, const char* module, int line);
void vmSetErrorColumn(VM* vm, int column);
void vmClearError(VM* vm);
Value vmRuntimeErrorValue(VM* vm, const char* format, ...);
void vmPushRoot(VM* vm, Obj* obj);
void vmPopRoot(VM* vm);
void fiberEnsureStack(VM* vm, ObjFiber* fiber, int needed);
void vmWrite(VM* vm, const char* text, int length);
void vmFlushOutput(VM* vm);
void fiberResumeWith(VM* vm, ObjFiber* fiber, Value value);
const char* methodName(VM* vm, int symbol);
void vmSetMaxFrames(VM* vm, int maxFrames);

/* Debug support (vm.c). The compiler records named locals; breakpoints
 * patch the first instruction of each run of a line with OP_BREAKPOINT. */
void fnDebugLocalBegin(ObjFn* fn, const char* name, int length, int slot);
void fnDebugLocalsEnd(ObjFn* fn, int firstSlot);
int fnDebugUpvalue(ObjFn* fn, const char* name, int length, int index);
void fnDebugFree(ObjFn* fn);
int vmAddBreakpoint(VM* vm, const char* module, int line);
int vmRemoveBreakpoint(VM* vm, const char* module, int line);
CallFrame* vmDebugFrame(VM* vm, int index);
uint8_t originalOp(ObjFn* fn, int offset);
int instructionSize(ObjFn* fn, int offset, uint8_t op);
bool isPatchable(uint8_t op);
int patchLine(ObjFn* fn, int line);
void unpatchLine(ObjFn* fn, int line);
/* debug_step.c */
void vmDebugPatchNew(VM* vm, ObjFn* fn);
bool vmDebugPoll(VM* vm, ObjFiber* fiber, CallFrame* frame);
void vmDebugError(VM* vm, ObjFiber* fiber);
int vmDebugFrameLine(CallFrame* frame);
int vmDebugFrameColumn(CallFrame* frame);
void vmFaultWhere(VM* vm, char* out, int size);

/* memory.c */
extern int kwOutOfMemory;
void kwFatalOutOfMemory(void);
void gcCollect(VM* vm);
void gcMaybeCollect(VM* vm);
void gcFreeAll(VM* vm);
void gcMarkValue(VM* vm, Value v);
void gcMarkObject(VM* vm, Obj* obj);

/* core.c */
void coreInitialize(VM* vm);
ObjString* valueToCString(VM* vm, Value v); /* built-in toString */

/* slot_codec.c: a foreign call's arguments encoded before the host is
 * called, and a scalar result the host wrote back (see host.h) */
int64_t kwEncodeSlots(VM* vm, int first, int count, bool hostIds);
bool kwForeignReply(VM* vm, int64_t reply, Value* result);

/* compiler.c */
ObjFn* compileModule(VM* vm, ObjModule* module, const char* source);
extern int kwCompilerRuns; /* modules compiled from source by this instance */

/* Host imports (host.h); the vm's host id identifies it to the host. */
#endif
