class T {
  static early(x) {
    if (x) return "early"
    return "late"
  }
  static implicit { "expr body" }
  static nothing() {}
  static loop() {
    for (i in 1..10) {
      if (i == 3) return i
    }
  }
}
System.print(T.early(true)) // expect: early
System.print(T.early(false)) // expect: late
System.print(T.implicit) // expect: expr body
System.print(T.nothing()) // expect: null
System.print(T.loop()) // expect: 3
