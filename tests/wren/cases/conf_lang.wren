// Syntax, precedence, scoping, closures and classes as wren.io documents them.
/* block /* nested */ comment */
var x = 1 + 2 * 3 - 4 / 2
System.print(x) // expect: 5
System.print(1 < 2 == true) // expect: true
System.print(2 + 3 .. 5 + 1) // expect: 5..6
System.print(1 | 2 & 3 ^ 4) // expect: 7
System.print(1 << 2 + 1) // expect: 8
System.print(true ? 1 : false ? 2 : 3) // expect: 1
System.print(null || "default") // expect: default
System.print(1 && 2) // expect: 2
System.print(false && x.foo) // expect: false
System.print(true || x.foo) // expect: true
System.print(!true || true) // expect: true
System.print(-2.abs) // expect: -2
System.print((-2).abs) // expect: 2
System.print(1.2e3) // expect: 1200
System.print(1e-3) // expect: 0.001
System.print(0x1F) // expect: 31
System.print(-0xA) // expect: -10
var list = [1, 2, 3]
  .map {|n| n * 10 }
  .where {|n| n > 10 }
  .toList
System.print(list) // expect: [20, 30]
var fns = []
for (i in 1..3) fns.add(Fn.new { i })
System.print(fns.map {|f| f.call() }.toList) // expect: [1, 2, 3]
var j = 0
var fns2 = []
while (j < 3) {
  var k = j
  fns2.add(Fn.new { k })
  j = j + 1
}
System.print(fns2.map {|f| f.call() }.toList) // expect: [0, 1, 2]
for (i in 0...10) {
  if (i == 2) continue
  if (i == 5) break
  System.write(i)
}
System.print() // expect: 0134
if (false) {
  System.print("no")
} else if (true) {
  System.print("else if") // expect: else if
} else {
  System.print("no")
}
if (1) System.print("truthy 1") // expect: truthy 1
if (0) System.print("truthy 0") // expect: truthy 0
if ("") System.print("truthy empty string") // expect: truthy empty string
if (null) System.print("no") else System.print("null falsy") // expect: null falsy
var a = 1
{
  var a = 2
  System.print(a) // expect: 2
}
System.print(a) // expect: 1
System.print(a = 5) // expect: 5
System.print(a) // expect: 5
class Counter {
  static count { __count }
  static increment() {
    if (__count == null) __count = 0
    __count = __count + 1
  }
}
Counter.increment()
Counter.increment()
System.print(Counter.count) // expect: 2
class Outer {
  construct new() { _v = "field" }
  getFn() { Fn.new { _v + " " + this.toString } }
  toString { "Outer" }
}
System.print(Outer.new().getFn().call()) // expect: field Outer
var r = Fn.new {
  return
}
System.print(r.call()) // expect: null
var t = Fn.new {|n|
  if (n > 0) return "pos"
  return "nonpos"
}
System.print(t.call(1)) // expect: pos
System.print(t.call(-1)) // expect: nonpos
var fib
fib = Fn.new {|n| n < 2 ? n : fib.call(n - 1) + fib.call(n - 2) }
System.print(fib.call(20)) // expect: 6765
class Base {
  static hello { "base static" }
  construct new() {}
}
class Derived is Base {
  construct new() { super() }
}
System.print(Derived.new() is Base) // expect: true
System.print(Derived.supertype.name) // expect: Base
System.print("%(1)%(2)") // expect: 12
System.print("a%("b")c") // expect: abc
var m = {
  "k1": 1,
  "k2": 2
}
System.print(m.count) // expect: 2
var l = [
  1,
  2,
]
System.print(l) // expect: [1, 2]
System.print(1 != 2 && 3 >= 3) // expect: true
System.print(10 - 2 - 3) // expect: 5
System.print(2 * 3 % 4) // expect: 2
System.print(- 2 * 3) // expect: -6
System.print(!false == true) // expect: true
var u = null
System.print(u) // expect: null
var v
System.print(v) // expect: null
System.print(Fn.new { |a| a }.call(1)) // expect: 1
System.print("x" is String && !("x" is Num)) // expect: true
