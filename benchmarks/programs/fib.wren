// Recursive Fibonacci: static method calls and number arithmetic.
class Fib {
  static get(n) {
    if (n < 2) return n
    return get(n - 1) + get(n - 2)
  }
}

var start = System.clock
var total = 0
for (i in 0...4) {
  total = total + Fib.get(28)
}
System.print("checksum: %(total)")
System.print("elapsed: %(System.clock - start)")
