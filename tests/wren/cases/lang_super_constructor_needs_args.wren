class A {
  construct new() {}
}
class B is A {
  construct new() {
    super // expect error
  }
}
