/* opt_modules.h -- Wren's optional modules, built into the VM.
 *
 * The Wren command-line runner ships two modules that need no host:
 * "random" (opt_random.c) and "meta" (opt_meta.c). Each is a Wren source
 * whose `foreign` methods are C primitives. The VM asks here before the
 * host when it loads a module or binds a foreign method, so these names
 * resolve the same everywhere.
 */
#ifndef KW_OPT_MODULES_H
#define KW_OPT_MODULES_H

#include "vm.h"

/* The Wren source of built-in module `name`, or NULL. */
const char* optModuleSource(const char* name, int length);

/* The primitive for a foreign method of a built-in module, or NULL. */
Primitive optModuleForeign(const char* module, const char* className, bool isStatic,
                           const char* signature);

/* Per-module parts (opt_random.c, opt_meta.c). */
extern const char optRandomSource[];
Primitive optRandomForeign(const char* className, bool isStatic, const char* signature);
extern const char optMetaSource[];
Primitive optMetaForeign(const char* className, bool isStatic, const char* signature);

/* compiler.c: compiles source that must be exactly one expression into a
 * function returning its value (Meta.compileExpression); NULL and the
 * VM's error set when it does not compile. */
ObjFn* compileExpressionFn(VM* vm, ObjModule* module, const char* source);

#endif
