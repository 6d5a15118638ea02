// Inside a method, a lowercase name the method does not declare is a call
// on this, even when the code around the class has a local of that name.
{
  var foo = "variable"
  var Upper = "captured"
  class Foo {
    construct new() {}
    foo { "method" }
    method { System.print(foo) }
    inBlock { Fn.new { System.print(foo) }.call() }
    upper { System.print(Upper) }
    own {
      var foo = "method local"
      return Fn.new { foo }.call()
    }
    static foo { "class method" }
    static classMethod { System.print(foo) }
  }
  Foo.new().method // expect: method
  Foo.new().inBlock // expect: method
  Foo.new().upper // expect: captured
  System.print(Foo.new().own) // expect: method local
  Foo.classMethod // expect: class method
  System.print(foo) // expect: variable
}
