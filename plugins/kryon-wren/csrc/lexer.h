/* lexer.h -- Tokens of the Wren language. */
#ifndef KW_LEXER_H
#define KW_LEXER_H

#include "value.h"

typedef enum {
  TOKEN_LEFT_PAREN, TOKEN_RIGHT_PAREN, TOKEN_LEFT_BRACKET, TOKEN_RIGHT_BRACKET,
  TOKEN_LEFT_BRACE, TOKEN_RIGHT_BRACE, TOKEN_COLON, TOKEN_DOT, TOKEN_DOTDOT,
  TOKEN_DOTDOTDOT, TOKEN_COMMA, TOKEN_STAR, TOKEN_SLASH, TOKEN_PERCENT,
  TOKEN_HASH, TOKEN_PLUS, TOKEN_MINUS, TOKEN_LTLT, TOKEN_GTGT, TOKEN_PIPE,
  TOKEN_PIPEPIPE, TOKEN_CARET, TOKEN_AMP, TOKEN_AMPAMP, TOKEN_BANG,
  TOKEN_TILDE, TOKEN_QUESTION, TOKEN_EQ, TOKEN_LT, TOKEN_GT, TOKEN_LTEQ,
  TOKEN_GTEQ, TOKEN_EQEQ, TOKEN_BANGEQ,

  TOKEN_AS, TOKEN_BREAK, TOKEN_CLASS, TOKEN_CONSTRUCT, TOKEN_CONTINUE,
  TOKEN_ELSE, TOKEN_FALSE, TOKEN_FOR, TOKEN_FOREIGN, TOKEN_IF, TOKEN_IMPORT,
  TOKEN_IN, TOKEN_IS, TOKEN_NULL, TOKEN_RETURN, TOKEN_STATIC, TOKEN_SUPER,
  TOKEN_THIS, TOKEN_TRUE, TOKEN_VAR, TOKEN_WHILE,

  TOKEN_FIELD, TOKEN_STATIC_FIELD, TOKEN_NAME, TOKEN_NUMBER, TOKEN_STRING,
  TOKEN_INTERPOLATION, TOKEN_LINE, TOKEN_ERROR, TOKEN_EOF
} TokenType;

typedef struct {
  TokenType type;
  const char* start;
  int length;
  int line;
  int column; /* 1-based, in characters, of the token's first character */
  Value value; /* numbers and strings */
} Token;

#define MAX_INTERPOLATION_NESTING 8

typedef struct {
  VM* vm;
  const char* source;
  const char* tokenStart;
  const char* current;
  int line;
  int tokenLine; /* line where the current token starts */
  const char* lineStart; /* first character of the current line */
  int tokenColumn; /* column where the current token starts */
  const char* countedTo; /* columns are counted on from here... */
  int countedColumn;     /* ...whose column this is (long lines stay linear) */
  int parens[MAX_INTERPOLATION_NESTING];
  int numParens;
  char* buffer; /* scratch space for string literals */
  int bufferLength;
  int bufferCapacity;
  char errorMessage[80]; /* set for TOKEN_ERROR */
} Lexer;

void lexerInit(Lexer* lexer, VM* vm, const char* source);
void lexerFree(Lexer* lexer);
Token lexerNext(Lexer* lexer);

#endif
