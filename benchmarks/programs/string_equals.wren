// String equality: equal, unequal and equal-length strings built at run time.
var start = System.clock
var words = []
for (i in 0...200) words.add("word-number-" + (i % 50).toString + "-suffix")

var count = 0
for (round in 0...6000) {
  for (a in words) {
    if (a == "word-number-7-suffix") count = count + 1
    if (a == words[round % 199]) count = count + 1
    if (a != words[round % 199 + 1]) count = count + 1
  }
  for (i in 0...199) {
    if (words[i] == words[i + 1]) count = count + 1
  }
}
for (round in 0...30000) {
  for (a in words) {
    if (a == "word-number-1-suffix") count = count + 1
  }
}

System.print("checksum: %(count)")
System.print("elapsed: %(System.clock - start)")
