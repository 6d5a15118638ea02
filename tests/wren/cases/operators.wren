class Vec {
  construct new(v) {
    _v = v
  }
  v { _v }
  *(o) { Vec.new(_v * o.v) }
  /(o) { Vec.new(_v / o.v) }
  %(o) { Vec.new(_v % o.v) }
  <(o) { _v < o.v }
  >(o) { _v > o.v }
  <=(o) { _v <= o.v }
  >=(o) { _v >= o.v }
  &(o) { "and" }
  |(o) { "or" }
  ^(o) { "xor" }
  <<(o) { "shl" }
  >>(o) { "shr" }
  ..(o) { "range" }
  ...(o) { "xrange" }
  ! { "not" }
  ~ { "tilde" }
  is(o) { "is!" }
}
var a = Vec.new(6)
var b = Vec.new(4)
System.print((a * b).v) // expect: 24
System.print((a / b).v) // expect: 1.5
System.print((a % b).v) // expect: 2
System.print(a < b) // expect: false
System.print(a > b) // expect: true
System.print(a <= b) // expect: false
System.print(a >= b) // expect: true
System.print(a & b) // expect: and
System.print(a | b) // expect: or
System.print(a ^ b) // expect: xor
System.print(a << b) // expect: shl
System.print(a >> b) // expect: shr
System.print(a .. b) // expect: range
System.print(a ... b) // expect: xrange
System.print(!a) // expect: not
System.print(~a) // expect: tilde
System.print(a is b) // expect: is!
