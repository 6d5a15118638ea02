var fiber = Fiber.new {
  System.print("in fiber")
  Fiber.yield(1)
  System.print("resumed")
  Fiber.yield(2)
  return 3
}
System.print(fiber.call()) // expect: in fiber
// expect: 1
System.print(fiber.isDone) // expect: false
System.print(fiber.call()) // expect: resumed
// expect: 2
System.print(fiber.call()) // expect: 3
System.print(fiber.isDone) // expect: true

var echo = Fiber.new {|first|
  System.print("got %(first)")
  var second = Fiber.yield("a")
  System.print("got %(second)")
  return "done"
}
System.print(echo.call("x")) // expect: got x
// expect: a
System.print(echo.call("y")) // expect: got y
// expect: done

var gen = Fiber.new {
  for (i in 1..3) Fiber.yield(i)
}
while (true) {
  var v = gen.call()
  if (gen.isDone) break
  System.print(v)
}
// expect: 1
// expect: 2
// expect: 3

var failing = Fiber.new {
  Fiber.abort("boom")
}
System.print(failing.try()) // expect: boom
System.print(failing.error) // expect: boom
System.print(failing.isDone) // expect: true

var rt = Fiber.new { 1.nope }
System.print(rt.try()) // expect: Num does not implement 'nope'.

var ok = Fiber.new { "fine" }
System.print(ok.try()) // expect: fine
System.print(ok.error) // expect: null

System.print(Fiber.current is Fiber) // expect: true
var inner = Fiber.new { Fiber.current }
var f2 = inner
System.print(inner.call() == f2) // expect: true

var nested = Fiber.new {
  var child = Fiber.new {
    Fiber.yield("from child")
    return "child done"
  }
  System.print(child.call())
  Fiber.yield("from parent")
  System.print(child.call())
}
System.print(nested.call()) // expect: from child
// expect: from parent
nested.call() // expect: child done

var deep = Fiber.new {
  var f = Fiber.new { Fiber.abort("deep error") }
  f.call()
}
System.print(deep.try()) // expect: deep error

var a
var b
a = Fiber.new {
  System.print("a1")
  b.transfer()
  System.print("a2")
}
b = Fiber.new {
  System.print("b1")
  a.transfer()
  System.print("never")
}
a.call()
// expect: a1
// expect: b1
// expect: a2

var waiting = Fiber.new { Fiber.yield() } // expect runtime error: transferred
waiting.call()
waiting.transferError("transferred")
