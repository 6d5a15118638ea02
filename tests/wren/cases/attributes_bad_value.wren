// Attribute values are literals or names, not expressions.
class Bad {
  #!key = [1] // expect error
  foo() {}
}
