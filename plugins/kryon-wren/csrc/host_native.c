/* host_native.c -- Host functions for the native debug build.
 * Output goes to stdout, modules are read from "<name>.wren" in the
 * current directory, there are no foreign methods. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host.h"
#include "kryon_wren.h"

/* The runner's VM (main_native.c), for the breakpoint report. */
WrenVM* kwNativeVm = NULL;

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

int64_t host_foreign(int vm, int methodId, const uint8_t* args, int length, int pages) {
  (void)vm;
  (void)pages;
  (void)methodId;
  (void)args;
  (void)length;
  return (int64_t)0x7ff4000000000001LL; /* an error (slot_codec.c, kwForeignReply) */
}

/* Prints the stack and the innermost frame's numeric locals. */
int host_breakpoint(int vm, const char* module, int moduleLength, int line) {
  (void)vm;
  fprintf(stderr, "[breakpoint %.*s line %d]\n%s", moduleLength, module, line,
          kwNativeVm ? wren_debug_stack(kwNativeVm) : "");
  if (kwNativeVm == NULL) return 0;
  const char* name;
  for (int i = 0; (name = wren_debug_local(kwNativeVm, 0, i, 0)) != NULL; i++) {
    if (wren_get_slot_type(kwNativeVm, 0) == KW_TYPE_NUM) {
      fprintf(stderr, "  %s = %g\n", name, wren_get_slot_double(kwNativeVm, 0));
    } else {
      fprintf(stderr, "  %s (type %d)\n", name, wren_get_slot_type(kwNativeVm, 0));
    }
  }
  return 0;
}

double host_clock(void) { return (double)clock() / CLOCKS_PER_SEC; }
