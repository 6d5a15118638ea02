var done = Fiber.new { 1 }
done.call()
System.print(Fiber.new { done.call() }.try()) // expect: Cannot call a finished fiber.
var self
self = Fiber.new { self.call() }
System.print(self.try()) // expect: Fiber has already been called.
System.print(Fiber.new {|a, b| a }) // expect runtime error: Function cannot take more than one parameter.
