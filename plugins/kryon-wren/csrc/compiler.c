/* compiler.c -- Single-pass compiler from Wren source to bytecode.
 *
 * A Pratt parser reads tokens from the lexer and emits bytecode straight
 * into ObjFn objects; there is no syntax tree. Each function being
 * compiled (module body, block argument, method) has a Compiler with its
 * locals and upvalues; Compilers nest through `parent`. Names resolve to
 * locals, then upvalues, then (inside a class) lowercase names become
 * calls on `this`, then module variables. Uppercase module variables may
 * be used before they are defined; compileModule reports any left
 * undefined at the end.
 *
 * The GC never runs while compiling (it only collects at safe points of
 * the interpreter loop), so objects made here need no rooting.
 *
 * The first error is recorded (message and line) and ends the parse: the
 * parser then only sees end-of-file, so every loop stops quickly.
 */
#include <stdio.h>
#include <stdlib.h>

#include "host.h"
#include "lexer.h"
#include "opcodes.h"
#include "opt_modules.h"
#include "vm.h"

#define MAX_LOCALS 256
#define MAX_UPVALUES 256

typedef struct {
  VM* vm;
  Lexer lexer;
  ObjModule* module;
  Token previous;
  Token current;
  bool hadError;
  int depth; /* nesting of expressions and bodies, to bound C recursion */
  int callLine;   /* when not 0, where the code being emitted is said to be */
  int callColumn;
} Parser;

typedef struct {
  const char* name;
  int length;
  int depth;
  bool isCaptured;
} Local;

typedef struct {
  bool isLocal;
  int index;
} UpvalueRef;

typedef struct Loop {
  int start;
  int scopeDepth;
  int* breaks;
  int breakCount;
  int breakCapacity;
  struct Loop* enclosing;
  Token keyword; /* "while" or "for": where the loop's back-edge is placed */
} Loop;

/* The ways a method can be named: "f(a)", "f", "f = v", "x[i]",
 * "x[i] = v" and a constructor's initializer ("construct f(a)"). */
typedef enum {
  SHAPE_PARENS,
  SHAPE_BARE,
  SHAPE_ASSIGN,
  SHAPE_INDEX,
  SHAPE_INDEX_ASSIGN,
  SHAPE_CONSTRUCTOR
} CallShape;

/* How a method is named at a call site and a definition: the method
 * symbol is its name plus this shape plus the argument count. */
typedef struct {
  const char* name; /* empty for the index shapes */
  int nameLength;
  CallShape shape;
  int argCount; /* for SHAPE_INDEX_ASSIGN, the index arguments and the value */
  int atLine;   /* at a call site, where a failing call is reported (0: not set) */
  int atColumn;
} MethodKey;

/* One runtime attribute ("#!"): names are source text, values constants. */
typedef struct {
  const char* group; /* NULL when ungrouped */
  int groupLength;
  const char* key;
  int keyLength;
  int valueKind; /* 0 null, 1 false, 2 true, 3 constant */
  int valueConstant;
} Attribute;

typedef struct {
  Attribute* items;
  int count;
  int capacity;
} AttributeList;

typedef struct {
  char* text; /* the method's key text, "static " / "foreign " prefixed */
  int length;
  AttributeList attributes;
} MethodAttributes;

typedef struct {
  ObjString* name;
  AttributeList* classAttributes;
  MethodAttributes* methodAttributes;
  int methodAttributeCount;
  int methodAttributeCapacity;
  SymbolTable fields;
  SymbolTable methods; /* "static " prefixed for static methods */
  bool inStatic;
  MethodKey* currentKey; /* key of the method being compiled */
} ClassScope;

typedef struct Compiler {
  Parser* parser;
  struct Compiler* parent;
  ObjFn* fn;
  Local locals[MAX_LOCALS];
  int numLocals;
  UpvalueRef upvalues[MAX_UPVALUES];
  int scopeDepth; /* -1 at module level */
  int numSlots;
  Loop* loop;
  ClassScope* classScope; /* set on method compilers only */
  bool isInitializer;
} Compiler;

/* How tightly an operator holds its operands, loosest first. Pratt
 * parsing (the well-known top-down operator precedence method): parsing
 * "at least b" takes infix operators binding at least as tightly as b. */
typedef enum {
  BIND_NONE,
  BIND_LOWEST,
  BIND_ASSIGN,
  BIND_TERNARY,
  BIND_OR,
  BIND_AND,
  BIND_EQUALS,
  BIND_IS,
  BIND_COMPARE,
  BIND_BIT_OR,
  BIND_BIT_XOR,
  BIND_BIT_AND,
  BIND_SHIFT,
  BIND_RANGE,
  BIND_SUM,
  BIND_PRODUCT,
  BIND_PREFIX,
  BIND_CALL,
  BIND_ATOM
} Binding;

typedef void (*GrammarFn)(Compiler* c, bool canAssign);

typedef struct {
  GrammarFn prefix;
  GrammarFn infix;
  Binding binding;
  const char* name; /* operator method name */
} GrammarRule;

static const GrammarRule* ruleFor(TokenType type);
static void expression(Compiler* c);
static void statement(Compiler* c);
static void parseBound(Compiler* c, Binding binding);
static void parseBoundInner(Compiler* c, Binding binding);
static void compileClass(Compiler* c, AttributeList* attributes);

/* ---- Errors --------------------------------------------------------- */

static void errorAt(Compiler* c, Token* token, const char* message) {
  Parser* p = c->parser;
  if (p->hadError) return;
  p->hadError = true;
  char label[64];
  if (token->type == TOKEN_LINE) {
    snprintf(label, sizeof label, "Error at newline: ");
  } else if (token->type == TOKEN_EOF) {
    snprintf(label, sizeof label, "Error at end of file: ");
  } else if (token->type == TOKEN_ERROR) {
    snprintf(label, sizeof label, "Error: ");
  } else {
    int length = token->length > 20 ? 20 : token->length;
    snprintf(label, sizeof label, "Error at '%.*s': ", length, token->start);
  }
  char buffer[512];
  snprintf(buffer, sizeof buffer, "[%s line %d] %s%s",
           p->module->name ? p->module->name->chars : "core", token->line, label, message);
  vmSetError(p->vm, buffer, p->module->name ? p->module->name->chars : "core", token->line);
  vmSetErrorColumn(p->vm, token->column);
}

static void error(Compiler* c, const char* message) {
  errorAt(c, &c->parser->previous, message);
}

/* Names longer than this are refused: variables, methods, fields. */
#define MAX_NAME 64

/* Reports a name token longer than MAX_NAME; true when it is too long. */
static bool nameTooLong(Compiler* c, Token* name, const char* what) {
  if (name->length <= MAX_NAME) return false;
  char message[96];
  snprintf(message, sizeof message, "%s cannot be longer than %d characters.", what, MAX_NAME);
  errorAt(c, name, message);
  return true;
}

/* ---- Token stream --------------------------------------------------- */

static void nextToken(Compiler* c) {
  Parser* p = c->parser;
  p->previous = p->current;
  if (p->hadError) {
    p->current.type = TOKEN_EOF;
    return;
  }
  p->current = lexerNext(&p->lexer);
  if (p->current.type == TOKEN_ERROR) {
    errorAt(c, &p->current, p->lexer.errorMessage);
    p->current.type = TOKEN_EOF;
  } else if (p->current.line > MAX_SOURCE_LINE && p->current.type == TOKEN_EOF) {
    p->current.line = MAX_SOURCE_LINE; /* the end after a last full line */
  } else if (p->current.line > MAX_SOURCE_LINE) {
    /* Code positions keep the line in POSITION_LINE_BITS bits. */
    char message[64];
    snprintf(message, sizeof message, "A module may have at most %d lines.", MAX_SOURCE_LINE);
    p->current.line = MAX_SOURCE_LINE;
    errorAt(c, &p->current, message);
    p->current.type = TOKEN_EOF;
  }
}

static bool check(Compiler* c, TokenType type) { return c->parser->current.type == type; }

static bool match(Compiler* c, TokenType type) {
  if (!check(c, type)) return false;
  nextToken(c);
  return true;
}

static void consume(Compiler* c, TokenType type, const char* message) {
  if (match(c, type)) return;
  errorAt(c, &c->parser->current, message);
}

static bool matchNewlines(Compiler* c) {
  if (!match(c, TOKEN_LINE)) return false;
  while (match(c, TOKEN_LINE)) {
  }
  return true;
}

static void skipNewlines(Compiler* c) { matchNewlines(c); }

static void expectNewline(Compiler* c, const char* message) {
  if (!matchNewlines(c)) errorAt(c, &c->parser->current, message);
}

/* True when the next non-blank source character starts a ".name" call,
 * so a method chain may continue on the following line. */
static bool nextLineStartsWithDot(Compiler* c) {
  const char* p = c->parser->lexer.current;
  for (;;) {
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
    if (p[0] == '/' && p[1] == '/') {
      while (*p != '\n' && *p != '\0') p++;
      continue;
    }
    break;
  }
  return p[0] == '.' && p[1] != '.';
}

/* ---- Emitting code -------------------------------------------------- */

static const int stackEffects[] = {
#define X(name, effect, operands) effect,
    OPCODE_LIST(X)
#undef X
};

/* Code is placed at the token just read, or at the call being emitted. */
static int emitByte(Compiler* c, int byte) {
  Parser* p = c->parser;
  int position = p->callLine != 0 ? POSITION(p->callLine, p->callColumn)
                                  : POSITION(p->previous.line, p->previous.column);
  return fnEmitByte(p->vm, c->fn, (uint8_t)byte, position);
}

