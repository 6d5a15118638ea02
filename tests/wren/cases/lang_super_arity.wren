// A bare super names the superclass method of the enclosing method's name;
// the arguments after it choose which arity is called.
class Base {
  foo { System.print("Base.foo") }
  foo(a) { System.print("Base.foo(%(a))") }
  foo(a, b) { System.print("Base.foo(%(a), %(b))") }
  foo=(v) { System.print("Base.foo=(%(v))") }
}
class Derived is Base {
  construct new() {}
  foo(a) {
    System.print("Derived.foo(%(a))")
    super
    super(1)
    super(1, 2)
    super = 3
    super.foo(4, 5)
  }
}
Derived.new().foo(0)
// expect: Derived.foo(0)
// expect: Base.foo
// expect: Base.foo(1)
// expect: Base.foo(1, 2)
// expect: Base.foo=(3)
// expect: Base.foo(4, 5)
