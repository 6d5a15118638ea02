// Object, Class, Bool, Null, Fn and System as wren.io documents them.
class A {
  construct new() {}
}
class B is A {
  construct new() { super() }
  toString { "B!" }
}
System.print(Object.same(1, 1)) // expect: true
System.print(Object.same(0, -0)) // expect: false
System.print(0 == -0) // expect: true
System.print(Object.same("ab", "a" + "b")) // expect: true
System.print(Object.same(1..2, 1..2)) // expect: true
System.print(Object.same(1..2, 1...2)) // expect: false
System.print(Object.same([], [])) // expect: false
System.print(Object.same(null, null)) // expect: true
System.print(Object.same(Num, Num)) // expect: true
System.print(Object.same(0/0, 0/0)) // expect: true
var a = A.new()
System.print(Object.same(a, a)) // expect: true
System.print(Object.same(a, A.new())) // expect: false
System.print(a) // expect: instance of A
System.print(B.new()) // expect: B!
System.print(A.name) // expect: A
System.print(A.supertype) // expect: Object
System.print(B.supertype) // expect: A
System.print(Object.supertype) // expect: null
System.print(Class.supertype) // expect: Object
System.print(Num.supertype) // expect: Object
System.print(List.supertype) // expect: Sequence
System.print(A.type) // expect: A metaclass
System.print(A.type.type) // expect: Class
System.print(a.type) // expect: A
System.print(B.new() is A) // expect: true
System.print(A is Class) // expect: true
System.print(null is Object) // expect: true
System.print(123 is Num) // expect: true
System.print("s" is Num) // expect: false
System.print(null is String) // expect: false
System.print([] is List) // expect: true
System.print([] is Sequence) // expect: true
System.print(Fiber.new { 1 is 2 }.try()) // expect: Right operand must be a class.
System.print(!a) // expect: false
System.print(!null) // expect: true
System.print(!0) // expect: false
System.print(null) // expect: null
System.print(false.toString) // expect: false
System.print(null.type) // expect: Null
System.print(true.type) // expect: Bool
System.print(Fn.new {}.arity) // expect: 0
System.print(Fn.new {|a, b, c| a }.arity) // expect: 3
System.print(Fn.new { 1 }) // expect: <fn>
System.print(Fn.new {|x, y| [x, y] }.call(1, 2, 3)) // expect: [1, 2]
System.print(Fiber.new { Fn.new {|x| x }.call() }.try()) // expect: Function expects more arguments.
System.print(Fiber.new { Fn.new(1) }.try()) // expect: Argument must be a function.
System.printAll([1, [2, 3], 4]) // expect: 1[2, 3]4
System.printAll([]) // expect: 
System.writeAll([1, 2, 3])
System.print() // expect: 123
System.write(4 + 5)
System.print(System.write("!")) // expect: 9!!
var printed = System.print("returned") // expect: returned
System.print(printed) // expect: returned
System.print(System.clock is Num) // expect: true
System.print(System.gc()) // expect: null
System.print(System) // expect: System
