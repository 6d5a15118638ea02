System.print("abc"[10]) // expect runtime error: Subscript out of bounds.
