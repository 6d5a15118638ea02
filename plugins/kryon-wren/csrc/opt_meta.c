/* opt_meta.c -- The optional "meta" module: class Meta, all primitives.
 *
 * Source handed to Meta is compiled into the module of the code that
 * called Meta (the innermost frame whose module is not "meta" itself), so
 * it sees that module's top-level variables. Meta.compile and
 * Meta.compileExpression answer null for code that does not compile and
 * write the compile error to the script's output; Meta.eval aborts the
 * fiber instead.
 */
#include <stdlib.h>
#include <string.h>

#include "opt_modules.h"

const char optMetaSource[] =
#include "opt_meta_wren.inc"
    ;

static PrimResult metaFail(VM* vm, const char* format, const char* detail) {
  vm->fiber->error = vmRuntimeErrorValue(vm, format, detail);
  return PRIM_ERROR;
}

static bool inMetaModule(ObjModule* module) {
  ObjString* name = module->name;
  return name != NULL && name->length == 4 && memcmp(name->chars, "meta", 4) == 0;
}

static ObjModule* askingModule(VM* vm) {
  ObjFiber* fiber = vm->fiber;
  for (int i = fiber->frameCount - 1; i >= 0; i--) {
    ObjModule* module = fiber->frames[i].closure->fn->module;
    if (module->name != NULL && !inMetaModule(module)) return module;
  }
  return NULL;
}

typedef enum { AS_STATEMENTS, AS_EXPRESSION } SourceKind;

/* Compiles args[1] for the asking module into a closure in args[0], or
 * leaves null there; `report` writes a failed compile's error out. */
static bool compileFor(VM* vm, Value* args, SourceKind kind, bool report) {
  ObjModule* module = askingModule(vm);
  args[0] = NULL_VAL;
  if (module == NULL) return false;
  const char* source = AS_STRING(args[1])->chars;
  ObjFn* fn = kind == AS_EXPRESSION ? compileExpressionFn(vm, module, source)
                                    : compileModule(vm, module, source);
  if (fn == NULL) {
    if (report && vm->errorMessage != NULL) {
      vmWrite(vm, vm->errorMessage, (int)strlen(vm->errorMessage));
      vmWrite(vm, "\n", 1);
    }
    vmClearError(vm); /* not a runtime error: the caller gets null */
    return false;
  }
  vmPushRoot(vm, (Obj*)fn);
  args[0] = OBJ_VAL(newClosure(vm, fn));
  vmPopRoot(vm);
  return true;
}

static PrimResult meta_compile(VM* vm, Value* args, int argc) {
  (void)argc;
  if (!IS_STRING(args[1])) return metaFail(vm, "%s must be a string.", "Source code");
  compileFor(vm, args, AS_STATEMENTS, true);
  return PRIM_VALUE;
}

static PrimResult meta_compileExpression(VM* vm, Value* args, int argc) {
  (void)argc;
  if (!IS_STRING(args[1])) return metaFail(vm, "%s must be a string.", "Expression");
  compileFor(vm, args, AS_EXPRESSION, true);
  return PRIM_VALUE;
}

static PrimResult meta_compiledForEval(VM* vm, Value* args, int argc) {
  (void)argc;
  if (!IS_STRING(args[1])) return metaFail(vm, "%s must be a string.", "Source code");
  if (!compileFor(vm, args, AS_STATEMENTS, false)) {
    return metaFail(vm, "%s", "Could not compile source code.");
  }
  return PRIM_VALUE;
}

/* A list of the module's top-level variable names; the compiler's own
 * entries (their names hold a space or a dot) are left out. */
static PrimResult meta_getModuleVariables(VM* vm, Value* args, int argc) {
  (void)argc;
  if (!IS_STRING(args[1])) return metaFail(vm, "%s must be a string.", "Module name");
  ObjString* name = AS_STRING(args[1]);
  ObjModule* module = vmGetModule(vm, name->chars, (int)name->length);
  if (module == NULL) return metaFail(vm, "Could not find a module named '%s'.", name->chars);
  ObjList* names = newList(vm, 0);
  vmPushRoot(vm, (Obj*)names);
  for (int i = 0; i < module->variableCount; i++) {
    const char* text = module->variableNames.names[i];
    size_t length = (size_t)module->variableNames.lengths[i];
    if (memchr(text, ' ', length) != NULL || memchr(text, '.', length) != NULL) continue;
    Value entry = stringValue(vm, text, length);
    vmPushRoot(vm, AS_OBJ(entry));
    listAppend(vm, names, entry);
    vmPopRoot(vm);
  }
  vmPopRoot(vm);
  args[0] = OBJ_VAL(names);
  return PRIM_VALUE;
}

Primitive optMetaForeign(const char* className, bool isStatic, const char* signature) {
  if (strcmp(className, "Meta") != 0 || !isStatic) return NULL;
  static const struct {
    const char* signature;
    Primitive fn;
  } table[] = {
      {"compile(_)", meta_compile},
      {"compileExpression(_)", meta_compileExpression},
      {"compiledForEval_(_)", meta_compiledForEval},
      {"getModuleVariables(_)", meta_getModuleVariables},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    if (strcmp(signature, table[i].signature) == 0) return table[i].fn;
  }
  return NULL;
}
