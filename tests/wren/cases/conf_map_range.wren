// Map, MapEntry and Range as wren.io documents them.
var map = {"george": "harrison", "ringo": "starr"}
System.print(map["ringo"]) // expect: starr
System.print(map["pete"]) // expect: null
System.print(map.count) // expect: 2
System.print(map.containsKey("george")) // expect: true
System.print(map.containsKey("x")) // expect: false
System.print(map.remove("george")) // expect: harrison
System.print(map.remove("george")) // expect: null
System.print(map) // expect: {ringo: starr}
System.print(map.keys.toList) // expect: [ringo]
System.print(map.values.toList) // expect: [starr]
map.clear()
System.print(map) // expect: {}
System.print(map.isEmpty) // expect: true
var m = {1: "a", true: "b", null: "c", (1..2): "d", Num: "e", "s": "f"}
System.print(m[1]) // expect: a
System.print(m[true]) // expect: b
System.print(m[null]) // expect: c
System.print(m[1..2]) // expect: d
System.print(m[Num]) // expect: e
System.print(m["s"]) // expect: f
System.print(m.count) // expect: 6
m[1] = "z"
System.print(m[1]) // expect: z
for (e in {"k": 1}) {
  System.print(e) // expect: k:1
  System.print(e.key) // expect: k
  System.print(e.value) // expect: 1
  System.print(e is MapEntry) // expect: true
}
System.print({}.toString) // expect: {}
System.print({"a": [1, 2]}) // expect: {a: [1, 2]}
System.print(Map.new()) // expect: {}
var big = {}
for (i in 0...100) big[i] = i * i
System.print(big.count) // expect: 100
System.print(big[99]) // expect: 9801
var sum = 0
for (k in big.keys) sum = sum + k
System.print(sum) // expect: 4950
for (i in 0...50) big.remove(i * 2)
System.print(big.count) // expect: 50
System.print(big.containsKey(2)) // expect: false
System.print(big.containsKey(3)) // expect: true
System.print({1: 2}.map {|e| e.key + e.value }.toList) // expect: [3]
System.print(m.keys.count) // expect: 6
System.print({1.0: "x"}[1]) // expect: x
var en = {"a": 1}
System.print(en.iteratorValue(en.iterate(null)).key) // expect: a
System.print((3..5).from) // expect: 3
System.print((4..2).from) // expect: 4
System.print((3..5).to) // expect: 5
System.print((4..2).to) // expect: 2
System.print((3..5).min) // expect: 3
System.print((4..2).min) // expect: 2
System.print((3..5).max) // expect: 5
System.print((4..2).max) // expect: 4
System.print((3..5).isInclusive) // expect: true
System.print((3...5).isInclusive) // expect: false
System.print((1..3).toList) // expect: [1, 2, 3]
System.print((1...3).toList) // expect: [1, 2]
System.print((3..1).toList) // expect: [3, 2, 1]
System.print((3...1).toList) // expect: [3, 2]
System.print((1..1).toList) // expect: [1]
System.print((1...1).toList) // expect: []
System.print((1.5..3).toList) // expect: [1.5, 2.5]
System.print((0..0.5).toList) // expect: [0]
System.print((1..3).count) // expect: 3
System.print((1..10).where {|n| n % 3 == 0 }.toList) // expect: [3, 6, 9]
System.print((1..3).map {|n| n * n }.toList) // expect: [1, 4, 9]
System.print((1..3).iterate(null)) // expect: 1
System.print((1..3).iterate(3)) // expect: false
System.print((1..3).iteratorValue(2)) // expect: 2
System.print((1..3) == (1..3)) // expect: true
System.print((1..3) == (1...3)) // expect: false
System.print((1..3).contains(2)) // expect: true
System.print((1..3).reduce {|a, b| a * b }) // expect: 6
System.print((1..3).type) // expect: Range
System.print((1..3).toString) // expect: 1..3
System.print((-1..-3).toList) // expect: [-1, -2, -3]
System.print((1..3).join(",")) // expect: 1,2,3
System.print((1..3).isEmpty) // expect: false
System.print((1...1).isEmpty) // expect: true
var s = 0
for (i in 1..1000000) s = s + i
System.print(s) // expect: 500000500000
