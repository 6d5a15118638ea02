// for-in iteration over a list (and over ranges to build it).
var start = System.clock
var list = []
for (i in 0...1000000) list.add(i)

var sum = 0
for (round in 0...4) {
  for (i in list) sum = sum + i
}

System.print("checksum: %(sum)")
System.print("elapsed: %(System.clock - start)")
