class C {
  static m {
    var x = 1
    return x } // expect error
}
