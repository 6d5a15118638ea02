/* reload.c -- What a hot reload needs to carry a module's state from one
 * VM to another: the kind and identity of an object, the class of a value,
 * plain instances made without running a constructor, their fields set, and
 * a module variable set from a slot.
 *
 * Each version of a script lives in a wasm instance of its own, so no
 * object can be shared: the host reads the old version's values
 * (wren_debug_module_variable lists a module's variables, static fields
 * included as "Class.__name") and builds copies in the new VM. Identities
 * (wren_object_id) let it keep shared and cyclic structure as it was.
 */
#include <string.h>

#include "kryon_wren.h"
#include "vm.h"

#ifdef __wasm__
#define EXPORT(name) __attribute__((export_name(#name), used))
#else
#define EXPORT(name) __attribute__((used))
#endif

/* The object type (ObjType, value.h) of the value in `slot`; -1 when it is
 * not an object (null, a bool, a number). */
EXPORT(wren_object_type) int wren_object_type(WrenVM* vm, int slot) {
  Value v = *vmSlotAt(vm, slot);
  return IS_OBJ(v) ? (int)OBJ_TYPE(v) : -1;
}

/* A number naming the object in `slot` while it lives (its address); 0 when
 * the value is not an object. */
EXPORT(wren_object_id) int wren_object_id(WrenVM* vm, int slot) {
  Value v = *vmSlotAt(vm, slot);
  return IS_OBJ(v) ? (int)(uintptr_t)AS_OBJ(v) : 0;
}

/* The class of the value in `slot` goes to `outSlot`. */
EXPORT(wren_class_of) void wren_class_of(WrenVM* vm, int slot, int outSlot) {
  Value v = *vmSlotAt(vm, slot);
  ObjClass* cls = getClass(vm, v);
  *vmSlotAt(vm, outSlot) = cls != NULL ? OBJ_VAL(cls) : NULL_VAL;
}

/* A new instance of the class in `classSlot`, every field null and no
 * constructor run, to `outSlot`; returns its field count, or -1 when the
 * slot holds no class whose instances are plain field holders (a built-in
 * class: their values are not instances). */
EXPORT(wren_new_instance) int wren_new_instance(WrenVM* vm, int classSlot, int outSlot) {
  Value v = *vmSlotAt(vm, classSlot);
  if (!IS_CLASS(v)) return -1;
  ObjClass* cls = AS_CLASS(v);
  if (cls->isSealed || cls->numFields < 0) return -1;
  for (ObjClass* c = cls; c != NULL; c = c->superclass) {
    /* a subclass of a built-in whose instances are not plain (List, Map...)
     * could not be made this way; only Object and user classes qualify */
    if (c->isSealed) return -1;
  }
  wren_ensure_slots(vm, (outSlot > classSlot ? outSlot : classSlot) + 1);
  ObjInstance* instance = newInstance(vm, cls);
  vm->slots[outSlot] = OBJ_VAL(instance);
  return cls->numFields;
}

/* Field `field` of the instance in `slot` := the value in `valueSlot`;
 * 0 when the slot holds no instance or the field does not exist. */
EXPORT(wren_set_instance_field) int wren_set_instance_field(WrenVM* vm, int slot, int field, int valueSlot) {
  Value v = *vmSlotAt(vm, slot);
  Value value = *vmSlotAt(vm, valueSlot);
  if (!IS_INSTANCE(v)) return 0;
  ObjClass* cls = AS_OBJ(v)->classObj;
  if (field < 0 || field >= cls->numFields) return 0;
  AS_INSTANCE(v)->fields[field] = value;
  return 1;
}

/* The module variable `name` (a static field is "Class.__field") := the
 * value in `slot`; 0 when the module or a defined variable of that name
 * does not exist. Core's names copied into every module are refused: they
 * are the language's, not the script's. */
EXPORT(wren_set_variable) int wren_set_variable(WrenVM* vm, const char* module, const char* name, int slot) {
  ObjModule* m = vmGetModule(vm, module, (int)strlen(module));
  if (m == NULL) return 0;
  int index = moduleFindVariable(m, name, (int)strlen(name));
  if (index < vm->coreModule->variableCount || IS_UNDEFINED(m->variables[index])) return 0;
  m->variables[index] = *vmSlotAt(vm, slot);
  return 1;
}
