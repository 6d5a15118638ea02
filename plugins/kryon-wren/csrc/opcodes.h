/* opcodes.h -- The bytecode instruction set shared by compiler and VM.
 * Each entry: name, stack effect (for computing a function's maximum
 * stack size), number of operand bytes. */
#ifndef KW_OPCODES_H
#define KW_OPCODES_H

#define OPCODE_LIST(X)          \
  X(CONSTANT, 1, 2)             \
  X(NULL, 1, 0)                 \
  X(FALSE, 1, 0)                \
  X(TRUE, 1, 0)                 \
  X(LOAD_LOCAL, 1, 1)           \
  X(STORE_LOCAL, 0, 1)          \
  X(LOAD_UPVALUE, 1, 1)         \
  X(STORE_UPVALUE, 0, 1)        \
  X(LOAD_MODULE_VAR, 1, 2)      \
  X(STORE_MODULE_VAR, 0, 2)     \
  X(LOAD_FIELD_THIS, 1, 1)      \
  X(STORE_FIELD_THIS, 0, 1)     \
  X(LOAD_FIELD, 0, 1)           \
  X(STORE_FIELD, -1, 1)         \
  X(POP, -1, 0)                 \
  X(CALL, 0, 3)                 \
  X(SUPER, 0, 3)                \
  X(ADD, -1, 2)                 \
  X(SUB, -1, 2)                 \
  X(MUL, -1, 2)                 \
  X(DIV, -1, 2)                 \
  X(LT, -1, 2)                  \
  X(GT, -1, 2)                  \
  X(LTE, -1, 2)                 \
  X(GTE, -1, 2)                 \
  X(EQ, -1, 2)                  \
  X(NEQ, -1, 2)                 \
  X(ITERATE, -1, 2)             \
  X(ITERATOR_VALUE, -1, 2)      \
  X(JUMP, 0, 2)                 \
  X(LOOP, 0, 2)                 \
  X(JUMP_IF_FALSE, -1, 2)       \
  X(AND, -1, 2)                 \
  X(OR, -1, 2)                  \
  X(CLOSE_UPVALUE, -1, 0)       \
  X(RETURN, 0, 0)               \
  X(CLOSURE, 1, 2)              \
  X(CONSTRUCT, 0, 0)            \
  X(CLASS, -1, 1)               \
  X(METHOD_INSTANCE, -1, 2)     \
  X(METHOD_STATIC, -1, 2)       \
  X(FOREIGN_INSTANCE, 0, 4)     \
  X(FOREIGN_STATIC, 0, 4)       \
  X(NEW_LIST, 1, 0)             \
  X(LIST_APPEND, -1, 0)         \
  X(NEW_MAP, 1, 0)              \
  X(MAP_INSERT, -2, 0)          \
  X(END_MODULE, 1, 0)           \
  X(IMPORT_MODULE, 1, 2)        \
  X(IMPORT_VARIABLE, 1, 2)      \
  X(END_CLASS, -1, 0)           \
  X(END, 0, 0)                  \
  X(BREAKPOINT, 0, 0)

typedef enum {
#define X(name, effect, operands) OP_##name,
  OPCODE_LIST(X)
#undef X
} OpCode;

#endif
