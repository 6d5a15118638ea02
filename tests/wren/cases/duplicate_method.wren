class Foo {
  bar { 1 }
  static bar { 2 }
  bar(a) { 3 }
  bar { 4 } // expect error
}
