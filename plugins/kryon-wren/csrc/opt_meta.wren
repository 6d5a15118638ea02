// opt_meta.wren -- The Wren half of the optional "meta" module.
// compile_ and getModuleVariables_ are C primitives (opt_meta.c); code
// is compiled into the module of the Wren code that called Meta.

class Meta {
  static getModuleVariables(module) {
    if (!(module is String)) Fiber.abort("Module name must be a string.")
    var result = getModuleVariables_(module)
    if (result != null) return result
    Fiber.abort("Could not find a module named '%(module)'.")
  }

  static eval(source) {
    if (!(source is String)) Fiber.abort("Source code must be a string.")
    var closure = compile_(source, false, false)
    if (closure == null) Fiber.abort("Could not compile source code.")
    closure.call()
  }

  static compileExpression(expression) {
    if (!(expression is String)) Fiber.abort("Expression must be a string.")
    return compile_(expression, true, true)
  }

  static compile(source) {
    if (!(source is String)) Fiber.abort("Source code must be a string.")
    return compile_(source, false, true)
  }

  foreign static compile_(source, isExpression, printErrors)
  foreign static getModuleVariables_(module)
}
