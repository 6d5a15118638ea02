System.print("start") // expect: start
Fiber.abort("custom failure") // expect runtime error: custom failure
System.print("not reached")
