/* verify.h -- The run-time shape check of a loaded bytecode entry (verify.c). */
#ifndef KW_VERIFY_H
#define KW_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "vm.h"

/* Checks the module function `module` and every function nested in it
 * (already checked structurally by bytecode.c, operands still payload
 * indices): stack depths along every path, the kinds of values the
 * interpreter takes on trust, field and argument counts. symbolArity[i] is
 * the argument count of payload method name i. False (with `error` set)
 * refuses the entry. */
bool bytecodeVerify(ObjFn* module, const int* symbolArity, int symbolCount, char* error, size_t errorSize);

/* The argument count of a method signature ("f(_,_)", "[_]=(_)", "+(_)"). */
int signatureArity(const char* name, int length);

#endif
