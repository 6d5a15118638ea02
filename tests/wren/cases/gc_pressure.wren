class Node {
  construct new(value) {
    _value = value
    _next = null
  }
  value { _value }
  next { _next }
  next=(n) { _next = n }
}
// Cycles that become garbage.
for (i in 1..2000) {
  var a = Node.new(i)
  var b = Node.new(i + 1)
  a.next = b
  b.next = a
}
// A long live list survives collections.
var head = Node.new(0)
var tail = head
for (i in 1..3000) {
  var n = Node.new(i)
  tail.next = n
  tail = n
}
System.gc()
var sum = 0
var node = head
while (node != null) {
  sum = sum + node.value
  node = node.next
}
System.print(sum) // expect: 4501500
var strings = []
for (i in 1..2000) strings.add("item %(i)")
System.print(strings[1999]) // expect: item 2000
var maps = {}
for (i in 1..2000) maps["k%(i)"] = [i, "v%(i)"]
System.gc()
System.print(maps["k1234"]) // expect: [1234, v1234]
var closures = []
for (i in 1..500) {
  var captured = "c%(i)"
  closures.add(Fn.new { captured })
}
System.gc()
System.print(closures[499].call()) // expect: c500
var fibers = []
for (i in 1..200) {
  var f = Fiber.new {|x| Fiber.yield(x * 2) }
  f.call(i)
  fibers.add(f)
}
System.gc()
System.print(fibers.count) // expect: 200
var s = ""
for (i in 1..300) s = s + "x"
System.print(s.count) // expect: 300
