/* host_native.c -- Host functions for the native debug build.
 * Output goes to stdout, modules are read from "<name>.wren" in the
 * current directory, there are no foreign methods. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host.h"

static char* pendingSource = NULL;
static long pendingLength = 0;

void host_write(int vm, const char* text, int length) {
  (void)vm;
  fwrite(text, 1, (size_t)length, stdout);
}

int host_load_module(int vm, const char* name, int length) {
  (void)vm;
  char path[512];
  snprintf(path, sizeof path, "%.*s.wren", length, name);
  FILE* f = fopen(path, "rb");
  if (f == NULL) return -1;
  fseek(f, 0, SEEK_END);
  pendingLength = ftell(f);
  fseek(f, 0, SEEK_SET);
  free(pendingSource);
  pendingSource = malloc((size_t)pendingLength + 1);
  pendingLength = (long)fread(pendingSource, 1, (size_t)pendingLength, f);
  fclose(f);
  return (int)pendingLength;
}

void host_read_module(int vm, char* buffer) {
  (void)vm;
  memcpy(buffer, pendingSource, (size_t)pendingLength);
}

int host_bind_foreign(int vm, const char* module, int moduleLength, const char* className,
                      int classLength, int isStatic, const char* signature,
                      int signatureLength) {
  (void)vm; (void)module; (void)moduleLength; (void)className; (void)classLength;
  (void)isStatic; (void)signature; (void)signatureLength;
  return -1;
}

int host_foreign(int vm, int methodId) {
  (void)vm;
  (void)methodId;
  return 1;
}

double host_clock(void) { return (double)clock() / CLOCKS_PER_SEC; }
