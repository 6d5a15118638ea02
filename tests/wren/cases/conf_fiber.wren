// Fiber as wren.io documents it: call, yield, try, transfer, abort, errors.
var fiber = Fiber.new {
  System.print("Before yield")
  Fiber.yield()
  System.print("After yield")
}
fiber.call() // expect: Before yield
System.print("After call") // expect: After call
fiber.call() // expect: After yield
fiber = Fiber.new {
  System.print(Fiber.yield())
}
fiber.call()
fiber.call("value") // expect: value
fiber = Fiber.new { Fiber.yield("value") }
System.print(fiber.call()) // expect: value
fiber = Fiber.new {|param| System.print(param) }
fiber.call("begin") // expect: begin
fiber = Fiber.new { 123.badMethod }
System.print(fiber.try()) // expect: Num does not implement 'badMethod'.
System.print(fiber.error) // expect: Num does not implement 'badMethod'.
System.print(fiber.isDone) // expect: true
fiber = Fiber.new { Fiber.abort("boom") }
System.print(fiber.try()) // expect: boom
fiber = Fiber.new { 
  Fiber.abort(null)
  return "done"
}
System.print(fiber.try()) // expect: done
fiber = Fiber.new { Fiber.abort(42) }
System.print(fiber.try()) // expect: 42
System.print(fiber.error) // expect: 42
fiber = Fiber.new {|x| Fiber.yield(x + 1) }
System.print(fiber.try(1)) // expect: 2
var gen = Fiber.new {
  for (i in 1..3) Fiber.yield(i)
}
var got = []
while (true) {
  var v = gen.call()
  if (gen.isDone) break
  got.add(v)
}
System.print(got) // expect: [1, 2, 3]
System.print(Fiber.current is Fiber) // expect: true
var f1 = Fiber.new { "returned" }
System.print(f1.call()) // expect: returned
System.print(f1.isDone) // expect: true
var ft = Fiber.new { Fiber.new { 1.x }.call() }
System.print(ft.try()) // expect: Num does not implement 'x'.
var main = Fiber.current
var other = Fiber.new {|v|
  System.print("other got %(v)")
  main.transfer("back")
}
System.print(other.transfer("hi"))
// expect: other got hi
// expect: back
var tErr = Fiber.new { Fiber.current.transferError("terr") }
System.print(tErr.try()) // expect: terr
var done = Fiber.new { 1 }
done.call()
System.print(Fiber.new { done.call() }.try()) // expect: Cannot call a finished fiber.
var nested = Fiber.new {
  var inner = Fiber.new {
    Fiber.yield("inner")
    "inner end"
  }
  System.print(inner.call())
  Fiber.yield("outer")
  System.print(inner.call())
}
System.print(nested.call())
// expect: inner
// expect: outer
nested.call() // expect: null
System.print(Fiber.new { Fiber.yield() }.call()) // expect: null
var e = Fiber.new { [1][5] }.try()
System.print(e) // expect: Subscript out of bounds.
System.print(Fiber.new { "a" + 1 }.try()) // expect: Right operand must be a string.
System.print(Fiber.new { 1 + "a" }.try()) // expect: Right operand must be a number.
System.print(Fiber.new { {}[[]] = 1 }.try()) // expect: Key must be a value type.
System.print(Fiber.new { null.foo }.try()) // expect: Null does not implement 'foo'.
System.print(Fiber.new { Fn.new { |a| a }.call() }.try()) // expect: Function expects more arguments.
System.print(Fiber.new { "abc"[10] }.try()) // expect: Subscript out of bounds.
System.print(Fiber.new { List.filled(-1, 0) }.try()) // expect: Size cannot be negative.
System.print(Fiber.new { [1, 2].sort(3) }.try()) // expect: Comparer must be a function.
System.print(Fiber.new { [].reduce {|a, b| a } }.try()) // expect: Can't reduce an empty sequence.
System.print(Fiber.new { "a" * -1 }.try()) // expect: Count must be a non-negative integer.
System.print(Fiber.new { "a".split("") }.try()) // expect: Delimiter must be a non-empty string.
System.print(Fiber.new { String.fromCodePoint(-1) }.try()) // expect: Code point cannot be negative.
System.print(Fiber.new { String.fromByte(256) }.try()) // expect: Byte cannot be greater than 0xff.
System.print(Fiber.new { Num.fromString(1) }.try()) // expect: Argument must be a string.
System.print(Fiber.new { [1].insert(3, 1) }.try()) // expect: Index out of bounds.
System.print(Fiber.new { [1].removeAt(1) }.try()) // expect: Index out of bounds.
System.print(Fiber.new { [1].swap(0, 1) }.try()) // expect: Index 1 out of bounds.
System.print(Fiber.new { [1][1.5] }.try()) // expect: Subscript must be an integer.
System.print(Fiber.new { [1]["a"] }.try()) // expect: Subscript must be a number or a range.
System.print(Fiber.new { 1..."a" }.try()) // expect: Right hand side of range must be a number.
System.print(Fiber.new { 1 < "a" }.try()) // expect: Right operand must be a number.
System.print(Fiber.new { Fiber.new(1) }.try()) // expect: Argument must be a function.
System.print(Fiber.new { Fiber.new {|a, b| a } }.try()) // expect: Function cannot take more than one parameter.
System.print(Fiber.new { [1, 2].join(1) }.try()) // expect: Separator must be a string.
System.print(Fiber.new { [1].skip(-1) }.try()) // expect: Count must be a non-negative integer.
System.print(Fiber.new { "abc".indexOf("b", 5) }.try()) // expect: Start out of bounds.
System.print(Fiber.new { Fiber.current.call() }.try()) // expect: Fiber has already been called.
