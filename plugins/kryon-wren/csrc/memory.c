/* memory.c -- Allocation and the mark-sweep garbage collector.
 *
 * Every heap byte goes through reallocate(), which keeps the VM's
 * byte count. Collection is tracing (so cycles are reclaimed): mark the
 * roots gray, blacken gray objects by marking what they reference, then
 * sweep the list of all objects and free the unmarked ones.
 *
 * The VM only collects at safe points of the interpreter loop (see
 * gcMaybeCollect), where every live value is reachable from a root;
 * C code that allocates therefore never needs to protect temporaries,
 * except across the rare explicit calls to gcCollect.
 */
#include <stdlib.h>

#include "vm.h"

int kwOutOfMemory = 0;

/* Stops the whole instance; the host sees the flag after the trap. */
void kwFatalOutOfMemory(void) {
  kwOutOfMemory = 1;
  __builtin_trap();
}

void* reallocate(VM* vm, void* ptr, size_t oldSize, size_t newSize) {
  vm->bytesAllocated += newSize;
  vm->bytesAllocated -= oldSize;
  if (newSize == 0) {
    free(ptr);
    return NULL;
  }
  void* result = realloc(ptr, newSize);
  /* Out of memory (the host's memory cap): stop the whole instance. */
  if (result == NULL) kwFatalOutOfMemory();
  return result;
}

/* ---- Marking -------------------------------------------------------- */

void gcMarkObject(VM* vm, Obj* obj) {
  if (obj == NULL || obj->isMarked) return;
  obj->isMarked = true;
  if (vm->grayCount >= vm->grayCapacity) {
    vm->grayCapacity = GROW_CAPACITY(vm->grayCapacity);
    vm->grayStack = (Obj**)realloc(vm->grayStack, sizeof(Obj*) * vm->grayCapacity);
    if (vm->grayStack == NULL) kwFatalOutOfMemory();
  }
  vm->grayStack[vm->grayCount++] = obj;
}

void gcMarkValue(VM* vm, Value v) {
  if (IS_OBJ(v)) gcMarkObject(vm, AS_OBJ(v));
}

static void markValues(VM* vm, Value* values, int count) {
  for (int i = 0; i < count; i++) gcMarkValue(vm, values[i]);
}

static void blackenFiber(VM* vm, ObjFiber* f) {
  for (Value* slot = f->stack; slot < f->stackTop; slot++) gcMarkValue(vm, *slot);
  for (int i = 0; i < f->frameCount; i++) gcMarkObject(vm, (Obj*)f->frames[i].closure);
  for (ObjUpvalue* u = f->openUpvalues; u != NULL; u = u->next) {
    gcMarkObject(vm, (Obj*)u);
  }
  gcMarkObject(vm, (Obj*)f->caller);
  gcMarkValue(vm, f->error);
}

static void blackenClass(VM* vm, ObjClass* c) {
  gcMarkObject(vm, (Obj*)c->superclass);
  gcMarkObject(vm, (Obj*)c->name);
  gcMarkValue(vm, c->attributes);
  for (int i = 0; i < c->methodCount; i++) {
    MethodType type = c->methods[i].type;
    if (type == METHOD_BLOCK || type == METHOD_GETTER || type == METHOD_SETTER) {
      gcMarkObject(vm, (Obj*)c->methods[i].as.closure);
    }
  }
}

