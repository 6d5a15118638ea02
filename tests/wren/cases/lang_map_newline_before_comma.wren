var map = {"a": 1
, "b": 2} // expect error
