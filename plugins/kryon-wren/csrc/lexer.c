/* lexer.c -- Turns Wren source text into tokens.
 *
 * Newlines are tokens (statements end at a line break). String literals
 * are unescaped here and carried as string values; "%(" inside a string
 * ends the current piece with an INTERPOLATION token and the lexer
 * counts parentheses so it knows when the embedded expression ends and
 * the string resumes. Numbers (decimal, scientific, hex) are parsed here.
 */
#include <stdio.h>
#include <stdlib.h>

#include "lexer.h"
#include "vm.h"

typedef struct {
  const char* text;
  int length;
  TokenType type;
} Keyword;

static const Keyword keywords[] = {
    {"as", 2, TOKEN_AS},           {"break", 5, TOKEN_BREAK},
    {"class", 5, TOKEN_CLASS},     {"construct", 9, TOKEN_CONSTRUCT},
    {"continue", 8, TOKEN_CONTINUE}, {"else", 4, TOKEN_ELSE},
    {"false", 5, TOKEN_FALSE},     {"for", 3, TOKEN_FOR},
    {"foreign", 7, TOKEN_FOREIGN}, {"if", 2, TOKEN_IF},
    {"import", 6, TOKEN_IMPORT},   {"in", 2, TOKEN_IN},
    {"is", 2, TOKEN_IS},           {"null", 4, TOKEN_NULL},
    {"return", 6, TOKEN_RETURN},   {"static", 6, TOKEN_STATIC},
    {"super", 5, TOKEN_SUPER},     {"this", 4, TOKEN_THIS},
    {"true", 4, TOKEN_TRUE},       {"var", 3, TOKEN_VAR},
    {"while", 5, TOKEN_WHILE},     {NULL, 0, TOKEN_EOF},
};

void lexerInit(Lexer* lexer, VM* vm, const char* source) {
  lexer->vm = vm;
  lexer->source = source;
  lexer->tokenStart = source;
  lexer->current = source;
  lexer->line = 1;
  lexer->tokenLine = 1;
  lexer->lineStart = source;
  lexer->tokenColumn = 1;
  lexer->countedTo = source;
  lexer->countedColumn = 1;
  lexer->numParens = 0;
  lexer->buffer = NULL;
  lexer->bufferLength = 0;
  lexer->bufferCapacity = 0;
  lexer->errorMessage[0] = '\0';
  /* Skip a shebang line. */
  if (source[0] == '#' && source[1] == '!') {
    while (*lexer->current != '\0' && *lexer->current != '\n') lexer->current++;
  }
}

void lexerFree(Lexer* lexer) {
  free(lexer->buffer);
  lexer->buffer = NULL;
}

/* ---- Character helpers ---------------------------------------------- */

static bool isAlpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool isDigit(char c) { return c >= '0' && c <= '9'; }

static char peek(Lexer* l) { return *l->current; }

static char peekNext(Lexer* l) {
  return l->current[0] == '\0' ? '\0' : l->current[1];
}

static char advance(Lexer* l) {
  char c = *l->current++;
  if (c == '\n') {
    l->line++;
    l->lineStart = l->current;
  }
  return c;
}

/* The column of p on the current line: UTF-8 continuation bytes (10xxxxxx)
 * do not start a character, so they are not counted. */
static int columnOf(Lexer* l, const char* p) {
  if (l->countedTo < l->lineStart || l->countedTo > p) {
    l->countedTo = l->lineStart;
    l->countedColumn = 1;
  }
  for (const char* q = l->countedTo; q < p; q++) {
    if (((unsigned char)*q & 0xc0) != 0x80) l->countedColumn++;
  }
  l->countedTo = p;
  return l->countedColumn;
}

static bool matchChar(Lexer* l, char expected) {
  if (peek(l) != expected) return false;
  advance(l);
  return true;
}

static Token makeToken(Lexer* l, TokenType type) {
  Token t;
  t.type = type;
  t.start = l->tokenStart;
  t.length = (int)(l->current - l->tokenStart);
  t.line = l->line;
  t.column = l->tokenColumn;
  t.value = NULL_VAL;
  /* A newline token belongs to the line it ends. */
  if (type == TOKEN_LINE) t.line--;
  /* A token spanning lines (a raw string) starts where it started. */
  t.line = type == TOKEN_LINE ? t.line : l->tokenLine;
  return t;
}

