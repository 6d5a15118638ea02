// List.sort (wren.io core/list): sort() orders numbers, sort(comparer)
// asks the comparer whether its first argument goes first. Lists of every
// size up to 70 and a few larger ones, across the run boundaries of the
// merge sort, against the plain numeric sort.
var seed = 17
var next = Fn.new {
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed % 50
}
var allOk = true
for (size in (0..70).toList + [100, 257, 1000]) {
  var items = []
  for (i in 0...size) items.add(next.call())
  var byComparer = items.toList.sort {|a, b| a < b }
  var byDefault = items.toList.sort()
  var descending = items.toList.sort {|a, b| a > b }
  if (byComparer.toString != byDefault.toString) allOk = false
  var i = 1
  while (i < size) {
    if (descending[i - 1] < descending[i]) allOk = false
    i = i + 1
  }
}
System.print(allOk) // expect: true
// Equal elements keep their order.
var pairs = []
for (i in 0...40) pairs.add([i % 4, i])
pairs.sort {|a, b| a[0] < b[0] }
var stable = true
for (i in 1...40) {
  var a = pairs[i - 1]
  var b = pairs[i]
  if (a[0] > b[0] || (a[0] == b[0] && a[1] > b[1])) stable = false
}
System.print(stable) // expect: true
System.print(pairs[0..2]) // expect: [[0, 0], [0, 4], [0, 8]]
System.print(["pear", "fig", "apple"].sort {|a, b| a.count < b.count }) // expect: [fig, pear, apple]
var l = [3, 1, 2]
System.print(l.sort() == l) // expect: true
System.print([].sort {|a, b| a < b }) // expect: []
System.print(Fiber.new { [2, 1].sort(1) }.try()) // expect: Comparer must be a function.
System.print(Fiber.new { ["b", 1].sort() }.try()) // expect: Right operand must be a number.
// A comparer may yield: the sort runs as ordinary Wren code.
var asks = 0
var sorter = Fiber.new {
  var list = [3, 1, 2]
  list.sort {|a, b|
    asks = asks + 1
    Fiber.yield(asks)
    return a < b
  }
  return list
}
var result = null
while (!sorter.isDone) result = sorter.call()
System.print(result) // expect: [1, 2, 3]
