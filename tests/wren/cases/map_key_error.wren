var m = {}
m[[1]] = 2 // expect runtime error: Key must be a value type.
