var map = {"a": 1, "b": 2}
System.print(map["a"]) // expect: 1
System.print(map["missing"]) // expect: null
System.print(map.count) // expect: 2
map["c"] = 3
System.print(map.count) // expect: 3
System.print(map.containsKey("c")) // expect: true
System.print(map.remove("a")) // expect: 1
System.print(map.containsKey("a")) // expect: false
System.print({}) // expect: {}
System.print({1: "one"}) // expect: {1: one}
var keys = map.keys.toList
keys.sort {|x, y| x.bytes[0] < y.bytes[0] }
System.print(keys) // expect: [b, c]
var total = 0
for (v in map.values) total = total + v
System.print(total) // expect: 5
for (entry in {"k": "v"}) System.print("%(entry.key)=%(entry.value)") // expect: k=v
var mixed = {true: "t", null: "n", (1..2): "r", Num: "class"}
System.print(mixed[true]) // expect: t
System.print(mixed[null]) // expect: n
System.print(mixed[1..2]) // expect: r
System.print(mixed[Num]) // expect: class
map.clear()
System.print(map.count) // expect: 0
var big = {}
for (i in 1..1000) big[i] = i * 2
System.print(big.count) // expect: 1000
System.print(big[500]) // expect: 1000
for (i in 1..500) big.remove(i)
System.print(big.count) // expect: 500
System.print(big[501]) // expect: 1002
var m2 = {
  "x": 1,
  "y": 2
}
System.print(m2["y"]) // expect: 2