static void adjustSlots(Compiler* c, int delta) {
  c->numSlots += delta;
  if (c->numSlots > c->fn->maxSlots) c->fn->maxSlots = c->numSlots;
}

static int emitOp(Compiler* c, OpCode op) {
  int offset = emitByte(c, op);
  adjustSlots(c, stackEffects[op]);
  return offset;
}

static void emitShort(Compiler* c, int value) {
  emitByte(c, (value >> 8) & 0xff);
  emitByte(c, value & 0xff);
}

static void emitWithByte(Compiler* c, OpCode op, int arg) {
  emitOp(c, op);
  emitByte(c, arg);
}

static void emitWithShort(Compiler* c, OpCode op, int arg) {
  emitOp(c, op);
  emitShort(c, arg);
}

static int addConstant(Compiler* c, Value value) {
  if (c->parser->hadError) return 0;
  int index = fnAddConstant(c->parser->vm, c->fn, value);
  if (index > 0xffff) error(c, "A function may only contain 65536 unique constants.");
  return index;
}

static void emitConstant(Compiler* c, Value value) {
  emitWithShort(c, OP_CONSTANT, addConstant(c, value));
}

/* Emits a jump with a placeholder offset; returns where to patch. */
static int emitJump(Compiler* c, OpCode op) {
  emitOp(c, op);
  emitByte(c, 0xff);
  return emitByte(c, 0xff) - 1;
}

static void patchJump(Compiler* c, int offset) {
  int jump = c->fn->codeCount - offset - 2;
  if (jump > 0xffff) error(c, "Too much code to jump over.");
  c->fn->code[offset] = (jump >> 8) & 0xff;
  c->fn->code[offset + 1] = jump & 0xff;
}

static void emitLoop(Compiler* c, int loopStart) {
  emitOp(c, OP_LOOP);
  int offset = c->fn->codeCount - loopStart + 2;
  if (offset > 0xffff) error(c, "Loop body too large.");
  emitShort(c, offset);
}

static int methodSymbol(Compiler* c, const char* name, int length) {
  return symbolTableEnsure(&c->parser->vm->methodNames, name, length);
}

static void emitCall(Compiler* c, int argc, const char* name, int length) {
  emitOp(c, OP_CALL);
  emitByte(c, argc);
  emitShort(c, methodSymbol(c, name, length));
  adjustSlots(c, -argc);
}

/* ---- Method keys ---------------------------------------------------- */

/* The text of each shape around the name: what comes before it, the
 * brackets of the argument list (none for a bare name) and what follows.
 * An assigning shape takes its last argument as "=(_)". */
typedef struct {
  const char* before;
  char open;
  char close;
  bool assigns;
} ShapeText;

static const ShapeText shapeTexts[] = {
    [SHAPE_PARENS] = {"", '(', ')', false},
    [SHAPE_BARE] = {"", 0, 0, false},
    [SHAPE_ASSIGN] = {"", 0, 0, true},
    [SHAPE_INDEX] = {"", '[', ']', false},
    [SHAPE_INDEX_ASSIGN] = {"", '[', ']', true},
    [SHAPE_CONSTRUCTOR] = {"init ", '(', ')', false},
};

/* Appends "(_,_)" style holes for count arguments between open and close. */
static int writeHoles(char* out, int at, int count, char open, char close) {
  out[at++] = open;
  for (int i = 0; i < count; i++) {
    if (i > 0) out[at++] = ',';
    out[at++] = '_';
  }
  out[at++] = close;
  return at;
}

/* The symbol text of a key: "foo(_,_)", "foo", "foo=(_)", "[_]",
 * "[_]=(_)", "init new(_)". out must hold MAX_KEY_TEXT bytes; names are
 * at most MAX_NAME long and argument counts at most MAX_PARAMETERS + 1. */
static int keyText(MethodKey* mk, char* out) {
  const ShapeText* shape = &shapeTexts[mk->shape];
  int at = (int)strlen(shape->before);
  memcpy(out, shape->before, (size_t)at);
  memcpy(out + at, mk->name, (size_t)mk->nameLength);
  at += mk->nameLength;
  int listed = shape->assigns ? mk->argCount - 1 : mk->argCount;
  if (shape->open != 0) at = writeHoles(out, at, listed, shape->open, shape->close);
  if (shape->assigns) {
    out[at++] = '=';
    at = writeHoles(out, at, 1, '(', ')');
  }
  out[at] = '\0';
  return at;
}

#define MAX_KEY_TEXT 320

static int keySymbol(Compiler* c, MethodKey* mk) {
  char buffer[MAX_KEY_TEXT];
  int length = keyText(mk, buffer);
  return methodSymbol(c, buffer, length);
}

static void emitKeyedCall(Compiler* c, OpCode op, MethodKey* mk) {
  int symbol = keySymbol(c, mk);
  Parser* p = c->parser;
  int savedLine = p->callLine, savedColumn = p->callColumn;
  if (mk->atLine != 0) {
    p->callLine = mk->atLine;
    p->callColumn = mk->atColumn;
  }
  emitOp(c, op);
  emitByte(c, mk->argCount);
  emitShort(c, symbol);
  p->callLine = savedLine;
  p->callColumn = savedColumn;
  adjustSlots(c, -mk->argCount);
}

/* ---- Compilers and scopes ------------------------------------------- */

#define MAX_FUNCTION_NESTING 48

static void beginFunction(Compiler* c, Parser* parser, Compiler* parent, bool isMethod) {
  int nesting = 0;
  for (Compiler* p = parent; p != NULL; p = p->parent) nesting++;
  if (nesting > MAX_FUNCTION_NESTING) {
    errorAt(parent, &parser->current, "Functions are nested too deeply.");
  }
  c->parser = parser;
  c->parent = parent;
  c->loop = NULL;
  c->classScope = NULL;
  c->isInitializer = false;
  c->fn = newFn(parser->vm, parser->module, 1);
  c->numLocals = 1;
  c->numSlots = 1;
  c->locals[0].name = isMethod ? "this" : NULL;
  c->locals[0].length = isMethod ? 4 : 0;
  c->locals[0].depth = -1;
  c->locals[0].isCaptured = false;
  c->scopeDepth = parent == NULL ? -1 : 0;
}

static ObjFn* finishFunction(Compiler* c, const char* debugName, int nameLength) {
  ObjFn* fn = c->fn;
  emitOp(c, OP_END);
  fnDebugLocalsEnd(fn, 0);
  fn->debugName = (char*)malloc((size_t)nameLength + 1);
  memcpy(fn->debugName, debugName, nameLength);
  fn->debugName[nameLength] = '\0';
  if (c->parent != NULL) {
    Compiler* parent = c->parent;
    emitWithShort(parent, OP_CLOSURE, addConstant(parent, OBJ_VAL(fn)));
    for (int i = 0; i < fn->numUpvalues; i++) {
      emitByte(parent, c->upvalues[i].isLocal ? 1 : 0);
      emitByte(parent, c->upvalues[i].index);
    }
  }
  return fn;
}

static void enterScope(Compiler* c) { c->scopeDepth++; }

/* Emits code discarding locals deeper than depth; returns how many. */
static int emitDiscardLocals(Compiler* c, int depth) {
  int local = c->numLocals - 1;
  while (local >= 0 && c->locals[local].depth > depth) {
    emitByte(c, c->locals[local].isCaptured ? OP_CLOSE_UPVALUE : OP_POP);
    local--;
  }
  return c->numLocals - 1 - local;
}

static void leaveScope(Compiler* c) {
  int popped = emitDiscardLocals(c, c->scopeDepth - 1);
  fnDebugLocalsEnd(c->fn, c->numLocals - popped);
  c->numLocals -= popped;
  c->numSlots -= popped;
  c->scopeDepth--;
}

static int addLocal(Compiler* c, const char* name, int length) {
  if (c->numLocals >= MAX_LOCALS) {
    error(c, "Too many local variables.");
    return 0;
  }
  Local* local = &c->locals[c->numLocals];
  local->name = name;
  local->length = length;
  local->depth = c->scopeDepth;
  local->isCaptured = false;
  if (name != NULL && length > 0 && name[length - 1] != ' ') {
    fnDebugLocalBegin(c->fn, name, length, c->numLocals);
  }
  return c->numLocals++;
}

/* Declares a variable named by the previous token in the current scope;
 * returns its local slot or module variable index. */
static int declareName(Compiler* c, Token* name) {
  if (nameTooLong(c, name, "Variable name")) return 0;
  if (c->scopeDepth == -1) {
    /* After an error the code is thrown away: add no stray module
     * variable (Meta.compile keeps using the module). */
    if (c->parser->hadError) return 0;
    VM* vm = c->parser->vm;
    ObjModule* module = c->parser->module;
    int index = moduleFindVariable(module, name->start, name->length);
    if (index == -1) {
      return moduleAddVariable(vm, module, name->start, name->length, NULL_VAL);
    }
    if (IS_UNDEFINED(module->variables[index])) {
      /* Used earlier, defined now. */
      module->variables[index] = NULL_VAL;
      return index;
    }
    error(c, "Module variable is already defined.");
    return index;
  }
  for (int i = c->numLocals - 1; i >= 0; i--) {
    Local* local = &c->locals[i];
    if (local->depth < c->scopeDepth) break;
    if (local->length == name->length && memcmp(local->name, name->start, name->length) == 0) {
      error(c, "Variable is already declared in this scope.");
      return i;
    }
  }
  return addLocal(c, name->start, name->length);
}

