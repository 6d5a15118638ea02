// The optional "meta" module (wren.io modules/meta).
import "meta" for Meta
import "counter" for Counter
var a = 2
var b = 3
var source = """
  var c = a * b
  System.print(c)
"""
Meta.eval(source) // expect: 6
var d = 4
var e = 5
var closure = Meta.compileExpression("d * e")
System.print(closure.call()) // expect: 20
System.print(Meta.compileExpression("[a,\n b]").call()) // expect: [2, 3]
System.print(Fn.new { Meta.compileExpression("a + b") }.call().call()) // expect: 5
System.print(Meta.compileExpression("1 +")) // expect: [main line 1] Error at end of file: Expected expression.
// expect: null
System.print(Meta.compile("var")) // expect: [main line 1] Error at end of file: Expect variable name.
// expect: null
System.print(Meta.compile("return a + d").call()) // expect: 6
System.print(Fiber.new { Meta.eval("var 1") }.try()) // expect: Could not compile source code.
System.print(Fiber.new { Meta.eval(1) }.try()) // expect: Source code must be a string.
System.print(Fiber.new { Meta.compile(1) }.try()) // expect: Source code must be a string.
System.print(Fiber.new { Meta.compileExpression(1) }.try()) // expect: Expression must be a string.
System.print(Fiber.new { Meta.getModuleVariables(1) }.try()) // expect: Module name must be a string.
System.print(Fiber.new { Meta.getModuleVariables("nope") }.try()) // expect: Could not find a module named 'nope'.
class Enum {
  static create(name, members, startsFrom) {
    name = name + "_"
    var s = "class %(name) {\n"
    for (i in 0...members.count) {
      var m = members[i]
      s = s + "  static %(m) { %(i + startsFrom) }\n"
    }
    var mems = members.map { |m| "\"%(m)\"" }.join(", ")
    s = s + "  static startsFrom { %(startsFrom) }\n"
    s = s + "  static members { [%(mems)] }\n}\n"
    s = s + "return %(name)"
    return Meta.compile(s).call()
  }
}
var Fruits = Enum.create("Fruits", ["orange", "apple", "banana", "lemon"], 0)
System.print(Fruits.banana) // expect: 2
System.print(Fruits.startsFrom) // expect: 0
System.print(Fruits.members) // expect: [orange, apple, banana, lemon]
var f = Fn.new {
  var g = 2
}
class C {
  static s { __s }
}
var names = Meta.getModuleVariables("main")
System.print(names[0..1]) // expect: [Object, Class]
System.print(names.contains("Meta")) // expect: true
System.print(names.contains("Counter")) // expect: true
System.print(names.contains("a")) // expect: true
System.print(names.contains("C")) // expect: true
System.print(names.contains("w")) // expect: true
System.print(names.contains("g")) // expect: false
System.print(names.contains("var")) // expect: false
System.print(names.contains("Enum")) // expect: true
System.print(names.any {|n| n.contains(".") || n.contains(" ") }) // expect: false
System.print(Meta.getModuleVariables("counter").contains("Counter")) // expect: true
var w = 43
