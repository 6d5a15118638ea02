var a = 1
var b
System.print(a) // expect: 1
System.print(b) // expect: null
a = 2
System.print(a) // expect: 2
System.print(a = 3) // expect: 3
{
  var a = "shadow"
  System.print(a) // expect: shadow
  var c = a + "!"
  System.print(c) // expect: shadow!
}
System.print(a) // expect: 3
var x = 1
var y = x = 5
System.print(y) // expect: 5
