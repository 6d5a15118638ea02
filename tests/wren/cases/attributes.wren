#key = "value"
#flag
class Tagged {
  #method
  #group(a = 1, b)
  construct new() {}
  value { 42 }
}
System.print(Tagged.new().value) // expect: 42
