class R {
  static down(n) {
    if (n == 0) return 0
    return down(n - 1) + 1
  }
}
System.print(R.down(20000)) // expect: 20000
