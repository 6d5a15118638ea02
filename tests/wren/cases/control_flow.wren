if (true) System.print("then") // expect: then
if (false) System.print("no") else System.print("else") // expect: else
if (null) {
  System.print("no")
} else if (0) {
  System.print("zero is truthy") // expect: zero is truthy
}
var i = 0
while (i < 3) {
  System.print(i)
  i = i + 1
}
// expect: 0
// expect: 1
// expect: 2
for (n in [10, 20]) System.print(n)
// expect: 10
// expect: 20
for (n in 1..10) {
  if (n == 2) continue
  if (n > 4) break
  System.print(n)
}
// expect: 1
// expect: 3
// expect: 4
var j = 0
while (true) {
  j = j + 1
  if (j == 5) break
}
System.print(j) // expect: 5
System.print(true && "yes") // expect: yes
System.print(false && "yes") // expect: false
System.print(null || "default") // expect: default
System.print(1 || 2) // expect: 1
System.print(1 < 2 ? "less" : "more") // expect: less
System.print(!true) // expect: false
System.print(!null) // expect: true
for (i in 3..1) System.print(i)
// expect: 3
// expect: 2
// expect: 1
for (i in 0...0) System.print("never")
var sum = 0
for (a in 1..3) {
  for (b in 1..3) {
    if (b == 2) break
    sum = sum + a * b
  }
}
System.print(sum) // expect: 6
