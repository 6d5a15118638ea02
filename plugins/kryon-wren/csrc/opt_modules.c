/* opt_modules.c -- Name lookup for the built-in optional modules. */
#include <string.h>

#include "opt_modules.h"

typedef struct {
  const char* name;
  const char* source;
  Primitive (*foreign)(const char* className, bool isStatic, const char* signature);
} OptModule;

static const OptModule modules[] = {
    {"random", optRandomSource, optRandomForeign},
    {"meta", optMetaSource, optMetaForeign},
};

static const OptModule* findModule(const char* name, int length) {
  for (size_t i = 0; i < sizeof modules / sizeof modules[0]; i++) {
    if ((int)strlen(modules[i].name) == length && memcmp(modules[i].name, name, length) == 0) {
      return &modules[i];
    }
  }
  return NULL;
}

const char* optModuleSource(const char* name, int length) {
  const OptModule* m = findModule(name, length);
  return m ? m->source : NULL;
}

Primitive optModuleForeign(const char* module, const char* className, bool isStatic,
                           const char* signature) {
  const OptModule* m = findModule(module, (int)strlen(module));
  return m ? m->foreign(className, isStatic, signature) : NULL;
}
