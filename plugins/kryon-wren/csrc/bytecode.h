/* bytecode.h -- The serialized form of a compiled module (bytecode.c).
 *
 * A compiled module is written as a self-contained byte string that
 * another VM (another process, another instance) can load without
 * running the compiler. Method signatures and module variables are
 * written as names and resolved again on load, so no symbol index of
 * the writing VM is trusted. The reader checks every byte it reads and
 * refuses an entry it cannot prove well formed (see bytecode.c).
 */
#ifndef KW_BYTECODE_H
#define KW_BYTECODE_H

#include "vm.h"

#define BYTECODE_FORMAT_VERSION 2

/* Outcomes of bytecodeCompile besides RESULT_SUCCESS/RESULT_COMPILE_ERROR. */
#define BYTECODE_NOT_CACHEABLE 3

/* Compiles `source` as module `moduleName` (created fresh: it must not
 * exist yet) without running it and serializes the result into a malloc'd
 * buffer (*out, *outLength; the caller frees it). Returns RESULT_SUCCESS,
 * RESULT_COMPILE_ERROR (error in the VM's error report) or
 * BYTECODE_NOT_CACHEABLE (a constant it cannot write, or no room for the
 * constant naming foreign methods; bytecodeError() says why). A foreign
 * method's host id is never written: the loading VM's host binds it by
 * module, class and signature when the class is made. */
int bytecodeCompile(VM* vm, const char* moduleName, const char* source, uint8_t** out, int* outLength);

/* Reads a serialized module into `module` (which holds at least the core
 * variables). Returns its top-level function, or NULL when the entry is
 * refused (bytecodeError() says why): the module is then untouched. */
ObjFn* bytecodeLoad(VM* vm, ObjModule* module, const uint8_t* data, int length);

/* Why the last bytecodeCompile/bytecodeLoad refused ("" when it did not). */
const char* bytecodeError(void);

/* Hash of the VM build the format belongs to (set by build_wasm.py). */
uint32_t bytecodeBuildHash(void);

#endif
