// Numbers where Wren's behaviour is exact (wren.io core/num): the sign of
// fraction, Num.fromString past the largest double, and the messages of
// min, max, atan(_) and List.filled on bad arguments.
System.print((-0).fraction) // expect: -0
System.print((-3).fraction) // expect: -0
System.print((3).fraction) // expect: 0
System.print((-3.25).fraction) // expect: -0.25
System.print((1 / 0).fraction) // expect: 0
System.print(Fiber.new { Num.fromString("1e309") }.try()) // expect: Number literal is too large.
System.print(Fiber.new { Num.fromString("-1e309") }.try()) // expect: Number literal is too large.
System.print(Fiber.new { Num.fromString("0x1" + "0" * 260) }.try()) // expect: Number literal is too large.
System.print(Num.fromString("1.7976931348623157e308") == Num.largest) // expect: true
System.print(Num.fromString("0xff")) // expect: 255
System.print(Num.fromString("1e-400")) // expect: 0
System.print(Num.fromString("1e309x")) // expect: null
System.print(Fiber.new { 1.min("2") }.try()) // expect: Other value must be a number.
System.print(Fiber.new { 1.max(null) }.try()) // expect: Other value must be a number.
System.print(Fiber.new { 1.atan(false) }.try()) // expect: x value must be a number.
System.print(1.min(2)) // expect: 1
System.print(1.max(2)) // expect: 2
System.print(0.atan(-1) == Num.pi) // expect: true
System.print(Fiber.new { List.filled(-1, 0) }.try()) // expect: Size cannot be negative.
System.print(Fiber.new { List.filled(1.5, 0) }.try()) // expect: Size must be an integer.
System.print(Fiber.new { List.filled("3", 0) }.try()) // expect: Size must be a number.
System.print(List.filled(0, 1)) // expect: []
System.print(List.filled(2, "x")) // expect: [x, x]
