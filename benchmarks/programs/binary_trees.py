# Allocation-heavy: build and walk many complete binary trees.
import time


class Tree:
    def __init__(self, left, right):
        self.left = left
        self.right = right

    @staticmethod
    def create(depth):
        if depth == 0:
            return Tree(None, None)
        return Tree(Tree.create(depth - 1), Tree.create(depth - 1))

    def check(self):
        if self.left is None:
            return 1
        return 1 + self.left.check() + self.right.check()


start = time.perf_counter()
minDepth = 4
maxDepth = 13
checksum = 0

checksum = checksum + Tree.create(maxDepth + 1).check()
longLived = Tree.create(maxDepth)

depth = minDepth
while depth <= maxDepth:
    iterations = 1 << (maxDepth - depth + minDepth)
    sum = 0
    for i in range(0, iterations):
        sum = sum + Tree.create(depth).check()
    checksum = checksum + sum
    depth = depth + 2
checksum = checksum + longLived.check()

print("checksum: %s" % checksum)
print("elapsed: %s" % (time.perf_counter() - start))