/* Stores the value on top of the stack into a just-declared variable. */
static void storeDeclared(Compiler* c, int symbol) {
  if (c->scopeDepth >= 0) return; /* the value already sits in its slot */
  emitWithShort(c, OP_STORE_MODULE_VAR, symbol);
  emitOp(c, OP_POP);
}

static int findLocal(Compiler* c, const char* name, int length) {
  for (int i = c->numLocals - 1; i >= 0; i--) {
    Local* local = &c->locals[i];
    if (local->length == length && local->name != NULL &&
        memcmp(local->name, name, length) == 0) {
      return i;
    }
  }
  return -1;
}

static int captureIn(Compiler* c, bool isLocal, int index) {
  for (int i = 0; i < c->fn->numUpvalues; i++) {
    if (c->upvalues[i].index == index && c->upvalues[i].isLocal == isLocal) return i;
  }
  if (c->fn->numUpvalues >= MAX_UPVALUES) {
    error(c, "Too many upvalues.");
    return 0;
  }
  c->upvalues[c->fn->numUpvalues].isLocal = isLocal;
  c->upvalues[c->fn->numUpvalues].index = index;
  return c->fn->numUpvalues++;
}

/* With inMethodOnly, the search does not leave the method being compiled:
 * a lowercase name a method does not declare is a call on this, even when
 * the code around the class has a local of that name. */
static int findCapturedIn(Compiler* c, const char* name, int length, bool inMethodOnly) {
  if (c->parent == NULL) return -1;
  if (inMethodOnly && c->classScope != NULL) return -1;
  int local = findLocal(c->parent, name, length);
  if (local != -1) {
    c->parent->locals[local].isCaptured = true;
    return fnDebugUpvalue(c->fn, name, length, captureIn(c, true, local));
  }
  int upvalue = findCapturedIn(c->parent, name, length, inMethodOnly);
  if (upvalue != -1) return fnDebugUpvalue(c->fn, name, length, captureIn(c, false, upvalue));
  return -1;
}

static int findCaptured(Compiler* c, const char* name, int length) {
  return findCapturedIn(c, name, length, false);
}

typedef enum { SCOPE_LOCAL, SCOPE_UPVALUE, SCOPE_MODULE } Scope;

typedef struct {
  Scope scope;
  int index;
} Variable;

/* Looks for a local or captured variable (module variables excluded). */
static Variable findNonModule(Compiler* c, const char* name, int length) {
  Variable v;
  v.scope = SCOPE_LOCAL;
  v.index = findLocal(c, name, length);
  if (v.index != -1) return v;
  v.scope = SCOPE_UPVALUE;
  v.index = findCaptured(c, name, length);
  return v;
}

static void loadVariable(Compiler* c, Variable v) {
  switch (v.scope) {
    case SCOPE_LOCAL: emitWithByte(c, OP_LOAD_LOCAL, v.index); break;
    case SCOPE_UPVALUE: emitWithByte(c, OP_LOAD_UPVALUE, v.index); break;
    case SCOPE_MODULE: emitWithShort(c, OP_LOAD_MODULE_VAR, v.index); break;
  }
}

static void storeVariable(Compiler* c, Variable v) {
  switch (v.scope) {
    case SCOPE_LOCAL: emitWithByte(c, OP_STORE_LOCAL, v.index); break;
    case SCOPE_UPVALUE: emitWithByte(c, OP_STORE_UPVALUE, v.index); break;
    case SCOPE_MODULE: emitWithShort(c, OP_STORE_MODULE_VAR, v.index); break;
  }
}

static void loadThis(Compiler* c) {
  loadVariable(c, findNonModule(c, "this", 4));
}

static void loadCoreName(Compiler* c, const char* name) {
  int index = moduleFindVariable(c->parser->module, name, (int)strlen(name));
  Variable v = {SCOPE_MODULE, index};
  loadVariable(c, v);
}

/* The class whose method (or block inside a method) is compiling. */
static Compiler* enclosingMethod(Compiler* c) {
  while (c != NULL) {
    if (c->classScope != NULL) return c;
    c = c->parent;
  }
  return NULL;
}

/* ---- Grammar: function bodies and arguments --------------------------- */

static bool startsStatement(TokenType type) {
  switch (type) {
    case TOKEN_BREAK: case TOKEN_CONTINUE: case TOKEN_FOR: case TOKEN_IF:
    case TOKEN_RETURN: case TOKEN_WHILE: case TOKEN_VAR: case TOKEN_CLASS:
    case TOKEN_IMPORT:
      return true;
    default:
      return false;
  }
}

static void emitImplicitReturn(Compiler* c) {
  if (c->isInitializer) {
    emitWithByte(c, OP_LOAD_LOCAL, 0);
  } else {
    emitOp(c, OP_NULL);
  }
  emitOp(c, OP_RETURN);
}

/* Compiles statements up to the closing '}'. */
static void compileStatements(Compiler* c) {
  for (;;) {
    if (check(c, TOKEN_RIGHT_BRACE) || check(c, TOKEN_EOF)) break;
    statement(c);
    expectNewline(c, "Expect newline after statement.");
  }
  consume(c, TOKEN_RIGHT_BRACE, "Expect '}' at end of block.");
}

/* The body of a function or method, after its '{'. A single expression
 * on the same line as the brace is the return value. */
static void compileBody(Compiler* c) {
  if (match(c, TOKEN_RIGHT_BRACE)) {
    emitImplicitReturn(c);
    return;
  }
  if (!matchNewlines(c)) {
    if (startsStatement(c->parser->current.type)) {
      statement(c);
      consume(c, TOKEN_RIGHT_BRACE, "Expect '}' at end of block.");
      emitImplicitReturn(c);
      return;
    }
    expression(c);
    consume(c, TOKEN_RIGHT_BRACE, "Expect '}' at end of block.");
    if (c->isInitializer) {
      emitOp(c, OP_POP);
      emitWithByte(c, OP_LOAD_LOCAL, 0);
    }
    emitOp(c, OP_RETURN);
    return;
  }
  compileStatements(c);
  emitImplicitReturn(c);
}

static void checkArgumentCount(Compiler* c, int arity) {
  if (arity == MAX_PARAMETERS + 1) {
    error(c, "Methods cannot have more than 16 parameters.");
  }
}

/* Parses "a, b, c" declaring each as a parameter local. */
static void declareParameters(Compiler* c, MethodKey* mk, TokenType closing) {
  if (check(c, closing)) return;
  do {
    skipNewlines(c);
    checkArgumentCount(c, ++mk->argCount);
    consume(c, TOKEN_NAME, "Expect parameter name.");
    declareName(c, &c->parser->previous);
    adjustSlots(c, 1);
  } while (match(c, TOKEN_COMMA));
}

/* A block argument "{ |a, b| body }", after the '{'. */
static void blockFunction(Compiler* c) {
  int line = c->parser->previous.line; /* of the '{' */
  Compiler fnCompiler;
  beginFunction(&fnCompiler, c->parser, c, false);
  MethodKey mk = {"", 0, SHAPE_PARENS, 0, 0, 0};
  if (match(&fnCompiler, TOKEN_PIPE)) {
    declareParameters(&fnCompiler, &mk, TOKEN_PIPE);
    consume(&fnCompiler, TOKEN_PIPE, "Expect '|' after function parameters.");
  }
  fnCompiler.fn->arity = mk.argCount;
  compileBody(&fnCompiler);
  /* Stack traces name a block by "Fn" and the line it starts on. */
  char name[32];
  finishFunction(&fnCompiler, name, snprintf(name, sizeof name, "Fn (line %d)", line));
}

/* Parses an argument list into mk (no enclosing tokens). */
static void pushArguments(Compiler* c, MethodKey* mk) {
  do {
    skipNewlines(c);
    checkArgumentCount(c, ++mk->argCount);
    expression(c);
  } while (match(c, TOKEN_COMMA));
  skipNewlines(c);
}

/* Arguments after a method name: "(args)", "{ block }", both or none. */
static void callArguments(Compiler* c, OpCode op, MethodKey* mk) {
  if (match(c, TOKEN_LEFT_PAREN)) {
    mk->shape = SHAPE_PARENS;
    skipNewlines(c);
    if (!check(c, TOKEN_RIGHT_PAREN)) pushArguments(c, mk);
    consume(c, TOKEN_RIGHT_PAREN, "Expect ')' after arguments.");
  }
  if (match(c, TOKEN_LEFT_BRACE)) {
    mk->shape = SHAPE_PARENS;
    checkArgumentCount(c, ++mk->argCount);
    blockFunction(c);
  }
  emitKeyedCall(c, op, mk);
}

/* A call of the method named by the previous token, which may be a
 * setter when followed by '='. */
static void callByName(Compiler* c, const char* name, int length, bool canAssign, OpCode op) {
  Token* at = &c->parser->previous; /* the name, or "super" */
  MethodKey mk = {name, length, SHAPE_BARE, 0, at->line, at->column};
  if (canAssign && match(c, TOKEN_EQ)) {
    skipNewlines(c);
    mk.shape = SHAPE_ASSIGN;
    mk.argCount = 1;
    expression(c);
    emitKeyedCall(c, op, &mk);
    return;
  }
  callArguments(c, op, &mk);
}

static void callNamed(Compiler* c, bool canAssign, OpCode op) {
  Token* name = &c->parser->previous;
  nameTooLong(c, name, "Method name");
  callByName(c, name->start, name->length, canAssign, op);
}

/* ---- Grammar: prefix expressions ------------------------------------ */

