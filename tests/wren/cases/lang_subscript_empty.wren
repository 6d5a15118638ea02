class C {
  [] { 1 } // expect error
}
