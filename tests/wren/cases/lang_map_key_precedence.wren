// A map key is at most a unary expression; a binary one needs parentheses.
var map = {
  1 + 2: "three" // expect error
}