static void constantLiteral(Compiler* c, bool canAssign) {
  (void)canAssign;
  switch (c->parser->previous.type) {
    case TOKEN_FALSE: emitOp(c, OP_FALSE); break;
    case TOKEN_TRUE: emitOp(c, OP_TRUE); break;
    case TOKEN_NULL: emitOp(c, OP_NULL); break;
    default: emitConstant(c, c->parser->previous.value); break;
  }
}

static void parenthesized(Compiler* c, bool canAssign) {
  (void)canAssign;
  skipNewlines(c);
  expression(c);
  skipNewlines(c);
  consume(c, TOKEN_RIGHT_PAREN, "Expect ')' after expression.");
}

static void listLiteral(Compiler* c, bool canAssign) {
  (void)canAssign;
  emitOp(c, OP_NEW_LIST);
  do {
    skipNewlines(c);
    if (check(c, TOKEN_RIGHT_BRACKET)) break;
    expression(c);
    emitOp(c, OP_LIST_APPEND);
    /* After an element a line may end only before the closing ']'. */
    if (matchNewlines(c)) break;
  } while (match(c, TOKEN_COMMA));
  skipNewlines(c);
  consume(c, TOKEN_RIGHT_BRACKET, "Expect ']' after list elements.");
}

static void mapLiteral(Compiler* c, bool canAssign) {
  (void)canAssign;
  emitOp(c, OP_NEW_MAP);
  do {
    skipNewlines(c);
    if (check(c, TOKEN_RIGHT_BRACE)) break;
    /* A key is a unary expression at most: "{a + b: v}" needs parentheses. */
    parseBound(c, BIND_PREFIX);
    consume(c, TOKEN_COLON, "Expect ':' after map key.");
    skipNewlines(c);
    expression(c);
    emitOp(c, OP_MAP_INSERT);
    if (matchNewlines(c)) break;
  } while (match(c, TOKEN_COMMA));
  skipNewlines(c);
  consume(c, TOKEN_RIGHT_BRACE, "Expect '}' after map entries.");
}

static void interpolation(Compiler* c, bool canAssign) {
  (void)canAssign;
  emitOp(c, OP_NEW_LIST);
  do {
    emitConstant(c, c->parser->previous.value);
    emitOp(c, OP_LIST_APPEND);
    skipNewlines(c);
    expression(c);
    emitOp(c, OP_LIST_APPEND);
    skipNewlines(c);
  } while (match(c, TOKEN_INTERPOLATION));
  consume(c, TOKEN_STRING, "Expect end of string interpolation.");
  emitConstant(c, c->parser->previous.value);
  emitOp(c, OP_LIST_APPEND);
  emitCall(c, 0, "join()", 6);
}

static void prefixOperator(Compiler* c, bool canAssign) {
  (void)canAssign;
  Token op = c->parser->previous;
  skipNewlines(c);
  parseBound(c, BIND_PREFIX + 1);
  c->parser->callLine = op.line;
  c->parser->callColumn = op.column;
  emitCall(c, 0, op.start, op.length);
  c->parser->callLine = 0;
}

static bool startsLowercase(const char* name) { return name[0] >= 'a' && name[0] <= 'z'; }

/* A bare name: variable, implicit self-call or module variable. */
static void variableOrCall(Compiler* c, bool canAssign) {
  Token token = c->parser->previous;
  bool inMethod = enclosingMethod(c) != NULL;
  Variable v;
  if (inMethod && startsLowercase(token.start)) {
    v.scope = SCOPE_LOCAL;
    v.index = findLocal(c, token.start, token.length);
    if (v.index == -1) {
      v.scope = SCOPE_UPVALUE;
      v.index = findCapturedIn(c, token.start, token.length, true);
    }
  } else {
    v = findNonModule(c, token.start, token.length);
  }
  if (v.index == -1 && startsLowercase(token.start) && inMethod) {
    loadThis(c);
    callNamed(c, canAssign, OP_CALL);
    return;
  }
  if (v.index == -1) {
    ObjModule* module = c->parser->module;
    v.scope = SCOPE_MODULE;
    v.index = moduleFindVariable(module, token.start, token.length);
    if (v.index == -1) {
      if (startsLowercase(token.start) && c->parent == NULL) {
        error(c, "Undefined variable.");
        return;
      }
      /* Forward reference; the line is kept to report it if never defined. */
      v.index = moduleAddVariable(c->parser->vm, module, token.start, token.length,
                                  UNDEFINED_VAL);
      module->variables[v.index] = UNDEFINED_VAL;
      /* Record first use line in a side table via the number of the line. */
      char key[80];
      int length = snprintf(key, sizeof key, " line %.*s", token.length, token.start);
      if (moduleFindVariable(module, key, length) == -1) {
        moduleAddVariable(c->parser->vm, module, key, length, NUM_VAL(token.line));
      }
    }
  }
  if (canAssign && match(c, TOKEN_EQ)) {
    skipNewlines(c);
    expression(c);
    storeVariable(c, v);
    return;
  }
  loadVariable(c, v);
}

static ClassScope* enclosingClassScope(Compiler* c) {
  Compiler* method = enclosingMethod(c);
  return method == NULL ? NULL : method->classScope;
}

static void instanceField(Compiler* c, bool canAssign) {
  Compiler* method = enclosingMethod(c);
  int index = 0;
  if (method == NULL) {
    error(c, "Cannot reference a field outside of a class definition.");
  } else if (method->classScope->inStatic) {
    error(c, "Cannot use an instance field in a static method.");
  } else {
    Token* t = &c->parser->previous;
    nameTooLong(c, t, "Field name");
    index = symbolTableEnsure(&method->classScope->fields, t->start, t->length);
    if (index >= MAX_FIELDS) error(c, "A class can only have 255 fields.");
  }
  bool isAssignment = canAssign && match(c, TOKEN_EQ);
  if (isAssignment) {
    skipNewlines(c);
    expression(c);
  }
  if (c == method) {
    emitWithByte(c, isAssignment ? OP_STORE_FIELD_THIS : OP_LOAD_FIELD_THIS, index);
  } else {
    loadThis(c);
    emitWithByte(c, isAssignment ? OP_STORE_FIELD : OP_LOAD_FIELD, index);
  }
}

/* Static fields are hidden module variables named "Class.__name". */
static void classField(Compiler* c, bool canAssign) {
  ClassScope* info = enclosingClassScope(c);
  Token token = c->parser->previous;
  if (info == NULL) {
    error(c, "Cannot use a static field outside of a class definition.");
    return;
  }
  if (nameTooLong(c, &token, "Field name")) return;
  char key[160];
  int length = snprintf(key, sizeof key, "%s.%.*s", info->name->chars, token.length, token.start);
  ObjModule* module = c->parser->module;
  int index = moduleFindVariable(module, key, length);
  if (index == -1) index = moduleAddVariable(c->parser->vm, module, key, length, NULL_VAL);
  Variable v = {SCOPE_MODULE, index};
  if (canAssign && match(c, TOKEN_EQ)) {
    skipNewlines(c);
    expression(c);
    storeVariable(c, v);
    return;
  }
  loadVariable(c, v);
}

static void thisExpr(Compiler* c, bool canAssign) {
  (void)canAssign;
  if (enclosingMethod(c) == NULL) {
    error(c, "Cannot use 'this' outside of a method.");
    return;
  }
  loadThis(c);
}

static void superExpr(Compiler* c, bool canAssign) {
  Compiler* method = enclosingMethod(c);
  if (method == NULL) {
    error(c, "Cannot use 'super' outside of a method.");
    return;
  }
  loadThis(c);
  if (match(c, TOKEN_DOT)) {
    consume(c, TOKEN_NAME, "Expect method name after 'super.'.");
    callNamed(c, canAssign, OP_SUPER);
    return;
  }
  /* "super" alone names the superclass method of the same name; the
   * arguments written after it choose the arity, as in any call:
   * "super" is the getter, "super(a, b)" takes two. */
  MethodKey* current = method->classScope->currentKey;
  Token at = c->parser->previous;
  MethodKey mk = {current->name, current->nameLength, SHAPE_PARENS, 0, at.line, at.column};
  if (current->shape == SHAPE_CONSTRUCTOR) {
    /* super(...) in a constructor calls the superclass initializer; the
     * argument list is required, even when empty. */
    if (!match(c, TOKEN_LEFT_PAREN)) {
      error(c, "A superclass constructor call needs an argument list: 'super(...)'.");
      return;
    }
    skipNewlines(c);
    if (!check(c, TOKEN_RIGHT_PAREN)) pushArguments(c, &mk);
    consume(c, TOKEN_RIGHT_PAREN, "Expect ')' after arguments.");
    mk.shape = SHAPE_CONSTRUCTOR;
    emitKeyedCall(c, OP_SUPER, &mk);
    return;
  }
  callByName(c, current->name, current->nameLength, canAssign, OP_SUPER);
}

/* ---- Grammar: infix expressions ------------------------------------- */

static OpCode fastOp(TokenType type) {
  switch (type) {
    case TOKEN_PLUS: return OP_ADD;
    case TOKEN_MINUS: return OP_SUB;
    case TOKEN_STAR: return OP_MUL;
    case TOKEN_SLASH: return OP_DIV;
    case TOKEN_LT: return OP_LT;
    case TOKEN_GT: return OP_GT;
    case TOKEN_LTEQ: return OP_LTE;
    case TOKEN_GTEQ: return OP_GTE;
    case TOKEN_EQEQ: return OP_EQ;
    case TOKEN_BANGEQ: return OP_NEQ;
    default: return OP_END;
  }
}

