class Shape {
  construct create(sides) {
    _sides = sides
  }
  sides { _sides }
  sides() { "method %(_sides)" }
  static default=(v) { __default = v }
  static default { __default }
  describe {
    var fn = Fn.new { "shape with %(_sides) sides, %(sides)" }
    return fn.call()
  }
  each(f) {
    for (i in 1.._sides) f.call(i)
  }
}
var s = Shape.create(3)
System.print(s.sides) // expect: 3
System.print(s.sides()) // expect: method 3
Shape.default = 9
System.print(Shape.default) // expect: 9
System.print(s.describe) // expect: shape with 3 sides, 3
s.each {|i| System.write(i) }
System.print() // expect: 123
var text = [1, 2, 3]
  .map {|x| x + 1 }
  .toList
System.print(text) // expect: [2, 3, 4]
if (false) {
  System.print("no")
}
else {
  System.print("else on next line") // expect: else on next line
}
var i = 0
while (i < 5) {
  var local = i * 2
  i = i + 1
  if (local == 4) continue
  if (local > 6) break
  System.print(local)
}
// expect: 0
// expect: 2
// expect: 6
var deep
deep = Fn.new {|n| n == 0 ? 0 : 1 + deep.call(n - 1) }
System.print(deep.call(5000)) // expect: 5000
class Base {
  construct new() {}
  hello { "base hello" }
}
class Derived is Base {
  construct new() { super() }
  hello { Fn.new { super.hello + " via closure" }.call() }
}
System.print(Derived.new().hello) // expect: base hello via closure
System.print(1 is 2) // expect runtime error: Right operand must be a class.
