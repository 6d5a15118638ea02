class C {
  static m {
    #key
    return 1 // expect error
  }
}
