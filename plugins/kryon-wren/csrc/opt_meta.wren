// opt_meta.wren -- The Wren side of the optional "meta" module.
//
// compile, compileExpression and getModuleVariables are primitives
// (opt_meta.c) that check their argument and do all the work. Only eval
// needs a line of Wren: it runs the compiled code as a plain call in the
// fiber that asked for it.
class Meta {
  foreign static compile(source)
  foreign static compileExpression(expression)
  foreign static getModuleVariables(module)

  static eval(source) { compiledForEval_(source).call() }
  foreign static compiledForEval_(source)
}