static Token errorToken(Lexer* l, const char* message) {
  Token t = makeToken(l, TOKEN_ERROR);
  t.line = l->tokenLine;
  snprintf(l->errorMessage, sizeof l->errorMessage, "%s", message);
  return t;
}

static void bufferAdd(Lexer* l, uint8_t byte) {
  if (l->bufferLength >= l->bufferCapacity) {
    l->bufferCapacity = GROW_CAPACITY(l->bufferCapacity);
    l->buffer = (char*)realloc(l->buffer, l->bufferCapacity);
    if (l->buffer == NULL) kwFatalOutOfMemory();
  }
  l->buffer[l->bufferLength++] = (char)byte;
}

/* ---- Comments and whitespace ---------------------------------------- */

static bool skipBlockComment(Lexer* l) {
  int depth = 1;
  while (depth > 0) {
    if (peek(l) == '\0') return false;
    if (peek(l) == '/' && peekNext(l) == '*') {
      advance(l);
      advance(l);
      depth++;
    } else if (peek(l) == '*' && peekNext(l) == '/') {
      advance(l);
      advance(l);
      depth--;
    } else {
      advance(l);
    }
  }
  return true;
}

/* Skips spaces and comments; returns false on an unterminated comment. */
static bool skipWhitespace(Lexer* l) {
  for (;;) {
    char c = peek(l);
    if (c == ' ' || c == '\t' || c == '\r') {
      advance(l);
    } else if (c == '/' && peekNext(l) == '/') {
      while (peek(l) != '\n' && peek(l) != '\0') advance(l);
    } else if (c == '/' && peekNext(l) == '*') {
      advance(l);
      advance(l);
      if (!skipBlockComment(l)) return false;
    } else {
      return true;
    }
  }
}

/* ---- Numbers -------------------------------------------------------- */

static int hexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static Token hexNumber(Lexer* l) {
  advance(l); /* the x */
  double value = 0;
  if (hexDigit(peek(l)) < 0) return errorToken(l, "Expect hex digit after '0x'.");
  while (hexDigit(peek(l)) >= 0) value = value * 16 + hexDigit(advance(l));
  Token t = makeToken(l, TOKEN_NUMBER);
  t.value = NUM_VAL(value);
  return t;
}

static Token number(Lexer* l) {
  if (l->tokenStart[0] == '0' && (peek(l) == 'x' || peek(l) == 'X')) return hexNumber(l);
  while (isDigit(peek(l))) advance(l);
  if (peek(l) == '.' && isDigit(peekNext(l))) {
    advance(l);
    while (isDigit(peek(l))) advance(l);
  }
  if (peek(l) == 'e' || peek(l) == 'E') {
    const char* save = l->current;
    advance(l);
    if (peek(l) == '+' || peek(l) == '-') advance(l);
    if (!isDigit(peek(l))) {
      l->current = save;
      return errorToken(l, "Unterminated scientific notation.");
    }
    while (isDigit(peek(l))) advance(l);
  }
  Token t = makeToken(l, TOKEN_NUMBER);
  char text[64];
  int length = t.length < 63 ? t.length : 63;
  memcpy(text, t.start, length);
  text[length] = '\0';
  t.value = NUM_VAL(strtod(text, NULL));
  return t;
}

/* ---- Names ---------------------------------------------------------- */

static Token name(Lexer* l, TokenType type) {
  while (isAlpha(peek(l)) || isDigit(peek(l))) advance(l);
  int length = (int)(l->current - l->tokenStart);
  if (type == TOKEN_NAME) {
    for (const Keyword* k = keywords; k->text != NULL; k++) {
      if (k->length == length && memcmp(k->text, l->tokenStart, length) == 0) {
        return makeToken(l, k->type);
      }
    }
  }
  return makeToken(l, type);
}

/* ---- Strings -------------------------------------------------------- */

static int readHex(Lexer* l, int digits) {
  int value = 0;
  for (int i = 0; i < digits; i++) {
    int d = hexDigit(peek(l));
    if (d < 0) return -1;
    advance(l);
    value = value * 16 + d;
  }
  return value;
}

