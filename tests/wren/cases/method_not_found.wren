class Foo {
  construct new() {}
}
Foo.new().bar(1, 2) // expect runtime error: Foo does not implement 'bar(_,_)'.
