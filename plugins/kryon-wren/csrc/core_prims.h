/* core_prims.h -- Primitives of the core library that live outside core.c. */
#ifndef KW_CORE_PRIMS_H
#define KW_CORE_PRIMS_H

#include "vm.h"

/* core_text.c: text of built-in values without running Wren code. */
PrimResult coreListJoinPlain(VM* vm, Value* args, int argc);
PrimResult corePlainText(VM* vm, Value* args, int argc);
PrimResult coreSystemPut(VM* vm, Value* args, int argc);

#endif
