System.print("abc"["x"]) // expect runtime error: Subscript must be a number or a range.
