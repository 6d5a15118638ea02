// The optional "random" module (wren.io modules/random): determinism and ranges.
import "random" for Random
var a = Random.new(12345)
var b = Random.new(12345)
var same = true
for (i in 1..1000) if (a.float() != b.float()) same = false
System.print(same) // expect: true
System.print(Random.new(1).float() != Random.new(2).float()) // expect: true
System.print(Random.new("appleseed".codePoints).int(1000000) == Random.new("appleseed".codePoints).int(1000000)) // expect: true
System.print(Random.new([1, 2]).float() != Random.new([1, 3]).float()) // expect: true
System.print(Random.new().float() != Random.new().float()) // expect: true
var c = Random.new(54321)
var ok = true
for (i in 1..5000) {
  var f = c.float()
  if (f < 0 || f >= 1) ok = false
  var g = c.float(3, 4)
  if (g < 3 || g >= 4) ok = false
  var e = c.float(-100)
  if (e > 0 || e <= -100) ok = false
  var n = c.int(10)
  if (n < 0 || n >= 10 || !n.isInteger) ok = false
  var m = c.int(-4, 2)
  if (m < -4 || m >= 2 || !m.isInteger) ok = false
  var z = c.int(-50)
  if (z > 0 || z < -50 || !z.isInteger) ok = false
}
System.print(ok) // expect: true
System.print(c.float(0)) // expect: 0
System.print(c.int(1)) // expect: 0
var counts = List.filled(10, 0)
for (i in 1..50000) {
  var n = c.int(10)
  counts[n] = counts[n] + 1
}
System.print(counts.all {|k| k > 4500 && k < 5500 }) // expect: true
var list = (1..10).toList
c.shuffle(list)
System.print(list.count) // expect: 10
System.print(list.reduce {|x, y| x + y }) // expect: 55
var sorted = list.toList.sort()
System.print(sorted) // expect: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
var s = c.sample(list, 5)
System.print(s.count) // expect: 5
var unique = {}
for (x in s) unique[x] = true
System.print(unique.count) // expect: 5
System.print(s.all {|x| list.contains(x) }) // expect: true
System.print(c.sample([7])) // expect: 7
System.print(c.sample([1, 2, 3], 3).toList.sort()) // expect: [1, 2, 3]
System.print(c.sample([1, 2, 3], 0)) // expect: []
System.print(Fiber.new { c.sample([1, 2, 3], 4) }.try()) // expect: Not enough elements to sample.
System.print(Fiber.new { c.sample([]) }.try()) // expect: Not enough elements to sample.
System.print(Fiber.new { Random.new([]) }.try()) // expect: Sequence cannot be empty.
System.print(Fiber.new { Random.new(["x"]) }.try()) // expect: Sequence elements must all be numbers.
System.print(Fiber.new { Random.new(true) }.try()) // expect: Seed must be a number or a sequence of numbers.
System.print(a is Random) // expect: true
var d1 = Random.new(99)
var d2 = Random.new(99)
var l1 = (1..20).toList
var l2 = (1..20).toList
d1.shuffle(l1)
d2.shuffle(l2)
System.print(l1 == l2 || l1.toString == l2.toString) // expect: true
