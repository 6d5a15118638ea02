// Lazy sequences (map, where, skip, take) keep their iteration state in
// the iterator value (wren.io core/sequence and the iterator protocol in
// the language guide), so the same sequence can be iterated by nested
// or interleaved loops independently.
var t = (1..5).take(3)
var out = []
for (a in t) for (b in t) out.add("%(a)%(b)")
System.print(out.join(" ")) // expect: 11 12 13 21 22 23 31 32 33
var s = [1, 2, 3, 4].skip(2)
out = []
for (a in s) for (b in s) out.add("%(a)%(b)")
System.print(out.join(" ")) // expect: 33 34 43 44
var m = [1, 2].map {|x| x * 10 }
out = []
for (a in m) for (b in m) out.add("%(a)-%(b)")
System.print(out.join(" ")) // expect: 10-10 10-20 20-10 20-20
var w = (1..6).where {|x| x % 3 == 0 }
out = []
for (a in w) for (b in w) out.add("%(a)%(b)")
System.print(out.join(" ")) // expect: 33 36 63 66
var chain = (1..10).where {|x| x % 2 == 0 }.map {|x| x * x }.skip(1).take(2)
out = []
for (a in chain) for (b in chain) out.add("%(a)/%(b)")
System.print(out.join(" ")) // expect: 16/16 16/36 36/16 36/36
// Interleaved: two iterators over one sequence, driven by hand.
var i = t.iterate(null)
var j = t.iterate(null)
i = t.iterate(i)
System.print([t.iteratorValue(i), t.iteratorValue(j)]) // expect: [2, 1]
j = t.iterate(j)
j = t.iterate(j)
System.print(t.iteratorValue(j)) // expect: 3
System.print(t.iterate(j)) // expect: false
System.print(t.iteratorValue(i)) // expect: 2
// Iterating twice in a row gives the same elements.
System.print(t.toList) // expect: [1, 2, 3]
System.print(t.toList) // expect: [1, 2, 3]
System.print(t.count) // expect: 3
System.print(chain.toList + chain.toList) // expect: [16, 36, 16, 36]
// Edge cases of take.
System.print((1..10).take(0).toList) // expect: []
System.print([].take(3).toList) // expect: []
System.print((1..3).take(10).toList) // expect: [1, 2, 3]
System.print((1..3).take(0).isEmpty) // expect: true
System.print([7].take(1).isEmpty) // expect: false
// take does not ask the underlying sequence for more than it needs.
var asked = 0
var counted = (1..100).map {|x|
  asked = asked + 1
  return x
}.take(2)
System.print(counted.toList) // expect: [1, 2]
System.print(asked) // expect: 2
// A lazy sequence over a string and a map.
var letters = "abcd".skip(1).take(2)
out = []
for (a in letters) for (b in letters) out.add(a + b)
System.print(out.join(" ")) // expect: bb bc cb cc
var keys = {1: "x"}.keys.take(1)
for (a in keys) for (b in keys) System.print([a, b]) // expect: [1, 1]
