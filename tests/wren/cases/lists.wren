var list = [1, 2, 3]
System.print(list) // expect: [1, 2, 3]
System.print(list.count) // expect: 3
System.print(list[0]) // expect: 1
System.print(list[-1]) // expect: 3
list.add(4)
System.print(list) // expect: [1, 2, 3, 4]
list[0] = "one"
System.print(list[0]) // expect: one
System.print(list[1..2]) // expect: [2, 3]
System.print(list[1...3]) // expect: [2, 3]
System.print(list[2..-1]) // expect: [3, 4]
System.print(list[0..-1]) // expect: [one, 2, 3, 4]
list.insert(1, "ins")
System.print(list) // expect: [one, ins, 2, 3, 4]
System.print(list.removeAt(1)) // expect: ins
System.print(list.remove(3)) // expect: 3
System.print(list) // expect: [one, 2, 4]
System.print(list.indexOf(4)) // expect: 2
System.print(list.indexOf(99)) // expect: -1
System.print(list.contains(2)) // expect: true
list.clear()
System.print(list.isEmpty) // expect: true
System.print([]) // expect: []
System.print([1, [2, 3], "s"]) // expect: [1, [2, 3], s]
System.print(List.filled(3, 0)) // expect: [0, 0, 0]
System.print([1, 2] + [3]) // expect: [1, 2, 3]
System.print([1, 2] * 2) // expect: [1, 2, 1, 2]
System.print([3, 1, 2].sort()) // expect: [1, 2, 3]
System.print([3, 1, 2].sort {|a, b| a > b }) // expect: [3, 2, 1]
System.print(["b", "a", "c"].sort {|a, b| a.bytes[0] < b.bytes[0] }) // expect: [a, b, c]
var l2 = [1, 2, 3, 4, 5]
System.print(l2.where {|x| x % 2 == 1 }.toList) // expect: [1, 3, 5]
System.print(l2.map {|x| x * x }.toList) // expect: [1, 4, 9, 16, 25]
System.print(l2.reduce {|a, b| a + b }) // expect: 15
System.print(l2.reduce(10) {|a, b| a + b }) // expect: 25
System.print(l2.all {|x| x > 0 }) // expect: true
System.print(l2.any {|x| x > 4 }) // expect: true
System.print(l2.count {|x| x > 2 }) // expect: 3
System.print(l2.skip(3).toList) // expect: [4, 5]
System.print(l2.take(2).toList) // expect: [1, 2]
System.print(l2.join(", ")) // expect: 1, 2, 3, 4, 5
System.print(l2.join()) // expect: 12345
l2.swap(0, 4)
System.print(l2) // expect: [5, 2, 3, 4, 1]
var multi = [
  1,
  2,
]
System.print(multi) // expect: [1, 2]
l2.each {|x| System.write(x) }
System.print() // expect: 52341
