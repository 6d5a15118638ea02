class Countdown is Sequence {
  construct new(from) {
    _from = from
  }
  iterate(i) {
    if (i == null) return _from
    if (i <= 1) return false
    return i - 1
  }
  iteratorValue(i) { i }
}
var c = Countdown.new(4)
System.print(c.toList) // expect: [4, 3, 2, 1]
System.print(c.map {|x| x * 10 }.where {|x| x > 15 }.toList) // expect: [40, 30, 20]
System.print(c.count) // expect: 4
System.print(c.contains(3)) // expect: true
System.print(c.isEmpty) // expect: false
System.print(c.skip(1).take(2).toList) // expect: [3, 2]
System.print(c.join("-")) // expect: 4-3-2-1
System.print(c.reduce {|a, b| a * b }) // expect: 24
for (x in c.take(1)) System.print(x) // expect: 4
System.print([].reduce(0) {|a, b| a + b }) // expect: 0
System.print({"a": 1}.map {|e| e.key + e.value.toString }.toList) // expect: [a1]