static void blackenObject(VM* vm, Obj* obj) {
  gcMarkObject(vm, (Obj*)obj->classObj);
  switch (obj->type) {
    case OBJ_STRING:
    case OBJ_RANGE:
      break;
    case OBJ_LIST: {
      ObjList* list = (ObjList*)obj;
      markValues(vm, list->items, list->count);
      break;
    }
    case OBJ_MAP: {
      ObjMap* map = (ObjMap*)obj;
      for (uint32_t i = 0; i < map->used; i++) {
        if (IS_UNDEFINED(map->entries[i].key)) continue;
        gcMarkValue(vm, map->entries[i].key);
        gcMarkValue(vm, map->entries[i].value);
      }
      break;
    }
    case OBJ_FN: {
      ObjFn* fn = (ObjFn*)obj;
      markValues(vm, fn->constants, fn->constantCount);
      gcMarkObject(vm, (Obj*)fn->module);
      gcMarkObject(vm, (Obj*)fn->boundClass);
      break;
    }
    case OBJ_CLOSURE: {
      ObjClosure* c = (ObjClosure*)obj;
      gcMarkObject(vm, (Obj*)c->fn);
      for (int i = 0; i < c->upvalueCount; i++) gcMarkObject(vm, (Obj*)c->upvalues[i]);
      break;
    }
    case OBJ_UPVALUE:
      gcMarkValue(vm, ((ObjUpvalue*)obj)->closed);
      gcMarkObject(vm, (Obj*)((ObjUpvalue*)obj)->fiber);
      break;
    case OBJ_CLASS:
      blackenClass(vm, (ObjClass*)obj);
      break;
    case OBJ_INSTANCE: {
      ObjInstance* inst = (ObjInstance*)obj;
      markValues(vm, inst->fields, obj->classObj->numFields);
      break;
    }
    case OBJ_FIBER:
      blackenFiber(vm, (ObjFiber*)obj);
      break;
    case OBJ_MODULE: {
      ObjModule* m = (ObjModule*)obj;
      gcMarkObject(vm, (Obj*)m->name);
      markValues(vm, m->variables, m->variableCount);
      break;
    }
  }
}

static void markRoots(VM* vm) {
  gcMarkObject(vm, (Obj*)vm->objectClass);
  gcMarkObject(vm, (Obj*)vm->classClass);
  gcMarkObject(vm, (Obj*)vm->boolClass);
  gcMarkObject(vm, (Obj*)vm->nullClass);
  gcMarkObject(vm, (Obj*)vm->numClass);
  gcMarkObject(vm, (Obj*)vm->stringClass);
  gcMarkObject(vm, (Obj*)vm->listClass);
  gcMarkObject(vm, (Obj*)vm->mapClass);
  gcMarkObject(vm, (Obj*)vm->rangeClass);
  gcMarkObject(vm, (Obj*)vm->fnClass);
  gcMarkObject(vm, (Obj*)vm->fiberClass);
  gcMarkObject(vm, (Obj*)vm->modules);
  gcMarkObject(vm, (Obj*)vm->coreModule);
  gcMarkObject(vm, (Obj*)vm->lastModule);
  gcMarkObject(vm, (Obj*)vm->fiber);
  for (int i = 0; i < API_FIBERS; i++) gcMarkObject(vm, (Obj*)vm->apiFibers[i]);
  gcMarkObject(vm, (Obj*)vm->hostClasses[0]);
  gcMarkObject(vm, (Obj*)vm->hostClasses[1]);
  for (int i = 0; i < vm->tempRootCount; i++) gcMarkObject(vm, vm->tempRoots[i]);
  markValues(vm, vm->slots, vm->slotCount);
  for (Handle* h = vm->handles; h != NULL; h = h->next) gcMarkValue(vm, h->value);
}

/* ---- Freeing -------------------------------------------------------- */

