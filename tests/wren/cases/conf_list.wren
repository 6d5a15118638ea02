// List and Sequence as wren.io documents them.
System.print(List.filled(3, 0)) // expect: [0, 0, 0]
System.print(List.new()) // expect: []
var list = ["a", "b", "c", "d"]
list.insert(1, "e")
System.print(list) // expect: [a, e, b, c, d]
list = ["a", "b", "c"]
list.insert(3, "d")
System.print(list) // expect: [a, b, c, d]
list = ["a", "b"]
list.insert(-1, "d")
list.insert(-2, "c")
System.print(list) // expect: [a, b, c, d]
System.print(["a", "c"].insert(1, "b")) // expect: b
list = ["a", "b", "c", "d"]
list.removeAt(1)
System.print(list) // expect: [a, c, d]
System.print(["a", "b", "c"].removeAt(1)) // expect: b
System.print(["a", "b", "c"].removeAt(-1)) // expect: c
System.print([4, 1, 3, 2].sort()) // expect: [1, 2, 3, 4]
list = [9, 6, 8, 7]
list.sort {|a, b| a < b}
System.print(list) // expect: [6, 7, 8, 9]
list.sort {|a, b| a > b}
System.print(list) // expect: [9, 8, 7, 6]
System.print(["a", "b", "c"][1]) // expect: b
System.print(["a", "b", "c"][-1]) // expect: c
list = ["a", "b", "c"]
list[1] = "new"
System.print(list) // expect: [a, new, c]
System.print(["a", "b", "c"] + ["d", "e", "f"]) // expect: [a, b, c, d, e, f]
System.print([1, 2] + (3..4)) // expect: [1, 2, 3, 4]
System.print([1, 2] * 2) // expect: [1, 2, 1, 2]
System.print([1, 2, 3].indexOf(2)) // expect: 1
System.print([1, 2, 3].indexOf(5)) // expect: -1
list = [1, 2, 3, 2]
System.print(list.remove(2)) // expect: 2
System.print(list) // expect: [1, 3, 2]
System.print(list.remove(9)) // expect: null
list = [1, 2, 3]
list.swap(0, 2)
System.print(list) // expect: [3, 2, 1]
System.print(list.add(4)) // expect: 4
System.print(list.addAll([5, 6])) // expect: [5, 6]
System.print(list) // expect: [3, 2, 1, 4, 5, 6]
System.print(list.count) // expect: 6
list.clear()
System.print(list) // expect: []
System.print(list.isEmpty) // expect: true
list = [0, 1, 2, 3, 4, 5]
System.print(list[1..3]) // expect: [1, 2, 3]
System.print(list[1...3]) // expect: [1, 2]
System.print(list[3..1]) // expect: [3, 2, 1]
System.print(list[-2..-1]) // expect: [4, 5]
System.print(list[6..-1]) // expect: []
System.print(list[0...0]) // expect: []
System.print([1, [2, 3], "x", null, true, 1.5]) // expect: [1, [2, 3], x, null, true, 1.5]
System.print([1, 2, 3].toString) // expect: [1, 2, 3]
System.print([].toString) // expect: []
System.print([1, 2, 3].contains(2)) // expect: true
System.print([1, 2, 3] == [1, 2, 3]) // expect: false
System.print([1, 2, 3].iterate(null)) // expect: 0
System.print([1, 2, 3].iterate(2)) // expect: false
System.print([].iterate(null)) // expect: false
System.print([1, 2, 3].iteratorValue(1)) // expect: 2
System.print([3, 1, 2].toList.sort()) // expect: [1, 2, 3]
var nested = [[1, 2], [3, 4]]
System.print(nested[1][0]) // expect: 3
System.print([1, 2, 3, 4].where {|n| n % 2 == 0 }.toList) // expect: [2, 4]
System.print([1, 2, 3].map {|n| n * 2 }.toList) // expect: [2, 4, 6]
System.print([1, 2, 3].reduce {|a, b| a + b }) // expect: 6
System.print([1, 2, 3].reduce(10) {|a, b| a + b }) // expect: 16
System.print([].reduce(10) {|a, b| a + b }) // expect: 10
System.print([1, 2, 3].all {|n| n > 2 }) // expect: false
System.print([1, 2, 3].all {|n| n < 4 }) // expect: true
System.print([1, 2, 3].any {|n| n < 1 }) // expect: false
System.print([1, 2, 3].any {|n| n > 2 }) // expect: true
System.print([1, 2, 3].count {|n| n > 2 }) // expect: 1
System.print([1, 2, 3].join()) // expect: 123
System.print([1, 2, 3].join(", ")) // expect: 1, 2, 3
System.print([1, 2, 3, 4, 5].skip(2).toList) // expect: [3, 4, 5]
System.print([1, 2, 3, 4, 5].take(2).toList) // expect: [1, 2]
System.print([1, 2, 3, 4, 5].skip(1).take(3).toList) // expect: [2, 3, 4]
System.print([1, 2, 3].take(0).toList) // expect: []
System.print([1, 2, 3].skip(10).toList) // expect: []
[1, 2].each {|x| System.write(x) }
System.print() // expect: 12
System.print([1, 2, 3].isEmpty) // expect: false
var numbers = [1, 2, 3]
var doubles = numbers.map {|n| n * 2 }.toList
numbers.add(4)
System.print(doubles) // expect: [2, 4, 6]
var lazy = numbers.map {|n| n * 2 }
numbers.add(5)
System.print(lazy.toList) // expect: [2, 4, 6, 8, 10]
System.print(lazy) // expect: instance of SequenceView
var l2 = [5, 3, 8, 1, 9, 2, 7, 4, 6, 0]
l2.sort {|a, b| a > b }
System.print(l2) // expect: [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
System.print([[2, "b"], [1, "a"]].sort {|a, b| a[0] < b[0] }) // expect: [[1, a], [2, b]]
System.print((1..3).toList) // expect: [1, 2, 3]
System.print([1,2,3].type) // expect: List
System.print(List.filled(0, 1)) // expect: []
