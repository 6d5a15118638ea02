class A {
  construct new() { System.print("A.new()") }
  construct make(a, b) { System.print("A.make(%(a), %(b))") }
}
class B is A {
  construct new() {
    super()
    System.print("B.new()")
  }
  construct make(a) {
    super(a, a + 1)
  }
}
B.new() // expect: A.new()
// expect: B.new()
B.make(1) // expect: A.make(1, 2)
