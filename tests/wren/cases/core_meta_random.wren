// The optional modules' primitives (wren.io modules/meta and
// modules/random): argument checks and what each method gives back.
import "meta" for Meta
import "random" for Random
var shared = 10
Meta.eval("shared = shared + 1")
System.print(shared) // expect: 11
var f = Fn.new { Meta.eval("System.print(shared * 2)") }
f.call() // expect: 22
System.print(Meta.compile("return shared").call()) // expect: 11
System.print(Meta.getModuleVariables("main").contains("shared")) // expect: true
System.print(Meta.getModuleVariables("random")[-1]) // expect: Random
System.print(Fiber.new { Meta.getModuleVariables("nowhere") }.try()) // expect: Could not find a module named 'nowhere'.
System.print(Fiber.new { Meta.compileExpression(null) }.try()) // expect: Expression must be a string.
System.print(Fiber.new { Meta.eval("1 +") }.try()) // expect: Could not compile source code.
var r = Random.new(7)
System.print(Fiber.new { r.float("1") }.try()) // expect: End must be a number.
System.print(Fiber.new { r.float("0", 1) }.try()) // expect: Start must be a number.
System.print(Fiber.new { r.float(0, "1") }.try()) // expect: End must be a number.
System.print(Fiber.new { r.int(null) }.try()) // expect: End must be a number.
System.print(Fiber.new { r.int(0, []) }.try()) // expect: End must be a number.
System.print(Fiber.new { r.sample("abc") }.try()) // expect: List must be a list.
System.print(Fiber.new { r.sample([1], -1) }.try()) // expect: Count must be a non-negative integer.
System.print(Fiber.new { r.sample([1], 0.5) }.try()) // expect: Count must be a non-negative integer.
System.print(Fiber.new { r.shuffle(1..3) }.try()) // expect: List must be a list.
System.print(Fiber.new { Random.new(null) }.try()) // expect: Seed must be a number or a sequence of numbers.
// A sequence seed: only its first 16 elements count.
var long = (1..40).toList
var cut = (1..16).toList + [99]
System.print(Random.new(long).float() == Random.new(cut).float()) // expect: true
System.print(Random.new(1..3).int(1000) == Random.new([1, 2, 3]).int(1000)) // expect: true
var g = Random.new(3)
var spread = {}
for (i in 1..2000) spread[g.int(-2, 3)] = true
System.print(spread.keys.toList.sort()) // expect: [-2, -1, 0, 1, 2]
var deck = (1..8).toList
g.shuffle(deck)
System.print(deck.toList.sort()) // expect: [1, 2, 3, 4, 5, 6, 7, 8]
var empty = []
g.shuffle(empty)
System.print(empty) // expect: []
System.print(g.sample([5, 6], 2).sort()) // expect: [5, 6]
