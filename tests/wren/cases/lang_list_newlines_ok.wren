var list = [
  1,
  2,
]
System.print(list) // expect: [1, 2]
var two = [1, 2
]
System.print(two) // expect: [1, 2]
var map = {
  "a": 1,
  "b": 2
}
System.print(map["b"]) // expect: 2
