import "shapes" for Square, Pi as PI
import "counter" for Counter
System.print(Square.new(3).area) // expect: 9
System.print(PI) // expect: 3
Square.new(1)
System.print(Counter.count) // expect: 2
import "nowhere" // expect runtime error: Could not load module 'nowhere'.
