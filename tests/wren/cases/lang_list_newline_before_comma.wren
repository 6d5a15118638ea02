var list = [1
, 2] // expect error