static void binaryOperator(Compiler* c, bool canAssign) {
  (void)canAssign;
  Token at = c->parser->previous; /* the operator */
  TokenType type = at.type;
  const GrammarRule* rule = ruleFor(type);
  skipNewlines(c);
  parseBound(c, (Binding)(rule->binding + 1));
  MethodKey mk = {rule->name, (int)strlen(rule->name), SHAPE_PARENS, 1, at.line, at.column};
  OpCode op = fastOp(type);
  if (op != OP_END) {
    int symbol = keySymbol(c, &mk);
    c->parser->callLine = at.line;
    c->parser->callColumn = at.column;
    emitWithShort(c, op, symbol);
    c->parser->callLine = 0;
    return;
  }
  emitKeyedCall(c, OP_CALL, &mk);
}

static void andExpr(Compiler* c, bool canAssign) {
  (void)canAssign;
  skipNewlines(c);
  int jump = emitJump(c, OP_AND);
  parseBound(c, BIND_AND);
  patchJump(c, jump);
}

static void orExpr(Compiler* c, bool canAssign) {
  (void)canAssign;
  skipNewlines(c);
  int jump = emitJump(c, OP_OR);
  parseBound(c, BIND_OR);
  patchJump(c, jump);
}

static void ternary(Compiler* c, bool canAssign) {
  (void)canAssign;
  skipNewlines(c);
  int elseJump = emitJump(c, OP_JUMP_IF_FALSE);
  parseBound(c, BIND_TERNARY);
  skipNewlines(c);
  consume(c, TOKEN_COLON, "Expect ':' after then branch of conditional operator.");
  skipNewlines(c);
  int endJump = emitJump(c, OP_JUMP);
  patchJump(c, elseJump);
  adjustSlots(c, -1); /* only one branch's value is on the stack */
  parseBound(c, BIND_ASSIGN);
  patchJump(c, endJump);
}

static void indexCall(Compiler* c, bool canAssign) {
  Token at = c->parser->previous; /* the '[' */
  MethodKey mk = {"", 0, SHAPE_INDEX, 0, at.line, at.column};
  skipNewlines(c);
  pushArguments(c, &mk);
  consume(c, TOKEN_RIGHT_BRACKET, "Expect ']' after arguments.");
  if (canAssign && match(c, TOKEN_EQ)) {
    mk.shape = SHAPE_INDEX_ASSIGN;
    checkArgumentCount(c, ++mk.argCount);
    skipNewlines(c);
    expression(c);
  }
  emitKeyedCall(c, OP_CALL, &mk);
}

static void dotCall(Compiler* c, bool canAssign) {
  skipNewlines(c);
  consume(c, TOKEN_NAME, "Expect method name after '.'.");
  callNamed(c, canAssign, OP_CALL);
}

/* ---- The Pratt table ------------------------------------------------ */

#define UNUSED {NULL, NULL, BIND_NONE, NULL}
#define PREFIX(fn) {fn, NULL, BIND_NONE, NULL}
#define INFIX_OP(prec, name) {NULL, binaryOperator, prec, name}
#define OPERATOR(name) {prefixOperator, binaryOperator, BIND_SUM, name}

static const GrammarRule rules[] = {
    /* ( */ PREFIX(parenthesized),
    /* ) */ UNUSED,
    /* [ */ {listLiteral, indexCall, BIND_CALL, NULL},
    /* ] */ UNUSED,
    /* { */ PREFIX(mapLiteral),
    /* } */ UNUSED,
    /* : */ UNUSED,
    /* . */ {NULL, dotCall, BIND_CALL, NULL},
    /* .. */ INFIX_OP(BIND_RANGE, ".."),
    /* ... */ INFIX_OP(BIND_RANGE, "..."),
    /* , */ UNUSED,
    /* * */ INFIX_OP(BIND_PRODUCT, "*"),
    /* / */ INFIX_OP(BIND_PRODUCT, "/"),
    /* % */ INFIX_OP(BIND_PRODUCT, "%"),
    /* # */ UNUSED,
    /* + */ INFIX_OP(BIND_SUM, "+"),
    /* - */ OPERATOR("-"),
    /* << */ INFIX_OP(BIND_SHIFT, "<<"),
    /* >> */ INFIX_OP(BIND_SHIFT, ">>"),
    /* | */ INFIX_OP(BIND_BIT_OR, "|"),
    /* || */ {NULL, orExpr, BIND_OR, NULL},
    /* ^ */ INFIX_OP(BIND_BIT_XOR, "^"),
    /* & */ INFIX_OP(BIND_BIT_AND, "&"),
    /* && */ {NULL, andExpr, BIND_AND, NULL},
    /* ! */ PREFIX(prefixOperator),
    /* ~ */ PREFIX(prefixOperator),
    /* ? */ {NULL, ternary, BIND_ASSIGN, NULL},
    /* = */ UNUSED,
    /* < */ INFIX_OP(BIND_COMPARE, "<"),
    /* > */ INFIX_OP(BIND_COMPARE, ">"),
    /* <= */ INFIX_OP(BIND_COMPARE, "<="),
    /* >= */ INFIX_OP(BIND_COMPARE, ">="),
    /* == */ INFIX_OP(BIND_EQUALS, "=="),
    /* != */ INFIX_OP(BIND_EQUALS, "!="),
    /* as */ UNUSED,
    /* break */ UNUSED,
    /* class */ UNUSED,
    /* construct */ UNUSED,
    /* continue */ UNUSED,
    /* else */ UNUSED,
    /* false */ PREFIX(constantLiteral),
    /* for */ UNUSED,
    /* foreign */ UNUSED,
    /* if */ UNUSED,
    /* import */ UNUSED,
    /* in */ UNUSED,
    /* is */ INFIX_OP(BIND_IS, "is"),
    /* null */ PREFIX(constantLiteral),
    /* return */ UNUSED,
    /* static */ UNUSED,
    /* super */ PREFIX(superExpr),
    /* this */ PREFIX(thisExpr),
    /* true */ PREFIX(constantLiteral),
    /* var */ UNUSED,
    /* while */ UNUSED,
    /* field */ PREFIX(instanceField),
    /* static field */ PREFIX(classField),
    /* name */ PREFIX(variableOrCall),
    /* number */ PREFIX(constantLiteral),
    /* string */ PREFIX(constantLiteral),
    /* interpolation */ PREFIX(interpolation),
    /* line */ UNUSED,
    /* error */ UNUSED,
    /* eof */ UNUSED,
};

static const GrammarRule* ruleFor(TokenType type) { return &rules[type]; }

#define MAX_NESTING 400

static void parseBound(Compiler* c, Binding binding) {
  if (++c->parser->depth > MAX_NESTING) {
    errorAt(c, &c->parser->current, "Code is nested too deeply.");
    c->parser->depth--;
    return;
  }
  parseBoundInner(c, binding);
  c->parser->depth--;
}

static void parseBoundInner(Compiler* c, Binding binding) {
  nextToken(c);
  GrammarFn prefix = ruleFor(c->parser->previous.type)->prefix;
  if (prefix == NULL) {
    error(c, "Expected expression.");
    return;
  }
  bool canAssign = binding <= BIND_TERNARY;
  prefix(c, canAssign);
  for (;;) {
    if (check(c, TOKEN_LINE) && binding <= BIND_CALL && nextLineStartsWithDot(c)) {
      skipNewlines(c);
    }
    const GrammarRule* rule = ruleFor(c->parser->current.type);
    if (rule->infix == NULL || binding > rule->binding) break;
    nextToken(c);
    rule->infix(c, canAssign);
  }
  if (canAssign && check(c, TOKEN_EQ)) {
    errorAt(c, &c->parser->current, "Invalid assignment target.");
  }
}

static void expression(Compiler* c) { parseBound(c, BIND_LOWEST); }

/* ---- Statements ----------------------------------------------------- */

static void block(Compiler* c) {
  enterScope(c);
  if (!match(c, TOKEN_RIGHT_BRACE)) {
    if (!matchNewlines(c)) {
      statement(c);
      skipNewlines(c);
      consume(c, TOKEN_RIGHT_BRACE, "Expect '}' at end of block.");
    } else {
      compileStatements(c);
    }
  }
  leaveScope(c);
}

static void openLoop(Compiler* c, Loop* loop) {
  loop->start = c->fn->codeCount;
  loop->scopeDepth = c->scopeDepth;
  loop->breaks = NULL;
  loop->breakCount = 0;
  loop->breakCapacity = 0;
  loop->enclosing = c->loop;
  c->loop = loop;
}

static void compileLoopBody(Compiler* c) {
  statement(c);
}

static void closeLoop(Compiler* c, Loop* loop) {
  for (int i = 0; i < loop->breakCount; i++) patchJump(c, loop->breaks[i]);
  free(loop->breaks);
  c->loop = loop->enclosing;
}

/* The jump back to the loop's start, placed at its keyword so a limit
 * firing while the loop spins names the loop's line. */
static void emitLoopBack(Compiler* c, Loop* loop) {
  c->parser->callLine = loop->keyword.line;
  c->parser->callColumn = loop->keyword.column;
  emitLoop(c, loop->start);
  c->parser->callLine = 0;
}

static void whileStatement(Compiler* c) {
  Loop loop;
  loop.keyword = c->parser->previous;
  openLoop(c, &loop);
  consume(c, TOKEN_LEFT_PAREN, "Expect '(' after 'while'.");
  skipNewlines(c);
  expression(c);
  skipNewlines(c);
  consume(c, TOKEN_RIGHT_PAREN, "Expect ')' after while condition.");
  int exitJump = emitJump(c, OP_JUMP_IF_FALSE);
  compileLoopBody(c);
  emitLoopBack(c, &loop);
  patchJump(c, exitJump);
  closeLoop(c, &loop);
}

