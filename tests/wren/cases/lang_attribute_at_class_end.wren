class C {
  m { 1 }
  #dangling
} // expect error
