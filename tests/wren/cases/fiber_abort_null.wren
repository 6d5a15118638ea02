Fiber.abort(null)
System.print("still running") // expect: still running
