// Map with string keys: build keys, insert, look up, remove.
var start = System.clock
var n = 200000
var keys = []
for (i in 0...n) keys.add("key" + i.toString)

var map = {}
for (i in 0...n) map[keys[i]] = i

var sum = 0
for (round in 0...3) {
  for (key in keys) sum = sum + map[key]
}
for (i in 0...n) {
  if (map.containsKey("key" + (i * 7).toString)) sum = sum + 1
}

for (key in keys) map.remove(key)

System.print("checksum: %(sum) %(map.count)")
System.print("elapsed: %(System.clock - start)")
