var name = "key"
var map = {
  name: "variable",
  name.count: "call",
  -1: "unary minus",
  !false: "not",
  (1 + 2): "parenthesized",
  (1..2): "range",
  "k": true ? "conditional" : "value"
}
System.print(map["key"]) // expect: variable
System.print(map[3]) // expect: parenthesized
System.print(map[-1]) // expect: unary minus
System.print(map[true]) // expect: not
System.print(map[1..2]) // expect: range
System.print(map["k"]) // expect: conditional