static void forStatement(Compiler* c) {
  Token keyword = c->parser->previous;
  enterScope(c);
  consume(c, TOKEN_LEFT_PAREN, "Expect '(' after 'for'.");
  consume(c, TOKEN_NAME, "Expect for loop variable name.");
  Token varName = c->parser->previous;
  consume(c, TOKEN_IN, "Expect 'in' after loop variable.");
  skipNewlines(c);
  expression(c);
  skipNewlines(c);
  consume(c, TOKEN_RIGHT_PAREN, "Expect ')' after loop expression.");
  int seqSlot = addLocal(c, "seq ", 4);
  emitOp(c, OP_NULL);
  int iterSlot = addLocal(c, "iter ", 5);

  Loop loop;
  loop.keyword = keyword;
  openLoop(c, &loop);
  emitWithByte(c, OP_LOAD_LOCAL, seqSlot);
  emitWithByte(c, OP_LOAD_LOCAL, iterSlot);
  emitWithShort(c, OP_ITERATE, methodSymbol(c, "iterate(_)", 10));
  emitWithByte(c, OP_STORE_LOCAL, iterSlot);
  int exitJump = emitJump(c, OP_JUMP_IF_FALSE);
  emitWithByte(c, OP_LOAD_LOCAL, seqSlot);
  emitWithByte(c, OP_LOAD_LOCAL, iterSlot);
  emitWithShort(c, OP_ITERATOR_VALUE, methodSymbol(c, "iteratorValue(_)", 16));

  enterScope(c);
  addLocal(c, varName.start, varName.length);
  compileLoopBody(c);
  leaveScope(c);

  emitLoopBack(c, &loop);
  patchJump(c, exitJump);
  closeLoop(c, &loop);
  leaveScope(c);
}

static void ifStatement(Compiler* c) {
  consume(c, TOKEN_LEFT_PAREN, "Expect '(' after 'if'.");
  skipNewlines(c);
  expression(c);
  skipNewlines(c);
  consume(c, TOKEN_RIGHT_PAREN, "Expect ')' after if condition.");
  int elseJump = emitJump(c, OP_JUMP_IF_FALSE);
  statement(c);
  /* "else" may follow on the next line. */
  if (check(c, TOKEN_LINE)) {
    const char* p = c->parser->lexer.current;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
    if (strncmp(p, "else", 4) == 0 && !(p[4] == '_' || (p[4] >= 'a' && p[4] <= 'z') ||
                                        (p[4] >= 'A' && p[4] <= 'Z') || (p[4] >= '0' && p[4] <= '9'))) {
      skipNewlines(c);
    }
  }
  if (match(c, TOKEN_ELSE)) {
    int endJump = emitJump(c, OP_JUMP);
    patchJump(c, elseJump);
    statement(c);
    patchJump(c, endJump);
  } else {
    patchJump(c, elseJump);
  }
}

static void breakStatement(Compiler* c) {
  if (c->loop == NULL) {
    error(c, "Cannot use 'break' outside of a loop.");
    return;
  }
  emitDiscardLocals(c, c->loop->scopeDepth);
  Loop* loop = c->loop;
  if (loop->breakCount >= loop->breakCapacity) {
    loop->breakCapacity = GROW_CAPACITY(loop->breakCapacity);
    loop->breaks = (int*)realloc(loop->breaks, sizeof(int) * loop->breakCapacity);
  }
  loop->breaks[loop->breakCount++] = emitJump(c, OP_JUMP);
}

static void continueStatement(Compiler* c) {
  if (c->loop == NULL) {
    error(c, "Cannot use 'continue' outside of a loop.");
    return;
  }
  emitDiscardLocals(c, c->loop->scopeDepth);
  emitLoop(c, c->loop->start);
}

static void returnStatement(Compiler* c) {
  if (check(c, TOKEN_LINE) || check(c, TOKEN_RIGHT_BRACE) || check(c, TOKEN_EOF)) {
    emitImplicitReturn(c);
    return;
  }
  if (c->isInitializer) error(c, "A constructor cannot return a value.");
  expression(c);
  emitOp(c, OP_RETURN);
}

static void varStatement(Compiler* c) {
  consume(c, TOKEN_NAME, "Expect variable name.");
  Token name = c->parser->previous;
  if (match(c, TOKEN_EQ)) {
    skipNewlines(c);
    expression(c);
  } else {
    emitOp(c, OP_NULL);
  }
  int symbol = declareName(c, &name);
  storeDeclared(c, symbol);
}

static void importStatement(Compiler* c) {
  skipNewlines(c);
  consume(c, TOKEN_STRING, "Expect a string after 'import'.");
  int moduleConstant = addConstant(c, c->parser->previous.value);
  emitWithShort(c, OP_IMPORT_MODULE, moduleConstant);
  emitOp(c, OP_POP);
  if (!match(c, TOKEN_FOR)) return;
  do {
    skipNewlines(c);
    consume(c, TOKEN_NAME, "Expect variable name.");
    Token source = c->parser->previous;
    Token target = source;
    if (match(c, TOKEN_AS)) {
      consume(c, TOKEN_NAME, "Expect variable name.");
      target = c->parser->previous;
    }
    int nameConstant = addConstant(c, stringValue(c->parser->vm, source.start, source.length));
    emitWithShort(c, OP_IMPORT_VARIABLE, nameConstant);
    int symbol = declareName(c, &target);
    storeDeclared(c, symbol);
  } while (match(c, TOKEN_COMMA));
}

static void attributeListFree(AttributeList* list) {
  free(list->items);
  list->items = NULL;
  list->count = list->capacity = 0;
}

static int addAttributeConstant(Compiler* c, const char* start, int length) {
  return addConstant(c, stringValue(c->parser->vm, start, length));
}

/* Records the key in previous, with its optional "= value", in list
 * when the attribute is a run-time one. */
static void attributeEntry(Compiler* c, AttributeList* list, bool runtime,
                           const Token* group) {
  Token key = c->parser->previous;
  Attribute a;
  a.group = group ? group->start : NULL;
  a.groupLength = group ? group->length : 0;
  a.key = key.start;
  a.keyLength = key.length;
  a.valueKind = 0;
  a.valueConstant = 0;
  if (match(c, TOKEN_EQ)) {
    nextToken(c);
    Token* v = &c->parser->previous;
    switch (v->type) {
      case TOKEN_NULL: a.valueKind = 0; break;
      case TOKEN_FALSE: a.valueKind = 1; break;
      case TOKEN_TRUE: a.valueKind = 2; break;
      case TOKEN_NUMBER:
      case TOKEN_STRING:
        a.valueKind = 3;
        if (runtime) a.valueConstant = addConstant(c, v->value);
        break;
      case TOKEN_NAME:
        a.valueKind = 3;
        if (runtime) a.valueConstant = addAttributeConstant(c, v->start, v->length);
        break;
      default:
        error(c, "Expect a Name, String, Bool, Num or null attribute value.");
        return;
    }
  }
  if (!runtime || list == NULL || c->parser->hadError) return;
  if (list->count >= list->capacity) {
    list->capacity = list->capacity < 4 ? 4 : list->capacity * 2;
    list->items = (Attribute*)realloc(list->items, sizeof(Attribute) * list->capacity);
  }
  list->items[list->count++] = a;
}

/* Parses an attribute after "#": "#key", "#key = value",
 * "#group(a, b = 1)"; "#!" ones are kept in list for run time. */
static void attribute(Compiler* c, AttributeList* list) {
  bool runtime = match(c, TOKEN_BANG);
  consume(c, TOKEN_NAME, "Expect an attribute definition after #.");
  Token name = c->parser->previous;
  if (match(c, TOKEN_LEFT_PAREN)) {
    skipNewlines(c);
    if (!check(c, TOKEN_RIGHT_PAREN)) {
      do {
        skipNewlines(c);
        consume(c, TOKEN_NAME, "Expect an attribute definition after #.");
        attributeEntry(c, list, runtime, &name);
        skipNewlines(c);
      } while (!c->parser->hadError && match(c, TOKEN_COMMA));
    }
    skipNewlines(c);
    consume(c, TOKEN_RIGHT_PAREN, "Expect ')' after grouped attributes.");
  } else {
    attributeEntry(c, list, runtime, NULL);
  }
  expectNewline(c, "Expect newline after attribute.");
}

static bool sameName(const char* a, int aLength, const char* b, int bLength) {
  if (a == NULL || b == NULL) return a == b;
  return aLength == bLength && memcmp(a, b, (size_t)aLength) == 0;
}

/* Emits code that leaves a Map of group -> Map of key -> List of values. */
static void emitAttributeMap(Compiler* c, AttributeList* list) {
  emitOp(c, OP_NEW_MAP);
  for (int g = 0; g < list->count; g++) {
    Attribute* first = &list->items[g];
    bool seen = false;
    for (int p = 0; p < g && !seen; p++) {
      seen = sameName(list->items[p].group, list->items[p].groupLength, first->group, first->groupLength);
    }
    if (seen) continue;
    if (first->group == NULL) {
      emitOp(c, OP_NULL);
    } else {
      emitConstant(c, stringValue(c->parser->vm, first->group, first->groupLength));
    }
    emitOp(c, OP_NEW_MAP);
    for (int k = g; k < list->count; k++) {
      Attribute* key = &list->items[k];
      if (!sameName(key->group, key->groupLength, first->group, first->groupLength)) continue;
      bool keySeen = false;
      for (int p = g; p < k && !keySeen; p++) {
        Attribute* q = &list->items[p];
        keySeen = sameName(q->group, q->groupLength, first->group, first->groupLength) &&
                  sameName(q->key, q->keyLength, key->key, key->keyLength);
      }
      if (keySeen) continue;
      emitConstant(c, stringValue(c->parser->vm, key->key, key->keyLength));
      emitOp(c, OP_NEW_LIST);
      for (int v = k; v < list->count; v++) {
        Attribute* value = &list->items[v];
        if (!sameName(value->group, value->groupLength, first->group, first->groupLength) ||
            !sameName(value->key, value->keyLength, key->key, key->keyLength)) {
          continue;
        }
        switch (value->valueKind) {
          case 0: emitOp(c, OP_NULL); break;
          case 1: emitOp(c, OP_FALSE); break;
          case 2: emitOp(c, OP_TRUE); break;
          default: emitWithShort(c, OP_CONSTANT, value->valueConstant); break;
        }
        emitOp(c, OP_LIST_APPEND);
      }
      emitOp(c, OP_MAP_INSERT);
    }
    emitOp(c, OP_MAP_INSERT);
  }
}

