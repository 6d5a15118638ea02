// How values become text (wren.io core/system, list, map, object): the
// built-in spellings, toString defined by a script at any depth, and the
// fallbacks the documentation names.
class Named {
  construct new(name) { _name = name }
  toString { "<%(_name)>" }
}
class Plain {
  construct new() {}
}
class Loud {
  static toString { "LOUD" }
}
class Broken {
  construct new() {}
  toString { 42 }
}
System.print([1, -0, 1.5, 1e20, 0 / 0, -1 / 0]) // expect: [1, -0, 1.5, 1e+20, nan, -infinity]
System.print([true, false, null, "s", 1..2, 3...1]) // expect: [true, false, null, s, 1..2, 3...1]
System.print([Fn.new {}, Plain.new(), Plain, Loud, Loud.type]) // expect: [<fn>, instance of Plain, Plain, LOUD, Loud metaclass]
System.print([Named.new("a"), [Named.new("b")], {1: Named.new("c")}]) // expect: [<a>, [<b>], {1: <c>}]
System.print({"k": [1, {"n": null}]}) // expect: {k: [1, {n: null}]}
System.print(Named.new("x")) // expect: <x>
System.print(Loud) // expect: LOUD
System.print(Broken.new()) // expect: [invalid toString]
System.write(Named.new("w"))
System.write(1)
System.write("\n") // expect: <w>1
System.printAll([1, Named.new("p"), "s", null]) // expect: 1<p>snull
System.writeAll(["a", Loud])
System.print() // expect: aLOUD
System.print(System.print(7) + 1) // expect: 7
// expect: 8
System.print(System.write("") == "") // expect: true
// Interpolation joins its parts.
var who = Named.new("y")
System.print("a%(who)b%(1 + 1)c%([who])") // expect: a<y>b2c[<y>]
System.print("%(Loud)%(null)%(Plain)") // expect: LOUDnullPlain
// join and toString of lists and maps.
System.print([1, who, "z"].join("-")) // expect: 1-<y>-z
System.print([].join(",")) // expect: 
System.print([who].toString) // expect: [<y>]
System.print({}.toString) // expect: {}
System.print((1..3).join("+")) // expect: 1+2+3
System.print("abc".join("|")) // expect: a|b|c
System.print(Fiber.new { [1].join(2) }.try()) // expect: Separator must be a string.
System.print(Fiber.new { [who].join(null) }.try()) // expect: Separator must be a string.
System.print(Fiber.new { (1..2).join([]) }.try()) // expect: Separator must be a string.
System.print(Fiber.new { [Broken.new()].join() }.try()) // expect: toString must return a string.
// A list that holds itself runs out of stack, as an error.
var loop = [1]
loop.add(loop)
System.print(Fiber.new { loop.toString }.try()) // expect: Stack overflow.
// Strings with NUL bytes keep every byte.
var nul = "a\0b"
System.print(nul.toString == nul) // expect: true
System.print(nul.toString.bytes.toList) // expect: [97, 0, 98]
System.print("[%(nul)]".bytes.count) // expect: 5
System.print([nul, nul].join("\0").bytes.count) // expect: 7
System.print([nul].toString.bytes.count) // expect: 5
System.print({nul: nul}.toString.bytes.count) // expect: 10
