/* debug.c -- Bytecode disassembler for the native debug build. */
#include <stdio.h>

#include "opcodes.h"
#include "vm.h"

static const char* opNames[] = {
#define X(name, effect, operands) #name,
    OPCODE_LIST(X)
#undef X
};
static const int opOperands[] = {
#define X(name, effect, operands) operands,
    OPCODE_LIST(X)
#undef X
};

void disassemble(VM* vm, ObjFn* fn) {
  printf("== %s (arity %d, slots %d) ==\n", fn->debugName ? fn->debugName : "?", fn->arity,
         fn->maxSlots);
  int i = 0;
  while (i < fn->codeCount) {
    int op = fn->code[i];
    printf("%4d line %3d  %-18s", i, POSITION_LINE(fn->lines[i]), op <= OP_END ? opNames[op] : "???");
    if (op == OP_CALL || op == OP_SUPER) {
      int sym = (fn->code[i + 2] << 8) | fn->code[i + 3];
      printf(" %d '%s'", fn->code[i + 1], vm->methodNames.names[sym]);
    } else if (opOperands[op] == 1) {
      printf(" %d", fn->code[i + 1]);
    } else if (opOperands[op] == 2) {
      printf(" %d", (fn->code[i + 1] << 8) | fn->code[i + 2]);
    }
    printf("\n");
    i += 1 + opOperands[op];
    if (op == OP_CLOSURE) {
      ObjFn* inner = AS_FN(fn->constants[(fn->code[i - 2] << 8) | fn->code[i - 1]]);
      i += inner->numUpvalues * 2;
    }
  }
  for (int c = 0; c < fn->constantCount; c++) {
    if (IS_FN(fn->constants[c])) disassemble(vm, AS_FN(fn->constants[c]));
  }
}
