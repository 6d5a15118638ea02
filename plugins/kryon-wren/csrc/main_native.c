/* main_native.c -- Command-line runner for the native debug build:
 * runs a .wren file as module "main" and reports errors on stderr.
 * KW_BREAK=3,7 sets breakpoints on lines of "main" (reported on stderr),
 * KW_MAX_FRAMES=n the recursion limit. */
#include <stdio.h>
#include <stdlib.h>

#include "kryon_wren.h"

static char* readFile(const char* path) {
  FILE* f = fopen(path, "rb");
  if (f == NULL) return NULL;
  fseek(f, 0, SEEK_END);
  long length = ftell(f);
  fseek(f, 0, SEEK_SET);
  char* buffer = malloc((size_t)length + 1);
  length = (long)fread(buffer, 1, (size_t)length, f);
  buffer[length] = '\0';
  fclose(f);
  return buffer;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s file.wren\n", argv[0]);
    return 64;
  }
  char* source = readFile(argv[1]);
  if (source == NULL) {
    fprintf(stderr, "cannot read %s\n", argv[1]);
    return 66;
  }
  WrenVM* vm = wren_new_vm(1);
  extern WrenVM* kwNativeVm;
  kwNativeVm = vm;
  if (getenv("KW_MAX_FRAMES")) wren_set_max_frames(vm, atoi(getenv("KW_MAX_FRAMES")));
  for (const char* p = getenv("KW_BREAK"); p != NULL && *p;) {
    wren_debug_add_breakpoint(vm, "main", atoi(p));
    while (*p && *p != ',') p++;
    if (*p == ',') p++;
  }
  int result = wren_interpret(vm, "main", source);
  fflush(stdout);
  if (result == 1) {
    fprintf(stderr, "%s\n", wren_error_message(vm));
  } else if (result == 2) {
    fprintf(stderr, "%s\n%s", wren_error_message(vm), wren_error_trace(vm));
  }
  wren_free_vm(vm);
  free(source);
  return result == 0 ? 0 : (result == 1 ? 65 : 70);
}
