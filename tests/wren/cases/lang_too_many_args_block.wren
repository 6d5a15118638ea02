class C {
  static m(a) { a }
}
// Sixteen arguments and a block argument make seventeen.
C.m(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16) { 1 } // expect error