static void freeObject(VM* vm, Obj* obj) {
  switch (obj->type) {
    case OBJ_STRING:
      reallocate(vm, obj, sizeof(ObjString) + ((ObjString*)obj)->length + 1, 0);
      return;
    case OBJ_LIST: {
      ObjList* list = (ObjList*)obj;
      FREE_ARRAY(vm, Value, list->items, list->capacity);
      reallocate(vm, obj, sizeof(ObjList), 0);
      return;
    }
    case OBJ_MAP: {
      ObjMap* map = (ObjMap*)obj;
      mapFreeStorage(vm, map);
      reallocate(vm, obj, sizeof(ObjMap), 0);
      return;
    }
    case OBJ_RANGE:
      reallocate(vm, obj, sizeof(ObjRange), 0);
      return;
    case OBJ_FN: {
      ObjFn* fn = (ObjFn*)obj;
      FREE_ARRAY(vm, uint8_t, fn->code, fn->codeCapacity);
      FREE_ARRAY(vm, int, fn->lines, fn->codeCapacity);
      FREE_ARRAY(vm, Value, fn->constants, fn->constantCapacity);
      free(fn->debugName);
      fnDebugFree(fn);
      reallocate(vm, obj, sizeof(ObjFn), 0);
      return;
    }
    case OBJ_CLOSURE: {
      ObjClosure* c = (ObjClosure*)obj;
      reallocate(vm, obj, sizeof(ObjClosure) + sizeof(ObjUpvalue*) * c->upvalueCount, 0);
      return;
    }
    case OBJ_UPVALUE:
      reallocate(vm, obj, sizeof(ObjUpvalue), 0);
      return;
    case OBJ_CLASS: {
      ObjClass* c = (ObjClass*)obj;
      FREE_ARRAY(vm, Method, c->methods, c->methodCount);
      reallocate(vm, obj, sizeof(ObjClass), 0);
      return;
    }
    case OBJ_INSTANCE: {
      /* The class may already be freed in gcFreeAll; size is not needed
       * exactly there, so only use it during normal sweeps. */
      reallocate(vm, obj, sizeof(ObjInstance), 0);
      return;
    }
    case OBJ_FIBER: {
      ObjFiber* f = (ObjFiber*)obj;
      FREE_ARRAY(vm, Value, f->stack, f->stackCapacity);
      FREE_ARRAY(vm, CallFrame, f->frames, f->frameCapacity);
      reallocate(vm, obj, sizeof(ObjFiber), 0);
      return;
    }
    case OBJ_MODULE: {
      ObjModule* m = (ObjModule*)obj;
      FREE_ARRAY(vm, Value, m->variables, m->variableCapacity);
      symbolTableFree(&m->variableNames);
      reallocate(vm, obj, sizeof(ObjModule), 0);
      return;
    }
  }
}

void gcCollect(VM* vm) {
  vm->grayCount = 0;
  markRoots(vm);
  while (vm->grayCount > 0) {
    Obj* obj = vm->grayStack[--vm->grayCount];
    blackenObject(vm, obj);
  }
  /* Instances are swept before their classes could be: a class is
   * only unreachable when none of its instances is reachable, but
   * both may die together, so fix up instance sizes first. */
  for (Obj* obj = vm->objects; obj != NULL; obj = obj->next) {
    if (!obj->isMarked && obj->type == OBJ_INSTANCE) {
      vm->bytesAllocated -= sizeof(Value) * obj->classObj->numFields;
      obj->classObj = NULL;
    }
  }
  Obj** link = &vm->objects;
  while (*link != NULL) {
    Obj* obj = *link;
    if (obj->isMarked) {
      obj->isMarked = false;
      link = &obj->next;
    } else {
      *link = obj->next;
      freeObject(vm, obj);
    }
  }
  vm->gcCount++;
  vm->nextGC = vm->bytesAllocated * 2;
  if (vm->nextGC < vm->heapMinimum) vm->nextGC = vm->heapMinimum;
  if (vm->gcStress) vm->nextGC = 0;
}

void gcMaybeCollect(VM* vm) {
  if (vm->bytesAllocated > vm->nextGC) gcCollect(vm);
}

void gcFreeAll(VM* vm) {
  for (Obj* obj = vm->objects; obj != NULL; obj = obj->next) {
    if (obj->type == OBJ_INSTANCE && obj->classObj != NULL) {
      vm->bytesAllocated -= sizeof(Value) * obj->classObj->numFields;
      obj->classObj = NULL;
    }
  }
  Obj* obj = vm->objects;
  while (obj != NULL) {
    Obj* next = obj->next;
    freeObject(vm, obj);
    obj = next;
  }
  vm->objects = NULL;
  free(vm->grayStack);
  vm->grayStack = NULL;
}
