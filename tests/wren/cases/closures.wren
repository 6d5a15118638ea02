var makeCounter = Fn.new {
  var count = 0
  return Fn.new {
    count = count + 1
    return count
  }
}
var c1 = makeCounter.call()
var c2 = makeCounter.call()
System.print(c1.call()) // expect: 1
System.print(c1.call()) // expect: 2
System.print(c2.call()) // expect: 1
var fns = []
for (i in 1..3) fns.add(Fn.new { i })
for (f in fns) System.print(f.call())
// expect: 1
// expect: 2
// expect: 3
var shared
var setter
{
  var value = "a"
  shared = Fn.new { value }
  setter = Fn.new {|v| value = v }
}
setter.call("b")
System.print(shared.call()) // expect: b
var outer = Fn.new {
  var x = "outer"
  var middle = Fn.new {
    var inner = Fn.new { x + "!" }
    return inner
  }
  return middle.call()
}
System.print(outer.call().call()) // expect: outer!