static void addCodePoint(Lexer* l, int cp) {
  uint8_t bytes[4];
  int n = utf8Encode(cp, bytes);
  for (int i = 0; i < n; i++) bufferAdd(l, bytes[i]);
}

/* Reads one escape after the backslash; returns an error or NULL. */
static const char* readEscape(Lexer* l) {
  char c = advance(l);
  switch (c) {
    case '"': bufferAdd(l, '"'); return NULL;
    case '\\': bufferAdd(l, '\\'); return NULL;
    case '%': bufferAdd(l, '%'); return NULL;
    case '0': bufferAdd(l, '\0'); return NULL;
    case 'a': bufferAdd(l, '\a'); return NULL;
    case 'b': bufferAdd(l, '\b'); return NULL;
    case 'e': bufferAdd(l, 27); return NULL;
    case 'f': bufferAdd(l, '\f'); return NULL;
    case 'n': bufferAdd(l, '\n'); return NULL;
    case 'r': bufferAdd(l, '\r'); return NULL;
    case 't': bufferAdd(l, '\t'); return NULL;
    case 'v': bufferAdd(l, '\v'); return NULL;
    case 'x': {
      int v = readHex(l, 2);
      if (v < 0) return "Incomplete byte escape sequence.";
      bufferAdd(l, (uint8_t)v);
      return NULL;
    }
    case 'u': {
      int v = readHex(l, 4);
      if (v < 0) return "Incomplete Unicode escape sequence.";
      addCodePoint(l, v);
      return NULL;
    }
    case 'U': {
      int v = readHex(l, 8);
      if (v < 0) return "Incomplete Unicode escape sequence.";
      addCodePoint(l, v);
      return NULL;
    }
    default:
      return "Invalid escape character.";
  }
}

/* Lexes string text up to the closing quote or an interpolation. */
static Token stringBody(Lexer* l) {
  l->bufferLength = 0;
  TokenType type = TOKEN_STRING;
  for (;;) {
    char c = peek(l);
    if (c == '\0') return errorToken(l, "Unterminated string.");
    advance(l);
    if (c == '"') break;
    if (c == '%') {
      if (l->numParens >= MAX_INTERPOLATION_NESTING) {
        return errorToken(l, "Interpolation may only nest 8 levels deep.");
      }
      if (!matchChar(l, '(')) return errorToken(l, "Expect '(' after '%'.");
      l->parens[l->numParens++] = 1;
      type = TOKEN_INTERPOLATION;
      break;
    }
    if (c == '\\') {
      const char* error = readEscape(l);
      if (error != NULL) return errorToken(l, error);
      continue;
    }
    bufferAdd(l, (uint8_t)c);
  }
  Token t = makeToken(l, type);
  t.value = stringValue(l->vm, l->buffer, (size_t)l->bufferLength);
  return t;
}

static bool onlySpaces(const char* from, const char* to) {
  for (const char* p = from; p < to; p++) {
    if (*p != ' ' && *p != '\t' && *p != '\r') return false;
  }
  return true;
}

/* """raw strings""": no escapes; a first and last line holding only
 * whitespace are dropped. */
static Token rawString(Lexer* l) {
  advance(l);
  advance(l);
  const char* start = l->current;
  for (;;) {
    if (peek(l) == '\0') return errorToken(l, "Unterminated raw string.");
    if (peek(l) == '"' && peekNext(l) == '"' && l->current[2] == '"') break;
    advance(l);
  }
  const char* end = l->current;
  advance(l);
  advance(l);
  advance(l);
  const char* firstNewline = memchr(start, '\n', end - start);
  if (firstNewline != NULL && onlySpaces(start, firstNewline)) start = firstNewline + 1;
  const char* lastNewline = NULL;
  for (const char* p = end - 1; p >= start; p--) {
    if (*p == '\n') {
      lastNewline = p;
      break;
    }
  }
  if (lastNewline != NULL && onlySpaces(lastNewline + 1, end)) {
    end = lastNewline;
    if (end > start && end[-1] == '\r') end--;
  }
  Token t = makeToken(l, TOKEN_STRING);
  t.value = stringValue(l->vm, start, (size_t)(end - start));
  return t;
}

