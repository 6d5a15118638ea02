// Maps under insert/remove churn: a shadow List tracks which keys should
// be present; every lookup, count and iteration must agree with it.
var m = {}
var shadow = List.filled(512, null)
var seed = 12345
var next = Fn.new {
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed
}
var ok = true
for (step in 1..20000) {
  var k = next.call() % 512
  if (next.call() % 3 == 0) {
    var removed = m.remove(k)
    if (removed != shadow[k]) ok = false
    shadow[k] = null
  } else {
    m[k] = step
    shadow[k] = step
  }
  var probe = next.call() % 512
  if (m[probe] != shadow[probe]) ok = false
  if (m.containsKey(probe) != (shadow[probe] != null)) ok = false
}
var present = shadow.count {|v| v != null }
System.print(ok) // expect: true
System.print(m.count == present) // expect: true
var seen = 0
for (entry in m) {
  if (shadow[entry.key] != entry.value) ok = false
  seen = seen + 1
}
System.print([ok, seen == present]) // expect: [true, true]
// Add and remove one key many times (tombstones must not pile up).
var one = {}
for (i in 1..100000) {
  one[i] = i
  one.remove(i)
}
System.print(one.count) // expect: 0
System.print(one[5]) // expect: null
one["x"] = 1
System.print(one) // expect: {x: 1}
// Keys that share their low bits (strides of a power of two).
var strided = {}
for (i in 0...2000) strided[i * 65536] = i
var sum = 0
for (i in 0...2000) sum = sum + strided[i * 65536]
System.print([strided.count, sum]) // expect: [2000, 1999000]
for (i in 0...2000) strided[i * 4294967296] = i
System.print(strided.count) // expect: 3999
System.print(strided[1999 * 4294967296]) // expect: 1999
// Non-integral, negative, huge and mixed keys.
var mixed = {0.5: "half", -1: "minus one", 1e300: "big", -1e300: "-big", 2.5: "two and a half"}
mixed["0.5"] = "string"
mixed[true] = "true"
mixed[null] = "null"
mixed[1..2] = "range"
mixed[Num] = "class"
System.print([mixed[0.5], mixed[-1], mixed[1e300], mixed[-1e300], mixed[2.5]]) // expect: [half, minus one, big, -big, two and a half]
System.print([mixed["0.5"], mixed[true], mixed[null], mixed[1..2], mixed[Num]]) // expect: [string, true, null, range, class]
System.print(mixed.count) // expect: 10
var nan = 0 / 0
mixed[nan] = 1
System.print(mixed[nan]) // expect: null
System.print(mixed.count) // expect: 11
// Removing everything while iterating over a copy of the keys.
var big = {}
for (i in 1..1000) big[i] = i * i
for (k in big.keys.toList) if (k % 2 == 0) big.remove(k)
System.print(big.count) // expect: 500
System.print(big.values.reduce {|a, b| a + b }) // expect: 166666500
big.clear()
System.print([big.count, big[1]]) // expect: [0, null]
big[1] = 2
System.print(big) // expect: {1: 2}
