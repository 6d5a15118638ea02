/* opt_meta.c -- The optional "meta" module: class Meta.
 *
 * Meta.compile_ compiles source in the module of the Wren code that
 * called Meta (the nearest frame outside the meta module), as a function
 * that runs it; an expression (exactly one, compileExpressionFn in
 * compiler.c) becomes a function returning its value.
 * Meta.getModuleVariables_ lists a module's variable names, leaving out
 * the compiler's bookkeeping entries (names with a space or a dot).
 */
#include <stdlib.h>
#include <string.h>

#include "opt_modules.h"

const char optMetaSource[] =
#include "opt_meta_wren.inc"
    ;

static bool isMetaModule(ObjModule* module) {
  return module->name != NULL && module->name->length == 4 &&
         memcmp(module->name->chars, "meta", 4) == 0;
}

/* The module of the innermost running frame outside the meta module. */
static ObjModule* callerModule(VM* vm) {
  ObjFiber* fiber = vm->fiber;
  for (int i = fiber->frameCount - 1; i >= 0; i--) {
    ObjModule* module = fiber->frames[i].closure->fn->module;
    if (!isMetaModule(module) && module->name != NULL) return module;
  }
  return NULL;
}

static PrimResult meta_compile(VM* vm, Value* args, int argc) {
  (void)argc;
  ObjModule* module = callerModule(vm);
  if (module == NULL || !IS_STRING(args[1])) {
    args[0] = NULL_VAL;
    return PRIM_VALUE;
  }
  ObjString* source = AS_STRING(args[1]);
  bool isExpression = args[2] == TRUE_VAL;
  bool printErrors = args[3] == TRUE_VAL;
  ObjFn* fn = isExpression ? compileExpressionFn(vm, module, source->chars)
                           : compileModule(vm, module, source->chars);
  if (fn == NULL) {
    /* A failed compile is not a runtime error: Meta.compile and
     * compileExpression print the error where System.print output goes
     * (the VM's output buffer, handed to the host's host_write) and
     * return null; Meta.eval passes printErrors false and aborts. */
    if (printErrors && vm->errorMessage != NULL) {
      vmWrite(vm, vm->errorMessage, (int)strlen(vm->errorMessage));
      vmWrite(vm, "\n", 1);
    }
    vmClearError(vm);
    args[0] = NULL_VAL;
    return PRIM_VALUE;
  }
  vmPushRoot(vm, (Obj*)fn);
  ObjClosure* closure = newClosure(vm, fn);
  vmPopRoot(vm);
  args[0] = OBJ_VAL(closure);
  return PRIM_VALUE;
}

static PrimResult meta_getModuleVariables(VM* vm, Value* args, int argc) {
  (void)argc;
  ObjString* name = AS_STRING(args[1]);
  ObjModule* module = vmGetModule(vm, name->chars, (int)name->length);
  if (module == NULL) {
    args[0] = NULL_VAL;
    return PRIM_VALUE;
  }
  ObjList* names = newList(vm, 0);
  vmPushRoot(vm, (Obj*)names);
  for (int i = 0; i < module->variableCount; i++) {
    const char* varName = module->variableNames.names[i];
    int length = module->variableNames.lengths[i];
    if (memchr(varName, ' ', length) != NULL || memchr(varName, '.', length) != NULL) continue;
    Value string = stringValue(vm, varName, (size_t)length);
    vmPushRoot(vm, AS_OBJ(string));
    listAppend(vm, names, string);
    vmPopRoot(vm);
  }
  vmPopRoot(vm);
  args[0] = OBJ_VAL(names);
  return PRIM_VALUE;
}

Primitive optMetaForeign(const char* className, bool isStatic, const char* signature) {
  if (strcmp(className, "Meta") != 0 || !isStatic) return NULL;
  if (strcmp(signature, "compile_(_,_,_)") == 0) return meta_compile;
  if (strcmp(signature, "getModuleVariables_(_)") == 0) return meta_getModuleVariables;
  return NULL;
}