/* With the class on top of the stack, stores its ClassAttributes. */
static void emitClassAttributeMaps(Compiler* c, ClassScope* info) {
  bool hasSelf = info->classAttributes != NULL && info->classAttributes->count > 0;
  if (!hasSelf && info->methodAttributeCount == 0) return;
  if (moduleFindVariable(c->parser->module, "ClassAttributes", 15) == -1) return;
  loadCoreName(c, "ClassAttributes");
  if (hasSelf) {
    emitAttributeMap(c, info->classAttributes);
  } else {
    emitOp(c, OP_NULL);
  }
  if (info->methodAttributeCount > 0) {
    emitOp(c, OP_NEW_MAP);
    for (int i = 0; i < info->methodAttributeCount; i++) {
      MethodAttributes* m = &info->methodAttributes[i];
      emitConstant(c, stringValue(c->parser->vm, m->text, m->length));
      emitAttributeMap(c, &m->attributes);
      emitOp(c, OP_MAP_INSERT);
    }
  } else {
    emitOp(c, OP_NULL);
  }
  emitCall(c, 2, "new(_,_)", 8);
  emitOp(c, OP_END_CLASS);
}

static void statementInner(Compiler* c);

/* Kryon's Wren has no foreign classes: the host cannot allocate or
 * finalize instances of Wren classes, so "foreign class" is refused here
 * rather than making a class whose construction fails later. */
static void foreignClass(Compiler* c) {
  errorAt(c, &c->parser->current,
          "Foreign classes are not supported: Kryon's Wren host defines no foreign "
          "classes (use a plain class; hosts provide foreign methods only).");
}

static void statement(Compiler* c) {
  if (++c->parser->depth > MAX_NESTING) {
    errorAt(c, &c->parser->current, "Code is nested too deeply.");
    c->parser->depth--;
    return;
  }
  statementInner(c);
  c->parser->depth--;
}

static void statementInner(Compiler* c) {
  if (match(c, TOKEN_HASH)) {
    AttributeList attributes = {NULL, 0, 0};
    do {
      attribute(c, &attributes);
    } while (!c->parser->hadError && match(c, TOKEN_HASH));
    if (match(c, TOKEN_CLASS)) {
      compileClass(c, &attributes);
    } else if (check(c, TOKEN_FOREIGN)) {
      foreignClass(c);
    } else {
      errorAt(c, &c->parser->current, "Attributes may only come before a class or a method.");
    }
    attributeListFree(&attributes);
  } else if (match(c, TOKEN_CLASS)) {
    compileClass(c, NULL);
  } else if (check(c, TOKEN_FOREIGN)) {
    foreignClass(c);
  } else if (match(c, TOKEN_IMPORT)) {
    importStatement(c);
  } else if (match(c, TOKEN_VAR)) {
    varStatement(c);
  } else if (match(c, TOKEN_BREAK)) {
    breakStatement(c);
  } else if (match(c, TOKEN_CONTINUE)) {
    continueStatement(c);
  } else if (match(c, TOKEN_FOR)) {
    forStatement(c);
  } else if (match(c, TOKEN_IF)) {
    ifStatement(c);
  } else if (match(c, TOKEN_RETURN)) {
    returnStatement(c);
  } else if (match(c, TOKEN_WHILE)) {
    whileStatement(c);
  } else if (match(c, TOKEN_LEFT_BRACE)) {
    block(c);
  } else {
    expression(c);
    emitOp(c, OP_POP);
  }
}

/* ---- Classes -------------------------------------------------------- */

static bool isOperatorToken(TokenType t) {
  const GrammarRule* rule = ruleFor(t);
  return rule->name != NULL || t == TOKEN_BANG || t == TOKEN_TILDE;
}

/* Reads the header of a method definition (its name token is in
 * previous) into mk: its shape, and its parameters as locals. */
static bool parseMethodHeader(Compiler* c, MethodKey* mk, bool isConstruct) {
  Token* t = &c->parser->previous;
  mk->name = t->start;
  mk->nameLength = t->length;
  mk->argCount = 0;
  if (t->type == TOKEN_NAME) nameTooLong(c, t, "Method name");
  if (isConstruct) {
    mk->shape = SHAPE_CONSTRUCTOR;
    consume(c, TOKEN_LEFT_PAREN, "A constructor cannot be a getter.");
    skipNewlines(c);
    declareParameters(c, mk, TOKEN_RIGHT_PAREN);
    skipNewlines(c);
    consume(c, TOKEN_RIGHT_PAREN, "Expect ')' after parameters.");
    return true;
  }
  if (t->type == TOKEN_LEFT_BRACKET) {
    mk->shape = SHAPE_INDEX;
    mk->name = "";
    mk->nameLength = 0;
    if (check(c, TOKEN_RIGHT_BRACKET)) {
      errorAt(c, &c->parser->current, "A subscript method needs at least one parameter.");
      return false;
    }
    declareParameters(c, mk, TOKEN_RIGHT_BRACKET);
    consume(c, TOKEN_RIGHT_BRACKET, "Expect ']' after parameters.");
    if (match(c, TOKEN_EQ)) {
      mk->shape = SHAPE_INDEX_ASSIGN;
      consume(c, TOKEN_LEFT_PAREN, "Expect '(' after '='.");
      MethodKey setterKey = *mk;
      declareParameters(c, &setterKey, TOKEN_RIGHT_PAREN);
      if (setterKey.argCount != mk->argCount + 1) error(c, "Expect one parameter for subscript setter.");
      mk->argCount = setterKey.argCount;
      consume(c, TOKEN_RIGHT_PAREN, "Expect ')' after parameter.");
    }
    return true;
  }
  if (t->type != TOKEN_NAME) {
    /* Operator: unary when no parameter list follows. */
    if (match(c, TOKEN_LEFT_PAREN)) {
      mk->shape = SHAPE_PARENS;
      declareParameters(c, mk, TOKEN_RIGHT_PAREN);
      if (mk->argCount != 1) error(c, "Operator methods take one parameter.");
      consume(c, TOKEN_RIGHT_PAREN, "Expect ')' after parameter.");
    } else {
      mk->shape = SHAPE_BARE;
    }
    return true;
  }
  if (match(c, TOKEN_EQ)) {
    mk->shape = SHAPE_ASSIGN;
    consume(c, TOKEN_LEFT_PAREN, "Expect '(' after '='.");
    declareParameters(c, mk, TOKEN_RIGHT_PAREN);
    if (mk->argCount != 1) error(c, "A setter takes one parameter.");
    consume(c, TOKEN_RIGHT_PAREN, "Expect ')' after parameter.");
    return true;
  }
  if (match(c, TOKEN_LEFT_PAREN)) {
    mk->shape = SHAPE_PARENS;
    skipNewlines(c);
    declareParameters(c, mk, TOKEN_RIGHT_PAREN);
    skipNewlines(c);
    consume(c, TOKEN_RIGHT_PAREN, "Expect ')' after parameters.");
    return true;
  }
  mk->shape = SHAPE_BARE;
  return true;
}

/* The static "new(...)" that allocates and runs the initializer. */
static void emitAllocator(Compiler* c, MethodKey* mk, int initSymbol) {
  Compiler ctor;
  beginFunction(&ctor, c->parser, c, true);
  /* The arguments occupy slots 1..argCount of the frame: count them, or the
   * loads below would reach past the stack the VM reserves for it. */
  adjustSlots(&ctor, mk->argCount);
  emitOp(&ctor, OP_CONSTRUCT);
  for (int i = 0; i <= mk->argCount; i++) emitWithByte(&ctor, OP_LOAD_LOCAL, i);
  emitOp(&ctor, OP_CALL);
  emitByte(&ctor, mk->argCount);
  emitShort(&ctor, initSymbol);
  adjustSlots(&ctor, -mk->argCount);
  emitOp(&ctor, OP_RETURN);
  ctor.fn->arity = mk->argCount;
  /* An empty name hides this frame from stack traces: the initializer's
   * frame above it already names the constructor. */
  finishFunction(&ctor, "", 0);
}

/* Foreign methods are bound when they are compiled, so one the host does
 * not provide is a compile error at its declaration. Returns the host's
 * id for the method, or -1 for a built-in one of an optional module
 * (bound again by name when the class is made). */
