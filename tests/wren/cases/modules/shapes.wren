import "counter" for Counter
var Pi = 3
class Square {
  construct new(side) {
    _side = side
    Counter.increment()
  }
  area { _side * _side }
}
