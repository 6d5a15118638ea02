// Map keys compare with value equality, the same test as == (wren.io
// values/maps). 0 == -0 is true, so 0 and -0 are the same key; assigning
// through either replaces the value and keeps the key first stored.
System.print(0 == -0) // expect: true
var m = {}
m[0] = "zero"
System.print(m[-0]) // expect: zero
System.print(m.containsKey(-0)) // expect: true
m[-0] = "negative zero"
System.print(m.count) // expect: 1
System.print(m) // expect: {0: negative zero}
System.print(m[0]) // expect: negative zero
var n = {}
n[-0] = 1
System.print(n) // expect: {-0: 1}
System.print(n[0]) // expect: 1
n[0] = 2
System.print(n) // expect: {-0: 2}
System.print(n.remove(0)) // expect: 2
System.print(n.count) // expect: 0
System.print(n.containsKey(-0)) // expect: false
var lit = {0: "a", -0: "b"}
System.print(lit.count) // expect: 1
System.print(lit[0]) // expect: b
// Computed zeros are the same key too.
var k = {}
k[1 - 1] = "x"
k[-1 * 0] = "y"
k[0 / -5] = "z"
System.print(k.count) // expect: 1
System.print(k[0]) // expect: z
// Other numbers compare by value: 1 and 1.0 are the same number.
k[1] = "one"
k[1.0] = "one again"
k[0.5 + 0.5] = "still one"
System.print(k.count) // expect: 2
System.print(k[1]) // expect: still one
