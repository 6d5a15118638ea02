// Meta.compile and Meta.compileExpression report a compile error by
// printing it where System.print output goes, then return null
// (wren.io modules/meta). compileExpression takes exactly one expression.
import "meta" for Meta
var a = 20
System.print("before") // expect: before
var r = Meta.compileExpression("1\nvar x = 2") // expect: [main line 2] Error at 'var': Expect end of expression.
System.print(r) // expect: null
System.print(Meta.compileExpression("1 2")) // expect: [main line 1] Error at '2': Expect end of expression.
// expect: null
System.print(Meta.compileExpression("a; 1")) // expect: [main line 1] Error: Invalid character ';'.
// expect: null
System.print(Meta.compileExpression("return 1")) // expect: [main line 1] Error at 'return': Expected expression.
// expect: null
System.print(Meta.compileExpression("var y = 1")) // expect: [main line 1] Error at 'var': Expected expression.
// expect: null
System.print(Meta.compileExpression("\n  a + 1\n\n").call()) // expect: 21
System.print(Meta.compileExpression("[1,\n 2]").call()) // expect: [1, 2]
System.print(Meta.compileExpression("Fn.new {\n  a * 2\n}").call().call()) // expect: null
System.print(Meta.compileExpression("Fn.new { a * 2 }").call().call()) // expect: 40
System.print(Meta.compile("var = 1")) // expect: [main line 1] Error at '=': Expect variable name.
// expect: null
System.print(Meta.compile("var ok = 1\nSystem.print(ok + a)").call()) // expect: 21
// expect: null
// A failed compile leaves the caller running normally and defines nothing.
System.print(Meta.getModuleVariables("main").contains("x")) // expect: false
// Meta.eval still aborts rather than printing.
System.print(Fiber.new { Meta.eval("var 1") }.try()) // expect: Could not compile source code.
System.print("after") // expect: after