/* ---- Main entry ----------------------------------------------------- */

static Token twoChar(Lexer* l, char second, TokenType two, TokenType one) {
  return makeToken(l, matchChar(l, second) ? two : one);
}

static Token punctuation(Lexer* l, char c) {
  switch (c) {
    case '(':
      if (l->numParens > 0) l->parens[l->numParens - 1]++;
      return makeToken(l, TOKEN_LEFT_PAREN);
    case ')':
      if (l->numParens > 0 && --l->parens[l->numParens - 1] == 0) {
        l->numParens--;
        return stringBody(l);
      }
      return makeToken(l, TOKEN_RIGHT_PAREN);
    case '[': return makeToken(l, TOKEN_LEFT_BRACKET);
    case ']': return makeToken(l, TOKEN_RIGHT_BRACKET);
    case '{': return makeToken(l, TOKEN_LEFT_BRACE);
    case '}': return makeToken(l, TOKEN_RIGHT_BRACE);
    case ':': return makeToken(l, TOKEN_COLON);
    case ',': return makeToken(l, TOKEN_COMMA);
    case '*': return makeToken(l, TOKEN_STAR);
    case '/': return makeToken(l, TOKEN_SLASH);
    case '%': return makeToken(l, TOKEN_PERCENT);
    case '#': return makeToken(l, TOKEN_HASH);
    case '+': return makeToken(l, TOKEN_PLUS);
    case '-': return makeToken(l, TOKEN_MINUS);
    case '^': return makeToken(l, TOKEN_CARET);
    case '~': return makeToken(l, TOKEN_TILDE);
    case '?': return makeToken(l, TOKEN_QUESTION);
    case '|': return twoChar(l, '|', TOKEN_PIPEPIPE, TOKEN_PIPE);
    case '&': return twoChar(l, '&', TOKEN_AMPAMP, TOKEN_AMP);
    case '=': return twoChar(l, '=', TOKEN_EQEQ, TOKEN_EQ);
    case '!': return twoChar(l, '=', TOKEN_BANGEQ, TOKEN_BANG);
    case '.':
      if (matchChar(l, '.')) return twoChar(l, '.', TOKEN_DOTDOTDOT, TOKEN_DOTDOT);
      return makeToken(l, TOKEN_DOT);
    case '<':
      if (matchChar(l, '<')) return makeToken(l, TOKEN_LTLT);
      return twoChar(l, '=', TOKEN_LTEQ, TOKEN_LT);
    case '>':
      if (matchChar(l, '>')) return makeToken(l, TOKEN_GTGT);
      return twoChar(l, '=', TOKEN_GTEQ, TOKEN_GT);
    case '"':
      if (peek(l) == '"' && peekNext(l) == '"') return rawString(l);
      return stringBody(l);
    default: {
      /* Show a whole UTF-8 sequence, not its first byte alone. */
      int extra = 0;
      while (extra < 3 && ((unsigned char)l->current[extra] & 0xc0) == 0x80) extra++;
      if ((unsigned char)c < 0x80) extra = 0;
      char message[48];
      snprintf(message, sizeof message, "Invalid character '%c%.*s'.", c, extra, l->current);
      return errorToken(l, message);
    }
  }
}

Token lexerNext(Lexer* l) {
  l->tokenLine = l->line;
  const char* before = l->current;
  int lineBefore = l->line;
  int columnBefore = columnOf(l, before);
  if (!skipWhitespace(l)) {
    /* Reported where the comment began. */
    l->tokenStart = l->current;
    l->tokenLine = lineBefore;
    l->tokenColumn = columnBefore;
    return errorToken(l, "Unterminated block comment.");
  }
  l->tokenStart = l->current;
  l->tokenLine = l->line;
  l->tokenColumn = columnOf(l, l->current);
  if (peek(l) == '\0') return makeToken(l, TOKEN_EOF);
  char c = advance(l);
  if (c == '\n') return makeToken(l, TOKEN_LINE);
  if (c == '_') {
    return name(l, matchChar(l, '_') ? TOKEN_STATIC_FIELD : TOKEN_FIELD);
  }
  if (isAlpha(c)) return name(l, TOKEN_NAME);
  if (isDigit(c)) return number(l);
  return punctuation(l, c);
}
