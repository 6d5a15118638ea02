// Allocation-heavy: build and walk many complete binary trees.
class Tree {
  construct new(left, right) {
    _left = left
    _right = right
  }

  static create(depth) {
    if (depth == 0) return Tree.new(null, null)
    return Tree.new(Tree.create(depth - 1), Tree.create(depth - 1))
  }

  check {
    if (_left == null) return 1
    return 1 + _left.check + _right.check
  }
}

var start = System.clock
var minDepth = 4
var maxDepth = 13
var checksum = 0

checksum = checksum + Tree.create(maxDepth + 1).check
var longLived = Tree.create(maxDepth)

var depth = minDepth
while (depth <= maxDepth) {
  var iterations = 1 << (maxDepth - depth + minDepth)
  var sum = 0
  for (i in 0...iterations) {
    sum = sum + Tree.create(depth).check
  }
  checksum = checksum + sum
  depth = depth + 2
}
checksum = checksum + longLived.check

System.print("checksum: %(checksum)")
System.print("elapsed: %(System.clock - start)")