static int bindForeign(Compiler* c, Token* name, ClassScope* info, bool isStatic,
                       const char* keyText, int keyLength) {
  if (c->parser->hadError) return -1;
  ObjModule* module = c->parser->module;
  const char* moduleName = module->name ? module->name->chars : "core";
  if (optModuleForeign(moduleName, info->name->chars, isStatic, keyText) != NULL) return -1;
  VM* vm = c->parser->vm;
  vmFlushOutput(vm);
  int id = host_bind_foreign(vm->hostId, moduleName, (int)strlen(moduleName), info->name->chars,
                             (int)info->name->length, isStatic, keyText, keyLength);
  if (id < 0) {
    char message[MAX_KEY_TEXT + 160];
    snprintf(message, sizeof message,
             "The host provides no foreign %smethod '%s' for class %s in module '%s'.",
             isStatic ? "static " : "", keyText, info->name->chars, moduleName);
    errorAt(c, name, message);
  }
  return id;
}

static void methodDefinition(Compiler* c, ClassScope* info) {
  AttributeList attributes = {NULL, 0, 0};
  while (!c->parser->hadError && match(c, TOKEN_HASH)) attribute(c, &attributes);
  bool isForeign = match(c, TOKEN_FOREIGN);
  bool isStatic = match(c, TOKEN_STATIC);
  bool isConstruct = match(c, TOKEN_CONSTRUCT);
  info->inStatic = isStatic;
  nextToken(c);
  Token nameToken = c->parser->previous;
  TokenType t = nameToken.type;
  if (isForeign && isConstruct) {
    error(c, "A constructor cannot be foreign.");
    attributeListFree(&attributes);
    return;
  }
  if (isConstruct) {
    if (t != TOKEN_NAME) {
      error(c, "Expect constructor name after 'construct'.");
      attributeListFree(&attributes);
      return;
    }
  } else if (t != TOKEN_NAME && t != TOKEN_LEFT_BRACKET && !isOperatorToken(t)) {
    error(c, "Expect method definition.");
    attributeListFree(&attributes);
    return;
  }

  Compiler methodC;
  beginFunction(&methodC, c->parser, c, true);
  methodC.classScope = info;
  methodC.isInitializer = isConstruct;
  MethodKey mk;
  parseMethodHeader(&methodC, &mk, isConstruct);
  info->currentKey = &mk;
  methodC.fn->arity = mk.argCount;
  char buffer[MAX_KEY_TEXT];
  int length = keyText(&mk, buffer);
  int symbol = methodSymbol(c, buffer, length);
  char key[MAX_KEY_TEXT + 8];
  int keyLength = snprintf(key, sizeof key, "%s%s", isStatic ? "static " : "", buffer);
  if (symbolTableFind(&info->methods, key, keyLength) != -1) {
    char message[MAX_KEY_TEXT + 80];
    snprintf(message, sizeof message, "Class %s already defines a %smethod '%s'.",
             info->name->chars, isStatic ? "static " : "", buffer);
    error(c, message);
  }
  symbolTableAdd(&info->methods, key, keyLength);
  if (attributes.count > 0) {
    if (info->methodAttributeCount >= info->methodAttributeCapacity) {
      info->methodAttributeCapacity = info->methodAttributeCapacity < 4 ? 4 : info->methodAttributeCapacity * 2;
      info->methodAttributes = (MethodAttributes*)realloc(
          info->methodAttributes, sizeof(MethodAttributes) * info->methodAttributeCapacity);
    }
    MethodAttributes* m = &info->methodAttributes[info->methodAttributeCount++];
    char full[MAX_KEY_TEXT + 16];
    int fullLength = snprintf(full, sizeof full, "%s%s", isForeign ? "foreign " : "", key);
    m->text = (char*)malloc((size_t)fullLength + 1);
    memcpy(m->text, full, (size_t)fullLength + 1);
    m->length = fullLength;
    m->attributes = attributes;
  } else {
    attributeListFree(&attributes);
  }

  if (isForeign) {
    int bound = bindForeign(c, &nameToken, info, isStatic, buffer, length);
    emitWithShort(c, isStatic ? OP_FOREIGN_STATIC : OP_FOREIGN_INSTANCE, symbol);
    emitShort(c, addConstant(c, NUM_VAL(bound)));
    return;
  }
  consume(&methodC, TOKEN_LEFT_BRACE, "Expect '{' to begin method body.");
  compileBody(&methodC);
  /* A constructor's frame is named "new(_)", not by its symbol "init new(_)". */
  int prefix = isConstruct ? 5 : 0;
  finishFunction(&methodC, buffer + prefix, length - prefix);
  emitWithShort(c, isStatic ? OP_METHOD_STATIC : OP_METHOD_INSTANCE, symbol);

  if (isConstruct) {
    MethodKey newKey = mk;
    newKey.shape = SHAPE_PARENS;
    emitAllocator(c, &mk, symbol);
    emitWithShort(c, OP_METHOD_STATIC, keySymbol(c, &newKey));
  }
}

static void compileClass(Compiler* c, AttributeList* attributes) {
  consume(c, TOKEN_NAME, "Expect class name.");
  Token className = c->parser->previous;
  ObjString* nameString = newStringLength(c->parser->vm, className.start, className.length);
  int symbol = declareName(c, &className);
  emitConstant(c, OBJ_VAL(nameString));
  if (match(c, TOKEN_IS)) {
    parseBound(c, BIND_CALL);
  } else {
    loadCoreName(c, "Object");
  }
  emitOp(c, OP_CLASS);
  int numFieldsOffset = emitByte(c, 255);
  if (c->scopeDepth == -1) {
    emitWithShort(c, OP_STORE_MODULE_VAR, symbol);
  }

  ClassScope info;
  info.name = nameString;
  info.classAttributes = attributes;
  info.methodAttributes = NULL;
  info.methodAttributeCount = 0;
  info.methodAttributeCapacity = 0;
  info.inStatic = false;
  info.currentKey = NULL;
  symbolTableInit(&info.fields);
  symbolTableInit(&info.methods);

  enterScope(c);
  consume(c, TOKEN_LEFT_BRACE, "Expect '{' after class declaration.");
  matchNewlines(c);
  while (!match(c, TOKEN_RIGHT_BRACE)) {
    if (check(c, TOKEN_EOF)) {
      errorAt(c, &c->parser->current, "Expect '}' after class body.");
      break;
    }
    methodDefinition(c, &info);
    if (match(c, TOKEN_RIGHT_BRACE)) break;
    expectNewline(c, "Expect newline after definition in class.");
  }
  c->scopeDepth--;
  if (!c->parser->hadError) emitClassAttributeMaps(c, &info);
  for (int i = 0; i < info.methodAttributeCount; i++) {
    free(info.methodAttributes[i].text);
    attributeListFree(&info.methodAttributes[i].attributes);
  }
  free(info.methodAttributes);
  c->fn->code[numFieldsOffset] = (uint8_t)info.fields.count;
  symbolTableFree(&info.fields);
  symbolTableFree(&info.methods);
  if (c->scopeDepth == -1) emitOp(c, OP_POP);
}

/* ---- Module entry point --------------------------------------------- */

static bool reportUndefined(Compiler* c) {
  ObjModule* module = c->parser->module;
  for (int i = 0; i < module->variableCount; i++) {
    if (!IS_UNDEFINED(module->variables[i])) continue;
    const char* varName = module->variableNames.names[i];
    char key[80];
    int length = snprintf(key, sizeof key, " line %s", varName);
    int lineIndex = moduleFindVariable(module, key, length);
    int line = lineIndex == -1 ? 1 : (int)AS_NUM(module->variables[lineIndex]);
    char message[160];
    snprintf(message, sizeof message, "[%s line %d] Error: Variable '%s' is used but not defined.",
             module->name ? module->name->chars : "core", line, varName);
    vmSetError(c->parser->vm, message, module->name ? module->name->chars : "core", line);
    return true;
  }
  return false;
}

int kwCompilerRuns = 0;

static ObjFn* compileSource(VM* vm, ObjModule* module, const char* source, bool isExpression) {
  kwCompilerRuns++;
  int variablesBefore = module->variableCount;
  Parser parser;
  parser.vm = vm;
  parser.module = module;
  parser.hadError = false;
  parser.depth = 0;
  lexerInit(&parser.lexer, vm, source);
  parser.current.type = TOKEN_LINE;
  parser.current.line = 1;
  parser.current.start = source;
  parser.current.length = 0;
  parser.current.column = 1;
  parser.callLine = 0;
  parser.callColumn = 0;

  Compiler c;
  beginFunction(&c, &parser, NULL, false);
  nextToken(&c);
  skipNewlines(&c);
  if (isExpression) {
    /* Exactly one expression, optionally surrounded by blank lines; the
     * function returns its value. */
    expression(&c);
    skipNewlines(&c);
    consume(&c, TOKEN_EOF, "Expect end of expression.");
    emitOp(&c, OP_RETURN);
  } else {
    while (!match(&c, TOKEN_EOF)) {
      statement(&c);
      if (!matchNewlines(&c)) {
        consume(&c, TOKEN_EOF, "Expect end of file.");
        break;
      }
    }
    emitOp(&c, OP_END_MODULE);
    emitOp(&c, OP_RETURN);
  }
  ObjFn* fn = finishFunction(&c, "(script)", 8);
  lexerFree(&parser.lexer);
  if (!parser.hadError && reportUndefined(&c)) parser.hadError = true;
  /* A module outlives a failed compile (a REPL line, an evaluation, a
   * reload): the variables it declared must not make the next one fail. */
  if (parser.hadError) moduleTruncateVariables(module, variablesBefore);
  return parser.hadError ? NULL : fn;
}

ObjFn* compileModule(VM* vm, ObjModule* module, const char* source) {
  return compileSource(vm, module, source, false);
}

ObjFn* compileExpressionFn(VM* vm, ObjModule* module, const char* source) {
  return compileSource(vm, module, source, true);
}
