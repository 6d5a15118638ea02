class C {
  []=(value) { 1 } // expect error
}
