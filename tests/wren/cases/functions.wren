var add = Fn.new {|a, b| a + b }
System.print(add.call(1, 2)) // expect: 3
System.print(add.arity) // expect: 2
var noArgs = Fn.new { "no args" }
System.print(noArgs.call()) // expect: no args
var block = Fn.new {
  var x = 1
  return x + 1
}
System.print(block.call()) // expect: 2
System.print(Fn.new {}.call()) // expect: null
var extra = Fn.new {|a| a }
System.print(extra.call(1, 2, 3)) // expect: 1
System.print(add) // expect: <fn>
var fib
fib = Fn.new {|n| n < 2 ? n : fib.call(n - 1) + fib.call(n - 2) }
System.print(fib.call(15)) // expect: 610
System.print([1, 2, 3].map {|x| x * 10 }.toList) // expect: [10, 20, 30]
