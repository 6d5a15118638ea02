// Size limits of the core's C shortcuts: each one is an error naming
// what was too large, and the VM goes on working after it.
System.print(Fiber.new { [1, 2] * 100000000 }.try()) // expect: List would be too large.
System.print(Fiber.new { (1..1e9).toList }.try()) // expect: Range is too large to make a list.
System.print(Fiber.new { (0..1/0).toList }.try()) // expect: Range is too large to make a list.
System.print((1..1e9).count) // expect: 1000000000
System.print((1..3).toList) // expect: [1, 2, 3]
// Text past the C printer's nesting depth (32) is made by the Wren side,
// with the same result.
var deep = "x"
for (i in 1..40) deep = [deep]
var text = deep.toString
System.print(text.count) // expect: 81
System.print(text[38..42]) // expect: [[x]]
var nested = {"k": 1}
for (i in 1..40) nested = {"k": nested}
System.print(nested.toString.count) // expect: 206
System.print("%(deep)" == text) // expect: true
