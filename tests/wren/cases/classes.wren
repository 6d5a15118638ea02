class Point {
  construct new(x, y) {
    _x = x
    _y = y
  }
  x { _x }
  y { _y }
  x=(value) { _x = value }
  +(other) { Point.new(_x + other.x, _y + other.y) }
  -(other) { Point.new(_x - other.x, _y - other.y) }
  - { Point.new(-_x, -_y) }
  ==(other) { other is Point && _x == other.x && _y == other.y }
  [index] { index == 0 ? _x : _y }
  [index]=(value) {
    if (index == 0) {
      _x = value
    } else {
      _y = value
    }
  }
  toString { "(%(_x), %(_y))" }
  static origin { Point.new(0, 0) }
  static count { __count }
  static count=(value) { __count = value }
  distanceTo(other) {
    var dx = _x - other.x
    var dy = _y - other.y
    return (dx * dx + dy * dy).sqrt
  }
  scaled(a) { Point.new(_x * a, _y * a) }
  scaled(a, b) { Point.new(_x * a, _y * b) }
}
var p = Point.new(1, 2)
System.print(p) // expect: (1, 2)
System.print(p.x) // expect: 1
p.x = 10
System.print(p.x) // expect: 10
System.print(p + Point.new(1, 1)) // expect: (11, 3)
System.print(-p) // expect: (-10, -2)
System.print(p == Point.new(10, 2)) // expect: true
System.print(p != Point.new(10, 2)) // expect: true
System.print(p[0]) // expect: 10
p[1] = 7
System.print(p[1]) // expect: 7
System.print(Point.origin) // expect: (0, 0)
Point.count = 5
System.print(Point.count) // expect: 5
System.print(Point.new(0, 0).distanceTo(Point.new(3, 4))) // expect: 5
System.print(p.scaled(2)) // expect: (20, 14)
System.print(p.scaled(2, 3)) // expect: (20, 21)
System.print(p is Point) // expect: true
System.print(p is Object) // expect: true
System.print(p.type) // expect: Point
System.print(Point.name) // expect: Point
System.print(Point) // expect: Point
System.print(Point.type) // expect: Point metaclass
System.print(Point.supertype) // expect: Object
class Plain {
  construct new() {}
}
System.print(Plain.new()) // expect: instance of Plain
class Counter {
  construct new() {
    _n = 0
  }
  increment() {
    _n = _n + 1
    return this
  }
  n { _n }
  addTwice { increment().increment() }
  useImplicitThis { n * 100 }
}
var c = Counter.new()
c.increment().increment()
System.print(c.n) // expect: 2
System.print(c.addTwice.n) // expect: 4
System.print(c.useImplicitThis) // expect: 400
class Forward {
  static make { Later.new() }
}
class Later {
  construct new() {}
  toString { "later" }
}
System.print(Forward.make) // expect: later
