// Attributes belong to classes and methods only.
#doc = "not here"
var x = 1 // expect error
