// Map with integer keys: insert, look up, remove.
var start = System.clock
var map = {}
var n = 400000

for (i in 1..n) map[i] = i

var sum = 0
for (i in 1..n) sum = sum + map[i]
for (i in 1..n) sum = sum + map[i * 2 % n + 1]

for (i in 1..n) map.remove(i)

System.print("checksum: %(sum) %(map.count)")
System.print("elapsed: %(System.clock - start)")
