// Classes without runtime attributes, and the null halves.
class NoAttributes {
  foo() {}
}
System.print(NoAttributes.attributes) // expect: null

#compile = 1
#other(a, b = "c")
class CompileTimeOnly {
  #method
  foo() {}
}
System.print(CompileTimeOnly.attributes) // expect: null

class OnlyMethods {
  #!marker
  static make() {}
}
System.print(OnlyMethods.attributes.self) // expect: null
System.print(OnlyMethods.attributes.methods) // expect: {static make(): {null: {marker: [null]}}}

#!solo = "yes"
class OnlySelf {
  foo() {}
}
System.print(OnlySelf.attributes.self) // expect: {null: {solo: [yes]}}
System.print(OnlySelf.attributes.methods) // expect: null

// Not inherited by subclasses.
class Child is OnlySelf {}
System.print(Child.attributes) // expect: null

// Classes declared in a block or a function.
{
  #!inner = "x"
  class Local {
    #!m
    m {}
  }
  System.print(Local.attributes.self) // expect: {null: {inner: [x]}}
  System.print(Local.attributes.methods) // expect: {m: {null: {m: [null]}}}
}

// Each evaluation of a class declaration gets its own attribute maps.
var make = Fn.new {
  #!made
  class Made {}
  return Made
}
var first = make.call()
var second = make.call()
first.attributes.self[null]["made"].add(1)
System.print(first.attributes.self[null]["made"]) // expect: [null, 1]
System.print(second.attributes.self[null]["made"]) // expect: [null]

// Values: null, bools, numbers, strings and names.
#!values(n = null, t = true, f = false, hex = 0x10, s = "a\tb", name = ident)
class Values {}
var v = Values.attributes.self["values"]
System.print(v["n"]) // expect: [null]
System.print(v["t"]) // expect: [true]
System.print(v["f"]) // expect: [false]
System.print(v["hex"]) // expect: [16]
System.print(v["s"][0] == "a\tb") // expect: true
System.print(v["name"][0] is String) // expect: true
System.print(v["name"]) // expect: [ident]
