var list = [1, 2]
list[5] // expect runtime error: Subscript out of bounds.
