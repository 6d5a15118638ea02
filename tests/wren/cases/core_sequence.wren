// Sequence as wren.io documents it (core/sequence), on a user-defined
// sequence (every method goes through iterate/iteratorValue) and on the
// built-in ones (List, Range, String and Map take primitive shortcuts).
class Evens is Sequence {
  construct upTo(limit) { _limit = limit }
  iterate(at) {
    if (at == null) return _limit >= 0 ? 0 : false
    return at + 2 <= _limit ? at + 2 : false
  }
  iteratorValue(at) { at }
}
var evens = Evens.upTo(8)
System.print(evens.toList) // expect: [0, 2, 4, 6, 8]
System.print(evens.count) // expect: 5
System.print(evens.count {|n| n > 3 }) // expect: 3
System.print(evens.contains(6)) // expect: true
System.print(evens.contains(7)) // expect: false
System.print(evens.isEmpty) // expect: false
System.print(Evens.upTo(-1).isEmpty) // expect: true
System.print(evens.join()) // expect: 02468
System.print(evens.join(", ")) // expect: 0, 2, 4, 6, 8
System.print(evens.reduce {|a, b| a + b }) // expect: 20
System.print(evens.reduce(100) {|a, b| a - b }) // expect: 80
System.print(Evens.upTo(-1).reduce(7) {|a, b| a + b }) // expect: 7
System.print(Fiber.new { Evens.upTo(-1).reduce {|a, b| a } }.try()) // expect: Can't reduce an empty sequence.
// all and any hand back the answer that decided them.
System.print(evens.all {|n| n < 100 }) // expect: true
System.print(evens.all {|n| n < 4 ? n + 1 : null }) // expect: null
System.print(evens.any {|n| n > 4 ? "big %(n)" : false }) // expect: big 6
System.print(evens.any {|n| false }) // expect: false
System.print(Evens.upTo(-1).all {|n| false }) // expect: true
var seen = []
evens.each {|n| seen.add(n * n) }
System.print(seen) // expect: [0, 4, 16, 36, 64]
// The lazy views call the block only when an element is read.
var calls = 0
var squares = evens.map {|n|
  calls = calls + 1
  return n * n
}
System.print(calls) // expect: 0
System.print(squares.where {|n| n > 10 }.skip(1).take(1).toList) // expect: [36]
System.print(squares.skip(10).toList) // expect: []
System.print(squares.take(0).count) // expect: 0
System.print(Fiber.new { evens.skip(-1) }.try()) // expect: Count must be a non-negative integer.
System.print(Fiber.new { evens.take(1.5) }.try()) // expect: Count must be a non-negative integer.
System.print(Fiber.new { evens.take("2") }.try()) // expect: Count must be a non-negative integer.
System.print(Fiber.new { evens.skip(1 / 0) }.try()) // expect: Count must be a non-negative integer.
// A fiber can yield from inside a block that a core method calls.
var walker = Fiber.new {
  [1, 2, 3].each {|n| Fiber.yield(n * 10) }
  evens.where {|n|
    Fiber.yield("asked %(n)")
    return n == 2
  }.toList
  return "done"
}
var got = []
while (!walker.isDone) got.add(walker.call())
System.print(got) // expect: [10, 20, 30, asked 0, asked 2, asked 4, asked 6, asked 8, done]
// contains asks the value's own == when its class defines one.
class Loose {
  construct new(n) { _n = n }
  n { _n }
  ==(other) { other is Num ? other == _n : other is Loose && other.n == _n }
}
System.print([1, 2, 3].contains(Loose.new(2))) // expect: true
System.print([1, 2, 3].contains(Loose.new(5))) // expect: false
System.print([Loose.new(1)].contains(Loose.new(1))) // expect: true
System.print([1, "a", null, 1..2].contains(1..2)) // expect: true
// Built-in shortcuts give what the protocol gives.
System.print((1..4).count) // expect: 4
System.print((1...4).count) // expect: 3
System.print((4..1).toList) // expect: [4, 3, 2, 1]
System.print((1...1).toList) // expect: []
System.print((1..1).toList) // expect: [1]
System.print((1..2.5).toList) // expect: [1, 2]
System.print((1...2.5).toList) // expect: [1, 2]
System.print((0.5..-1).toList) // expect: [0.5, -0.5]
System.print((1..3).isEmpty) // expect: false
System.print((1...1).isEmpty) // expect: true
System.print([].isEmpty) // expect: true
System.print({}.isEmpty) // expect: true
System.print({1: 2}.isEmpty) // expect: false
var list = [1, 2]
var copy = list.toList
copy.add(3)
System.print([list, copy]) // expect: [[1, 2], [1, 2, 3]]
list.addAll(list)
System.print(list) // expect: [1, 2, 1, 2]
System.print([0] + (1..2) + "ab") // expect: [0, 1, 2, a, b]
System.print(list.addAll(evens.take(2))) // expect: instance of SequenceView
System.print(list) // expect: [1, 2, 1, 2, 0, 2]
System.print([1, 2] * 3) // expect: [1, 2, 1, 2, 1, 2]
System.print([] * 5) // expect: []
System.print(Fiber.new { [1] * -1 }.try()) // expect: Count must be a non-negative integer.
System.print(Fiber.new { [1] * "2" }.try()) // expect: Count must be a non-negative integer.
var m = {"a": 1}
System.print(m.keys.count) // expect: 1
System.print(m.values.toList) // expect: [1]
for (entry in m) System.print([entry.key, entry.value, entry]) // expect: [a, 1, a:1]
System.print(MapEntry.new(1, [2]).value) // expect: [2]
System.print("héllo".codePoints.count) // expect: 5
System.print("héllo".bytes.count) // expect: 6
System.print("hé".codePoints[1]) // expect: 233
System.print("hé".bytes[2]) // expect: 169
// The view's private constructor checks what it is given when stepped.
System.print(Fiber.new { SequenceView.new_([1], 2, null).toList }.try()) // expect: A sequence view needs functions of one argument.
System.print(SequenceView.new_([1, 2], null, null).toList) // expect: [1, 2]
System.print(SequenceView.new_(evens, null, null).toList) // expect: [0, 2, 4, 6, 8]
